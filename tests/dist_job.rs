//! The Kubernetes Job, played on one machine: one `loadplan master` and three
//! `loadplan worker` processes started with the arguments and the environment that
//! `examples/kubernetes/*.yml` give their containers (read from the manifests here, so a
//! manifest change that breaks the Job breaks this test). The Service name is mapped to
//! the master's 127.0.0.1 port, `0.0.0.0:PORT` binds to `127.0.0.1:0`, the ConfigMap's
//! `/plan` files and the `/results` volume to a temporary folder, and each worker gets the
//! `JOB_COMPLETION_INDEX` an Indexed Job sets. The target counts hits and records the
//! feeder rows it saw.

mod common;

use common::proc::Proc;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(file: &str) -> Value {
    let path = root().join("examples/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The Secret's value, as `secretKeyRef` hands it to the containers.
fn secret(name: &str, key: &str) -> String {
    let s = manifest("secret.yml");
    assert_eq!(s["metadata"]["name"], name);
    s["stringData"][key]
        .as_str()
        .expect("the secret's value")
        .to_string()
}

/// A Job's only container.
fn container(file: &str) -> Value {
    let job = manifest(file);
    assert_eq!(job["kind"], "Job", "{file}");
    job["spec"]["template"]["spec"]["containers"][0].clone()
}

/// The container's environment as Kubernetes resolves it (values and Secret references),
/// with `map` applied to plain values.
fn env_of(container: &Value, map: impl Fn(&str) -> String) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("name").to_string();
            let value = match (&e["value"], &e["valueFrom"]["secretKeyRef"]) {
                (Value::String(v), _) => map(v),
                (_, r) if r.is_object() => secret(
                    r["name"].as_str().expect("secret name"),
                    r["key"].as_str().expect("secret key"),
                ),
                other => panic!("env {name}: unsupported source {other:?}"),
            };
            (name, value)
        })
        .collect()
}

/// A target on 127.0.0.1:0 recording every path it serves (`/fail…` answers 500).
struct Target {
    _rt: tokio::runtime::Runtime,
    base: String,
    paths: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicU64>,
}

impl Target {
    fn start() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let hits = Arc::new(AtomicU64::new(0));
        let (p, h) = (paths.clone(), hits.clone());
        let base = rt.block_on(async move {
            let app = Router::new().fallback(move |uri: axum::http::Uri| {
                let path = uri.path().to_string();
                p.lock().expect("paths").push(path.clone());
                h.fetch_add(1, Ordering::SeqCst);
                async move {
                    if path.starts_with("/fail") {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no")
                    } else {
                        (axum::http::StatusCode::OK, "ok")
                    }
                }
            });
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
            paths,
            hits,
        }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().expect("paths").clone()
    }
}

/// The Job's folders: the ConfigMap mounted at `/plan`, the `/results` volume.
struct Volumes {
    _dir: tempfile::TempDir,
    plan: PathBuf,
    results: PathBuf,
}

impl Volumes {
    /// `plan.kdl` and `cluster.yml` (the ConfigMap's keys) with the test's contents, and
    /// the feeder file next to them (shipped to the workers by the master).
    fn new(plan: &str, profile: &str) -> Volumes {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan_dir = dir.path().join("plan");
        let results = dir.path().join("results");
        std::fs::create_dir_all(plan_dir.join("data")).expect("mkdir");
        std::fs::create_dir_all(&results).expect("mkdir");
        let keys = manifest("configmap.yml");
        for key in ["plan.kdl", "cluster.yml"] {
            assert!(keys["data"][key].is_string(), "the ConfigMap has {key}");
        }
        std::fs::write(plan_dir.join("plan.kdl"), plan).expect("write plan");
        std::fs::write(plan_dir.join("cluster.yml"), profile).expect("write profile");
        let rows: String = (0..5000).map(|i| format!("{i}\n")).collect();
        std::fs::write(plan_dir.join("data/rows.csv"), format!("id\n{rows}")).expect("write");
        std::fs::write(plan_dir.join("data/users.csv"), format!("id\n{rows}")).expect("write");
        Volumes {
            _dir: dir,
            plan: plan_dir,
            results,
        }
    }

