//! The Prometheus exporter end to end: a real Prometheus (Debian's `prometheus` package,
//! `/usr/bin/prometheus`, or `$PROMETHEUS`) scrapes a running `loadplan run --metrics` aimed at
//! the in-process demo target; `promtool check metrics` accepts the exposition, and every PromQL
//! expression of the shipped Grafana dashboard returns data through Prometheus' HTTP API.
//!
//! Everything listens on free loopback ports, Prometheus gets a temp config and TSDB, every wait
//! has a deadline, and both child processes are killed by a drop guard even when an assertion
//! fails. Without a Prometheus binary the test FAILS with the install command (it never passes
//! without having run); `bash scripts/setup.sh` installs it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadplan::demo::{DemoConfig, DemoServer};

const PLAN: &str = r##"
plan "prom-test"
scenario "http" weight=3 {
    think between="20ms" and="60ms"
    http GET "/health" { check status=200; }
    http GET "/api/oscilloscope/config" { check json="$.sample_rate" equals=1000; }
    http GET "/no/such/page" name="missing"
}
scenario "websocket" weight=1 {
    think between="20ms" and="60ms"
    ws "/api/oscilloscope/stream" name="connect" timeout="10s" {
        send "start" json=#"{"command": "start", "wave_type": "sine", "frequency": 10, "amplitude": 1, "offset": 0}"#
        receive "frame" count=3 timeout="5s" match="$.samples"
        send "stop" json=#"{"command": "stop"}"#
        close name="disconnect"
    }
}
"##;

const PROFILE: &str = "name: scrape\nusers: 4\nspawn_rate: 4\nduration: 180s\nthresholds:\n  - metric: error_rate\n    max: 50%\n";

/// Kills and reaps a child process when dropped (test failure included).
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            if let Err(e) = self.0.kill() {
                eprintln!("could not kill {}: {e}", self.1);
            }
        }
        self.0.wait().ok();
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|c| c.is_file())
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// A minimal HTTP/1.0 GET (no client library needed): status and body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Polls `probe` until it returns `Some`, or panics with `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Grafana's variables, as the dashboard would expand them with "All" selected.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__range", "5m")
        .replace("$__interval", "5s")
        .replace("$scenario", ".*")
        .replace("$step", ".*")
}

fn query(prom: SocketAddr, expr: &str) -> Option<usize> {
    let enc: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let (status, body) = get(prom, &format!("/api/v1/query?query={enc}")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    assert_ne!(status, 400, "Prometheus rejected `{expr}`: {body}");
    let n = v["data"]["result"].as_array()?.len();
    (n > 0).then_some(n)
}

#[test]
fn prometheus_scrapes_the_exporter_and_every_dashboard_query_returns_data() {
    let Some(prometheus) = prometheus_binary() else {
        panic!(
            "Prometheus is not installed (no $PROMETHEUS, no /usr/bin/prometheus), so this test \
             cannot run. Install it with:\n    apt-get install -y prometheus\n\
             (or run `bash scripts/setup.sh` as root, which installs every tool the tests use)"
        );
    };
    let promtool = prometheus.with_file_name("promtool");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");

    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let demo = rt
        .block_on(DemoServer::start(
            ([127, 0, 0, 1], 0).into(),
            DemoConfig {
                fast_delays: true,
                ..DemoConfig::default()
            },
        ))
        .expect("demo target starts");

    let plan = dir.path().join("plan.kdl");
    let profile = dir.path().join("scrape.yml");
    std::fs::write(&plan, PLAN).expect("plan");
    std::fs::write(&profile, PROFILE).expect("profile");
    let metrics = free_port();
    let _loadplan = Guard(
        Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
            .arg("run")
            .arg(&plan)
            .arg("--profile")
            .arg(&profile)
            .args(["--host", &demo.base_url(), "--seed", "5", "--quiet"])
            .arg(format!("--metrics={metrics}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn loadplan"),
        "loadplan",
    );

    // The exposition once WebSocket frames and failures have been counted.
    let text = wait_for("loadplan's /metrics", Duration::from_secs(60), || {
        let (status, body) = get(metrics, "/metrics").ok()?;
        (status == 200
            && body.contains("loadplan_ws_messages_total")
            && body.contains("loadplan_request_failures_total")
            && body.contains("loadplan_checks_total"))
        .then_some(body)
    });
    let exposition = dir.path().join("metrics.txt");
    std::fs::write(&exposition, &text).expect("write exposition");
    let check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&exposition).expect("open exposition"))
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check metrics rejected the exposition:\n{}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let web = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: loadplan\n    static_configs:\n      - targets: [\"{metrics}\"]\n"
        ),
    )
    .expect("config");
    let _prometheus = Guard(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
        "prometheus",
    );
    wait_for("Prometheus to be ready", Duration::from_secs(60), || {
        get(web, "/-/ready").ok().filter(|(s, _)| *s == 200)
    });

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/observability/grafana/loadplan.json"))
            .expect("dashboard"),
    )
    .expect("dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() >= 10, "only {} expressions found", exprs.len());
    let mut missing: Vec<String> = exprs.iter().map(|e| expand(e)).collect();
    for e in &missing {
        assert!(!e.contains('$'), "unexpanded variable in `{e}`");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !missing.is_empty() && Instant::now() < deadline {
        missing.retain(|e| query(web, e).is_none());
        if !missing.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard queries without data after 90 s:\n{}",
        missing.join("\n")
    );
    rt.block_on(demo.shutdown());
}

#[test]
fn a_taken_metrics_port_is_a_fatal_error_before_any_load() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
        .arg("run")
        .arg(root.join("plans/http.kdl"))
        .args(["--demo", "-u", "1", "--iterations", "1", "--quiet"])
        .arg(format!("--metrics={addr}"))
        .output()
        .expect("run loadplan");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot serve metrics on {addr}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no run should have happened");
}
