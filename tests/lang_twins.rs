//! KDL and YAML are two spellings of one language: every plan under `plans/`,
//! `examples/` and `grammar/` that exists in both compiles to the same program
//! (compared through the complete JSON dump).

mod common;

use std::path::{Path, PathBuf};

use loadplan::lang::{self, dump};

/// (KDL, YAML) pairs: same folder, same stem.
fn twins() -> Vec<(PathBuf, PathBuf)> {
    common::walk(&["plans", "examples", "grammar"])
        .into_iter()
        .filter(|p| common::ext(p) == "kdl")
        .filter_map(|kdl| {
            ["yaml", "yml"]
                .iter()
                .map(|e| kdl.with_extension(e))
                .find(|y| y.is_file())
                .map(|y| (kdl, y))
        })
        .collect()
}

fn dump_of(path: &Path) -> String {
    match lang::load_plan(path) {
        Ok((_, program)) => dump::json(&program),
        Err(d) => panic!("{} does not compile:\n{}", path.display(), d.render_plain()),
    }
}

#[test]
fn twins_compile_to_identical_programs() {
    let pairs = twins();
    for (kdl, yaml) in &pairs {
        assert_eq!(
            dump_of(kdl),
            dump_of(yaml),
            "{} and {} compile to different programs",
            kdl.display(),
            yaml.display()
        );
    }
    let names: Vec<String> = pairs.iter().map(|(k, _)| k.display().to_string()).collect();
    for bundled in ["plans/http.kdl", "plans/websocket.kdl", "plans/mixed.kdl"] {
        assert!(
            names.iter().any(|n| n == bundled),
            "{bundled} has no YAML twin"
        );
    }
    assert!(pairs.len() >= 11, "only {} twins: {names:?}", pairs.len());
}

#[test]
fn every_bundled_and_example_plan_has_a_twin() {
    let pairs = twins();
    for plan in common::walk(&["plans", "grammar/examples"]) {
        if common::kind(&plan) != common::Kind::Plan {
            continue;
        }
        assert!(
            pairs.iter().any(|(k, y)| *k == plan || *y == plan),
            "{} has no twin in the other spelling",
            plan.display()
        );
    }
}

#[test]
fn yaml_twins_name_their_schema_on_the_first_line() {
    for (_, yaml) in twins() {
        let text = std::fs::read_to_string(&yaml).expect("readable");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# yaml-language-server: $schema=")
                && first.ends_with("plan.schema.json"),
            "{}: first line is {first:?}",
            yaml.display()
        );
        // The relative path must lead to the checked-in schema.
        let rel = first.rsplit('=').next().unwrap_or_default();
        let target = yaml.parent().unwrap_or(Path::new(".")).join(rel);
        assert!(
            target.is_file(),
            "{}: {} does not exist",
            yaml.display(),
            target.display()
        );
    }
}
