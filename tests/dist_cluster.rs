//! Distributed runs with the real binary: a master and worker processes on 127.0.0.1
//! (free ports) against a counting target served by the test. Runs stop by iteration
//! count with a fixed seed, so counts are exact; the loss test kills a worker with
//! SIGKILL mid-run and reads the gap the master recorded.

mod common;

use common::proc::Proc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use loadplan::metrics::Snapshot;

type Hits = Arc<Mutex<BTreeMap<String, u64>>>;

/// A target counting hits per path; served by its own runtime for the test's length.
struct Target {
    _rt: tokio::runtime::Runtime,
    base: String,
    hits: Hits,
    total: Arc<AtomicU64>,
}

impl Target {
    fn start() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let hits: Hits = Arc::default();
        let total = Arc::new(AtomicU64::new(0));
        let state = (hits.clone(), total.clone());
        let base = rt.block_on(async move {
            async fn count(
                State((hits, total)): State<(Hits, Arc<AtomicU64>)>,
                uri: axum::http::Uri,
            ) -> &'static str {
                *hits
                    .lock()
                    .expect("hits")
                    .entry(uri.path().to_string())
                    .or_default() += 1;
                total.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
            let app = Router::new()
                .route("/a", get(count))
                .route("/b", get(count))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}")
        });
        Target {
            _rt: rt,
            base,
            hits,
            total,
        }
    }

    fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

const PLAN: &str = r#"
plan "dist-test"
scenario "a" weight=60 {
    http GET "/a"
}
scenario "b" weight=40 {
    http GET "/b"
}
"#;

fn write_plan(dir: &Path, text: &str) -> PathBuf {
    let plan = dir.join("plan.kdl");
    std::fs::write(&plan, text).expect("write plan");
    plan
}

