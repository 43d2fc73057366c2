//! A gate that cannot lie and a run that cannot lose its results (issue 12), and the
//! open model's scenario weights (issue 13): in-flight requests at the stop are counted,
//! empty runs and thresholds without data fail, interrupted runs say so, SIGTERM and
//! SIGHUP still write every file, a closed stdout never panics, numbers and hosts are
//! checked before any load, the open model ends and splits by weight, and a `repeat`
//! that never waits does not freeze the runtime.
//!
//! Every server here listens on 127.0.0.1:0; every process is bounded by a deadline
//! after which it is killed and the test fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadplan::lang::{self, ir::Program};
use loadplan::profile::{LoadProfile, Model};
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

const DEADLINE: Duration = Duration::from_secs(60);

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Wait for a child with a deadline; kill it and fail the test past it.
fn wait_output(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collect output"),
            Ok(None) if start.elapsed() > DEADLINE => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{what}: still running after {DEADLINE:?}; killed\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{what}: wait: {e}"),
        }
    }
}

fn run_bin(args: &[&str], dir: &Path) -> Output {
    let child = bin()
        .args(args)
        .current_dir(dir)
        .env_remove("LOADPLAN_HOST")
        .env_remove("LOADPLAN_PROFILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    wait_output(child, &format!("loadplan {args:?}"))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A target that accepts connections and never answers (the connections are held
/// open until the test process ends).
fn silent_target() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    format!("http://{addr}")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write file");
    p
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

const SLOW_PLAN: &str = "scenario \"s\" {\n    http GET \"/slow\"\n}\n";

// ------------------------------------------------------------------ in-flight requests

#[test]
fn requests_in_flight_at_the_stop_are_counted_as_aborted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = silent_target();
    write(dir.path(), "p.kdl", SLOW_PLAN);
    write(
        dir.path(),
        "silent.yml",
        "name: silent\nusers: 2\nduration: 1s\nstop_timeout: 1s\n",
    );
    let out = run_bin(
        &[
            "run",
            "p.kdl",
            "--profile",
            "silent.yml",
            "--host",
            &host,
            "--quiet",
            "--json",
            "r.json",
        ],
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let r = json(&dir.path().join("r.json"));
    let step = &r["steps"][0];
    assert_eq!(step["count"], 2, "both requests are counted: {step}");
    assert_eq!(step["failures"], 2, "{step}");
    // Their latency is the time they waited (a lower bound): about stop_timeout past
    // the 1 s duration, never 0.
    let max_ms = step["latency_ms"]["max"].as_f64().expect("max latency");
    assert!(max_ms >= 1000.0, "latency {max_ms} ms: {step}");
    let kinds: Vec<&str> = r["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["error_kind"].as_str())
        .collect();
    assert_eq!(kinds, ["aborted"], "{}", r["errors"]);
    assert!(stdout.contains("result: FAILED"), "{stdout}");
}

// ------------------------------------------------------------------------ the verdict

#[test]
fn a_silent_target_fails_the_run_without_thresholds_and_with_error_rate_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = silent_target();
    write(dir.path(), "p.kdl", SLOW_PLAN);
    write(
        dir.path(),
        "plain.yml",
        "name: plain\nusers: 2\nduration: 1s\nstop_timeout: 500ms\n",
    );
    write(
        dir.path(),
        "rate.yml",
        "name: rate\nusers: 2\nduration: 1s\nstop_timeout: 500ms\nthresholds:\n  - { metric: error_rate, max: 5% }\n",
    );
    for profile in ["plain.yml", "rate.yml"] {
        let out = run_bin(
            &[
                "run",
                "p.kdl",
                "--profile",
                profile,
                "--host",
                &host,
                "--quiet",
                "--junit",
                "j.xml",
            ],
            dir.path(),
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{profile}\n{stdout}\n{stderr}");
        assert!(stdout.contains("result: FAILED"), "{profile}\n{stdout}");
        assert!(
            stdout.contains("no request completed"),
            "{profile}\n{stdout}"
        );
        let junit = std::fs::read_to_string(dir.path().join("j.xml")).expect("junit");
        let head = junit
            .lines()
            .find(|l| l.starts_with("<testsuites "))
            .expect("testsuites");
        assert!(
            !head.contains("failures=\"0\""),
            "{profile}: JUnit shows no failure\n{junit}"
        );
    }
}

/// A plan whose only request never runs (its condition is false).
const NEVER_PLAN: &str =
    "scenario \"s\" {\n    if \"1 > 2\" {\n        http GET \"/never\"\n    }\n}\n";

#[test]
fn a_run_without_requests_and_a_threshold_without_data_fail_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "p.kdl", NEVER_PLAN);
    write(
        dir.path(),
        "none.yml",
        "name: none\nusers: 1\nthresholds:\n  - { metric: p95, step: GET /never, max: 500ms }\n",
    );
    write(
        dir.path(),
        "allowed.yml",
        "name: allowed\nusers: 1\nallow_no_data: true\nthresholds:\n  - { metric: p95, step: GET /never, max: 500ms }\n",
    );
    let args = |profile: &'static str| {
        [
            "run",
            "p.kdl",
            "--profile",
            profile,
            "--demo",
            "--iterations",
            "3",
            "--quiet",
            "--junit",
            "j.xml",
            "--json",
            "r.json",
        ]
    };
    let out = run_bin(&args("none.yml"), dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL p95[GET /never]"), "{stdout}");
    assert!(stdout.contains("actual no data"), "{stdout}");
    assert!(stdout.contains("no request completed"), "{stdout}");
    let junit = std::fs::read_to_string(dir.path().join("j.xml")).expect("junit");
    assert!(junit.contains("<failure"), "{junit}");
    assert!(junit.contains("completed requests"), "{junit}");
    let r = json(&dir.path().join("r.json"));
    assert_eq!(r["passed"], false, "{}", r["thresholds"]);

    let out = run_bin(&args("allowed.yml"), dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("no data (allowed)"), "{stdout}");
    assert!(stdout.contains("result: PASSED"), "{stdout}");
}

// ---------------------------------------------------------- numbers and hosts, exit 2

#[test]
fn numbers_out_of_range_are_usage_errors_before_any_load() {
    let root = repo();
    for (flags, says) in [
        (&["-u", "0", "-t", "2s"][..], "--users"),
        (&["-t", "0s"][..], "--duration"),
        (&["--iterations", "0"][..], "--iterations"),
        (
            &["--arrival-rate", "1e-300", "-t", "2s"][..],
            "--arrival-rate",
        ),
        (&["--arrival-rate", "NaN", "-t", "2s"][..], "--arrival-rate"),
        (&["--arrival-rate", "inf", "-t", "2s"][..], "--arrival-rate"),
        (
            &["--arrival-rate", "5", "--max-users", "0", "-t", "2s"][..],
            "--max-users",
        ),
        (&["-t", "100000000h"][..], "too long"),
        (&["-t", "1e300"][..], "too long"),
        (&["-r", "1e-300", "-t", "2s"][..], "--spawn-rate"),
    ] {
        let mut args = vec!["run", "plans/http.kdl", "--demo", "--quiet"];
        args.extend_from_slice(flags);
        let out = run_bin(&args, &root);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}\n{stdout}\n{stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
        assert!(!stdout.contains("Aggregated"), "{flags:?} ran: {stdout}");
    }
}

#[test]
fn bad_hosts_are_refused_with_the_plans_diagnostic() {
    let root = repo();
    for host in [
        "not-a-url",
        "ftp://example.test/",
        "http://",
        "http://127.0.0.1:99999",
        ":99999",
    ] {
        let out = run_bin(
            &[
                "run",
                "plans/http.kdl",
                "--host",
                host,
                "--iterations",
                "1",
                "--quiet",
            ],
            &root,
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{host}\n{stdout}\n{stderr}");
        assert!(stderr.contains("plan::bad-url"), "{host}: {stderr}");
        assert!(stderr.contains("--host"), "{host}: {stderr}");
        assert!(!stdout.contains("Aggregated"), "{host} ran: {stdout}");
    }
    // `loadplan ui --host` too, before serving anything.
    let out = run_bin(
        &[
            "ui",
            "plans/http.kdl",
            "--host",
            "ftp://example.test",
            "--ui-bind",
            "127.0.0.1:0",
        ],
        &root,
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plan::bad-url"), "{stderr}");
    // The environment variable gets the same check, named as such.
    let child = bin()
        .args(["run", "plans/http.kdl", "--iterations", "1", "--quiet"])
        .current_dir(&root)
        .env("LOADPLAN_HOST", "ftp://example.test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(child, "LOADPLAN_HOST");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("LOADPLAN_HOST"), "{stderr}");
    assert!(stderr.contains("found scheme `ftp`"), "{stderr}");
    // The same message as a plan's host.
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "p.kdl",
        "plan \"p\" {\n    host \"ftp://example.test\"\n}\nscenario \"s\" { http GET \"/\"; }\n",
    );
    let out = run_bin(&["check", "p.kdl"], dir.path());
    let (_, plan_err) = text(&out);
    assert!(plan_err.contains("found scheme `ftp`"), "{plan_err}");
}

// ----------------------------------------------------------------- signals and files

/// Start a demo run writing every file; return it once the run has started.
fn start_run(dir: &Path, extra: &[&str]) -> Child {
    let plan = repo().join("plans/http.kdl");
    let mut child = bin()
        .arg("run")
        .arg(&plan)
        .args(["--demo", "-u", "2", "--seed", "5"])
        .args([
            "--json", "r.json", "--csv", "run", "--junit", "j.xml", "--html", "r.html",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("demo target listening"));
    assert!(started, "loadplan did not start");
    // Drain stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    // Wait until requests have completed: the streamed history has a row with some.
    let history = dir.join("run_stats_history.csv");
    let start = Instant::now();
    while !history_has_requests(&history) {
        assert!(
            start.elapsed() < DEADLINE,
            "no completed request in the history after {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Whether the CSV history shows at least one completed request.
fn history_has_requests(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return false;
    };
    let Some(col) = header.split(',').position(|h| h == "Total Request Count") else {
        return false;
    };
    lines.any(|l| {
        l.split(',')
            .nth(col)
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill (procps) is needed: apt-get install -y procps");
    assert!(status.success());
}

fn wait_stdout(mut child: Child, what: &str) -> (Option<i32>, String) {
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let out = wait_output(child, what);
    (out.status.code(), reader.join().expect("stdout reader"))
}

fn assert_files_complete(dir: &Path) {
    let r = json(&dir.join("r.json"));
    assert_eq!(r["interrupted"], true, "{r}");
    assert!(r["aggregated"]["count"].as_u64().is_some(), "{r}");
    let junit = std::fs::read_to_string(dir.join("j.xml")).expect("junit written");
    assert!(junit.trim_end().ends_with("</testsuites>"), "{junit}");
    let html = std::fs::read_to_string(dir.join("r.html")).expect("html written");
    assert!(
        html.trim_end().ends_with("</html>"),
        "html ends: {}",
        &html[html.len().saturating_sub(200)..]
    );
    for f in ["run_stats.csv", "run_failures.csv", "run_stats_history.csv"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let stats = std::fs::read_to_string(dir.join("run_stats.csv")).expect("stats");
    assert!(stats.contains("Aggregated"), "{stats}");
}

#[test]
fn sigterm_and_sighup_stop_like_ctrl_c_and_write_every_file() {
    for sig in ["TERM", "HUP"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = start_run(dir.path(), &[]);
        signal(&child, sig);
        let (code, stdout) = wait_stdout(child, sig);
        assert_eq!(code, Some(4), "SIG{sig}: {stdout}");
        assert!(stdout.contains("run interrupted"), "SIG{sig}: {stdout}");
        assert!(stdout.contains("result: INTERRUPTED"), "SIG{sig}: {stdout}");
        assert!(stdout.contains("wrote"), "SIG{sig}: {stdout}");
        assert_files_complete(dir.path());
    }
}

#[test]
fn an_interrupted_run_exits_4_and_says_so_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = start_run(dir.path(), &["--summary-kv"]);
    signal(&child, "INT");
    let (code, stdout) = wait_stdout(child, "SIGINT");
    assert_eq!(code, Some(4), "{stdout}");
    assert!(stdout.contains("result: INTERRUPTED"), "{stdout}");
    assert!(stdout.contains("interrupted=1"), "{stdout}");
    assert_files_complete(dir.path());
}

#[test]
fn packaging_stops_with_sigterm_under_an_init() {
    let docker = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    assert!(
        docker.lines().any(|l| l.trim() == "STOPSIGNAL SIGTERM"),
        "Dockerfile lacks STOPSIGNAL SIGTERM"
    );
    let compose: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose"),
    )
    .expect("compose parses");
    for svc in ["master", "worker", "ui", "demo"] {
        assert_eq!(compose["services"][svc]["init"], true, "{svc}: no init");
    }
}

// ---------------------------------------------------------------- closed stdout (EPIPE)

/// A stdout whose reader is already gone: every write fails with EPIPE (a socket
/// pair with the other end closed behaves as a pipe whose reader exited).
fn closed_stdout() -> Stdio {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    drop(theirs);
    Stdio::from(std::os::fd::OwnedFd::from(ours))
}

#[test]
fn a_closed_stdout_never_panics_and_the_files_are_written() {
    let root = repo();
    let check = bin()
        .args(["check", "plans/http.kdl"])
        .current_dir(&root)
        .stdout(closed_stdout())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(check, "check | true");
    let (_, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Diagnostics on a closed stderr (`loadplan check bad.kdl 2>&1 | head -1`).
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "bad.kdl",
        "scenario \"s\" {\n    repeat count=2\n}\n",
    );
    let bad = bin()
        .args(["check", "bad.kdl"])
        .current_dir(dir.path())
        .stdout(closed_stdout())
        .stderr(closed_stdout())
        .spawn()
        .expect("spawn");
    let out = wait_output(bad, "check bad.kdl 2>&1 | true");
    assert_eq!(out.status.code(), Some(2));

    let json_path = dir.path().join("x.json");
    let run = bin()
        .args([
            "run",
            "plans/http.kdl",
            "--demo",
            "-u",
            "2",
            "--iterations",
            "2",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json_path)
        .current_dir(&root)
        .stdout(closed_stdout())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(run, "run | true");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let r = json(&json_path);
    assert_eq!(r["passed"], true, "{r}");
}

// ----------------------------------------------------------------- repeat that spins

#[test]
fn a_repeat_that_never_waits_does_not_freeze_ticks_or_ctrl_c() {
    // One core: the current-thread runtime, where a spinning task starves all others.
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spin.kdl",
        "scenario \"s\" {\n    repeat duration=\"10m\" {\n        set \"x\" \"1\"\n    }\n}\n",
    );
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(assert_cmd::cargo::cargo_bin!("loadplan"))
        .args(["run", "spin.kdl", "--demo", "-u", "1", "-t", "10m"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskset (util-linux) is needed: apt-get install -y util-linux");
    // The progress line (every 5 s when stderr is not a terminal) proves the ticks run.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut ticked = false;
    while start.elapsed() < Duration::from_secs(30) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) if l.contains("req/s") || l.contains("users") => {
                ticked = true;
                break;
            }
            _ => {}
        }
    }
    if !ticked {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no progress line in 30 s: the runtime is frozen by the spinning repeat");
    }
    signal(&child, "INT");
    // First Ctrl-C: stop_timeout (5 s) for the spinning iteration, then the hard stop.
    let (code, stdout) = wait_stdout(child, "spinning repeat");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("run interrupted"), "{stdout}");
}

// ------------------------------------------------------------ open model, in process

fn program_in(dir: &Path, text: &str) -> Arc<Program> {
    let src = Source::new(dir.join("p.kdl").display().to_string(), text);
    match lang::compile_source(&src, Syntax::Kdl, dir) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("plan does not compile:\n{}", d.render_plain()),
    }
}

fn open_profile(rate: f64, max_users: u64) -> LoadProfile {
    let mut p = LoadProfile::closed(1, 1.0, None);
    p.model = Model::Open {
        rate,
        max_users,
        poisson: false,
    };
    p
}

async fn run_open(p: Arc<Program>, profile: LoadProfile, host: String, n: u64) -> RunResult {
    let cfg = RunConfig {
        host: Some(host),
        seed: 9,
        iterations: Some(n),
        ..RunConfig::default()
    };
    let run = driver::run(p, &profile, &cfg, Control::default(), |_| {});
    match tokio::time::timeout(DEADLINE, run).await {
        Ok(r) => r.expect("run starts"),
        Err(_) => panic!("the open-model run with --iterations {n} did not end in {DEADLINE:?}"),
    }
}

type Hits = Arc<Mutex<BTreeMap<String, u64>>>;

/// A target that answers 200 to every path and counts the hits per path.
async fn counting_target() -> (String, Hits) {
    let hits: Hits = Arc::default();
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let h = h.clone();
        async move {
            if let Ok(mut m) = h.lock() {
                *m.entry(uri.path().to_string()).or_insert(0) += 1;
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

const WEIGHTED: &str = "scenario \"a\" weight=6 { http GET \"/a\"; }\n\
                        scenario \"b\" weight=3 { http GET \"/b\"; }\n\
                        scenario \"c\" weight=1 { http GET \"/c\"; }\n";

fn shares(hits: &Hits) -> (u64, Vec<f64>) {
    let m = hits.lock().expect("hits").clone();
    let n: u64 = m.values().sum();
    let share = |p: &str| m.get(p).copied().unwrap_or(0) as f64 / n.max(1) as f64;
    (n, vec![share("/a"), share("/b"), share("/c")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_arrivals_split_over_scenarios_by_weight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = program_in(dir.path(), WEIGHTED);
    let (host, hits) = counting_target().await;
    let r = run_open(p.clone(), open_profile(400.0, 200), host, 1000).await;
    let (n, got) = shares(&hits);
    assert!(
        n >= 980,
        "{n} requests of 1000 arrivals ({:?})",
        r.total.iterations
    );
    for (got, want) in got.iter().zip([0.6, 0.3, 0.1]) {
        assert!(
            (got - want).abs() <= 0.02,
            "shares {got} vs {want}: {:?}",
            hits
        );
    }
    assert_eq!(r.users_by_scenario.len(), 3, "{:?}", r.users_by_scenario);

    // The profile's weights override the plan's.
    let (host, hits) = counting_target().await;
    let mut profile = open_profile(400.0, 200);
    profile.weights = BTreeMap::from([("a".into(), 1), ("b".into(), 1), ("c".into(), 2)]);
    run_open(p, profile, host, 1000).await;
    let (_, got) = shares(&hits);
    for (got, want) in got.iter().zip([0.25, 0.25, 0.5]) {
        assert!(
            (got - want).abs() <= 0.02,
            "shares {got} vs {want}: {:?}",
            hits
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_users_that_cannot_start_free_their_place_and_count_the_arrival() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "users.csv", "name\nann\nbob\n");
    let p = program_in(
        dir.path(),
        "feeder \"u\" file=\"users.csv\" mode=\"unique\"\n\
         scenario \"s\" {\n    http GET \"/who/{{ u.name }}\"\n    sleep \"50ms\"\n}\n",
    );
    let (host, hits) = counting_target().await;
    // 40 arrivals/s, 20 arrivals: users 0 and 1 have rows; the rest cannot start.
    let r = run_open(p, open_profile(40.0, 10), host, 20).await;
    let it = &r.total.iterations;
    assert_eq!(it.started + it.dropped, 20, "every arrival counted: {it:?}");
    assert_eq!(it.completed + it.failed, it.started, "{it:?}");
    let m = hits.lock().expect("hits").clone();
    assert!(
        m.keys().all(|k| k == "/who/ann" || k == "/who/bob"),
        "{m:?}"
    );
    assert_eq!(m.values().sum::<u64>(), it.completed, "{m:?} vs {it:?}");
}

/// Hits per scenario (`/a/…`, `/b/…`, `/c/…`) and the user ids seen (`/x/ID`).
fn by_scenario_and_users(hits: &Hits) -> (BTreeMap<String, u64>, Vec<u64>) {
    let m = hits.lock().expect("hits").clone();
    let mut by = BTreeMap::new();
    let mut users = Vec::new();
    for (path, n) in m {
        let mut parts = path.trim_start_matches('/').split('/');
        let sc = parts.next().unwrap_or_default().to_string();
        *by.entry(sc).or_insert(0) += n;
        if let Some(id) = parts.next().and_then(|s| s.parse().ok()) {
            users.push(id);
        }
    }
    (by, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_open_model_shares_split_by_weight_with_global_user_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = program_in(
        dir.path(),
        "scenario \"a\" weight=6 { http GET \"/a/{{ user }}\"; }\n\
         scenario \"b\" weight=3 { http GET \"/b/{{ user }}\"; }\n\
         scenario \"c\" weight=1 { http GET \"/c/{{ user }}\"; }\n",
    );
    // Two workers, each its own target, each half of a 400/s, 1000-arrival run.
    let profile = open_profile(400.0, 40);
    let mut runs = Vec::new();
    let mut targets = Vec::new();
    for offset in 0..2 {
        let (host, hits) = counting_target().await;
        targets.push(hits);
        let cfg = RunConfig {
            host: Some(host),
            seed: 9,
            iterations: Some(1000),
            ..RunConfig::default()
        };
        let (p, profile) = (p.clone(), profile.clone());
        runs.push(tokio::spawn(async move {
            let share = driver::Share { offset, stride: 2 };
            driver::run_share(p, &profile, &cfg, share, Control::default(), |_| {})
                .await
                .expect("run starts")
        }));
    }
    for r in runs {
        tokio::time::timeout(DEADLINE, r)
            .await
            .expect("a share ended in time")
            .expect("share task");
    }
    let (w0, ids0) = by_scenario_and_users(&targets[0]);
    let (w1, ids1) = by_scenario_and_users(&targets[1]);
    // Global ids: worker 0 has the even ones, worker 1 the odd ones; none shared.
    assert!(ids0.iter().all(|id| id % 2 == 0), "{ids0:?}");
    assert!(ids1.iter().all(|id| id % 2 == 1), "{ids1:?}");
    let n: u64 = w0.values().chain(w1.values()).sum();
    assert!(n >= 980, "{n} requests of 1000 arrivals: {w0:?} {w1:?}");
    for (sc, want) in [("a", 0.6), ("b", 0.3), ("c", 0.1)] {
        let got =
            (w0.get(sc).copied().unwrap_or(0) + w1.get(sc).copied().unwrap_or(0)) as f64 / n as f64;
        assert!(
            (got - want).abs() <= 0.02,
            "{sc}: {got} vs {want}: {w0:?} {w1:?}"
        );
    }
}

/// A target that answers every request after `delay`, telling the test when a request
/// has arrived.
fn slow_target(delay: Duration) -> (String, std::sync::mpsc::Receiver<()>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(());
                std::thread::sleep(delay);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn a_repeated_sigterm_still_lets_the_iteration_finish() {
    // `timeout` sends SIGTERM to the process and to its group: two signals for one stop.
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, arrived) = slow_target(Duration::from_millis(1500));
    write(dir.path(), "p.kdl", SLOW_PLAN);
    let child = bin()
        .args([
            "run", "p.kdl", "--host", &host, "-u", "1", "--quiet", "--json", "r.json",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    arrived
        .recv_timeout(DEADLINE)
        .expect("the request reached the target");
    signal(&child, "TERM");
    signal(&child, "TERM");
    let (code, stdout) = wait_stdout(child, "double SIGTERM");
    assert_eq!(code, Some(4), "{stdout}");
    let r = json(&dir.path().join("r.json"));
    assert_eq!(r["steps"][0]["count"], 1, "{}", r["steps"]);
    assert_eq!(
        r["steps"][0]["failures"], 0,
        "the request was answered: {}",
        r["errors"]
    );
}
