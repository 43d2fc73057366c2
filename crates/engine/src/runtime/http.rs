//! HTTP steps: build the request from compiled templates, send it, read the body, run checks
//! and captures, and record one event.
//!
//! Two senders, one behaviour: plain `http://` HTTP/1.1 goes through [`super::fast`] (the
//! user's own keep-alive connection, parsed with httparse in the user's task); HTTPS, HTTP/2
//! and multipart go through reqwest, whose client is built once per process (or once per user
//! when cookies are on, so jars stay isolated): pooled keep-alive, no proxy lookup, rustls with
//! the ring provider ([`super::tls`]). Every failure becomes a counted event with a bounded
//! [`ErrorKind`].

use std::error::Error as _;
use std::time::{Duration, Instant};

use minijinja::value::Value as JValue;
use reqwest::header::HeaderMap;

use super::fast::{self, Answer, Failure, Prepared, Received, Sent};
use super::interp::Flow;
use super::user::User;
use crate::lang::ir::{Body, Capture, CaptureFrom, Check, HttpStep, Predicate, Program};
use crate::metrics::{ErrorKind, Event, Phases};

tokio::task_local! {
    /// The redirect limit of the request being sent (a step may set its own).
    pub(super) static REDIRECTS: usize;
    /// The connections the request being sent through reqwest opened: name resolution
    /// (`dns_us`) and the whole connector, resolution + TCP + TLS (`connect_us`), as
    /// [`Resolver`] and [`TimeConnect`] saw them. A connection reqwest finishes opening
    /// in the background (after the request took an idle one) is not this request's.
    static OPENED: std::cell::Cell<fast::Timing>;
}

/// Adds the time since `start` to one phase of [`OPENED`] (outside a request being sent:
/// a connection finishing in the background, nothing).
fn add_opened(start: Instant, phase: fn(&mut fast::Timing) -> &mut Option<u64>) {
    let us = start.elapsed().as_micros() as u64;
    let _ = OPENED.try_with(|c| {
        let mut t = c.get();
        let p = phase(&mut t);
        *p = Some(p.unwrap_or(0) + us);
        c.set(t);
    });
}

/// Name resolution for reqwest, timed into [`OPENED`] (the lookup is tokio's
/// `getaddrinfo` on a blocking thread, as reqwest's default resolver does).
struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let start = Instant::now();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            add_opened(start, |t| &mut t.dns_us);
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A connector layer timing each connection reqwest opens into [`OPENED`].
#[derive(Clone, Copy)]
struct TimeConnect;

impl<S> tower_layer::Layer<S> for TimeConnect {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

/// A connector timed by [`TimeConnect`].
#[derive(Clone)]
struct Timed<S>(S);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let start = Instant::now();
        let connecting = self.0.call(req);
        Box::pin(async move {
            let conn = connecting.await;
            if conn.is_ok() {
                add_opened(start, |t| &mut t.connect_us);
            }
            conn
        })
    }
}

/// Install the rustls crypto provider once (reqwest is built without a default one).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS configuration of a run's HTTP clients, built once ([`super::tls`]): the platform
/// verifier loads the system's roots when built, which per user client cost ~10 % of a short
/// run's CPU.
pub fn tls_config(program: &Program, insecure: bool) -> Result<rustls::ClientConfig, String> {
    let alpn = if program.http.http2 {
        super::tls::H2
    } else {
        super::tls::HTTP1
    };
    super::tls::client_config(insecure, alpn)
}

/// A client configured for load.
pub fn client(
    program: &Program,
    insecure: bool,
    cookies: bool,
    tls: Option<&rustls::ClientConfig>,
) -> Result<reqwest::Client, reqwest::Error> {
    builder(program, insecure, tls)
        .cookie_store(cookies)
        .build()
}

/// A client for one user whose cookies live in `jar` (shared with the user's direct
/// plain-HTTP connections).
pub fn client_with_jar(
    program: &Program,
    insecure: bool,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    tls: Option<&rustls::ClientConfig>,
) -> Result<reqwest::Client, reqwest::Error> {
    builder(program, insecure, tls).cookie_provider(jar).build()
}

/// `User-Agent` sent unless the plan sets one.
pub const USER_AGENT: &str = concat!("loadplan/", env!("CARGO_PKG_VERSION"));

