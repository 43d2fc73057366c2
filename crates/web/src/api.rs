//! The UI's HTTP surface: the embedded page at `/`, the JSON API under `/api/` (see
//! `crates/web/src/API.md`), server-sent events, and downloads rendered by the report writers.
//!
//! Invariants: every route passes [`guard`] (token, loopback host names without a token, JSON
//! content type on `POST`); handlers never hold the hub's lock across an `.await`; errors are
//! JSON `{"error": "…"}` with 400 (bad value), 401 (token), 404, 409 (wrong state), 415
//! (not JSON).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Refusal};
use super::launch::{Launcher, StartRequest};
use crate::control::Command;

const PAGE: &str = include_str!("assets/index.html");
const STYLE: &str = include_str!("assets/app.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// The server's shared state.
pub struct App {
    pub hub: Arc<Hub>,
    /// Present for `loadplan ui` (the browser starts runs); absent for `run --ui`.
    pub launcher: Option<Launcher>,
    pub token: Option<String>,
    /// Cancelled when the server stops (ends the event streams).
    pub stop: CancellationToken,
}

type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/state", get(state))
        .route("/api/stats", get(stats))
        .route("/api/events", get(events))
        .route("/api/start", post(start))
        .route("/api/stop", post(stop))
        .route("/api/users", post(users))
        .route("/api/rate", post(rate))
        .route("/api/reset", post(reset))
        .route("/api/download/stats.csv", get(stats_csv))
        .route("/api/download/failures.csv", get(failures_csv))
        .route("/api/download/stats_history.csv", get(history_csv))
        .route("/api/download/result.json", get(result_json))
        .route("/api/download/report.html", get(report_html))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Conflict(m) => error(StatusCode::CONFLICT, m),
        Refusal::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such page or API call (see /api/state)",
    )
}

/// Compares without stopping at the first difference (the time taken does not tell how
/// much of a guess was right).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn query_token(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 without Host: nothing to rebind.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Authentication and the cross-site defences; see the module docs.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    match &app.token {
        Some(token) => {
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            // A query token is accepted where a browser cannot set a header: the page, the
            // event stream and downloads (all GET).
            let given = bearer.or_else(|| {
                (req.method() == Method::GET)
                    .then(|| query_token(&req))
                    .flatten()
            });
            if !given.is_some_and(|g| same(&g, token)) {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "this UI needs its token: send `Authorization: Bearer TOKEN`, or open /?token=TOKEN",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        None if !loopback_host(req.headers()) => {
            return error(
                StatusCode::FORBIDDEN,
                "without a token the UI answers only to localhost / 127.0.0.1",
            );
        }
        None => {}
    }
    if req.method() == Method::POST {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !json {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send a JSON body with Content-Type: application/json",
            );
        }
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn page() -> Response {
    let html = PAGE
        .replace("/*STYLE*/", STYLE)
        .replace("/*SCRIPT*/", SCRIPT);
    let mut r = Html(html).into_response();
    // Everything is inline; nothing may be fetched from elsewhere.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    r
}

async fn state(State(app): State<Shared>) -> Response {
    let mut value = app.hub.state();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("can_start".into(), app.launcher.is_some().into());
        let profiles = app.launcher.as_ref().map(Launcher::profiles);
        obj.insert(
            "profiles".into(),
            serde_json::json!(profiles.unwrap_or_default()),
        );
        let defaults = app
            .launcher
            .as_ref()
            .map(|l| serde_json::json!({ "profile": l.profile, "host": l.host }));
        obj.insert("defaults".into(), defaults.unwrap_or_default());
    }
    Json(value).into_response()
}

async fn stats(State(app): State<Shared>) -> Response {
    Json(app.hub.stats()).into_response()
}

