//! Threshold verdicts as a process: a run whose rules hold exits 0; a rule with
//! `abort_on_fail` stops a long run at the first tick where it fails, exits 1 and says which
//! rule did it (the violated-rule exit code itself is covered in `report_files`).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = r#"
plan "gate"
scenario "s" {
    http GET "/health" { check status=200; }
    http GET "/no/such/page" name="missing"
}
"#;

fn run(profile: &str, extra: &[&str], limit: Duration) -> (Output, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("plan.kdl");
    let prof = dir.path().join("p.yml");
    std::fs::write(&plan, PLAN).expect("plan");
    std::fs::write(&prof, profile).expect("profile");
    let started = Instant::now();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
        .arg("run")
        .arg(&plan)
        .args(["--profile", &prof.display().to_string()])
        .args(["--demo", "--seed", "2", "--quiet"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    // Bounded: a run that does not stop by itself is killed (through its own handle, so
    // no other process can be hit) and the assertions below fail.
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut buf).ok();
            }
            buf
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    };
    (out, started.elapsed())
}

#[test]
fn a_run_whose_thresholds_hold_exits_0() {
    let profile = "name: ok\nusers: 2\nspawn_rate: 2\nthresholds:\n  - metric: error_rate\n    step: GET /health\n    max: 1%\n  - metric: p99\n    step: GET /health\n    max: 10s\n";
    let (out, _) = run(profile, &["--iterations", "2"], Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("PASS error_rate[GET /health] <= 1%"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS p99[GET /health] <= 10s"), "{stdout}");
    assert!(stdout.contains("result: PASSED"), "{stdout}");
}

#[test]
fn abort_on_fail_stops_the_run_at_the_first_failing_tick() {
    let profile = "name: abort\nusers: 2\nspawn_rate: 2\nduration: 60s\nthresholds:\n  - metric: error_rate\n    step: GET missing\n    max: 1%\n    abort_on_fail: true\n";
    let (out, took) = run(profile, &[], Duration::from_secs(50));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(30),
        "the 60 s run was not aborted ({took:?})"
    );
    assert!(
        stdout.contains("run aborted by threshold: FAIL error_rate[GET missing] <= 1%"),
        "{stdout}"
    );
    assert!(stdout.contains("limit <= 1.00%"), "{stdout}");
    assert!(stdout.contains("aborted by a threshold"), "{stdout}");
    assert!(stderr.contains("aborting: threshold failed"), "{stderr}");
}

#[test]
fn ctrl_c_still_writes_the_result_files() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("plan.kdl");
    std::fs::write(&plan, PLAN).expect("plan");
    let json = dir.path().join("result.json");
    let csv = dir.path().join("run");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
        .arg("run")
        .arg(&plan)
        .args(["--demo", "-u", "2", "-t", "120s", "--seed", "3"])
        .arg("--json")
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    let stderr = child.stderr.take().expect("stderr");
    // Kept open until the end: the child writes to stderr after the interrupt.
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("demo target listening"));
    assert!(started, "loadplan did not start");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run interrupted"), "{stdout}");
    let report = loadplan::report::read_json(&json).expect("the JSON result was written");
    assert!(report.interrupted);
    for suffix in ["_stats.csv", "_stats_history.csv", "_failures.csv"] {
        let path = dir.path().join(format!("run{suffix}"));
        assert!(path.is_file(), "{} missing", path.display());
    }
}