fn builder(
    program: &Program,
    insecure: bool,
    tls: Option<&rustls::ClientConfig>,
) -> reqwest::ClientBuilder {
    install_crypto();
    // The plan's limit, or the current step's (`http … redirects=0`, see REDIRECTS).
    let default = program.http.redirects as usize;
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        let max = REDIRECTS.try_with(|m| *m).unwrap_or(default);
        if max == 0 {
            attempt.stop()
        } else if attempt.previous().len() > max {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(redirect)
        .connect_timeout(program.http.connect_timeout)
        .timeout(program.http.timeout)
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .user_agent(USER_AGENT)
        .dns_resolver(Resolver)
        .connector_layer(TimeConnect);
    if program.http.http2 {
        b = b.http2_prior_knowledge();
    } else {
        b = b.http1_only();
    }
    match tls {
        // The run's configuration: verified, or accepting any certificate under --insecure.
        Some(tls) => b = b.tls_backend_preconfigured(tls.clone()),
        None => b = b.danger_accept_invalid_certs(insecure),
    }
    b
}

/// Sockets one user may hold at once: its HTTP connection(s), plus every named
/// WebSocket connection it keeps and one for an unnamed session.
pub fn sockets_per_user(program: &Program) -> u64 {
    fn walk<'a>(steps: &'a [crate::lang::ir::Step], named: &mut Vec<&'a str>, unnamed: &mut bool) {
        use crate::lang::ir::Step;
        for s in steps {
            match s {
                Step::Ws(w) => match &w.connection {
                    Some(n) if !named.contains(&n.as_str()) => named.push(n),
                    Some(_) => {}
                    None => *unnamed = true,
                },
                Step::Group { steps, .. }
                | Step::Repeat { steps, .. }
                | Step::Pick { steps, .. } => walk(steps, named, unnamed),
                Step::If {
                    then, otherwise, ..
                } => {
                    walk(then, named, unnamed);
                    walk(otherwise, named, unnamed);
                }
                Step::Http(_) | Step::Sleep(_) | Step::Set { .. } | Step::Log(_) => {}
            }
        }
    }
    program
        .scenarios
        .iter()
        .map(|sc| {
            let (mut named, mut unnamed) = (Vec::new(), false);
            for steps in [&sc.on_start, &sc.steps, &sc.on_stop] {
                walk(steps, &mut named, &mut unnamed);
            }
            1 + named.len() as u64 + u64::from(unnamed)
        })
        .max()
        .unwrap_or(1)
}

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits` (Linux);
/// `None` when unknown or unlimited.
pub fn soft_nofile() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Descriptors the process needs besides the users' sockets (runtime, listeners,
/// report files, the UI).
const FD_MARGIN: u64 = 64;

/// A start-up warning when `ulimit -n` is below what `users` users need
/// ([`sockets_per_user`] each, plus a margin): past it, connects fail with `local`.
pub fn nofile_warning(program: &Program, users: u64, limit: Option<u64>) -> Option<String> {
    let limit = limit?;
    let need = users
        .saturating_mul(sockets_per_user(program))
        .saturating_add(FD_MARGIN);
    (limit < need).then(|| {
        format!(
            "`ulimit -n` is {limit} but {users} users may need {need} open files; connections past the limit fail with `local` errors (raise it: `ulimit -n {}`)",
            need.next_power_of_two().max(1024)
        )
    })
}

/// [`nofile_warning`] for the most users `profile` runs at once, against this
/// process's `ulimit -n`.
pub fn profile_nofile_warning(
    program: &Program,
    profile: &crate::profile::LoadProfile,
) -> Option<String> {
    use crate::profile::Model;
    let peak_users = match profile.model {
        Model::Closed { users, .. } => profile
            .stages
            .iter()
            .map(|s| s.target.max(0.0).ceil() as u64)
            .fold(users, u64::max),
        Model::Open { max_users, .. } => max_users,
    };
    nofile_warning(program, peak_users, soft_nofile())
}

/// Classify a reqwest error into a bounded kind and a short message: an I/O cause
/// (reset, refusal, local shortage, timeout) or hyper's own reading of the exchange
/// decides before the text does.
pub fn classify(e: &reqwest::Error) -> (ErrorKind, String) {
    if e.is_timeout() {
        return (ErrorKind::Timeout, "request timed out".into());
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut text = e.to_string();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(kind) = fast::io_kind(io) {
                let what = if e.is_connect() { "connect" } else { "request" };
                return (kind, fast::io_message(kind, io, what));
            }
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            let fast::Failure {
                kind, message: msg, ..
            } = fast::hyper_failure(h);
            if kind != ErrorKind::Other {
                return (kind, msg);
            }
        }
        text = s.to_string();
        src = s.source();
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service")
    {
        (ErrorKind::Dns, format!("DNS: {text}"))
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        (ErrorKind::Tls, format!("TLS: {text}"))
    } else if e.is_connect() {
        (ErrorKind::Connect, format!("connect: {text}"))
    } else if e.is_body() || e.is_decode() {
        (ErrorKind::Body, format!("body: {text}"))
    } else if lower.contains("closed") || lower.contains("reset") {
        (ErrorKind::Reset, format!("connection closed: {text}"))
    } else {
        (ErrorKind::Other, text)
    }
}

/// Join a step URL to the host.
pub fn absolute(host: Option<&str>, url: &str, schemes: (&str, &str)) -> Result<String, String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    let host =
        host.ok_or_else(|| format!("`{url}` is relative and the plan has no host (use --host)"))?;
    let host = host.trim_end_matches('/');
    let host = if schemes.0 == "ws" {
        host.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    } else {
        host.to_string()
    };
    Ok(format!("{host}{url}"))
}

/// Facts about a response (or frame) that checks and captures look at.
pub struct Subject<'a> {
    pub status: Option<u16>,
    pub headers: Option<&'a HeaderMap>,
    pub body: &'a [u8],
    pub elapsed: Duration,
    json: std::cell::OnceCell<Option<serde_json::Value>>,
}

impl<'a> Subject<'a> {
    pub fn new(
        status: Option<u16>,
        headers: Option<&'a HeaderMap>,
        body: &'a [u8],
        elapsed: Duration,
    ) -> Self {
        Self {
            status,
            headers,
            body,
            elapsed,
            json: std::cell::OnceCell::new(),
        }
    }

    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.body)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers?
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    fn json_path(&self, path: &crate::lang::ir::JsonPath) -> Vec<&serde_json::Value> {
        match self.json() {
            Some(v) => path.path.query(v).all(),
            None => Vec::new(),
        }
    }
}

fn pred_ok(p: &Predicate, v: &serde_json::Value) -> bool {
    match p {
        Predicate::Exists => true,
        Predicate::Equals(want) => json_eq(v, want),
        Predicate::Contains(s) => match v {
            serde_json::Value::String(t) => t.contains(s.as_str()),
            serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(s.as_str())),
            other => other.to_string().contains(s.as_str()),
        },
        Predicate::Regex(r) => match v {
            serde_json::Value::String(t) => r.0.is_match(t),
            other => r.0.is_match(&other.to_string()),
        },
        Predicate::Length(n) => match v {
            serde_json::Value::Array(a) => a.len() as u64 == *n,
            serde_json::Value::String(s) => s.chars().count() as u64 == *n,
            serde_json::Value::Object(o) => o.len() as u64 == *n,
            _ => false,
        },
        // Rendered before checking (`User::checks`).
        Predicate::EqualsTpl(_) | Predicate::ContainsTpl(_) | Predicate::RegexTpl(_) => false,
    }
}

/// Numbers compare by value (1000 == 1000.0); everything else structurally.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => {
            a == b
                || a.as_str()
                    .zip(b.as_f64())
                    .is_some_and(|(s, f)| s.trim().parse::<f64>().ok() == Some(f))
        }
    }
}

/// Run checks: (passed, failed, first failure message).
pub fn run_checks(checks: &[Check], s: &Subject) -> (u32, u32, Option<String>) {
    let (mut passed, mut failed, mut first) = (0, 0, None);
    for c in checks {
        let res: Result<(), String> = match c {
            Check::StatusIn(ranges) => match s.status {
                Some(got) if ranges.iter().any(|(a, b)| (*a..=*b).contains(&got)) => Ok(()),
                got => Err(format!(
                    "expected status in {ranges:?}, got {}",
                    got.map_or("none".into(), |g| g.to_string())
                )),
            },
            Check::Status(want) => match s.status {
                Some(got) if got == *want => Ok(()),
                got => Err(format!(
                    "expected status {want}, got {}",
                    got.map_or("none".into(), |g| g.to_string())
                )),
            },
            Check::MaxDuration(d) => {
                if s.elapsed <= *d {
                    Ok(())
                } else {
                    Err(format!(
                        "took {} ms, limit {} ms",
                        s.elapsed.as_millis(),
                        d.as_millis()
                    ))
                }
            }
            Check::Unrenderable(m) => Err(m.clone()),
            Check::BodyContainsTpl(t) | Check::BodyRegexTpl(t) | Check::JsonTpl { path: t, .. } => {
                Err(format!("template {:?} was not rendered", t.source))
            }
            Check::BodyContains(t) => {
                if s.text().contains(t.as_str()) {
                    Ok(())
                } else {
                    Err(format!("body does not contain {t:?}"))
                }
            }
            Check::BodyRegex(r) => {
                if r.0.is_match(&s.text()) {
                    Ok(())
                } else {
                    Err(format!("body does not match /{}/", r.0.as_str()))
                }
            }
            Check::Header { name, predicate } => match s.header(name) {
                Some(v) if pred_ok(predicate, &serde_json::Value::String(v.clone())) => Ok(()),
                Some(v) => Err(format!("header {name}: {v:?} fails {predicate:?}")),
                None => Err(format!("header {name} is missing")),
            },
            Check::Json { path, predicate } => {
                let found = s.json_path(path);
                if found.is_empty() {
                    Err(format!("{} not found in the body", path.source))
                } else if found.iter().any(|v| pred_ok(predicate, v)) {
                    Ok(())
                } else {
                    let shown: String = found[0].to_string().chars().take(60).collect();
                    Err(format!(
                        "{} = {shown} fails {}",
                        path.source,
                        describe(predicate)
                    ))
                }
            }
        };
        match res {
            Ok(()) => passed += 1,
            Err(m) => {
                failed += 1;
                first.get_or_insert(m);
            }
        }
    }
    (passed, failed, first)
}

fn describe(p: &Predicate) -> String {
    match p {
        Predicate::Exists => "exists".into(),
        Predicate::Equals(v) => format!("equals {v}"),
        Predicate::Contains(s) => format!("contains {s:?}"),
        Predicate::Regex(r) => format!("matches /{}/", r.0.as_str()),
        Predicate::Length(n) => format!("length {n}"),
        Predicate::EqualsTpl(t) | Predicate::ContainsTpl(t) | Predicate::RegexTpl(t) => {
            t.source.clone()
        }
    }
}

/// Sets `Content-Type: ct` unless the step set one (a value that is no header value is
/// not sent).
fn default_content_type(headers: &mut http::HeaderMap, ct: &str) {
    if let Ok(v) = http::HeaderValue::from_str(ct) {
        headers.entry(http::header::CONTENT_TYPE).or_insert(v);
    }
}

/// `ev` with a frame's or event's check counts; its error is the first failed check, else
/// the first failed capture.
pub fn with_checks(
    mut ev: Event,
    (passed, failed, check_msg): (u32, u32, Option<String>),
    capture_msg: Option<String>,
) -> Event {
    ev.checks_passed = passed;
    ev.checks_failed = failed;
    if let Some(m) = check_msg {
        ev = ev.with_error(ErrorKind::Check, m);
    } else if let Some(m) = capture_msg {
        ev = ev.with_error(ErrorKind::Capture, m);
    }
    ev
}

/// Run captures into the user's variables; the first missing one is returned.
pub fn run_captures(user: &mut User, captures: &[Capture], s: &Subject) -> Option<String> {
    let mut missing = None;
    for c in captures {
        // A templated path or regex is rendered first (`User::capture_source`).
        let rendered = match user.capture_source(c) {
            Ok(r) => r,
            Err(m) => {
                missing.get_or_insert(m);
                continue;
            }
        };
        let value: Option<JValue> = match rendered.as_ref().unwrap_or(&c.from) {
            CaptureFrom::Json(p) => s.json_path(p).first().map(super::interp::jv),
            CaptureFrom::JsonTpl(_) | CaptureFrom::RegexTpl(_) => None,
            CaptureFrom::Regex(r) => {
                let text = s.text();
                r.0.captures(&text).map(|caps| {
                    let m = caps
                        .get(1)
                        .or_else(|| caps.get(0))
                        .map_or("", |m| m.as_str());
                    JValue::from(m.to_string())
                })
            }
            CaptureFrom::Header(h) => s.header(h).map(JValue::from),
            CaptureFrom::Body => Some(JValue::from(s.text().into_owned())),
        };
        match value.or_else(|| user.capture_default(c)) {
            Some(v) => {
                user.vars.insert(c.var.clone(), v);
            }
            None => {
                missing.get_or_insert_with(|| format!("capture `{}` found nothing", c.var));
            }
        }
    }
    missing
}

/// An event for a step that took `elapsed`, corrected for the iteration's lateness.
pub(super) fn timed(user: &User, stat: u32, elapsed: Duration) -> Event {
    let mut ev = Event::new(stat, elapsed.as_micros() as u64);
    ev.corrected_us = user.lateness.map(|l| (elapsed + l).as_micros() as u64);
    ev
}

/// Why a request could not be built: a template (the default) or a body.
struct PrepareError(ErrorKind, String);

impl From<String> for PrepareError {
    fn from(m: String) -> Self {
        Self(ErrorKind::Template, m)
    }
}

/// Build the request from the step's compiled templates.
fn prepare(user: &mut User, step: &HttpStep) -> Result<Prepared, PrepareError> {
    let mut ctx = None;
    let method = http::Method::from_bytes(step.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut url = if step.url.is_static() {
        // Static URLs are parsed once per user and step, not per request.
        let key = std::ptr::from_ref(step) as usize;
        match user.urls.get(&key) {
            Some(u) => u.clone(),
            None => {
                let abs = absolute(
                    user.shared.host.as_deref(),
                    &step.url.source,
                    ("http", "https"),
                )?;
                let u = reqwest::Url::parse(&abs).map_err(|e| format!("bad URL {abs:?}: {e}"))?;
                user.urls.insert(key, u.clone());
                u
            }
        }
    } else {
        let url = user.render_in(&step.url, &mut ctx)?;
        let url = absolute(user.shared.host.as_deref(), &url, ("http", "https"))?;
        reqwest::Url::parse(&url).map_err(|e| format!("bad URL {url:?}: {e}"))?
    };
    if !step.query.is_empty() {
        let mut pairs = Vec::with_capacity(step.query.len());
        for (k, v) in &step.query {
            pairs.push((k.as_str(), user.render_in(v, &mut ctx)?));
        }
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut headers = HeaderMap::new();
    for (k, v) in user.shared.program.http.headers.iter().chain(&step.headers) {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("bad header name {k:?}"))?;
        let value = user.render_in(v, &mut ctx)?;
        let value = http::HeaderValue::from_str(&value)
            .map_err(|_| format!("bad value for header {k}: {value:?}"))?;
        headers.insert(name, value);
    }
    // Offer the codings `compression` decodes, unless the plan set its own header.
    let codings = step
        .compression
        .as_deref()
        .unwrap_or(&user.shared.program.http.compression);
    // An event stream is read as it arrives: nothing is offered (or decoded) there.
    if step.events.is_none()
        && !codings.is_empty()
        && !headers.contains_key(http::header::ACCEPT_ENCODING)
    {
        // The default list costs no allocation per request.
        let value = if codings == crate::lang::ir::Coding::ALL {
            Ok(http::HeaderValue::from_static(super::decode::ACCEPT_ALL))
        } else {
            http::HeaderValue::from_str(&super::decode::accept(codings))
        };
        if let Ok(v) = value {
            headers.insert(http::header::ACCEPT_ENCODING, v);
        }
    }
    let mut content_type = |ct: &'static str| {
        headers
            .entry(http::header::CONTENT_TYPE)
            .or_insert(http::HeaderValue::from_static(ct));
    };
    let body = match &step.body {
        Body::None => bytes::Bytes::new(),
        Body::Json(t) => {
            content_type("application/json");
            let text = user.render_in(t, &mut ctx)?;
            if !t.is_static() {
                // A rendered body is parsed before it is sent (plain ones were at `check`).
                crate::lang::template::check_json(&text)
                    .map_err(|m| PrepareError(ErrorKind::Body, m))?;
            }
            bytes::Bytes::from(text)
        }
        Body::Form(fields) => {
            content_type("application/x-www-form-urlencoded");
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                f.append_pair(k, &user.render_in(v, &mut ctx)?);
            }
            bytes::Bytes::from(f.finish())
        }
        // Built in `multipart_request` (the parts stream, the files are not copied).
        Body::Multipart { .. } => bytes::Bytes::new(),
        Body::File {
            data,
            content_type: ct,
            ..
        } => {
            default_content_type(&mut headers, ct);
            data.clone()
        }
        Body::Text {
            body,
            content_type: ct,
        } => {
            default_content_type(&mut headers, ct);
            bytes::Bytes::from(user.render_in(body, &mut ctx)?)
        }
    };
    Ok(Prepared {
        method,
        url,
        headers,
        body,
    })
}

/// Send through reqwest (TLS, HTTP/2, …) and read the body into `rx`.
async fn send_reqwest(
    client: &reqwest::Client,
    p: Prepared,
    timeout: Duration,
    rx: &mut Received,
) -> Result<Answer, Failure> {
    let mut rb = client
        .request(p.method, p.url)
        .headers(p.headers)
        .timeout(timeout);
    if !p.body.is_empty() {
        rb = rb.body(p.body);
    }
    let req = rb.build().map_err(|e| {
        let (kind, msg) = classify(&e);
        Failure::new(kind, msg, None)
    })?;
    send_request(client, req, rx).await
}

/// Send a built request through reqwest and read the body into `rx`.
async fn send_request(
    client: &reqwest::Client,
    req: reqwest::Request,
    rx: &mut Received,
) -> Result<Answer, Failure> {
    let start = Instant::now();
    let (resp, opened) = OPENED
        .scope(Default::default(), async {
            let resp = client.execute(req).await;
            (resp, OPENED.with(std::cell::Cell::get))
        })
        .await;
    let mut resp = resp.map_err(|e| {
        let (kind, msg) = classify(&e);
        Failure::new(kind, msg, None)
    })?;
    let timing = reqwest_timing(opened, start.elapsed().as_micros() as u64);
    let status = resp.status().as_u16();
    let headers = std::mem::take(resp.headers_mut());
    rx.announce(resp.content_length());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => rx.push(chunk),
            Ok(None) => break,
            Err(e) => {
                let (kind, msg) = classify(&e);
                let kind = if kind == ErrorKind::Other {
                    ErrorKind::Body
                } else {
                    kind
                };
                return Err(Failure::new(kind, msg, Some(status)));
            }
        }
    }
    Ok(Answer {
        status,
        headers,
        timing,
    })
}

/// The phases of a request reqwest sent, from what its connections' [`OPENED`] saw and
/// the time to the response head: the connector's time less name resolution is the
/// connect (TCP and TLS), the rest of the head's time is the wait.
fn reqwest_timing(opened: fast::Timing, head_us: u64) -> fast::Timing {
    let dns = opened.dns_us.unwrap_or(0);
    let connector = opened.connect_us.unwrap_or(0);
    fast::Timing {
        dns_us: opened.dns_us,
        connect_us: opened.connect_us.map(|c| c.saturating_sub(dns)),
        wait_us: head_us.saturating_sub(connector.max(dns)),
    }
}

/// An exchange's phases, its body read by `read_us` after the start.
fn phases(t: fast::Timing, read_us: u64) -> Phases {
    let before = t.dns_us.unwrap_or(0) + t.connect_us.unwrap_or(0) + t.wait_us;
    Phases {
        dns_us: t.dns_us,
        connect_us: t.connect_us,
        wait_us: t.wait_us,
        receive_us: read_us.saturating_sub(before),
    }
}

/// Whether anything looks at the body: a body or JSON check, a body, JSON or regex
/// capture, or `response` in templates. Bodies nobody reads are counted, never kept.
fn reads_body(step: &HttpStep, program: &Program) -> bool {
    program.templates.uses_response
        || step.checks.iter().any(|c| {
            matches!(
                c,
                Check::BodyContains(_) | Check::BodyRegex(_) | Check::Json { .. }
            )
        })
        || step
            .captures
            .iter()
            .any(|c| !matches!(c.from, CaptureFrom::Header(_)))
}

/// A byte count for messages: `16 MiB`, `512 KiB`, `300 B`.
fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
    .replace(".0 ", " ")
}

/// A `multipart` step's request: rendered fields, shared file bytes streamed as parts
/// (no copy per request), and its length for `bytes_out`.
fn multipart_request(
    user: &mut User,
    step: &HttpStep,
    p: &Prepared,
    timeout: Duration,
) -> Result<Option<(reqwest::Request, u64)>, PrepareError> {
    let Body::Multipart { fields, files } = &step.body else {
        return Ok(None);
    };
    let mut ctx = None;
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), user.render_in(v, &mut ctx)?);
    }
    for f in files {
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::from(f.data.clone()),
            f.data.len() as u64,
        )
        .file_name(f.filename.clone())
        .mime_str(&f.content_type)
        .map_err(|e| PrepareError(ErrorKind::Body, format!("bad content-type: {e}")))?;
        form = form.part(f.name.clone(), part);
    }
    let mut headers = p.headers.clone();
    headers.remove(http::header::CONTENT_TYPE);
    let req = user
        .client
        .request(p.method.clone(), p.url.clone())
        .headers(headers)
        .timeout(timeout)
        .multipart(form)
        .build()
        .map_err(|e| PrepareError(ErrorKind::Body, classify(&e).1))?;
    let len = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Some((req, len)))
}

/// Send a prepared request the general way, bounded by `timeout`.
async fn general(
    client: &reqwest::Client,
    p: Prepared,
    timeout: Duration,
    rx: &mut Received,
) -> Result<Answer, Failure> {
    match tokio::time::timeout(timeout, send_reqwest(client, p, timeout, rx)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(ErrorKind::Timeout, "request timed out", None)),
    }
}

/// A request that could not be built: traced, recorded as an untimed failure.
fn prepare_failed(user: &mut User, step: &HttpStep, PrepareError(kind, m): PrepareError) -> Flow {
    if let Some(t) = user.trace.clone() {
        t.failure(user, kind.as_str(), &m);
    }
    user.rec
        .record(Event::untimed(step.stat).with_error(kind, m));
    Flow::Failed
}

/// Execute one HTTP step and record its event.
pub async fn execute(user: &mut User, step: &HttpStep) -> Flow {
    let prepared = match prepare(user, step) {
        Ok(p) => p,
        Err(e) => return prepare_failed(user, step, e),
    };
    let mut bytes_out = prepared.body.len() as u64;
    let timeout = step.timeout.unwrap_or(user.shared.program.http.timeout);
    let multipart = match multipart_request(user, step, &prepared, timeout) {
        Ok(m) => m,
        Err(e) => return prepare_failed(user, step, e),
    };
    if let Some((_, len)) = &multipart {
        bytes_out = *len;
    }
    if let Some(events) = &step.events {
        return super::sse::execute(user, step, events, prepared).await;
    }
    let program = user.shared.program.clone();
    if let Some(t) = user.trace.clone() {
        let stat = program.stats.get(step.stat as usize);
        let label = stat.map_or(String::new(), |s| format!("{} {}", s.kind, s.name));
        t.request(user, &label, &prepared);
    }
    let timeout = step.timeout.unwrap_or(program.http.timeout);
    let max_body = step.max_body.unwrap_or(program.http.max_body);
    let reads = reads_body(step, &program);
    let mut rx = Received::new(if reads { max_body } else { 0 });
    // Headers are looked at to decode a body, by the trace, and by header checks and
    // captures; otherwise the fast path does not build them.
    let looks_at_headers = reads
        || user.trace.is_some()
        || step
            .checks
            .iter()
            .any(|c| matches!(c, Check::Header { .. }))
        || step
            .captures
            .iter()
            .any(|c| matches!(c.from, CaptureFrom::Header(_)));
    if !looks_at_headers {
        rx = rx.without_headers();
    }
    let requested = program
        .templates
        .uses_response
        .then(|| prepared.url.to_string());
    let start = Instant::now();
    let result = if let Some((req, _)) = multipart {
        // Multipart bodies go the general way (reqwest streams the parts).
        let limit = step.redirects.unwrap_or(program.http.redirects) as usize;
        let send = tokio::time::timeout(timeout, send_request(&user.client, req, &mut rx));
        match REDIRECTS.scope(limit, send).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(ErrorKind::Timeout, "request timed out", None)),
        }
    } else if fast::eligible(&prepared.url, program.http.http2) {
        // A timeout too long to add is no timeout (as `tokio::time::timeout` does).
        let far = Duration::from_secs(86_400 * 365 * 30);
        let deadline = tokio::time::Instant::from_std(start)
            .checked_add(timeout.min(far))
            .unwrap_or_else(|| tokio::time::Instant::from_std(start) + far);
        let sent = {
            let exchange = std::pin::pin!(fast::send(
                &mut user.fast,
                prepared,
                program.http.connect_timeout,
                step.redirects.unwrap_or(program.http.redirects),
                &mut rx,
            ));
            user.deadline.run(deadline, exchange).await
        };
        match sent {
            Some(Ok(Sent::Done(a))) => Ok(a),
            Some(Ok(Sent::Detour(p))) => {
                let left = timeout.saturating_sub(start.elapsed());
                general(&user.client, p, left, &mut rx).await
            }
            Some(Err(f)) => Err(f),
            None => Err(Failure::new(ErrorKind::Timeout, "request timed out", None)),
        }
    } else {
        // A step's own `redirects` reaches the client's policy through a task-local.
        let limit = step.redirects.unwrap_or(program.http.redirects) as usize;
        REDIRECTS
            .scope(limit, general(&user.client, prepared, timeout, &mut rx))
            .await
    };
    let read = start.elapsed();
    let read_us = read.as_micros() as u64;
    let Answer {
        status,
        headers,
        timing,
    } = match result {
        Ok(a) => a,
        Err(Failure {
            kind,
            message: msg,
            status,
        }) => {
            if let Some(t) = user.trace.clone() {
                t.failure(user, kind.as_str(), &msg);
            }
            // The exchange ended when it failed: `read` is that instant (no second clock read).
            let mut ev = timed(user, step.stat, read).with_error(kind, msg);
            ev.status = status;
            ev.bytes_in = rx.total;
            ev.bytes_out = bytes_out;
            user.rec.record(ev);
            return Flow::Failed;
        }
    };
    // Checks and captures see the decoded body (bounded by max-body like the wire one).
    let decoded = if reads {
        let ce = headers
            .get(http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let codings = step
            .compression
            .as_deref()
            .unwrap_or(&program.http.compression);
        Some(super::decode::decode(ce, codings, rx.take(), max_body))
    } else {
        None
    };
    let (body, decoded) = match decoded {
        Some(mut d) => (std::mem::take(&mut d.body), Some(d)),
        None => (rx.take(), None),
    };
    // A decoded body's length (at most max-body); otherwise the body as received.
    let decoded_len = match &decoded {
        Some(d) if !d.codings.is_empty() && d.failed.is_none() => body.len() as u64,
        _ => rx.total,
    };
    let headers = Some(headers);
    // Nothing decoded: the body was complete when it was read (one clock read fewer).
    let elapsed = if reads { start.elapsed() } else { read };
    let subject = Subject::new(Some(status), headers.as_ref(), &body, elapsed);
    let (passed, failed, check_msg) = run_checks(&user.checks(&step.checks), &subject);
    let capture_msg = run_captures(user, &step.captures, &subject);
    if let Some(t) = user.trace.clone() {
        let checks = user.checks(&step.checks).into_owned();
        t.response(
            user,
            status,
            headers.as_ref(),
            &body,
            elapsed,
            &checks,
            &step.captures,
        );
    }
    let expects_status = step
        .checks
        .iter()
        .any(|c| matches!(c, Check::Status(_) | Check::StatusIn(_)));
    let mut ev = Event::new(step.stat, elapsed.as_micros() as u64).with_status(status);
    // Coordinated omission: the response time seen from the intended start.
    ev.corrected_us = user.lateness.map(|l| (elapsed + l).as_micros() as u64);
    ev.bytes_in = rx.total;
    ev.bytes_out = bytes_out;
    ev.bytes_decoded = decoded_len;
    ev.phases = Some(phases(timing, read_us));
    ev.checks_passed = passed;
    ev.checks_failed = failed;
    if status >= 400 && !expects_status {
        ev = ev.with_error(ErrorKind::Status, format!("HTTP {status}"));
    } else if reads && rx.over() {
        ev = ev.with_error(
            ErrorKind::Body,
            format!(
                "body of {} is over max-body ({}): checks and captures saw only its start",
                size(rx.total),
                size(max_body)
            ),
        );
    } else if let Some(d) = decoded.as_ref().filter(|d| d.over) {
        let names: Vec<&str> = d.codings.iter().map(|c| c.token()).collect();
        ev = ev.with_error(
            ErrorKind::Body,
            format!(
                "{} body decodes to over max-body ({}, {} on the wire): checks and captures saw only its start",
                names.join(", "),
                size(max_body),
                size(rx.total)
            ),
        );
    } else if let Some(m) = decoded.as_ref().and_then(|d| d.failed.clone()) {
        ev = ev.with_error(
            ErrorKind::Body,
            format!("{m}; checks and captures saw the encoded body"),
        );
    } else if let Some(m) = check_msg {
        // A check that failed on an encoded body says so.
        let m = match decoded.as_ref().and_then(|d| d.hint.as_deref()) {
            Some(h) => format!("{m} ({h})"),
            None => m,
        };
        let kind = if expects_status
            && step.checks.iter().any(|c| match c {
                Check::Status(s) => *s != status,
                Check::StatusIn(r) => !r.iter().any(|(a, b)| (*a..=*b).contains(&status)),
                _ => false,
            }) {
            ErrorKind::Status
        } else {
            ErrorKind::Check
        };
        ev = ev.with_error(
            kind,
            if kind == ErrorKind::Status {
                format!("HTTP {status}: {m}")
            } else {
                m
            },
        );
    } else if let Some(m) = capture_msg {
        ev = ev.with_error(ErrorKind::Capture, m);
    }
    let flow = if ev.is_failure() {
        Flow::Failed
    } else {
        Flow::Ok
    };
    // Keep the last response for templates (`response.status`, `response.body`, `response.json`).
    if !user.shared.program.templates.uses_response {
        user.rec.record(ev);
        return flow;
    }
    if let Ok(text) = std::str::from_utf8(&body) {
        let mut r = std::collections::BTreeMap::new();
        r.insert("status", JValue::from(status));
        r.insert("body", JValue::from(text));
        r.insert("elapsed", JValue::from(elapsed.as_secs_f64() * 1000.0));
        if let Some(u) = requested {
            r.insert("url", JValue::from(u));
        }
        if let Some(Some(j)) = subject.json.get() {
            r.insert("json", super::interp::jv(j));
        }
        user.vars.insert("response".into(), JValue::from(r));
    }
    user.rec.record(ev);
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(text: &str) -> Program {
        let src = crate::lang::source::Source::new("t.kdl", text);
        crate::lang::compile_source(
            &src,
            crate::lang::source::Syntax::Kdl,
            std::path::Path::new("."),
        )
        .expect("compiles")
    }

    #[test]
    fn the_nofile_warning_counts_sockets_per_user() {
        let p = program(
            r#"scenario "s" {
                http GET "/"
                ws "/a" connection="feed" { close; }
                ws "/b" { close; }
            }"#,
        );
        assert_eq!(sockets_per_user(&p), 3);
        let w = nofile_warning(&p, 100, Some(256)).expect("100 users x 3 + 64 > 256");
        assert!(w.contains("ulimit -n"), "{w}");
        assert!(nofile_warning(&p, 100, Some(1 << 20)).is_none());
        assert!(nofile_warning(&p, 100, None).is_none());
    }

    #[test]
    fn reqwest_phases_split_the_connector_and_the_head_time() {
        let opened = fast::Timing {
            dns_us: Some(1_000),
            connect_us: Some(5_000),
            wait_us: 0,
        };
        let t = reqwest_timing(opened, 20_000);
        assert_eq!(
            (t.dns_us, t.connect_us, t.wait_us),
            (Some(1_000), Some(4_000), 15_000)
        );
        let p = phases(t, 26_000);
        assert_eq!(p.receive_us, 6_000);
        // A reused connection: the whole head time is waiting.
        let reused = reqwest_timing(fast::Timing::default(), 7_000);
        assert_eq!(
            (reused.dns_us, reused.connect_us, reused.wait_us),
            (None, None, 7_000)
        );
        assert_eq!(phases(reused, 6_000).receive_us, 0);
    }

    #[test]
    fn sizes_read_well_in_messages() {
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(65536), "64 KiB");
        assert_eq!(size(300), "300 B");
        assert_eq!(size(200_000_000), "190.7 MiB");
    }
}
