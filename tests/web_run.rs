//! `loadplan run … --ui`: the run starts at once with the UI attached; the UI steers it (users,
//! stop) through the same control as Ctrl-C, cannot start another; with `--ui-quit` the
//! process ends with the run, without it the finished run stays served until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_ui_is_steered_from_the_api_and_exits_when_stopped() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "plans/http.kdl",
            "--demo",
            "--ui",
            "--ui-quit",
            "--ui-bind",
            "127.0.0.1:0",
        ])
        .args(["-u", "1", "-t", "120s", "--seed", "1", "-q"])
        .env("LOADPLAN_UI_TOKEN", "tok")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadplan run starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("ui listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("`ui listening on http://ADDR` on stderr");
    let http = client();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth("tok").send();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth("tok")
            .json(&body)
            .send()
    };
    let state = get("/api/state").await.expect("state");
    assert_eq!(state.status(), StatusCode::OK);
    let state: Value = state.json().await.expect("json");
    assert_eq!(state["status"], "running");
    assert_eq!(state["can_start"], false);

    let r = post("/api/users", json!({ "users": 3, "spawn_rate": 50 }))
        .await
        .expect("users");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s: Value = get("/api/state")
            .await
            .expect("state")
            .json()
            .await
            .expect("json");
        if s["users"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "users did not follow: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = post("/api/start", json!({})).await.expect("start");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post("/api/stop", json!({ "kill": true }))
        .await
        .expect("stop");
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the child this test started");
            panic!("loadplan run did not exit after a stop from the UI");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        std::io::Read::read_to_string(&mut s, &mut out).expect("stdout");
    }
    assert!(out.contains("run interrupted"), "{out}");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}\n{out}");
}

/// `run --ui` without `--ui-quit`: after the run ends the page still answers with the
/// finished run (state, downloads), until SIGTERM ends the process with the run's exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_ui_keeps_serving_the_finished_run_until_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .args([
            "run",
            "plans/http.kdl",
            "--demo",
            "--ui",
            "--ui-bind",
            "127.0.0.1:0",
        ])
        .args(["-u", "2", "-t", "2s", "--seed", "1", "-q"])
        .env_remove("LOADPLAN_UI_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadplan run starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("ui listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("`ui listening on http://ADDR` on stderr");
    let http = client();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let s: Option<Value> = match get("/api/state").await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if let Some(s) = s.filter(|s| s["status"] == "stopped" && !s["passed"].is_null()) {
            break s;
        }
        if let Some(st) = child.try_wait().expect("wait") {
            panic!("loadplan run exited ({st:?}) instead of serving the finished run");
        }
        assert!(Instant::now() < deadline, "the run did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Served after the end: a moment later still (the old server stopped at once).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().expect("wait").is_none(), "exited: {state}");
    for (path, start) in [
        ("/api/download/stats.csv", "Type,Name,Request Count"),
        ("/api/download/stats_history.csv", "Timestamp,User Count"),
        ("/api/download/report.html", "<!DOCTYPE html>"),
    ] {
        let r = get(path).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let text = r.text().await.expect("body");
        assert!(
            text.starts_with(start),
            "{path}: {}",
            &text[..text.len().min(200)]
        );
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the child this test started");
            panic!("loadplan run did not exit on SIGTERM after the run");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        std::io::Read::read_to_string(&mut s, &mut out).expect("stdout");
    }
    assert!(out.contains("result:"), "{out}");
    let passed = state["passed"] == true;
    assert_eq!(status.code(), Some(if passed { 0 } else { 1 }), "{out}");
}
