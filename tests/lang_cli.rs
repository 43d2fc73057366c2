//! The front end's command line: `--help`, `check`, `graph`, `schema`, exit codes.
//! (Exit codes: 0 ok, 2 plan or usage error.)

use assert_cmd::Command;

fn loadplan() -> Command {
    Command::cargo_bin("loadplan").expect("the loadplan binary")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let out = loadplan().arg("--help").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for sub in ["check", "graph", "schema"] {
        assert!(text.contains(sub), "--help does not mention {sub}:\n{text}");
    }
}

#[test]
fn check_accepts_a_valid_plan_with_a_summary_line() {
    let out = loadplan()
        .args(["check", "plans/mixed.kdl"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("ok: plans/mixed.kdl — plan `durable-code`: 2 scenarios"),
        "{text}"
    );
    assert!(
        text.contains("http (weight 80), websocket (weight 20)"),
        "{text}"
    );
}

#[test]
fn check_with_a_profile_names_it() {
    let out = loadplan()
        .args(["check", "plans/mixed.yaml", "--profile", "stress"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("profile `stress`"));
    assert!(!stderr(&out).contains("note:"));
}

#[test]
fn check_notes_a_profile_weight_for_a_scenario_the_plan_lacks() {
    let out = loadplan()
        .args(["check", "plans/http.kdl", "--profile", "smoke"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "note: profile `smoke` weights scenario `websocket`, which this plan does not have; that weight is ignored"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_rejects_a_misspelt_profile_weight() {
    let out = loadplan()
        .args([
            "check",
            "plans/mixed.kdl",
            "--profile",
            "tests/invalid/profiles/unknown-scenario.yml",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("profile::unknown-scenario"), "{err}");
    assert!(
        err.contains("tests/invalid/profiles/unknown-scenario.yml:5:3"),
        "{err}"
    );
    assert!(err.contains("did you mean `websocket`?"), "{err}");
}

#[test]
fn check_reports_an_invalid_plan_with_location_and_exit_2() {
    let out = loadplan()
        .args(["check", "tests/invalid/unknown-node.kdl"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("plan::unknown-node"), "{err}");
    assert!(err.contains("tests/invalid/unknown-node.kdl:2:5"), "{err}");
    assert!(err.contains("did you mean `http`?"), "{err}");
    assert!(err.contains("error: 1 problem found"), "{err}");
}

#[test]
fn check_reports_every_mistake_at_once() {
    let out = loadplan()
        .args(["check", "tests/invalid/many-mistakes.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("error: 8 problems found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_of_a_missing_file_is_a_usage_error() {
    let out = loadplan()
        .args(["check", "plans/no-such-plan.kdl"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("io::read"), "{}", stderr(&out));
}

#[test]
fn graph_prints_text_dot_and_json() {
    let text = loadplan()
        .args(["graph", "plans/mixed.kdl", "--format", "text"])
        .output()
        .expect("runs");
    assert_eq!(text.status.code(), Some(0));
    let t = stdout(&text);
    assert!(
        t.starts_with("plan \"durable-code\" host=http://localhost:8000"),
        "{t}"
    );
    assert!(t.contains("scenario \"websocket\" weight=20"), "{t}");

    let dot = loadplan()
        .args(["graph", "plans/mixed.kdl", "--format", "dot"])
        .output()
        .expect("runs");
    assert_eq!(dot.status.code(), Some(0));
    let d = stdout(&dot);
    assert!(
        d.starts_with("digraph plan {") && d.trim_end().ends_with('}'),
        "{d}"
    );

    let json = loadplan()
        .args(["graph", "plans/mixed.yaml", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("valid JSON");
    assert_eq!(v["name"], "durable-code");
    assert_eq!(v["scenarios"].as_array().map(Vec::len), Some(2));
}

#[test]
fn graph_of_an_invalid_plan_exits_2() {
    let out = loadplan()
        .args(["graph", "tests/invalid/syntax.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tests/invalid/syntax.yaml:5:6"));
}

#[test]
fn schema_prints_the_checked_in_schemas() {
    for (which, file) in [
        ("plan", "grammar/plan.schema.json"),
        ("profile", "grammar/profile.schema.json"),
    ] {
        let out = loadplan().args(["schema", which]).output().expect("runs");
        assert_eq!(out.status.code(), Some(0));
        let expected = std::fs::read_to_string(file).expect("checked in");
        assert_eq!(
            stdout(&out),
            expected,
            "`schema {which}` differs from {file}"
        );
    }
}

#[test]
fn unknown_flags_and_subcommands_are_usage_errors() {
    let out = loadplan()
        .args(["check", "plans/mixed.kdl", "--no-such-flag"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--no-such-flag"));
    let out = loadplan().arg("chekc").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = loadplan().args(["schema", "plans"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
