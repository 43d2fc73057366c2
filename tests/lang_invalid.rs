//! Every file under `tests/invalid/` is a plan (or, under `profiles/`, a profile)
//! with a mistake a person could make. Each must fail with at least one diagnostic,
//! and its rendered diagnostics are pinned by an insta snapshot
//! (`tests/snapshots/lang_invalid__*.snap`): file:line:col, the labelled source line
//! and a help line. Files are named after the code they exercise; together they cover
//! every code in `Code::ALL`.
//!
//! Profiles are checked against `plans/mixed.kdl` (scenarios `http`, `websocket`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use loadplan::diag::{Code, Diagnostics};
use loadplan::lang;
use loadplan::profile;

const DIR: &str = "tests/invalid";

/// Files of a folder (not recursive), sorted, as repo-relative paths.
fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("folder exists")
        .flatten()
        .map(|e| Path::new(dir).join(e.file_name()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn is_plan(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("kdl" | "yaml" | "yml")
    )
}

fn plan_diagnostics(path: &Path) -> Diagnostics {
    match lang::load_plan(path) {
        Ok(_) => panic!("{} should not compile", path.display()),
        Err(d) => d,
    }
}

fn profile_diagnostics(path: &Path) -> Diagnostics {
    let (_, program) = lang::load_plan(Path::new("plans/mixed.kdl")).expect("bundled plan");
    let source = lang::read_source(path).expect("readable");
    match profile::parse(&source, Some(&program)) {
        Ok(_) => panic!("{} should not be a valid profile", path.display()),
        Err(d) => d,
    }
}

/// Every invalid case: (snapshot name, path, diagnostics).
fn cases() -> Vec<(String, PathBuf, Diagnostics)> {
    let mut out = Vec::new();
    for path in files(DIR).into_iter().filter(|p| is_plan(p)) {
        let name = file_name(&path);
        let d = plan_diagnostics(&path);
        out.push((name, path, d));
    }
    for path in files(&format!("{DIR}/profiles")) {
        let name = format!("profile-{}", file_name(&path));
        let d = profile_diagnostics(&path);
        out.push((name, path, d));
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name")
        .to_string()
}

#[test]
fn every_invalid_file_fails_and_its_diagnostics_are_pinned() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} invalid files", cases.len());
    let yaml = cases
        .iter()
        .filter(|(_, p, _)| p.starts_with(DIR) && !p.starts_with(format!("{DIR}/profiles")))
        .filter(|(_, p, _)| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .count();
    assert!(yaml >= 15, "only {yaml} invalid YAML plans");
    for (name, path, diags) in cases {
        assert!(!diags.is_empty(), "{name}: no diagnostic");
        let shown = path.display().to_string();
        let text = diags.render_plain();
        assert!(
            text.contains(&format!("{shown}:")),
            "{name}: no file name\n{text}"
        );
        assert!(text.contains("help:"), "{name}: no help line\n{text}");
        assert!(text.contains(" │ "), "{name}: no source line\n{text}");
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn every_diagnostic_code_has_an_invalid_file() {
    let mut seen = BTreeSet::new();
    for (name, _, diags) in cases() {
        let text = diags.render_plain();
        for code in Code::ALL {
            if text.contains(code.as_str()) {
                seen.insert(*code);
            }
        }
        // The file name says which code it exercises, and that code must occur.
        let stem = name.trim_start_matches("profile-");
        let named = Code::ALL.iter().find(|c| {
            let short = c.as_str().rsplit("::").next().unwrap_or_default();
            let short = if c.as_str().starts_with("io::") {
                "io-read"
            } else {
                short
            };
            stem.starts_with(short)
                && (name.starts_with("profile-") == c.as_str().starts_with("profile::"))
        });
        if let Some(code) = named {
            assert!(
                text.contains(code.as_str()),
                "{name} is named after {code} but does not report it:\n{text}"
            );
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !seen.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without an invalid file: {missing:?}"
    );
}

fn codes(d: &Diagnostics) -> BTreeSet<&'static str> {
    d.iter().map(|d| d.code.as_str()).collect()
}

#[test]
fn several_mistakes_are_all_reported_in_one_run() {
    let kdl = plan_diagnostics(Path::new("tests/invalid/many-mistakes.kdl"));
    assert_eq!(
        codes(&kdl),
        BTreeSet::from([
            "plan::bad-duration",
            "plan::bad-weight",
            "plan::conflict",
            "plan::undefined-variable",
            "plan::unknown-field",
            "plan::unknown-node",
        ])
    );
    let yaml = plan_diagnostics(Path::new("tests/invalid/many-mistakes.yaml"));
    assert_eq!(
        codes(&yaml),
        BTreeSet::from([
            "plan::bad-duration",
            "plan::bad-url",
            "plan::bad-weight",
            "plan::misplaced-step",
            "plan::undefined-variable",
            "plan::unknown-field",
            "plan::unknown-node",
            "plan::wrong-type",
        ])
    );
}
