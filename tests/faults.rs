//! Fault injection: `loadplan run` (the binary) against the scripted bad server of
//! `common::fault_server`, one fault per test. Each run is bounded (iterations and a
//! short request timeout); each asserts what reached the server, the error kinds in
//! the `--json` file, and that the run ended (a hang guard kills it after 90 s).
//!
//! What the run-level verdict of such runs should be (a silent target failing the
//! run, requests in flight at the end being counted) is the run gate's business and
//! is not asserted here: only the counts and kinds this layer records.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fault_server::{Fault, FaultServer};

/// What one run left behind.
struct Outcome {
    code: Option<i32>,
    json: serde_json::Value,
    stderr: String,
    /// Peak resident set of the loadplan process (VmHWM), in KiB.
    peak_rss_kib: u64,
    _dir: tempfile::TempDir,
}

impl Outcome {
    /// Failures by error kind, over every row.
    fn kinds(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in self.json["errors"].as_array().expect("errors") {
            *out.entry(e["error_kind"].as_str().expect("kind").to_string())
                .or_insert(0) += e["count"].as_u64().expect("count");
        }
        out
    }

    fn aggregated(&self, field: &str) -> u64 {
        self.json["aggregated"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("aggregated.{field} in {}", self.json))
    }

    /// A step row by name.
    fn row(&self, name: &str) -> &serde_json::Value {
        self.json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {}", self.json))
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `loadplan run PLAN --host HOST --json FILE -q ARGS…` (through `sh -c` with
/// `ulimit -n` first when `nofile` is given), sampling its peak RSS until it exits.
fn run_with(plan: &str, host: &str, args: &[&str], nofile: Option<u32>) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_path = dir.path().join("plan.kdl");
    std::fs::write(&plan_path, plan).expect("write plan");
    let json_path: PathBuf = dir.path().join("out.json");
    // LOADPLAN_BIN runs the suite against another build (e.g. an older one, to see
    // which faults it mishandles).
    let bin = std::env::var_os("LOADPLAN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin!("loadplan").to_path_buf());
    let mut argv: Vec<String> = vec![
        "run".into(),
        plan_path.display().to_string(),
        "--host".into(),
        host.into(),
        "--json".into(),
        json_path.display().to_string(),
        "-q".into(),
        "--seed".into(),
        "1".into(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut cmd = match nofile {
        None => {
            let mut c = Command::new(&bin);
            c.args(&argv);
            c
        }
        Some(n) => {
            // `exec` keeps the pid: the sampled process is loadplan itself.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(&bin)
                .args(&argv);
            c
        }
    };
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let pid = child.id();
    let guard = Instant::now() + Duration::from_secs(90);
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadplan did not end within 90 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().expect("stderr reader");
    eprintln!("loadplan {args:?}: peak RSS {peak} KiB, exit {status:?}");
    let text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("no --json file ({e}); exit {status:?}; stderr:\n{stderr}"));
    let json = serde_json::from_str(&text).expect("the --json file parses");
    Outcome {
        code: status.code(),
        json,
        stderr,
        peak_rss_kib: peak,
        _dir: dir,
    }
}

fn run(plan: &str, host: &str, args: &[&str]) -> Outcome {
    run_with(plan, host, args, None)
}

const LIMIT_RSS_KIB: u64 = 200 * 1024;

/// The run's peak RSS was measured and is under `limit_kib`.
#[track_caller]
fn assert_peak_rss_under(out: &Outcome, limit_kib: u64) {
    assert!(
        out.peak_rss_kib > 0 && out.peak_rss_kib < limit_kib,
        "peak RSS {} KiB",
        out.peak_rss_kib
    );
}

// ---- bodies ---------------------------------------------------------------------

#[test]
fn ten_users_with_200_mb_bodies_stay_under_200_mb_rss_and_count_every_byte() {
    let server = FaultServer::start(Fault::Body(200_000_000));
    let out = run(
        r#"plan "p" { timeout "80s"; }
        scenario "s" { http GET "/big" }"#,
        &server.url(),
        &["-u", "10", "--iterations", "1"],
    );
    assert_eq!(server.requests(), 10);
    assert_eq!(out.aggregated("count"), 10, "{}", out.stderr);
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
    assert_eq!(out.aggregated("bytes_in"), 10 * 200_000_000);
    assert_peak_rss_under(&out, LIMIT_RSS_KIB);
}

#[test]
fn an_endless_body_ends_by_the_request_timeout_counted_with_its_bytes() {
    let server = FaultServer::start(Fault::Endless);
    let out = run(
        r#"plan "p" { timeout "2s"; }
        scenario "s" { http GET "/endless" { check body-contains="never"; } }"#,
        &server.url(),
        &["-u", "2", "--iterations", "1"],
    );
    assert_eq!(out.kinds(), BTreeMap::from([("timeout".to_string(), 2)]));
    assert_eq!(out.aggregated("count"), 2);
    // The bytes read before the timeout are counted, not lost with the request.
    assert!(out.aggregated("bytes_in") > 1_000_000, "{}", out.json);
    assert_peak_rss_under(&out, LIMIT_RSS_KIB);
}

#[test]
fn a_body_over_max_body_is_read_whole_counted_and_fails_with_body() {
    let server = FaultServer::start(Fault::Body(1_000_000));
    let out = run(
        r#"plan "p" { max-body "2MiB"; }
        scenario "s" {
            http GET "/small-limit" max-body="64KiB" { check body-contains="x"; }
            http GET "/plan-limit" { check body-contains="x"; }
            http GET "/unread" max-body="1KiB"
        }"#,
        &server.url(),
        &["-u", "1", "--iterations", "2"],
    );
    let small = out.row("/small-limit");
    assert_eq!(small["count"], 2);
    assert_eq!(small["failures"], 2);
    assert_eq!(small["bytes_in"], 2_000_000);
    // Checks ran on the kept 64 KiB.
    assert_eq!(small["checks_passed"], 2);
    let plan = out.row("/plan-limit");
    assert_eq!(plan["failures"], 0);
    assert_eq!(plan["bytes_in"], 2_000_000);
    // A body nothing reads is only counted: no limit applies.
    let unread = out.row("/unread");
    assert_eq!(unread["failures"], 0);
    assert_eq!(unread["bytes_in"], 2_000_000);
    assert_eq!(out.kinds(), BTreeMap::from([("body".to_string(), 2)]));
    let msg = out.json["errors"][0]["message"].as_str().expect("message");
    assert!(msg.contains("max-body"), "{msg}");
}

// ---- HTTP faults and their kinds ------------------------------------------------

/// Two users, two iterations each, 1 s timeout: every request fails with `kind`.
fn http_fault(fault: Fault, kind: &str) {
    let server = FaultServer::start(fault);
    let out = run(
        r#"plan "p" { timeout "1s"; }
        scenario "s" { http GET "/x" }"#,
        &server.url(),
        &["-u", "2", "--iterations", "2"],
    );
    assert!(server.requests() >= 4, "{fault:?}: {}", server.requests());
    assert_eq!(out.aggregated("count"), 4, "{fault:?}: {}", out.stderr);
    assert_eq!(
        out.kinds(),
        BTreeMap::from([(kind.to_string(), 4)]),
        "{fault:?}: {}",
        out.json["errors"]
    );
    assert!(out.code.is_some(), "{fault:?}: killed by a signal");
}

#[test]
fn a_silent_target_times_out() {
    http_fault(Fault::Silent, "timeout");
}

#[test]
fn a_slow_drip_past_the_timeout_times_out() {
    http_fault(Fault::SlowDrip(Duration::from_millis(100)), "timeout");
}

#[test]
fn a_slow_drip_within_the_timeout_is_a_success() {
    let server = FaultServer::start(Fault::SlowDrip(Duration::from_millis(2)));
    let out = run(
        r#"scenario "s" { http GET "/x" { check body-contains="hello"; } }"#,
        &server.url(),
        &["-u", "2", "--iterations", "2"],
    );
    assert_eq!(out.aggregated("count"), 4);
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
}

#[test]
fn garbage_is_an_invalid_response_body_error() {
    http_fault(Fault::Garbage, "body");
}

#[test]
fn a_reset_before_the_response_is_reset() {
    http_fault(Fault::ResetBeforeResponse, "reset");
}

#[test]
fn a_reset_mid_headers_is_reset() {
    http_fault(Fault::ResetMidHeaders, "reset");
}

#[test]
fn a_reset_mid_body_is_reset() {
    http_fault(Fault::ResetMidBody, "reset");
}

// ---- WebSocket faults -----------------------------------------------------------

fn ws_fault(fault: Fault, kind: &str) {
    let server = FaultServer::start(fault);
    let out = run(
        r#"scenario "s" { ws "/ws" name="connect" { receive "frame" timeout="3s"; } }"#,
        &server.url(),
        &["-u", "2", "--iterations", "2"],
    );
    assert_eq!(server.connections(), 4, "{fault:?}");
    assert_eq!(server.requests(), 4, "{fault:?}: upgrades");
    let ua = format!("user-agent: loadplan/{}", env!("CARGO_PKG_VERSION"));
    assert!(server.heads()[0].contains(&ua), "{:?}", server.heads());
    let kinds = out.kinds();
    assert_eq!(
        kinds.get(kind),
        Some(&4),
        "{fault:?}: {}",
        out.json["errors"]
    );
    assert_eq!(kinds.len(), 1, "{fault:?}: {kinds:?}");
}

#[test]
fn an_abrupt_websocket_drop_is_ws_closed_1006() {
    ws_fault(Fault::WsDrop, "ws_closed");
}

#[test]
fn an_invalid_utf8_text_frame_is_ws_protocol() {
    ws_fault(Fault::WsInvalidUtf8, "ws_protocol");
}

#[test]
fn an_oversize_frame_is_ws_protocol() {
    ws_fault(Fault::WsOversize, "ws_protocol");
}

// ---- the generator's own machine ------------------------------------------------

#[test]
fn running_out_of_file_descriptors_is_local_and_warned_about() {
    let server = FaultServer::start(Fault::Ok);
    let out = run_with(
        r#"scenario "s" { http GET "/x"; sleep "300ms"; http GET "/x" }"#,
        &server.url(),
        &["-u", "150", "-r", "10000", "--iterations", "1"],
        Some(64),
    );
    assert!(out.stderr.contains("ulimit -n"), "{}", out.stderr);
    let kinds = out.kinds();
    assert!(kinds.get("local").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert!(!kinds.contains_key("connect"), "{kinds:?}");
    assert!(!kinds.contains_key("other"), "{kinds:?}");
}

// ---- fast-path fences (issue 15) ------------------------------------------------

#[test]
fn a_post_on_a_keep_alive_connection_closed_after_the_request_is_not_sent_twice() {
    let server = FaultServer::start(Fault::CloseAfterFirst);
    let out = run(
        r#"scenario "s" { http POST "/p" { json "{}"; } }"#,
        &server.url(),
        &["-u", "1", "--iterations", "2"],
    );
    // Iteration 1 is answered; iteration 2's POST reaches the server once and fails.
    assert_eq!(server.posts(), 2, "{:?}", server.heads());
    assert_eq!(out.aggregated("count"), 2);
    assert_eq!(out.kinds(), BTreeMap::from([("reset".to_string(), 1)]));
}

#[test]
fn an_idempotent_get_on_a_dead_keep_alive_connection_is_retried_fresh() {
    let server = FaultServer::start(Fault::CloseAfterFirst);
    let out = run(
        r#"scenario "s" { http GET "/g" }"#,
        &server.url(),
        &["-u", "1", "--iterations", "2"],
    );
    assert_eq!(server.requests(), 3, "{:?}", server.heads());
    assert_eq!(out.aggregated("count"), 2);
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
}

#[test]
fn credentials_are_not_sent_across_origins_on_a_redirect() {
    let first = FaultServer::start(Fault::Redirect);
    let second = FaultServer::start(Fault::Redirect);
    first.set_redirect_target(&second.url());
    let out = run(
        r#"plan "p" {
            cookies #false
            headers { Authorization "Bearer secret-token"; Cookie "plan=crumb"; }
        }
        scenario "s" { http GET "/start" { check body-contains="final"; } }"#,
        &first.url(),
        &["-u", "1", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
    let sent_first = first.heads().join("");
    assert!(sent_first.contains("secret-token"), "{sent_first}");
    let sent_second = second.heads().join("");
    assert_eq!(second.requests(), 1);
    assert!(!sent_second.contains("secret-token"), "{sent_second}");
    assert!(!sent_second.contains("plan=crumb"), "{sent_second}");
}

#[test]
fn credentials_stay_on_a_same_origin_redirect() {
    let server = FaultServer::start(Fault::Redirect);
    server.set_redirect_target(&server.url());
    let out = run(
        r#"plan "p" { headers { Authorization "Bearer secret-token"; } }
        scenario "s" { http GET "/start" { check body-contains="secret-token"; } }"#,
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
    assert_eq!(server.requests(), 2);
}

#[test]
fn a_redirect_to_https_is_not_followed_in_cleartext() {
    let first = FaultServer::start(Fault::Redirect);
    let second = FaultServer::start(Fault::Ok);
    first.set_redirect_target(&format!("https://{}", second.addr));
    let out = run(
        r#"plan "p" { timeout "3s"; }
        scenario "s" { http GET "/start" }"#,
        &first.url(),
        &["-u", "1", "--iterations", "1"],
    );
    // The hop went to the TLS client: the (plain) second server got a TLS ClientHello
    // and no HTTP request, and the step failed.
    assert_eq!(second.tls_hellos(), 1);
    assert_eq!(second.requests(), 0, "{:?}", second.heads());
    assert_eq!(out.aggregated("failures"), 1, "{}", out.json);
}

#[test]
fn a_default_user_agent_is_sent_and_the_plan_overrides_it() {
    let server = FaultServer::start(Fault::Ok);
    run(
        r#"scenario "s" { http GET "/default"; http GET "/custom" { headers { User-Agent "custom/1"; } } }"#,
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    let heads = server.heads();
    let ua = |h: &String| {
        h.lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("user-agent:"))
            .map(|l| l[11..].trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(heads.len(), 2);
    assert_eq!(
        ua(&heads[0]),
        vec![format!("loadplan/{}", env!("CARGO_PKG_VERSION"))]
    );
    assert_eq!(ua(&heads[1]), vec!["custom/1".to_string()]);
}

// ---- the general (reqwest) path: the same faults over TLS -----------------------

#[test]
fn over_tls_ten_users_with_200_mb_bodies_stay_under_200_mb_rss() {
    let server = FaultServer::start_tls(Fault::Body(200_000_000));
    let out = run(
        r#"plan "p" { timeout "80s"; }
        scenario "s" { http GET "/big" }"#,
        &server.https_url(),
        &["-u", "10", "--iterations", "1", "--insecure"],
    );
    assert_eq!(server.requests(), 10);
    assert_eq!(out.aggregated("failures"), 0, "{:?}", out.kinds());
    assert_eq!(out.aggregated("bytes_in"), 10 * 200_000_000);
    assert_peak_rss_under(&out, LIMIT_RSS_KIB);
}

#[test]
fn over_tls_an_endless_body_ends_by_the_request_timeout_counted_with_its_bytes() {
    let server = FaultServer::start_tls(Fault::Endless);
    let out = run(
        r#"plan "p" { timeout "2s"; max-body "1MiB"; }
        scenario "s" { http GET "/endless" { check body-contains="never"; } }"#,
        &server.https_url(),
        &["-u", "2", "--iterations", "1", "--insecure"],
    );
    assert_eq!(out.kinds(), BTreeMap::from([("timeout".to_string(), 2)]));
    assert!(out.aggregated("bytes_in") > 1_000_000, "{}", out.json);
    assert_peak_rss_under(&out, LIMIT_RSS_KIB);
}

#[test]
fn over_tls_a_body_over_max_body_fails_with_body() {
    let server = FaultServer::start_tls(Fault::Body(1_000_000));
    let out = run(
        r#"scenario "s" { http GET "/x" max-body="64KiB" { check body-contains="x"; } }"#,
        &server.https_url(),
        &["-u", "1", "--iterations", "2", "--insecure"],
    );
    assert_eq!(out.kinds(), BTreeMap::from([("body".to_string(), 2)]));
    assert_eq!(out.aggregated("bytes_in"), 2_000_000);
}

#[test]
fn over_tls_every_fault_has_the_same_kind_as_over_plain_http() {
    for (fault, kind) in [
        (Fault::Silent, "timeout"),
        (Fault::SlowDrip(Duration::from_millis(100)), "timeout"),
        (Fault::Garbage, "body"),
        (Fault::ResetBeforeResponse, "reset"),
        (Fault::ResetMidHeaders, "reset"),
        (Fault::ResetMidBody, "reset"),
    ] {
        let server = FaultServer::start_tls(fault);
        let out = run(
            r#"plan "p" { timeout "1s"; }
            scenario "s" { http GET "/x" }"#,
            &server.https_url(),
            &["-u", "2", "--iterations", "2", "--insecure"],
        );
        assert_eq!(out.aggregated("count"), 4, "{fault:?}");
        assert_eq!(
            out.kinds(),
            BTreeMap::from([(kind.to_string(), 4)]),
            "{fault:?}: {}",
            out.json["errors"]
        );
    }
}

#[test]
fn an_http_to_https_redirect_is_followed_over_tls_without_credentials() {
    let first = FaultServer::start(Fault::Redirect);
    let second = FaultServer::start_tls(Fault::Redirect);
    first.set_redirect_target(&second.https_url());
    let out = run(
        r#"plan "p" {
            cookies #false
            headers { Authorization "Bearer secret-token"; Cookie "plan=crumb"; }
        }
        scenario "s" { http GET "/start" { check body-contains="final"; } }"#,
        &first.url(),
        &["-u", "1", "--iterations", "1", "--insecure"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json);
    let sent_first = first.heads().join("");
    assert!(
        sent_first.contains("secret-token") && sent_first.contains("plan=crumb"),
        "{sent_first}"
    );
    assert_eq!(second.requests(), 1);
    let sent_second = second.heads().join("");
    assert!(sent_second.starts_with("GET /final "), "{sent_second}");
    assert!(!sent_second.contains("secret-token"), "{sent_second}");
    assert!(!sent_second.contains("plan=crumb"), "{sent_second}");
}

// ---- Phase timings ----------------------------------------------------------------

/// One phase's percentiles (ms) in a `phases` object.
fn phase_ms(phases: &serde_json::Value, phase: &str, stat: &str) -> f64 {
    phases[format!("{phase}_ms")][stat]
        .as_f64()
        .unwrap_or_else(|| panic!("{phase}_ms.{stat} in {phases}"))
}

/// `GET /metrics` from `addr` (HTTP/1.0, no client library): the body, if it answered.
fn scrape(addr: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

#[test]
fn phases_reach_prometheus_with_the_delayed_wait_and_one_connect() {
    let server = FaultServer::start(Fault::DelayedHead(Duration::from_millis(150)));
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let (url, metrics) = (server.url(), addr.clone());
    let run = std::thread::spawn(move || {
        let args = ["-u", "1", "--iterations", "4", "--metrics", &metrics];
        run(
            r#"scenario "s" { http GET "/a"; }"#,
            &url,
            &[&args[..], &["--metrics-linger", "5s"]].concat(),
        )
    });
    let base = "scenario=\"s\",step=\"/a\",method=\"GET\",protocol=\"http\"";
    let wait_count =
        format!("loadplan_request_phase_duration_seconds_count{{{base},phase=\"wait\"}} 4");
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        if let Some(t) = scrape(&addr).filter(|t| t.contains(&wait_count)) {
            break t;
        }
        assert!(Instant::now() < deadline, "no {wait_count} in time");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = run.join().expect("run");
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    let has = |line: &str| text.lines().any(|l| l == line);
    // Every wait is over the 150 ms delay (none in the 0.1 s bucket), each connect once.
    for line in [
        format!(
            "loadplan_request_phase_duration_seconds_bucket{{{base},phase=\"wait\",le=\"0.1\"}} 0"
        ),
        format!("loadplan_request_phase_duration_seconds_count{{{base},phase=\"connect\"}} 1"),
        format!("loadplan_request_phase_duration_seconds_count{{{base},phase=\"receive\"}} 4"),
        // 127.0.0.1 needs no lookup.
        format!("loadplan_request_phase_duration_seconds_count{{{base},phase=\"dns\"}} 0"),
    ] {
        assert!(has(&line), "{line}\n{text}");
    }
    assert_eq!(server.connections(), 1);
}

#[test]
fn the_waiting_phase_covers_a_delayed_response_head_and_connect_is_timed_once_per_connection() {
    const DELAY_MS: f64 = 150.0;
    for tls in [false, true] {
        let (server, url) = serve(Fault::DelayedHead(Duration::from_millis(150)), tls);
        // A host name (not an IP literal) so the lookup is a phase too.
        let url = url.replace("127.0.0.1", "localhost");
        let dir = tempfile::tempdir().expect("tempdir");
        let html = dir.path().join("report.html");
        let out = run(
            r#"scenario "s" { http GET "/a"; http GET "/b"; }"#,
            &url,
            &[
                "-u",
                "1",
                "--iterations",
                "3",
                "--insecure",
                "--html",
                html.to_str().expect("path"),
            ],
        );
        assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
        // One user, one keep-alive connection: opened (resolved, connected) once.
        assert_eq!(server.connections(), 1, "tls={tls}");
        let total = &out.json["totals"]["http"]["phases"];
        eprintln!("tls={tls}: phases {total}");
        assert_eq!(total["connections"], 1, "tls={tls}: {total}");
        assert_eq!(out.row("/a")["phases"]["connections"], 1, "{}", out.json);
        assert_eq!(out.row("/b")["phases"]["connections"], 0, "{}", out.json);
        assert!(out.row("/b")["phases"]["connect_ms"].is_null());
        assert!(phase_ms(total, "dns", "max") >= 0.0);
        // Every request waited at least the delay for its head, and the wait is most
        // of its service time.
        for name in ["/a", "/b"] {
            let row = out.row(name);
            let phases = &row["phases"];
            let wait_min = phase_ms(phases, "wait", "min");
            // (less one HDR bucket: 3 significant digits are 0.128 ms wide at 150 ms)
            assert!(
                wait_min >= DELAY_MS - 0.13,
                "tls={tls} {name}: wait {wait_min} ms"
            );
            let latency_min = row["latency_ms"]["min"].as_f64().expect("latency");
            assert!(wait_min <= latency_min + 1.0, "{phases} vs {latency_min}");
            assert!(phase_ms(phases, "receive", "max") < DELAY_MS, "{phases}");
        }
        let report = std::fs::read_to_string(&html).expect("html report");
        assert!(report.contains("Where the time went"), "tls={tls}");
    }
}

// ---- TLS and HTTP/2 --------------------------------------------------------------

/// Log in (a cookie and a captured token), then call `/me` with both: checks on what
/// the server saw pass.
const SESSION_PLAN: &str = r#"
    scenario "s" {
        http GET "/login" { check status=200; capture "token" json="$.token"; }
        http GET "/me" {
            headers { Authorization "Bearer {{ token }}"; }
            check json="$.cookie" equals="sid=s3cret"
            check json="$.auth" equals="Bearer t-42"
        }
    }"#;

#[test]
fn over_h2_and_tls_checks_cookies_and_captures_pass_and_the_server_sees_http2() {
    for (http2, version) in [("#true", "HTTP/2.0"), ("#false", "HTTP/1.1")] {
        let server = FaultServer::start_h2();
        let plan = format!("plan \"p\" {{ http2 {http2}; }}\n{SESSION_PLAN}");
        let out = run(
            &plan,
            &server.https_url(),
            &["-u", "2", "--iterations", "2", "--insecure"],
        );
        assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
        assert_eq!(out.row("/me")["checks_passed"], 8, "{}", out.json);
        let heads = server.heads();
        assert_eq!(heads.len(), 8, "{heads:?}");
        assert!(
            heads.iter().all(|h| h.starts_with(&format!("{version} "))),
            "http2 {http2}: {heads:?}"
        );
        // Over HTTP/2 too, the TLS connect and the wait are timed.
        let phases = &out.json["totals"]["http"]["phases"];
        assert_eq!(phases["connections"], 2, "{phases}");
        assert!(phase_ms(phases, "wait", "max") > 0.0, "{phases}");
    }
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_unless_insecure() {
    let server = FaultServer::start_h2();
    let plan = r#"scenario "s" { http GET "/login" { check status=200; } }"#;
    let out = run(plan, &server.https_url(), &["-u", "1", "--iterations", "2"]);
    assert_eq!(out.kinds(), BTreeMap::from([("tls".to_string(), 2)]));
    // The handshake failed: nothing reached the server.
    assert_eq!(server.requests(), 0);
    let out = run(
        plan,
        &server.https_url(),
        &["-u", "1", "--iterations", "2", "--insecure"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    assert_eq!(server.requests(), 2);
}

// ---- Compression ----------------------------------------------------------------

/// Every coding (and a stack of two) checked by JSON on `url`'s server: `Accept-Encoding`
/// offered, bodies decoded, `bytes_in` the (smaller) wire bytes.
fn compressed_bodies_pass_json_checks(url: &str, server: &FaultServer, args: &[&str]) {
    let names = ["gzip", "deflate", "raw-deflate", "br", "zstd", "gzip,br"];
    let steps: String = names
        .iter()
        .map(|n| {
            format!(
                r#"http GET "/{n}" {{ check json="$.coding" equals="{n}"; check json="$.ok" equals=#true; capture "c" json="$.coding"; }}
            "#
            )
        })
        .collect();
    let out = run(
        &format!(r#"scenario "s" {{ {steps} }}"#),
        url,
        &[&["-u", "1", "--iterations", "2"][..], args].concat(),
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    for n in names {
        let row = out.row(&format!("/{n}"));
        assert_eq!(row["count"], 2, "{n}");
        assert_eq!(row["checks_passed"], 4, "{n}");
        // The wire bytes, not the 4 KiB decoded.
        let wire = row["bytes_in"].as_u64().expect("bytes_in");
        assert!(wire > 0 && wire < 2 * 1000, "{n}: {wire}");
        // Both counted: the decoded bodies are larger than the wire ones.
        let decoded = row["bytes_decoded"].as_u64().expect("bytes_decoded");
        assert!(decoded > wire, "{n}: decoded {decoded} <= wire {wire}");
    }
    let heads = server.heads();
    assert!(
        heads.iter().all(|h| h
            .to_ascii_lowercase()
            .contains("accept-encoding: gzip, deflate, br, zstd")),
        "{heads:?}"
    );
}

#[test]
fn gzip_deflate_br_and_zstd_bodies_are_decoded_before_checks() {
    let server = FaultServer::start(Fault::Compressed);
    compressed_bodies_pass_json_checks(&server.url(), &server, &[]);
}

#[test]
fn over_tls_gzip_deflate_br_and_zstd_bodies_are_decoded_before_checks() {
    let server = FaultServer::start_tls(Fault::Compressed);
    compressed_bodies_pass_json_checks(&server.https_url(), &server, &["--insecure"]);
}

/// A server for `fault`, over TLS or not, and its base URL.
fn serve(fault: Fault, tls: bool) -> (FaultServer, String) {
    if tls {
        let server = FaultServer::start_tls(fault);
        let url = server.https_url();
        (server, url)
    } else {
        let server = FaultServer::start(fault);
        let url = server.url();
        (server, url)
    }
}

#[test]
fn a_decompression_bomb_keeps_at_most_max_body_and_fails_with_body() {
    for tls in [false, true] {
        let (_server, url) = serve(Fault::Compressed, tls);
        let out = run(
            r#"plan "p" { max-body "1MiB"; }
            scenario "s" { http GET "/bomb" { check body-contains=" "; } }"#,
            &url,
            &["-u", "2", "--iterations", "2", "--insecure"],
        );
        assert_eq!(
            out.kinds(),
            BTreeMap::from([("body".to_string(), 4)]),
            "{}",
            out.json
        );
        let msg = out.json["errors"][0]["message"].as_str().expect("message");
        assert!(msg.contains("gzip") && msg.contains("max-body"), "{msg}");
        // The wire body (~64 KiB) is counted, not the 64 MiB it inflates to.
        let wire = out.aggregated("bytes_in");
        assert!(wire > 4 * 1024 && wire < 4 * (1 << 20), "{wire}");
        assert_peak_rss_under(&out, LIMIT_RSS_KIB);
    }
}

#[test]
fn with_compression_off_nothing_is_offered_and_a_failing_check_says_the_body_is_encoded() {
    let server = FaultServer::start(Fault::Compressed);
    let out = run(
        r#"plan "p" { compression #false; }
        scenario "s" {
            http GET "/gzip" { check json="$.ok" equals=#true; }
            http GET "/br" compression="gzip" { check json="$.ok" equals=#true; }
            http GET "/zstd" compression="zstd" { check json="$.ok" equals=#true; }
        }"#,
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    assert_eq!(out.row("/zstd")["failures"], 0, "{}", out.json["errors"]);
    assert_eq!(out.kinds(), BTreeMap::from([("check".to_string(), 2)]));
    for e in out.json["errors"].as_array().expect("errors") {
        let msg = e["message"].as_str().expect("message");
        assert!(msg.contains("-encoded"), "{msg}");
    }
    let heads = server.heads();
    assert!(
        !heads[0].to_ascii_lowercase().contains("accept-encoding"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains("accept-encoding: gzip\r\n"),
        "{}",
        heads[1]
    );
}

// ---- Server-sent events -----------------------------------------------------------

#[test]
fn server_sent_events_are_counted_exactly_with_their_timings() {
    for tls in [false, true] {
        let (server, url) = serve(Fault::Sse, tls);
        let out = run(
            r#"scenario "s" {
                http GET "/events" name="stream" {
                    check status=200
                    events "ticks" count=4 timeout="10s" type="tick" match="$.n" {
                        check body-regex="^\\{\"n\":[0-9]+\\}$"
                        capture "last" json="$.n"
                    }
                }
                http GET "/after/{{ last }}"
            }"#,
            &url,
            &["-u", "2", "--iterations", "3", "--insecure"],
        );
        assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
        // 2 users x 3 iterations = 6 streams, 4 events each: exactly 24.
        let ticks = out.row("ticks");
        assert_eq!(ticks["kind"], "event");
        assert_eq!(ticks["count"], 24, "{ticks}");
        assert_eq!(ticks["checks_passed"], 24);
        assert_eq!(ticks["has_checks"], true);
        assert_eq!(out.row("stream")["count"], 6);
        let ttfe = out.json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["kind"] == "first-event")
            .expect("a first-event row");
        assert_eq!(ttfe["count"], 6);
        // The server waits SSE_EVERY before each event: no event can be seen sooner.
        let every = common::fault_server::SSE_EVERY.as_secs_f64() * 1000.0;
        let ttfe_min = ttfe["latency_ms"]["min"].as_f64().expect("ttfe min");
        assert!(ttfe_min >= every * 0.9, "time to first event {ttfe_min} ms");
        let gaps = &ticks["interarrival_ms"];
        let gap_min = gaps["min"].as_f64().expect("gap min");
        let gap_mean = gaps["mean"].as_f64().expect("gap mean");
        assert!(gap_min > 0.0 && gap_mean >= every * 0.9, "{gaps}");
        // reply_ms: from the request's start; the 4th event comes ≥ 4 intervals in.
        let reply_max = ticks["reply_ms"]["max"].as_f64().expect("reply max");
        assert!(reply_max >= 4.0 * every * 0.9, "{reply_max}");
        // The last captured event was the 4th.
        let heads = server.heads();
        assert_eq!(
            heads
                .iter()
                .filter(|h| h.starts_with("GET /after/4 "))
                .count(),
            6,
            "{heads:?}"
        );
        assert!(
            heads
                .iter()
                .any(|h| h.to_ascii_lowercase().contains("accept: text/event-stream"))
        );
    }
}

#[test]
fn a_response_that_is_not_an_event_stream_fails_with_body() {
    let server = FaultServer::start(Fault::Sse);
    let out = run(
        r#"scenario "s" { http GET "/plain" { events "e" timeout="2s"; } }"#,
        &server.url(),
        &["-u", "1", "--iterations", "2"],
    );
    assert_eq!(
        out.kinds(),
        BTreeMap::from([("body".to_string(), 2)]),
        "{}",
        out.json
    );
    let msg = out.json["errors"][0]["message"].as_str().expect("message");
    assert!(msg.contains("text/event-stream"), "{msg}");
}

#[test]
fn too_few_events_in_time_fail_with_timeout_and_unmatched_events_are_counted() {
    let server = FaultServer::start(Fault::Sse);
    let out = run(
        r#"scenario "s" {
            http GET "/events" { events "slow" count=100 timeout="300ms"; }
            http GET "/events" name="picky" { events "odd" count=1 timeout="5s" match="$.n" equals=2; }
        }"#,
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    let kinds = out.kinds();
    assert_eq!(kinds.get("timeout"), Some(&1), "{}", out.json["errors"]);
    // Event 1 does not match `$.n = 2`; event 2 does.
    assert_eq!(kinds.get("unmatched"), Some(&1), "{}", out.json["errors"]);
    assert_eq!(out.row("odd")["count"], 2);
}

// ---- Uploads ----------------------------------------------------------------------

/// A sparse file of `size` bytes (zeros, no disk used) in a fresh temporary folder, kept
/// while the returned folder lives.
fn sparse_file(size: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(size).expect("a sparse file");
    (dir, path)
}

#[test]
fn a_50_mb_file_body_sent_by_20_users_reaches_the_server_whole_in_bounded_memory() {
    const SIZE: u64 = 50 << 20;
    let (_dir, path) = sparse_file(SIZE);
    let server = FaultServer::start(Fault::Ok);
    let out = run(
        &format!(
            r#"scenario "s" {{ http POST "/upload" {{ body file="{}" content-type="application/x-test"; check status=200; }} }}"#,
            path.display()
        ),
        &server.url(),
        &["-u", "20", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    assert_eq!(server.posts(), 20);
    assert_eq!(server.body_bytes(), 20 * SIZE);
    assert_eq!(out.aggregated("bytes_out"), 20 * SIZE);
    let heads = server.heads();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("content-type: application/x-test"),
        "{}",
        heads[0]
    );
    eprintln!("20 x 50 MiB upload: peak RSS {} KiB", out.peak_rss_kib);
    assert_peak_rss_under(&out, 100 * 1024);
}

#[test]
fn a_50_mb_multipart_upload_by_20_users_reaches_the_server_whole_in_bounded_memory() {
    const SIZE: u64 = 50 << 20;
    let (_dir, path) = sparse_file(SIZE);
    let server = FaultServer::start(Fault::Ok);
    let out = run(
        &format!(
            r#"scenario "s" {{
                http POST "/upload" {{
                    multipart {{
                        field "user" "u-{{{{ 1 + 1 }}}}"
                        file "data" path="{}" content-type="application/x-test"
                    }}
                    check status=200
                }}
            }}"#,
            path.display()
        ),
        &server.url(),
        &["-u", "20", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    assert_eq!(server.posts(), 20);
    let sent = out.aggregated("bytes_out");
    // Every part's bytes, plus boundaries and part headers.
    assert!(sent > 20 * SIZE && sent < 20 * (SIZE + 1024), "{sent}");
    assert_eq!(server.body_bytes(), sent);
    let head = server.heads()[0].to_ascii_lowercase();
    assert!(
        head.contains("content-type: multipart/form-data; boundary="),
        "{head}"
    );
    eprintln!("20 x 50 MiB multipart: peak RSS {} KiB", out.peak_rss_kib);
    assert_peak_rss_under(&out, 100 * 1024);
}

#[test]
fn multipart_fields_are_rendered_and_files_sent_with_their_names_and_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("note.txt");
    std::fs::write(&path, "file-content-42").expect("write");
    let server = FaultServer::start(Fault::Ok);
    let out = run(
        &format!(
            r#"scenario "s" {{
                http POST "/upload" {{
                    multipart {{
                        field "user" "u-{{{{ 20 + 22 }}}}"
                        field "user" "again"
                        file "doc" path="{}" content-type="text/x-note" filename="n.txt"
                    }}
                }}
            }}"#,
            path.display()
        ),
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    let body = String::from_utf8_lossy(&server.bodies()[0]).to_ascii_lowercase();
    for want in [
        "name=\"user\"\r\n\r\nu-42\r\n",
        "name=\"user\"\r\n\r\nagain\r\n",
        "name=\"doc\"; filename=\"n.txt\"",
        "content-type: text/x-note\r\n\r\nfile-content-42\r\n",
    ] {
        assert!(body.contains(want), "{want:?} not in {body}");
    }
    assert_eq!(out.aggregated("bytes_out"), server.body_bytes());
}

#[test]
fn repeated_keys_in_forms_and_multipart_all_reach_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("part.txt");
    std::fs::write(&path, "part-body").expect("write");
    let server = FaultServer::start(Fault::Ok);
    let out = run(
        &format!(
            r#"scenario "s" {{
                http POST "/form" {{ form {{ tag "a"; tag "b"; tag "c"; one "1"; }} }}
                http POST "/multipart" {{
                    multipart {{
                        field "tag" "a"
                        field "tag" "b"
                        field "tag" "c"
                        file "f" path="{p}" filename="one.txt"
                        file "f" path="{p}" filename="two.txt"
                    }}
                }}
            }}"#,
            p = path.display()
        ),
        &server.url(),
        &["-u", "1", "--iterations", "1"],
    );
    assert_eq!(out.aggregated("failures"), 0, "{}", out.json["errors"]);
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&bodies[0]),
        "tag=a&tag=b&tag=c&one=1"
    );
    let multipart = String::from_utf8_lossy(&bodies[1]);
    assert_eq!(multipart.matches("name=\"tag\"").count(), 3, "{multipart}");
    assert_eq!(multipart.matches("name=\"f\"").count(), 2, "{multipart}");
    for want in [
        "\r\n\r\na\r\n",
        "\r\n\r\nb\r\n",
        "\r\n\r\nc\r\n",
        "one.txt",
        "two.txt",
    ] {
        assert!(multipart.contains(want), "{want:?} not in {multipart}");
    }
    assert_eq!(multipart.matches("part-body").count(), 2, "{multipart}");
}
