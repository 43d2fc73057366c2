//! The master's worker endpoint as a trust boundary, against the real binary on
//! 127.0.0.1: forged histogram headers (a 40-byte header claiming 1 GiB, and 0xFFFFFFFF)
//! before and after authentication, a first frame over the hello limit and a message over
//! the frame limit must leave the master small (VmHWM under 50 MB) and serving (two real
//! workers join and run afterwards). A master bound beyond loopback without a secret
//! refuses to start. Feeder files travel with the job (workers have no copy) and
//! sequential and unique feeders never hand the same row to two workers.

mod common;

use common::proc::Proc;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn write_plan(dir: &Path) -> PathBuf {
    let plan = dir.join("plan.kdl");
    std::fs::write(
        &plan,
        "plan \"trust\"\nscenario \"a\" {\n    http GET \"/a\"\n}\n",
    )
    .expect("write plan");
    plan
}

/// A target counting its hits, on its own runtime.
fn target() -> (tokio::runtime::Runtime, String, Arc<AtomicU64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let base = rt.block_on(async move {
        let app = Router::new().route(
            "/a",
            get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    (rt, base, hits)
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A bare hdrhistogram V2 header (our resolution, a valid range) claiming `payload` bytes.
fn forged_header(payload: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(40);
    h.extend_from_slice(&0x1c84_9313u32.to_be_bytes()); // V2 cookie
    h.extend_from_slice(&payload.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    h.extend_from_slice(&3u32.to_be_bytes()); // significant digits
    h.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible
    h.extend_from_slice(&1_000_000u64.to_be_bytes()); // highest trackable
    h.extend_from_slice(&1.0f64.to_bits().to_be_bytes()); // integer to double ratio
    h
}

fn forged_delta(payload: u32) -> String {
    format!(
        r#"{{"version":1,"type":"delta","assignment":0,"snapshot":{{"lateness":"{}"}}}}"#,
        base64(&forged_header(payload))
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/dist"))
        .await
        .expect("connects")
        .0
}

/// The next text frame, or a description of how the connection ended.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => Ok(t.as_str().to_string()),
        Ok(other) => Err(format!("{other:?}")),
        Err(_) => Err("no answer within 20 s".into()),
    }
}

fn start_master(args: &[&str]) -> (Proc, String) {
    let mut all = vec!["master"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bind", "127.0.0.1:0"]);
    let master = Proc::spawn(&all);
    let addr = master.master_address();
    (master, addr)
}

#[test]
fn forged_histogram_headers_and_oversize_frames_leave_the_master_small_and_serving() {
    let (_rt, base, hits) = target();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(dir.path());
    let out_file = dir.path().join("merged.json");
    let (mut master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "2",
        "--secret",
        "s3cret",
        "--host",
        &base,
        "--users",
        "2",
        "--iterations",
        "3",
        "--seed",
        "1",
        "--snapshot-out",
        out_file.to_str().expect("utf-8 path"),
    ]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // Before authentication: a delta instead of a hello, with headers claiming 1 GiB
        // and 4 GiB of payload. The master answers `refused` without decoding it.
        let mut replies = Vec::new();
        for claim in [1u32 << 30, u32::MAX] {
            let mut ws = connect(&addr).await;
            ws.send(Message::text(forged_delta(claim)))
                .await
                .expect("sends");
            replies.push(next_text(&mut ws).await);
        }
        let peak_kb = master.peak_rss_kb();
        assert!(
            peak_kb < 50 * 1024,
            "master peak RSS {peak_kb} kB after unauthenticated forged headers: {replies:?}"
        );
        for reply in replies {
            let reply = reply.expect("a refusal");
            assert!(reply.contains("\"refused\""), "{reply}");
            assert!(reply.contains("expected `hello`"), "{reply}");
        }
        // A first frame over the hello limit is refused with the reason.
        let mut ws = connect(&addr).await;
        let padding = "x".repeat(100 << 10);
        let big_hello = format!(
            r#"{{"version":1,"type":"hello","secret":"s3cret","name":"w","pad":"{padding}"}}"#
        );
        ws.send(Message::text(big_hello)).await.expect("sends");
        let reply = next_text(&mut ws).await.expect("a refusal");
        assert!(reply.contains("limit"), "{reply}");
        // A message over the frame limit ends that connection (the send may fail midway).
        let mut ws = connect(&addr).await;
        ws.send(Message::text("y".repeat(20 << 20))).await.ok();
        let end = next_text(&mut ws).await;
        assert!(
            end.as_ref().is_err() || end.as_ref().is_ok_and(|t| t.contains("refused")),
            "{end:?}"
        );
        // After authentication: the forged header is refused by the histogram decoder
        // and the connection ends, before any allocation of the claimed size.
        let mut ws = connect(&addr).await;
        ws.send(Message::text(
            r#"{"version":1,"type":"hello","secret":"s3cret","name":"forger"}"#,
        ))
        .await
        .expect("sends");
        let welcome = next_text(&mut ws).await.expect("welcome");
        assert!(welcome.contains("\"welcome\""), "{welcome}");
        // A large frame of tiny JSON values costs about its own size (no JSON tree).
        let padding = "{},".repeat(3 << 20);
        let padded = format!(r#"{{"version":1,"type":"heartbeat","pad":[{padding}{{}}]}}"#);
        ws.send(Message::text(padded)).await.expect("sends");
        ws.send(Message::text(forged_delta(1 << 30)))
            .await
            .expect("sends");
        let end = next_text(&mut ws).await;
        assert!(end.is_err(), "the master kept a forger: {end:?}");
    });
    master.wait_line("left before the start", Duration::from_secs(10));
    let peak_kb = master.peak_rss_kb();
    eprintln!("master VmHWM after the forged frames: {peak_kb} kB");
    assert!(
        peak_kb < 50 * 1024,
        "master peak RSS {peak_kb} kB after forged frames"
    );
    // Still serving: two real workers join and the run completes.
    let workers: Vec<Proc> = Proc::workers(&addr, "s3cret", 2);
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(hits.load(Ordering::SeqCst), 6, "{stdout}\n{stderr}");
    // Every refusal was counted and logged with its reason: two forged deltas, the big
    // hello, the oversize message.
    assert_eq!(
        stderr.matches("refused 127.0.0.1").count(),
        4,
        "refusals not logged:\n{stderr}"
    );
    let out: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("snapshot-out"))
            .expect("JSON");
    assert_eq!(out["refused_connections"], 4, "{out}");
    drop(workers);
}

#[test]
fn a_master_beyond_loopback_without_a_secret_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(dir.path());
    let mut refused = Proc::spawn(&[
        "master",
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "1",
        "--bind",
        "0.0.0.0:0",
        "--host",
        "http://127.0.0.1:9",
    ]);
    let (status, _, err) = refused.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("--secret") && err.contains("LOADPLAN_SECRET"),
        "{err}"
    );
    assert!(!err.contains("master listening"), "{err}");
    // With a secret (from the environment) it starts.
    let mut master = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
        .args([
            "master",
            plan.to_str().expect("utf-8 path"),
            "--expect-workers",
            "1",
            "--bind",
            "0.0.0.0:0",
            "--host",
            "http://127.0.0.1:9",
        ])
        .env("LOADPLAN_SECRET", "s")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(master.stderr.take().expect("stderr")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    master.kill().ok();
    master.wait().ok();
    assert!(first.contains("master listening on 0.0.0.0:"), "{first}");
}

/// A target recording every path it serves.
fn recording_target() -> (tokio::runtime::Runtime, String, Arc<Mutex<Vec<String>>>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let p = paths.clone();
    let base = rt.block_on(async move {
        let app = Router::new().fallback(move |uri: axum::http::Uri| {
            p.lock().expect("paths").push(uri.path().to_string());
            async { "ok" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    (rt, base, paths)
}

#[test]
fn feeder_files_travel_with_the_job_and_rows_are_never_used_twice() {
    let (_rt, base, paths) = recording_target();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let rows: String = (0..30).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.path().join("data/seq.csv"), format!("id\n{rows}")).expect("write");
    std::fs::write(dir.path().join("data/uniq.csv"), format!("id\n{rows}")).expect("write");
    let plan = dir.path().join("plan.kdl");
    std::fs::write(
        &plan,
        r#"feeder "s" file="data/seq.csv" mode="sequential"
feeder "u" file="data/uniq.csv" mode="unique"
scenario "a" {
    http GET "/row/{{ s.id }}/user/{{ u.id }}" name="row"
}
"#,
    )
    .expect("write plan");
    let (mut master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "3",
        "--secret",
        "k",
        "--host",
        &base,
        "--users",
        "6",
        "--iterations",
        "2",
        "--seed",
        "1",
        "--quiet",
    ]);
    // The workers run in the test's folder, where the data files are not.
    let workers: Vec<Proc> = Proc::workers(&addr, "k", 3);
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    drop(workers);
    let paths = paths.lock().expect("paths").clone();
    assert_eq!(paths.len(), 12, "{paths:?}");
    let mut seq: Vec<&str> = paths.iter().filter_map(|p| p.split('/').nth(2)).collect();
    seq.sort_unstable();
    seq.dedup();
    assert_eq!(seq.len(), 12, "a sequential row was used twice: {paths:?}");
    let mut uniq: Vec<&str> = paths.iter().filter_map(|p| p.split('/').nth(4)).collect();
    uniq.sort_unstable();
    let all = uniq.len();
    uniq.dedup();
    assert_eq!(
        (all, uniq.len()),
        (12, 6),
        "one unique row per user: {paths:?}"
    );
}