    fn result(&self) -> Value {
        let path = self.results.join("result.json");
        let text = std::fs::read_to_string(&path).expect("result.json written");
        serde_json::from_str(&text).expect("result.json is JSON")
    }
}

/// `loadplan master` with master.yml's arguments and environment (`--expect-workers` set
/// to 3, as an overlay would), plus `extra`; returns it with the address it listens on.
fn start_master(v: &Volumes, extra: &[&str]) -> (Proc, String) {
    let c = container("master.yml");
    let mut args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect();
    for i in 0..args.len() {
        let prev = if i > 0 { args[i - 1].as_str() } else { "" };
        let mapped = match (prev, args[i].as_str()) {
            ("--expect-workers", _) => "3".to_string(),
            // No fixed ports: the Service's target port becomes any free loopback port.
            ("--bind" | "--metrics", a) if a.starts_with("0.0.0.0:") => "127.0.0.1:0".into(),
            (_, a) if a.starts_with("/plan/") => {
                v.plan.join(&a["/plan/".len()..]).display().to_string()
            }
            (_, a) if a.starts_with("/results/") => v
                .results
                .join(&a["/results/".len()..])
                .display()
                .to_string(),
            (_, a) => a.to_string(),
        };
        args[i] = mapped;
    }
    assert!(
        args.iter().any(|a| a == "--json"),
        "the Job keeps result.json"
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = env_of(&c, str::to_string);
    assert!(env.iter().any(|(k, _)| k == "LOADPLAN_SECRET"), "{env:?}");
    let master = Proc::spawn_env(&args, &env);
    let addr = master.master_address();
    (master, addr)
}

/// Worker pod `index` of the Indexed Job: worker.yml's arguments and environment, the
/// Service name mapped to the master's address, and the index Kubernetes sets.
fn start_worker(master_addr: &str, index: u32) -> Proc {
    let job = manifest("worker.yml");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let c = container("worker.yml");
    let service = manifest("service.yml");
    let service_name = service["metadata"]["name"].as_str().expect("service name");
    let args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect();
    let mut env = env_of(&c, |v| match v.split_once(':') {
        Some((host, _port)) if host == service_name => master_addr.to_string(),
        _ => v.to_string(),
    });
    assert!(
        env.iter()
            .any(|(k, v)| k == "LOADPLAN_MASTER" && v == master_addr),
        "the worker reaches the master through the Service: {env:?}"
    );
    env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
    Proc::spawn_env(&args, &env)
}

fn workers_by_name(result: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = result["workers"]
        .as_array()
        .expect("workers in result.json")
        .iter()
        .map(|w| (w["name"].as_str().expect("name").to_string(), w.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_job_merges_exactly_never_repeats_feeder_rows_and_passes_with_exit_0() {
    let target = Target::start();
    let plan = format!(
        r#"plan "job" {{
    host "{}"
}}
feeder "rows" file="data/rows.csv" mode="sequential"
feeder "users" file="data/users.csv" mode="unique"
scenario "a" {{
    http GET "/row/{{{{ rows.id }}}}/user/{{{{ users.id }}}}" name="row"
}}
"#,
        target.base
    );
    let profile =
        "name: job\nusers: 6\nspawn_rate: 100\nthresholds:\n  - metric: error_rate\n    max: 1%\n";
    let v = Volumes::new(&plan, profile);
    // The ConfigMap's profile is duration-bounded; here the iterations bound the run so
    // the counts are exact.
    let (mut master, addr) = start_master(&v, &["--iterations", "4", "--seed", "5"]);
    let mut workers: Vec<Proc> = (0..3).map(|i| start_worker(&addr, i)).collect();
    let (status, stdout, stderr) = master.finish(Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    for w in &mut workers {
        let (status, _, err) = w.finish(Duration::from_secs(15));
        assert_eq!(
            status.code(),
            Some(0),
            "a worker ends with 0 after the master:\n{err}"
        );
    }
    let result = v.result();
    assert_eq!(result["passed"], true, "{result}");
    // Merged count = hits at the target.
    let paths = target.paths();
    assert_eq!(paths.len(), 24, "{paths:?}");
    assert_eq!(
        result["aggregated"]["count"].as_u64(),
        Some(target.hits.load(Ordering::SeqCst)),
        "{stdout}"
    );
    // Sequential rows: none twice across the workers; unique rows: one per user.
    let mut rows: Vec<&str> = paths.iter().filter_map(|p| p.split('/').nth(2)).collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), 24, "a sequential row was used twice: {paths:?}");
    let mut users: Vec<&str> = paths.iter().filter_map(|p| p.split('/').nth(4)).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users.len(), 6, "a unique row went to two users: {paths:?}");
    // Each worker is named by its completion index; their numbers add up to the total.
    let by_name = workers_by_name(&result);
    let names: Vec<&str> = by_name.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["worker-0", "worker-1", "worker-2"], "{result}");
    let sum: u64 = by_name
        .iter()
        .map(|(_, w)| w["requests"].as_u64().expect("requests"))
        .sum();
    assert_eq!(sum, 24);
    assert!(by_name.iter().all(|(_, w)| w["lost_at_secs"].is_null()));
    assert_eq!(result["gaps"], serde_json::json!([]));
    // The final summary has the worker table; the progress output had the live one.
    for n in names {
        assert!(
            stdout.contains(n),
            "{n} missing from the summary:\n{stdout}"
        );
    }
    assert!(stdout.contains("finished"), "{stdout}");
    assert!(
        stderr.contains("last heard"),
        "no live worker table:\n{stderr}"
    );
}

