//! Prometheus on a clean run, through a real Prometheus (Debian's `prometheus` package,
//! `/usr/bin/prometheus`, or `$PROMETHEUS`): every failure counter exists at 0 from the start,
//! so `rate()` of failures is 0 (not "no data"); the latency buckets start at 100 µs; and with
//! `--metrics-linger` the exporter still serves the run's final values after the result files
//! are written, equal to the `--json` totals.
//!
//! Free loopback ports, a temp config and TSDB, deadlines on every wait, both child processes
//! killed by a drop guard. Without a Prometheus binary the test fails with the install command.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadplan::demo::{DemoConfig, DemoServer};

const PLAN: &str = r#"
plan "prom-clean"
scenario "http" {
    think between="20ms" and="40ms"
    http GET "/health" { check status=200; }
}
"#;

const PROFILE: &str = "name: clean\nusers: 2\nspawn_rate: 2\nduration: 12s\n";

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

fn prometheus_binary() -> PathBuf {
    std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|c| c.is_file())
        .unwrap_or_else(|| {
            panic!("prometheus is not installed: apt-get install -y prometheus (or set PROMETHEUS)")
        })
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// A minimal HTTP/1.0 GET: status and body.
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

/// The single value of an instant query, `None` while it has no data.
fn value(prom: SocketAddr, expr: &str) -> Option<f64> {
    let enc: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let (status, body) = get(prom, &format!("/api/v1/query?query={enc}")).ok()?;
    assert_ne!(status, 400, "Prometheus rejected `{expr}`: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    let first = result.first()?;
    first["value"][1].as_str()?.parse().ok()
}

/// Sum of the samples of `metric` whose labels contain `with`, in an exposition.
fn sum(text: &str, metric: &str, with: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn rate_of_failures_is_zero_on_a_clean_run_and_final_values_linger() {
    let prometheus = prometheus_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let demo = rt
        .block_on(DemoServer::start(
            ([127, 0, 0, 1], 0).into(),
            DemoConfig::default(),
        ))
        .expect("demo target starts");

    let plan = dir.path().join("plan.kdl");
    let profile = dir.path().join("clean.yml");
    let json = dir.path().join("result.json");
    std::fs::write(&plan, PLAN).expect("plan");
    std::fs::write(&profile, PROFILE).expect("profile");
    let metrics = free_port();
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

    let mut loadplan = Guard(
        Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
            .arg("run")
            .arg(&plan)
            .arg("--profile")
            .arg(&profile)
            .args(["--host", &demo.base_url(), "--seed", "5", "--quiet"])
            .arg(format!("--metrics={metrics}"))
            .args(["--metrics-linger", "30s"])
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn loadplan"),
        "loadplan",
    );

    // Before any failure: the failure counters are there, at 0, and buckets start at 100 µs.
    let first = wait_for("loadplan's /metrics", Duration::from_secs(30), || {
        get(metrics, "/metrics").ok().filter(|(s, _)| *s == 200)
    })
    .1;
    assert!(
        first.contains("loadplan_request_failures_total{") && first.contains("le=\"0.0001\""),
        "{first}"
    );
    // rate() of failures through Prometheus: 0, not "no data", while requests flow.
    let requests = wait_for("a request rate", Duration::from_secs(30), || {
        value(
            web,
            "sum(rate(loadplan_requests_total{protocol=\"http\"}[5s]))",
        )
        .filter(|v| *v > 0.0)
    });
    assert!(requests > 0.0);
    let failures = wait_for("the failure rate", Duration::from_secs(30), || {
        value(web, "sum(rate(loadplan_request_failures_total[5s]))")
    });
    assert_eq!(failures, 0.0, "rate() of failures on a clean run");

    // The run ends and writes its result; the exporter still serves the final values.
    wait_for("the result file", Duration::from_secs(60), || {
        json.is_file().then_some(())
    });
    let report: serde_json::Value =
        wait_for("a complete result file", Duration::from_secs(10), || {
            serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()
        });
    let (status, last) = get(metrics, "/metrics").expect("the exporter lingers after the run");
    assert_eq!(status, 200);
    assert!(
        loadplan.0.try_wait().ok().flatten().is_none(),
        "loadplan is still lingering"
    );
    let count = report["totals"]["http"]["count"]
        .as_f64()
        .expect("HTTP total");
    assert!(count > 0.0);
    assert_eq!(
        sum(&last, "loadplan_requests_total", "protocol=\"http\""),
        count,
        "final exposition vs the --json total:\n{last}"
    );
    assert_eq!(sum(&last, "loadplan_request_failures_total", ""), 0.0);
    rt.block_on(demo.shutdown());
}
