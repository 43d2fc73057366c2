//! The `run` command as a process: Ctrl-C (SIGINT) still produces the summary and an
//! exit code; usage errors exit 2.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
}

#[test]
fn sigint_stops_the_run_and_still_prints_the_summary() {
    let mut child = bin()
        .args(["run", "plans/http.kdl", "--demo", "-u", "2", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadplan");
    // Wait until the run has started (the demo target announces itself), then interrupt.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("demo target listening"));
    assert!(started, "loadplan did not start");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let code = child.wait().expect("wait").code();
    // 4: interrupted with nothing failed; 1: something failed in what ran.
    assert!(
        matches!(code, Some(4) | Some(1)),
        "exit code {code:?}\n{out}"
    );
    assert!(
        out.contains("Aggregated") || out.contains("Requests over"),
        "{out}"
    );
    assert!(out.contains("run interrupted"), "{out}");
}

#[test]
fn bad_flags_and_plans_exit_2() {
    let out = bin()
        .args(["run", "plans/http.kdl", "--users", "many"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["run", "does/not/exist.kdl"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["run", "plans/http.kdl", "--profile", "nosuch"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_short_demo_run_ends_with_the_summary_table() {
    let out = bin()
        .args([
            "run",
            "plans/http.kdl",
            "--demo",
            "-u",
            "3",
            "--iterations",
            "2",
            "--seed",
            "3",
            "--quiet",
        ])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Aggregated"), "{stdout}");
    assert!(stdout.contains("result: PASSED"), "{stdout}");
}
