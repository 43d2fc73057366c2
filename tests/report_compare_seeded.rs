//! Two identical seeded runs compare clean: `loadplan compare` must not flag a regression on
//! steps with a handful of samples (the demo's `/api/delay/fast` sleeps a random 50–100 ms, so
//! a 5-sample p95 moves by tens of percent between identical runs), nor on a 12-sample median
//! that moves inside its confidence interval. Those rows are marked `few samples` instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const PLAN: &str = r#"
plan "compare-seeded"
scenario "s" {
    http GET "/api/delay/fast" name="a"
    http GET "/api/delay/fast" name="b"
    http GET "/api/delay/fast" name="c"
    repeat count=3 {
        http GET "/api/delay/fast" name="many"
    }
}
"#;

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
}

fn run(dir: &Path, name: &str) -> PathBuf {
    let plan = dir.join("plan.kdl");
    std::fs::write(&plan, PLAN).expect("plan");
    let json = dir.join(name);
    let out = bin()
        .arg("run")
        .arg(&plan)
        .args([
            "--demo",
            "-u",
            "1",
            "--iterations",
            "5",
            "--seed",
            "9",
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
    json
}

#[test]
fn identical_seeded_runs_never_show_a_regression() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = run(dir.path(), "base.json");
    let cur = run(dir.path(), "cur.json");
    for (a, b) in [(&base, &cur), (&cur, &base)] {
        let out = bin()
            .arg("compare")
            .arg(a)
            .arg(b)
            .output()
            .expect("compare");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(!stdout.contains("REGRESSION"), "{stdout}");
        // Five samples per run: shown, marked, never judged.
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("GET a ") && l.ends_with("few samples")),
            "{stdout}"
        );
    }
}
