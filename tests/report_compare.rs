//! `loadplan compare` on real `run --json` results: a run compared with itself passes, the same
//! run with an injected latency regression fails (exit 1) and names the regressed numbers, and
//! unreadable input is a usage error (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PLAN: &str = r#"
plan "compare-test"
scenario "s" {
    http GET "/health"
    http GET "/api/oscilloscope/config"
}
"#;

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
}

/// One baseline result, shared by the tests of this file.
fn baseline() -> &'static (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = dir.path().join("plan.kdl");
        std::fs::write(&plan, PLAN).expect("plan");
        let json = dir.path().join("base.json");
        let out = bin()
            .arg("run")
            .arg(&plan)
            .args([
                "--demo",
                "-u",
                "2",
                "--iterations",
                "5",
                "--seed",
                "4",
                "--quiet",
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        (dir, json)
    })
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("compare")
        .arg(a)
        .arg(b)
        .args(extra)
        .output()
        .expect("compare")
}

#[test]
fn an_equal_run_passes() {
    let (_, base) = baseline();
    let out = compare(base, base, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    assert!(stdout.contains("GET /health"), "{stdout}");
    assert!(
        stdout.contains("result: no regression beyond 10% tolerance"),
        "{stdout}"
    );
}

#[test]
fn an_injected_latency_regression_is_flagged() {
    let (dir, base) = baseline();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base).expect("read")).expect("json");
    // /health gets 3× slower plus 20 ms: beyond both the 10 % tolerance and the 1 ms floor.
    let steps = v["steps"].as_array_mut().expect("steps");
    let health = steps
        .iter_mut()
        .find(|s| s["name"] == "/health")
        .expect("health row");
    for q in ["p50", "p95", "p99"] {
        let old = health["latency_ms"][q].as_f64().expect("number");
        health["latency_ms"][q] = serde_json::json!(old * 3.0 + 20.0);
    }
    let current = dir.path().join("slower.json");
    std::fs::write(&current, serde_json::to_string(&v).expect("ser")).expect("write");

    let out = compare(base, &current, &["--tolerance", "10%"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let flagged: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("REGRESSION"))
        .collect();
    assert_eq!(flagged.len(), 3, "{stdout}");
    assert!(
        flagged.iter().all(|l| l.starts_with("GET /health")),
        "{stdout}"
    );
    assert!(
        stdout.contains("result: 3 regressions beyond 10% tolerance"),
        "{stdout}"
    );

    // A tolerance wider than the change lets it pass.
    let out = compare(base, &current, &["--tolerance", "100000%"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unreadable_input_exits_2() {
    let (dir, base) = baseline();
    let missing = dir.path().join("missing.json");
    assert_eq!(compare(base, &missing, &[]).status.code(), Some(2));
    let not_result = dir.path().join("other.json");
    std::fs::write(&not_result, "{\"hello\": 1}").expect("write");
    let out = compare(&not_result, base, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loadplan result"));
    assert_eq!(
        compare(base, base, &["--tolerance", "lots"]).status.code(),
        Some(2)
    );
}
