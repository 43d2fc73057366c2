//! The web UI's JSON API against the demo target: every control action (start, users, rate,
//! reset, stop), the event stream, the downloads, and the access rules (token, loopback host
//! names, JSON bodies, the bind check). The UI and the demo target both listen on
//! `127.0.0.1:0`; waits poll the API with a deadline (no fixed sleeps).

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::web::{self, Hub, Launcher, Listen, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Quick iterations, so counts move within a second.
const PLAN: &str = r#"plan "web-api" { host "http://127.0.0.1:9"; }
scenario "rest" {
    think between="20ms" and="40ms"
    http GET "/health" { check status=200; }
    http GET "/api/racing/health"
}
"#;

fn client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("plain HTTP client")
}

struct Ui {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    _server: Server,
    _demo: DemoServer,
    _dir: tempfile::TempDir,
}

impl Ui {
    async fn start(token: Option<&str>) -> Ui {
        let demo = DemoServer::start(([127, 0, 0, 1], 0).into(), DemoConfig::default())
            .await
            .expect("demo target binds");
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = dir.path().join("web.kdl");
        std::fs::write(&plan, PLAN).expect("write plan");
        let (_, program) = loadplan::lang::load_plan(&plan).expect("plan compiles");
        let hub = Hub::new(Arc::new(program), plan.display().to_string());
        let launcher = Launcher {
            plan_path: plan,
            profile: None,
            host: Some(demo.base_url()),
            seed: Some(7),
            insecure: false,
        };
        let listen = Listen {
            addr: "127.0.0.1:0".parse().expect("addr"),
            token: token.map(str::to_owned),
        };
        let server = Server::start(&listen, hub, Some(launcher))
            .await
            .expect("ui binds");
        Ui {
            base: format!("http://{}", server.addr()),
            http: client(),
            token: token.map(str::to_owned),
            _server: server,
            _demo: demo,
            _dir: dir,
        }
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("ui answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .auth(self.http.post(format!("{}{path}", self.base)))
            .json(&body)
            .send()
            .await
            .expect("ui answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn download(&self, path: &str) -> (StatusCode, String, String) {
        let r = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("ui answers");
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, r.text().await.expect("body"))
    }

    async fn state(&self) -> Value {
        self.get("/api/state").await.1
    }

    async fn total(&self) -> u64 {
        self.get("/api/stats").await.1["aggregated"]["count"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Polls `what` until it holds (a generous deadline: debug builds on a shared machine).
    async fn wait_for<F, Fut>(&self, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_status(&self, status: &str) {
        self.wait_for(&format!("status {status}"), || async {
            self.state().await["status"] == status
        })
        .await;
    }

    async fn wait_users(&self, n: u64) {
        self.wait_for(&format!("{n} live users"), || async {
            self.state().await["users"] == n
        })
        .await;
    }

    async fn wait_requests_above(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let total = self.total().await;
            if total > n {
                return total;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for more than {n} requests"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_runs_the_plan_and_requests_grow() {
    let ui = Ui::start(None).await;
    let s = ui.state().await;
    assert_eq!(s["status"], "idle");
    assert_eq!(s["can_start"], true);
    assert_eq!(s["plan"]["name"], "web-api");
    let (code, body) = ui
        .post("/api/start", json!({ "users": 2, "spawn_rate": 10 }))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"]["status"], "running");
    let first = ui.wait_requests_above(0).await;
    ui.wait_requests_above(first).await;
    let (_, stats) = ui.get("/api/stats").await;
    let names: Vec<&str> = stats["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"/health"), "{names:?}");
    assert!(stats["history"].as_array().is_some());
    // A second start while running is refused.
    let (code, _) = ui.post("/api/start", json!({})).await;
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, _) = ui.post("/api/stop", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_users_moves_the_live_users() {
    let ui = Ui::start(None).await;
    let (code, body) = ui
        .post("/api/start", json!({ "users": 1, "spawn_rate": 50 }))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    ui.wait_users(1).await;
    let (code, body) = ui
        .post("/api/users", json!({ "users": 4, "spawn_rate": 100 }))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    ui.wait_users(4).await;
    let (code, _) = ui.post("/api/users", json!({ "users": 2 })).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    ui.wait_users(2).await;
    // A rate is for the open model.
    let (code, body) = ui.post("/api/rate", json!({ "rate": 5 })).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("closed")));
    ui.post("/api/stop", json!({ "kill": true })).await;
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_rate_moves_the_arrivals_in_the_open_model() {
    let ui = Ui::start(None).await;
    let (code, body) = ui
        .post("/api/start", json!({ "arrival_rate": 2, "users": 50 }))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"]["profile"]["model"], "open");
    ui.wait_requests_above(0).await;
    let (code, body) = ui.post("/api/rate", json!({ "rate": 40 })).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    // 40 iterations/s of two requests each: the per-second rate climbs well above 2/s × 2.
    ui.wait_for("the current rate to follow", || async {
        let (_, s) = ui.get("/api/stats").await;
        s["aggregated"]["current_rate"].as_f64().unwrap_or(0.0) > 30.0
    })
    .await;
    let (code, _) = ui.post("/api/rate", json!({ "rate": -1 })).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    ui.post("/api/stop", json!({})).await;
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_starts_the_statistics_afresh() {
    let ui = Ui::start(None).await;
    ui.post("/api/start", json!({ "users": 3, "spawn_rate": 50 }))
        .await;
    let before = ui.wait_requests_above(20).await;
    let (code, body) = ui.post("/api/reset", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    // The driver resets on its next pass; the next tick's total starts from zero.
    ui.wait_for("the counts to restart", || async {
        let n = ui.total().await;
        n < before && n > 0
    })
    .await;
    assert_eq!(ui.state().await["status"], "running");
    ui.post("/api/stop", json!({})).await;
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_run_and_downloads_render_the_result() {
    let ui = Ui::start(None).await;
    // Nothing to download before a run.
    let (code, _, _) = ui.download("/api/download/stats.csv").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _, _) = ui.download("/api/download/stats_history.csv").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = ui.post("/api/stop", json!({})).await;
    assert_eq!(code, StatusCode::CONFLICT, "no run to stop");
    ui.post(
        "/api/start",
        json!({ "users": 2, "spawn_rate": 20, "duration": "60s" }),
    )
    .await;
    ui.wait_requests_above(5).await;
    // Mid-run downloads work too.
    let (code, _, csv) = ui.download("/api/download/stats.csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(csv.contains("/health"), "{csv}");
    let (code, body) = ui.post("/api/stop", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(matches!(
        body["status"].as_str(),
        Some("stopping" | "stopped")
    ));
    ui.wait_status("stopped").await;
    let state = ui.state().await;
    assert_eq!(state["passed"], true, "{state}");
    let total = ui.total().await;

    let (code, ct, csv) = ui.download("/api/download/stats.csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("Type,Name,Request Count,Failure Count"))
    );
    let aggregated = csv
        .lines()
        .find(|l| l.contains(",Aggregated,"))
        .expect("aggregated row");
    assert!(
        aggregated.starts_with(&format!(",Aggregated,{total},0,")),
        "{aggregated}"
    );

    let (code, ct, text) = ui.download("/api/download/result.json").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("application/json"), "{ct}");
    let result: Value = serde_json::from_str(&text).expect("JSON result");
    assert_eq!(result["format"], 1);
    assert_eq!(result["aggregated"]["count"], total);
    assert_eq!(result["interrupted"], true);

    let (code, ct, html) = ui.download("/api/download/report.html").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("PASSED"));
    assert!(
        html.contains("class=\"step-chart\" data-step=\"GET /health\""),
        "no per-step chart in the UI's report"
    );

    // The history CSV as `--csv` streams it: a GET /health row and an Aggregated row per
    // tick, Locust's header.
    let (code, ct, history) = ui.download("/api/download/stats_history.csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(
        history.starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%"),
        "{history}"
    );
    let health = history
        .lines()
        .filter(|l| l.contains(",GET,/health,"))
        .count();
    let aggregated = history
        .lines()
        .filter(|l| l.contains(",Aggregated,"))
        .count();
    assert!(health >= 1 && aggregated >= health, "{history}");

    let (code, _, failures) = ui.download("/api/download/failures.csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(failures.starts_with("Method,Name,Error,Occurrences"));

    // A stopped UI can start again.
    let (code, body) = ui.post("/api/start", json!({ "users": 1 })).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["run"], 2);
    ui.post("/api/stop", json!({ "kill": true })).await;
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_pushes_ticks() {
    let ui = Ui::start(None).await;
    ui.post("/api/start", json!({ "users": 1, "spawn_rate": 10 }))
        .await;
    let mut r = ui
        .http
        .get(format!("{}/api/events", ui.base))
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The first event is the state; a tick event carries a history point.
    while !text.contains("\"point\":{") {
        assert!(Instant::now() < deadline, "no tick event: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("stream not ended");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: tick\ndata: {"), "{text}");
    ui.post("/api/stop", json!({ "kill": true })).await;
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_calls_without_it_get_401() {
    let ui = Ui::start(Some("s3cret")).await;
    let bare = |path: &str| ui.http.get(format!("{}{path}", ui.base)).send();
    for path in [
        "/",
        "/api/state",
        "/api/stats",
        "/api/events",
        "/api/download/stats.csv",
    ] {
        let r = bare(path).await.expect("answers");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = ui
        .http
        .get(format!("{}/api/state", ui.base))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = ui
        .http
        .post(format!("{}/api/start?token=s3cret", ui.base))
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "POST needs the header"
    );
    // The page and GETs take ?token= (a browser cannot set headers on links and EventSource).
    let r = bare("/?token=s3cret").await.expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("<title>loadplan</title>")
    );
    let (code, s) = ui.get("/api/state").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(s["status"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_loopback_hosts_and_json_posts_pass() {
    let ui = Ui::start(None).await;
    let r = ui
        .http
        .get(format!("{}/api/state", ui.base))
        .header("host", "attacker.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = ui
        .http
        .post(format!("{}/api/stop", ui.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (code, body) = ui.post("/api/start", json!({ "profile": "nope" })).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no profile `nope`"))
    );
    let (code, _) = ui.get("/api/nothing").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn a_public_bind_without_a_token_is_refused() {
    let e = web::check_bind(Some("0.0.0.0:8089"), None).expect_err("refused");
    assert!(
        e.contains("--ui-token") && e.contains("LOADPLAN_UI_TOKEN"),
        "{e}"
    );
    assert!(web::check_bind(Some("0.0.0.0:8089"), Some("t")).is_ok());
    assert!(web::check_bind(Some("127.0.0.1:0"), None).is_ok());
}

#[test]
fn the_cli_exits_2_on_a_public_bind_without_a_token() {
    let out = assert_cmd::Command::cargo_bin("loadplan")
        .expect("binary")
        .args(["ui", "plans/http.kdl", "--ui-bind", "0.0.0.0:0"])
        .env_remove("LOADPLAN_UI_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ui-token"), "{err}");
    let out = assert_cmd::Command::cargo_bin("loadplan")
        .expect("binary")
        .args([
            "run",
            "plans/http.kdl",
            "--ui",
            "--ui-bind",
            "0.0.0.0:0",
            "--demo",
        ])
        .env_remove("LOADPLAN_UI_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

/// Lines of a system file the test can read (none when it cannot: then only the status is
/// checked for it).
fn file_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 4)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reads_only_profile_names_and_files_in_the_plan_folder_and_never_echoes_them() {
    let ui = Ui::start(None).await;
    let dir = ui._dir.path().to_path_buf();
    // A symlink inside the plan folder pointing outside it is outside.
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", dir.join("evil.yml")).expect("symlink");
    for name in [
        "/etc/passwd",
        "/etc/shadow",
        "../../../../../../etc/passwd",
        "/etc/hostname",
        "evil.yml",
    ] {
        let (code, body) = ui.post("/api/start", json!({ "profile": name })).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{name}: {body}");
        let error = body["error"].as_str().expect("an error message");
        let target = if name == "evil.yml" {
            "/etc/passwd"
        } else {
            name
        };
        for line in file_lines(target.trim_start_matches("../../../../../..")) {
            assert!(
                !error.contains(&line),
                "{name}: the error quotes the file ({line:?}): {error}"
            );
        }
        assert!(error.contains("profile"), "{error}");
    }
    assert_eq!(ui.state().await["status"], "idle");
    // A profile file in the plan's folder is read; its mistakes are named by position.
    std::fs::write(dir.join("bad.yml"), "users: many\n").expect("write");
    let (code, body) = ui.post("/api/start", json!({ "profile": "bad.yml" })).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("bad.yml:1:")),
        "{body}"
    );
    std::fs::write(
        dir.join("mine.yml"),
        "name: mine\nusers: 1\nspawn_rate: 5\nduration: 30s\n",
    )
    .expect("write");
    let (code, body) = ui
        .post("/api/start", json!({ "profile": "mine.yml" }))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let (code, _) = ui.post("/api/stop", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    ui.wait_status("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_accepts_only_http_and_https_hosts() {
    let ui = Ui::start(None).await;
    for host in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/",
        "data:text/plain,hi",
        "unix:/var/run/docker.sock",
        "http://",
    ] {
        let (code, body) = ui.post("/api/start", json!({ "host": host })).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{host}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("host")),
            "{body}"
        );
    }
    assert_eq!(ui.state().await["status"], "idle");
}
