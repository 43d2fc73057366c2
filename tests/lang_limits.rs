//! Input limits of the front end: the plan size limit (8 MiB, `io::read`), long flat YAML
//! plans (the YAML reader limits nesting depth, not the number of items), and diagnostics
//! that stay small and printable whatever the file holds (a multi-megabyte line is shown
//! as a window around the span; control bytes are shown as visible characters).

use std::path::Path;

use loadplan::diag::{Code, MAX_SNIPPET_COLS};
use loadplan::lang;
use loadplan::source::MAX_SOURCE_BYTES;

fn check_cli(path: &Path) -> (Option<i32>, Vec<u8>) {
    let out = assert_cmd::Command::cargo_bin("loadplan")
        .expect("binary")
        .args(["check", path.to_str().expect("utf-8 path")])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (out.status.code(), out.stderr)
}

/// Bytes a terminal would act on: C0 controls but newline, DEL, and C1 controls.
fn terminal_controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .filter(|&c| (c < ' ' && c != '\n') || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c))
        .map(|c| format!("{c:?}"))
        .collect()
}

#[test]
fn a_plan_over_the_size_limit_is_an_io_diagnostic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("huge.kdl");
    let mut text = String::from("scenario \"s\" {\n    http GET \"/\"\n}\n");
    let line = format!("// {}\n", "x".repeat(1000));
    while text.len() <= MAX_SOURCE_BYTES {
        text.push_str(&line);
    }
    std::fs::write(&path, &text).expect("write");
    let diags = lang::load_plan(&path).expect_err("too large");
    let d = diags.into_sorted().remove(0);
    assert_eq!(d.code, Code::Io);
    assert!(d.message.contains("8 MiB"), "{}", d.message);
    let (code, stderr) = check_cli(&path);
    assert_eq!(code, Some(2));
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        stderr.contains("io::read") && stderr.contains("limit"),
        "{stderr}"
    );
    assert!(stderr.len() < 4096, "{} bytes on stderr", stderr.len());
}

#[test]
fn a_flat_yaml_plan_of_20k_steps_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flat.yaml");
    let mut text = String::from(
        "plan:\n  name: flat\n  host: http://127.0.0.1:9\nscenarios:\n  - name: s\n    steps:\n",
    );
    for i in 0..20_000 {
        text.push_str(&format!(
            "      - http:\n          method: GET\n          url: /items/{i}\n          name: items\n          headers: {{ x-a: a, x-b: b }}\n          checks: [{{ status: 200 }}]\n"
        ));
    }
    std::fs::write(&path, &text).expect("write");
    match lang::load_plan(&path) {
        Ok((_, program)) => assert_eq!(program.scenarios.len(), 1),
        Err(d) => panic!("{}", d.render_plain()),
    }
    // Depth is still limited: a runaway nesting is refused with the depth message.
    let deep = dir.path().join("deep.yaml");
    std::fs::write(
        &deep,
        format!("plan: {}1{}\n", "[".repeat(300), "]".repeat(300)),
    )
    .expect("write");
    let diags = lang::load_plan(&deep).expect_err("too deep");
    let all = diags.render_plain();
    assert!(all.contains("nested too deeply"), "{all}");
}

#[test]
fn a_multi_megabyte_line_is_shown_as_a_short_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in [
        (
            "long.kdl",
            format!(
                "scenario \"s\" {{\n    http GET \"/\" {}= {{\n}}\n",
                "a".repeat(6 << 20)
            ),
        ),
        (
            "long.yaml",
            format!(
                "scenarios: [{{ name: s, steps: [ {} ]: x\n",
                "b".repeat(6 << 20)
            ),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).expect("write");
        let (code, stderr) = check_cli(&path);
        assert_eq!(code, Some(2), "{name}");
        let shown = String::from_utf8_lossy(&stderr);
        assert!(
            stderr.len() < 16 << 10,
            "{name}: {} bytes on stderr:\n{:.2000}",
            stderr.len(),
            shown
        );
        assert!(shown.contains(&format!("{name}:")), "{name}: {shown:.2000}");
        for line in shown.lines() {
            assert!(
                line.chars().count() <= MAX_SNIPPET_COLS + 40,
                "{name}: a line of {} characters",
                line.chars().count()
            );
        }
    }
}

#[test]
fn control_bytes_in_a_file_are_never_echoed_to_the_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files: [(&str, Vec<u8>); 3] = [
        (
            "escape.kdl",
            b"scenario \"s\" {\n    \x1b[2J\x1b]0;owned\x07http\x00 GET \"/\x1b[31m\"\n}\n"
                .to_vec(),
        ),
        (
            "escape.yaml",
            b"scenarios:\n  - name: \"\x1b[2Js\x07\"\n    steps: [ { \x1b[31mhttp\x7f: GET / } ]\n"
                .to_vec(),
        ),
        ("binary.kdl", {
            let mut b = b"scenario \"s\" {\n".to_vec();
            b.extend((0u8..=255).cycle().take(4096));
            b
        }),
    ];
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        let (code, stderr) = check_cli(&path);
        assert_eq!(code, Some(2), "{name}");
        let bad = terminal_controls(&stderr);
        assert!(
            bad.is_empty(),
            "{name}: control characters on stderr {bad:?}:\n{}",
            String::from_utf8_lossy(&stderr)
        );
        assert!(
            String::from_utf8_lossy(&stderr).contains(name),
            "{name}: no location"
        );
    }
}