fn start_master(args: &[&str]) -> (Proc, String) {
    let mut all = vec!["master"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bind", "127.0.0.1:0"]);
    let master = Proc::spawn(&all);
    let addr = master.master_address();
    (master, addr)
}

fn start_worker(addr: &str, secret: &str, name: &str) -> Proc {
    Proc::spawn(&[
        "worker", "--master", addr, "--secret", secret, "--name", name, "--quiet",
    ])
}

fn read_out(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("snapshot-out written");
    serde_json::from_str(&text).expect("snapshot-out is JSON")
}

fn snapshot(v: &serde_json::Value) -> Snapshot {
    serde_json::from_value(v.clone()).expect("a snapshot")
}

#[test]
fn three_workers_merge_exact_counts_and_keep_weights_globally() {
    let target = Target::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(dir.path(), PLAN);
    let out_file = dir.path().join("merged.json");
    let (mut master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "3",
        "--secret",
        "s3cret",
        "--host",
        &target.base,
        "--users",
        "10",
        "--iterations",
        "5",
        "--seed",
        "7",
        "--quiet",
        "--summary-kv",
        "--snapshot-out",
        out_file.to_str().expect("utf-8 path"),
    ]);
    let mut workers: Vec<Proc> = (0..3)
        .map(|i| start_worker(&addr, "s3cret", &format!("w{i}")))
        .collect();
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    for w in &mut workers {
        let (status, _, err) = w.finish(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{err}");
    }
    // 10 users at 60/40 over 3 workers: ids 0..10 split 6/4 as in one process.
    assert_eq!(target.hits("/a"), 6 * 5, "{stdout}");
    assert_eq!(target.hits("/b"), 4 * 5, "{stdout}");
    let result = read_out(&out_file);
    let total = snapshot(&result["total"]);
    assert_eq!(total.requests(), target.total.load(Ordering::SeqCst));
    assert_eq!(total.requests(), 50);
    assert!(stdout.contains("requests=50 errors=0"), "{stdout}");
    // Per-worker numbers are kept, sum to the total, and every worker took part
    // (ids 0,3,6,9 / 1,4,7 / 2,5,8).
    let workers_json = result["workers"].as_array().expect("workers");
    let mut per_worker: Vec<u64> = workers_json
        .iter()
        .map(|w| w["requests"].as_u64().expect("requests"))
        .collect();
    per_worker.sort_unstable();
    assert_eq!(per_worker, vec![15, 15, 20]);
    for i in 0..3 {
        assert!(
            stdout.contains(&format!("worker {i} (w")),
            "per-worker line missing:\n{stdout}"
        );
    }
    // The merged p99 is the p99 of all samples (at bucket resolution): rebuild the
    // samples from the workers' own histograms and compare.
    let mut samples: Vec<u64> = Vec::new();
    for w in workers_json {
        let s = snapshot(&w["snapshot"]);
        for (value, count) in s.aggregate(|_| true).latency.buckets() {
            samples.extend(std::iter::repeat_n(value, count as usize));
        }
    }
    samples.sort_unstable();
    assert_eq!(samples.len(), 50);
    let rank = ((0.99 * samples.len() as f64).ceil() as usize).max(1) - 1;
    let expected = samples[rank] as f64;
    let merged = total.aggregate(|_| true).latency.value_at_quantile(0.99) as f64;
    assert!(
        (merged - expected).abs() <= expected * 0.002 + 1.0,
        "merged p99 {merged} vs samples' {expected}"
    );
    assert!(result["gaps"].as_array().expect("gaps").is_empty());
}

#[test]
fn a_killed_worker_is_detected_its_users_reassigned_and_the_gap_recorded() {
    let target = Target::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(
        dir.path(),
        r#"
plan "dist-loss"
scenario "a" weight=60 {
    think "50ms"
    http GET "/a"
}
scenario "b" weight=40 {
    think "50ms"
    http GET "/b"
}
"#,
    );
    let out_file = dir.path().join("merged.json");
    let (mut master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "3",
        "--secret",
        "k",
        "--host",
        &target.base,
        "--users",
        "6",
        "-t",
        "6s",
        "--seed",
        "3",
        "--snapshot-out",
        out_file.to_str().expect("utf-8 path"),
    ]);
    let workers: Vec<Proc> = (0..3)
        .map(|i| start_worker(&addr, "k", &format!("w{i}")))
        .collect();
    master.wait_line("started 3 workers", Duration::from_secs(30));
    // Load is flowing from every worker before one of them dies.
    let deadline = Instant::now() + Duration::from_secs(20);
    while target.total.load(Ordering::SeqCst) < 300 {
        assert!(Instant::now() < deadline, "no load reached the target");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut workers = workers;
    let mut victim = workers.remove(1);
    victim.child.kill().expect("SIGKILL the worker");
    let lost = master.wait_line("lost at", Duration::from_secs(10));
    assert!(lost.contains("re-assigned to workers"), "{lost}");
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Lost workers"), "{stdout}");
    assert!(stdout.contains("lost at"), "{stdout}");
    let result = read_out(&out_file);
    let gaps = result["gaps"].as_array().expect("gaps");
    assert_eq!(gaps.len(), 1, "{result}");
    let gap = &gaps[0];
    assert_eq!(gap["action"], "rebalance");
    assert_eq!(gap["users_missing"], 2, "{gap}");
    assert_eq!(gap["reassigned_to"].as_array().expect("list").len(), 2);
    let lost_at = gap["lost_at_secs"].as_f64().expect("lost_at");
    let reassigned = gap["reassigned_at_secs"].as_f64().expect("reassigned_at");
    let missing = gap["missing_secs"].as_f64().expect("missing_secs");
    assert!(reassigned - lost_at < 3.0, "{gap}");
    assert!(missing < 3.0, "{gap}");
    // Six users are live again after the re-assignment.
    let timeline = result["users_timeline"].as_array().expect("timeline");
    assert!(
        timeline
            .iter()
            .any(|p| { p[0].as_f64().is_some_and(|t| t > reassigned) && p[1].as_u64() == Some(6) }),
        "users not restored: {timeline:?}"
    );
    let total = snapshot(&result["total"]);
    assert!(total.requests() > 0);
}

#[test]
fn a_worker_with_the_wrong_secret_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(dir.path(), PLAN);
    let (master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "1",
        "--secret",
        "right",
        "--host",
        "http://127.0.0.1:9",
    ]);
    let mut worker = start_worker(&addr, "wrong", "intruder");
    let (status, _, stderr) = worker.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("wrong secret"), "{stderr}");
    let line = master.wait_line("refused", Duration::from_secs(10));
    assert!(line.contains("wrong secret"), "{line}");
}

#[test]
fn a_peer_speaking_another_protocol_version_is_refused_with_the_reason() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().expect("temp dir");
    let plan = write_plan(dir.path(), PLAN);
    let (master, addr) = start_master(&[
        plan.to_str().expect("utf-8 path"),
        "--expect-workers",
        "1",
        "--host",
        "http://127.0.0.1:9",
    ]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reply = rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/dist"))
            .await
            .expect("connects");
        ws.send(Message::text(
            r#"{"version":99,"type":"hello","secret":"","name":"future"}"#,
        ))
        .await
        .expect("sends");
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_string(),
            other => panic!("no reply: {other:?}"),
        }
    });
    let v: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    assert_eq!(v["type"], "refused", "{reply}");
    assert_eq!(v["version"], 1, "{reply}");
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("version 1") && r.contains("99")),
        "{reply}"
    );
    master.wait_line("protocol version mismatch", Duration::from_secs(10));
}
