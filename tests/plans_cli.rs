//! Issue 14 on the command line: presets for any plan, did-you-mean for profile and
//! `--set` names, `run --trace`. Traffic goes only to the built-in demo target on a
//! free loopback port (`--demo`).

use assert_cmd::Command;

fn loadplan() -> Command {
    Command::cargo_bin("loadplan").expect("the loadplan binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A plan of one's own, with scenario names no preset knows.
fn shop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("shop.kdl"),
        r#"vars { token "t0k3n-value" }
secrets { password "hunter2-secret" }
scenario "browse" weight=3 {
    http GET "/health" {
        headers { Authorization "Bearer {{ token }}"; }
        check status=200
        capture "status" json="$.status"
    }
    log "logged in as alice with {{ password }}, status {{ status }}"
    if "status == 'healthy'" {
        http GET "/" { check status=200; }
    }
}
scenario "buy" { http GET "/health"; }
"#,
    )
    .expect("write");
    dir
}

#[test]
fn a_preset_applies_to_a_plan_with_any_scenario_names() {
    let dir = shop();
    let plan = dir.path().join("shop.kdl");
    for preset in ["smoke", "load", "stress", "soak"] {
        let out = loadplan()
            .args(["check", plan.to_str().expect("utf-8"), "--profile", preset])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{preset}: {}",
            text(&out.stderr)
        );
    }
    // And the run itself (cut to one second against the demo target).
    let out = loadplan()
        .args([
            "run",
            plan.to_str().expect("utf-8"),
            "--profile",
            "smoke",
            "--demo",
        ])
        .args(["-t", "1s", "--quiet"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_misspelt_profile_name_gets_a_suggestion() {
    for cmd in ["check", "run"] {
        let out = loadplan()
            .args([cmd, "plans/http.kdl", "--profile", "smok"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("did you mean `smoke`?"),
            "{cmd}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn an_unknown_set_name_is_an_error_with_a_suggestion() {
    let dir = shop();
    let plan = dir.path().join("shop.kdl");
    let out = loadplan()
        .args([
            "run",
            plan.to_str().expect("utf-8"),
            "--demo",
            "--iterations",
            "1",
        ])
        .args(["--set", "tokne=1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("did you mean `token`?"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn trace_shows_one_users_conversation_with_secrets_hidden() {
    let dir = shop();
    let plan = dir.path().join("shop.kdl");
    let out = loadplan()
        .args(["run", plan.to_str().expect("utf-8"), "--demo", "--trace"])
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for want in [
        "═══ scenario `browse`",
        "═══ scenario `buy`",
        "→ GET http://127.0.0.1:",
        "authorization: ***",
        "← 200",
        "check {\"status\":200}: pass",
        "capture status = \"healthy\"",
        "✎ logged in as alice with ***, status healthy",
        "◇ if status == 'healthy': true → then",
        "every step passed",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
    }
    for secret in ["t0k3n-value", "hunter2-secret"] {
        assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
    }
}

#[test]
fn trace_of_the_mixed_plan_shows_websocket_frames() {
    let out = loadplan()
        .args([
            "run",
            "plans/mixed.kdl",
            "--demo",
            "--trace",
            "--scenario",
            "websocket",
        ])
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for want in [
        "⇄ connected",
        "⇢ send start: {\"command\": \"start\"",
        "⇠ receive_frame: {",
        "⇢ send stop",
        "⇥ close disconnect: code 1000",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
    }
}

#[test]
fn graph_dot_draws_every_step_branch_and_edge() {
    let out = loadplan()
        .args(["graph", "plans/mixed.kdl", "--format", "dot"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let d = text(&out.stdout);
    // The 12 requests of the `pick`, each on an edge labelled with its weight.
    assert_eq!(
        d.matches("label=\"[GET ").count() + d.matches("label=\"[POST ").count(),
        12,
        "{d}"
    );
    assert!(d.contains("pick one of 12"), "{d}");
    assert!(d.contains("[label=\"weight 3\"]"), "{d}");
    // Every WebSocket step.
    for want in [
        "send [send start]",
        "receive [receive receive_frame] count=5",
        "send [send configure]",
        "send [send stop]",
        "close [close disconnect] code=1000",
    ] {
        assert!(d.contains(want), "no {want:?} in:\n{d}");
    }
    let nodes = d.matches(" [label=").count() - d.matches("-> n").count();
    let edges = d.matches("-> n").count();
    assert!(edges >= nodes, "{nodes} nodes, {edges} edges:\n{d}");
}

#[test]
fn http_debug_logs_every_users_requests_to_a_file() {
    let dir = shop();
    let plan = dir.path().join("shop.kdl");
    let log = dir.path().join("http.log");
    let out = loadplan()
        .args(["run", plan.to_str().expect("utf-8"), "--demo", "--quiet"])
        .args(["-u", "2", "--iterations", "1", "--http-debug"])
        .args(["--http-debug-file", log.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logged = std::fs::read_to_string(&log).expect("the log is written");
    // Weights 3:1 give both users `browse`: two requests each.
    assert_eq!(
        logged.matches("→ GET http://127.0.0.1:").count(),
        4,
        "{logged}"
    );
    assert!(
        logged.contains("(user 0, iteration 0)") && logged.contains("(user 1, iteration 0)"),
        "{logged}"
    );
    assert!(logged.contains("authorization: ***"), "{logged}");
    assert!(
        !logged.contains("t0k3n-value") && !logged.contains("hunter2-secret"),
        "{logged}"
    );
}

#[test]
fn thresholds_written_in_the_plan_decide_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("t.kdl");
    std::fs::write(
        &plan,
        r#"threshold "error_rate" max="0%"
scenario "s" {
    http GET "/health" { threshold "error_rate" max="0%"; }
    http GET "/no-such-page" name="missing"
}
"#,
    )
    .expect("write");
    let out = loadplan()
        .args([
            "run",
            plan.to_str().expect("utf-8"),
            "--demo",
            "--iterations",
            "1",
        ])
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("FAIL error_rate <= 0%"), "{stdout}");
    assert!(
        stdout.contains("PASS error_rate[GET /health] <= 0%"),
        "{stdout}"
    );
}