#[test]
fn a_failing_threshold_fails_the_master_job_with_exit_1_and_workers_still_exit_0() {
    let target = Target::start();
    let plan = format!(
        "plan \"job-fail\" {{\n    host \"{}\"\n}}\nscenario \"a\" {{\n    http GET \"/fail\"\n}}\n",
        target.base
    );
    let profile =
        "name: job\nusers: 3\nspawn_rate: 100\nthresholds:\n  - metric: error_rate\n    max: 1%\n";
    let v = Volumes::new(&plan, profile);
    let (mut master, addr) = start_master(&v, &["--iterations", "2"]);
    let mut workers: Vec<Proc> = (0..3).map(|i| start_worker(&addr, i)).collect();
    let (status, stdout, stderr) = master.finish(Duration::from_secs(90));
    assert_eq!(status.code(), Some(1), "the verdict:\n{stdout}\n{stderr}");
    for w in &mut workers {
        let (status, _, err) = w.finish(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{err}");
    }
    let result = v.result();
    assert_eq!(result["passed"], false);
    assert_eq!(result["aggregated"]["count"].as_u64(), Some(6));
    assert_eq!(target.hits.load(Ordering::SeqCst), 6);
    // The failed Job's result still says who ran what: 3 users over 3 workers.
    let by_name = workers_by_name(&result);
    assert_eq!(by_name.len(), 3, "{result}");
    for (name, w) in &by_name {
        assert_eq!(w["requests"], 2, "{name}: {w}");
        assert_eq!(w["failures"], 2, "{name}: {w}");
    }
}

#[test]
fn a_killed_worker_pod_is_reported_in_the_result_json_with_its_gap() {
    let target = Target::start();
    let plan = format!(
        "plan \"job-loss\" {{\n    host \"{}\"\n}}\nscenario \"a\" {{\n    think \"50ms\"\n    http GET \"/a\"\n}}\n",
        target.base
    );
    let profile = "name: job\nusers: 6\nspawn_rate: 100\nduration: 5s\n";
    let v = Volumes::new(&plan, profile);
    let (mut master, addr) = start_master(&v, &["--seed", "2"]);
    let mut workers: Vec<Proc> = (0..3).map(|i| start_worker(&addr, i)).collect();
    master.wait_line("started 3 workers", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while target.hits.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "no load reached the target");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The pod of index 1 dies (an eviction, an OOM kill).
    let mut victim = workers.remove(1);
    victim.child.kill().expect("SIGKILL the worker");
    victim.child.wait().ok();
    master.wait_line("lost at", Duration::from_secs(15));
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    // Its users were re-assigned to the two others: the run completes.
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    for w in &mut workers {
        let (status, _, err) = w.finish(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{err}");
    }
    let result = v.result();
    let by_name = workers_by_name(&result);
    let (_, lost) = by_name
        .iter()
        .find(|(n, _)| n == "worker-1")
        .expect("worker-1 in result.json");
    let lost_at = lost["lost_at_secs"]
        .as_f64()
        .expect("worker-1 lost_at_secs");
    assert!(lost_at > 0.0, "{lost}");
    for (n, w) in &by_name {
        if n != "worker-1" {
            assert!(w["lost_at_secs"].is_null(), "{w}");
        }
    }
    let gaps = result["gaps"].as_array().expect("gaps in result.json");
    assert_eq!(gaps.len(), 1, "{result}");
    let gap = &gaps[0];
    assert_eq!(gap["name"], "worker-1", "{gap}");
    assert_eq!(gap["worker"], lost["index"], "{gap}");
    assert_eq!(gap["action"], "rebalance", "{gap}");
    assert_eq!(gap["users_missing"], 2, "{gap}");
    assert_eq!(gap["reassigned_to"].as_array().map(Vec::len), Some(2));
    assert!((gap["lost_at_secs"].as_f64().expect("lost_at") - lost_at).abs() < 1e-6);
    assert!(gap["missing_secs"].as_f64().expect("missing_secs") >= 0.0);
    // Every request that reached the target was counted, the lost worker's included up
    // to its last delta at most.
    let merged = result["aggregated"]["count"].as_u64().expect("count");
    assert!(merged <= target.hits.load(Ordering::SeqCst));
    assert!(merged > 0);
    // The live table showed it lost (a row of the table, not the loss note); the summary
    // says when.
    assert!(
        stderr.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.get(1) == Some(&"worker-1")
                && cells.get(2) == Some(&"lost")
                && l.ends_with("s ago")
        }),
        "{stderr}"
    );
    assert!(stdout.contains("lost at"), "{stdout}");
}