async fn events(State(app): State<Shared>) -> impl IntoResponse {
    let rx = app.hub.subscribe();
    let stop = app.stop.clone();
    // First the current state (so a new page needs no other call to be in sync), then one
    // event per tick or change; a subscriber that lags only loses old events.
    let first = serde_json::json!({ "state": app.hub.state(), "stats": null, "point": null });
    let stream = futures_util::stream::unfold(
        (Some(first.to_string()), rx, stop),
        |(first, mut rx, stop)| async move {
            if let Some(text) = first {
                let ev = Event::default().event("tick").data(text);
                return Some((Ok::<_, Infallible>(ev), (None, rx, stop)));
            }
            loop {
                // Pending events first: the final one still reaches the page at shutdown.
                tokio::select! {
                    biased;
                    msg = rx.recv() => match msg {
                        Ok(text) => {
                            let ev = Event::default().event("tick").data(text.as_ref());
                            return Some((Ok(ev), (None, rx, stop)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = stop.cancelled() => return None,
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn start(State(app): State<Shared>, body: Json<StartRequest>) -> Response {
    let Some(launcher) = &app.launcher else {
        return error(
            StatusCode::CONFLICT,
            "this run was started from the command line (`loadplan run --ui`); start runs from `loadplan ui`",
        );
    };
    match launcher.start(&app.hub, &body) {
        Ok(run) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "run": run, "state": app.hub.state() })),
        )
            .into_response(),
        Err(r) => refused(r),
    }
}

fn control(app: &App, command: Command) -> Response {
    match app.hub.send(command) {
        Ok(()) => (StatusCode::ACCEPTED, Json(app.hub.state())).into_response(),
        Err(r) => refused(r),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StopBody {
    /// Abandon in-flight iterations instead of letting them finish.
    #[serde(default)]
    kill: bool,
}

/// An optional JSON body (`{}` or nothing at all).
fn optional<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))
}

async fn stop(State(app): State<Shared>, body: Bytes) -> Response {
    match optional::<StopBody>(&body) {
        Ok(b) => control(&app, if b.kill { Command::Kill } else { Command::Stop }),
        Err(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersBody {
    users: u64,
    spawn_rate: Option<f64>,
}

async fn users(State(app): State<Shared>, Json(b): Json<UsersBody>) -> Response {
    control(
        &app,
        Command::SetUsers {
            users: b.users,
            spawn_rate: b.spawn_rate,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    rate: f64,
}

async fn rate(State(app): State<Shared>, Json(b): Json<RateBody>) -> Response {
    control(&app, Command::SetRate { rate: b.rate })
}

async fn reset(State(app): State<Shared>, body: Bytes) -> Response {
    match optional::<serde_json::Map<String, serde_json::Value>>(&body) {
        Ok(_) => control(&app, Command::ResetStats),
        Err(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

fn download(content_type: &'static str, name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn no_run() -> Response {
    error(StatusCode::NOT_FOUND, "no run yet: start one first")
}

/// Renders `PREFIX_stats.csv` / `PREFIX_failures.csv` through the CSV writer (which writes
/// files) in a private temporary folder, and returns one of them.
fn csv_text(report: &crate::report::RunReport, which: usize) -> std::io::Result<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "loadplan-ui-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let prefix = dir.join("run");
    let result = crate::report::csv::write_final(&prefix, report).and_then(|()| {
        let paths = crate::report::csv::paths(&prefix);
        std::fs::read_to_string(&paths[which])
    });
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::debug!(error = %e, "web ui: temporary CSV folder left behind");
    }
    result
}

async fn stats_csv(State(app): State<Shared>) -> Response {
    csv_download(&app, 0, "stats.csv").await
}

async fn failures_csv(State(app): State<Shared>) -> Response {
    csv_download(&app, 2, "failures.csv").await
}

async fn history_csv(State(app): State<Shared>) -> Response {
    match app.hub.history_csv() {
        Some((text, truncated)) => {
            let mut r = download("text/csv; charset=utf-8", "stats_history.csv", text);
            if truncated {
                r.headers_mut().insert(
                    "x-loadplan-truncated",
                    HeaderValue::from_static("the UI keeps 32 MiB of history; use --csv"),
                );
            }
            r
        }
        None => no_run(),
    }
}

async fn csv_download(app: &App, which: usize, name: &str) -> Response {
    let Some(report) = app.hub.report() else {
        return no_run();
    };
    let text = match tokio::task::spawn_blocking(move || csv_text(&report, which)).await {
        Ok(text) => text.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    rendered("CSV", "text/csv; charset=utf-8", name, text)
}

/// A rendered file as a download, or a server error saying which format failed.
fn rendered(
    format: &str,
    content_type: &'static str,
    name: &str,
    text: Result<String, String>,
) -> Response {
    match text {
        Ok(text) => download(content_type, name, text),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render {format}: {e}"),
        ),
    }
}

async fn result_json(State(app): State<Shared>) -> Response {
    let Some(report) = app.hub.report() else {
        return no_run();
    };
    let text = serde_json::to_string_pretty(&report)
        .map(|text| text + "\n")
        .map_err(|e| e.to_string());
    rendered("JSON", "application/json", "result.json", text)
}

async fn report_html(State(app): State<Shared>) -> Response {
    let Some(report) = app.hub.report() else {
        return no_run();
    };
    download(
        "text/html; charset=utf-8",
        "report.html",
        crate::report::html::render(&report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn only_loopback_host_names_pass_without_a_token() {
        let with = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(h).expect("header"));
            loopback_host(&m)
        };
        assert!(with("127.0.0.1:8089"));
        assert!(with("localhost:8089"));
        assert!(with("[::1]:8089"));
        assert!(!with("evil.example:8089"));
        assert!(!with("192.168.1.4:8089"));
    }

    #[test]
    fn the_page_embeds_its_assets_and_names_no_external_url() {
        let html = PAGE
            .replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT);
        assert!(!html.contains("/*SCRIPT*/") && !html.contains("/*STYLE*/"));
        for bad in ["http://", "https://", "//cdn", "<script src", "<link "] {
            assert!(!html.contains(bad), "the page contains `{bad}`");
        }
    }
}