/// `GET`/`POST` on the UI (loopback, no token).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the ui");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).ok();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

#[test]
fn master_ui_serves_the_merged_run_with_a_worker_table() {
    let target = Target::start();
    let plan = format!(
        "plan \"job-ui\" {{\n    host \"{}\"\n}}\nscenario \"a\" {{\n    think \"100ms\"\n    http GET \"/a\"\n}}\n",
        target.base
    );
    let profile = "name: job\nusers: 3\nspawn_rate: 100\nduration: 4s\n";
    let v = Volumes::new(&plan, profile);
    let (mut master, addr) = start_master(&v, &["--ui", "--ui-bind", "127.0.0.1:0"]);
    let ui = master
        .wait_line("ui listening on http://", Duration::from_secs(30))
        .rsplit("http://")
        .next()
        .expect("ui address")
        .trim()
        .to_string();
    let _workers: Vec<Proc> = (0..3).map(|i| start_worker(&addr, i)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let (code, body) = http(&ui, "GET", "/api/state", "");
        assert_eq!(code, 200, "{body}");
        let state: Value = serde_json::from_str(&body).expect("state JSON");
        let running = state["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 3 && w.iter().all(|w| w["state"] == "running"));
        if running && state["users"].as_u64() == Some(3) {
            break state;
        }
        assert!(Instant::now() < deadline, "no worker table: {state}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut names: Vec<&str> = state["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["worker-0", "worker-1", "worker-2"], "{state}");
    for w in state["workers"].as_array().expect("workers") {
        for field in ["users", "rate", "last_heard_secs", "requests", "failures"] {
            assert!(w[field].is_number(), "{field} in {w}");
        }
    }
    // The users are the master's to hand out: the UI may only stop the run.
    let (code, body) = http(&ui, "POST", "/api/users", r#"{"users":9}"#);
    assert_eq!(code, 409, "{body}");
    let (code, body) = http(&ui, "POST", "/api/stop", "{}");
    assert_eq!(code, 202, "{body}");
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(4),
        "stopped from the UI:\n{stdout}\n{stderr}"
    );
}
