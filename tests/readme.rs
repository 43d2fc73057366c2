//! The README's commands stay true: every `loadplan …` line in its shell code blocks
//! parses with the real command-line definition, and the files it names exist. (The
//! commands are run by other tests and by `.ci/run`; this catches drift in the text.)

use clap::Parser;
use loadplan::cli::Cli;

fn shell_lines(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    // None: prose; Some(true): a shell block; Some(false): another code block.
    let mut block: Option<bool> = None;
    for line in readme.lines() {
        let t = line.trim();
        if let Some(lang) = t.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(matches!(lang, "sh" | "bash" | "")),
            };
            continue;
        }
        if block == Some(true) {
            // Drop trailing comments.
            let cmd = t.split("  #").next().unwrap_or(t).trim();
            out.push(cmd.to_string());
        }
    }
    out
}

#[test]
fn every_loadplan_command_in_the_readme_parses() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let mut checked = 0;
    for line in shell_lines(&readme) {
        let args: Vec<&str> = if let Some(rest) = line.strip_prefix("cargo run --release -- ") {
            std::iter::once("loadplan")
                .chain(rest.split_whitespace())
                .collect()
        } else if line.starts_with("loadplan ") {
            line.split_whitespace().collect()
        } else {
            continue;
        };
        if args
            .iter()
            .any(|a| a.contains('<') || a.contains('$') || a.contains('('))
        {
            continue; // shell substitutions, not literal commands
        }
        if let Err(e) = Cli::try_parse_from(&args) {
            panic!("README command does not parse: {line}\n{e}");
        }
        for a in &args {
            if a.ends_with(".kdl") || a.ends_with(".yaml") {
                assert!(
                    std::path::Path::new(a).exists(),
                    "README names {a}, which does not exist"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} commands found in the README");
}

#[test]
fn the_first_two_commands_are_the_main_job_and_the_tests() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let lines = shell_lines(&readme);
    assert!(
        lines[0].starts_with("cargo run --release -- run plans/mixed.kdl --profile smoke --demo"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("bash scripts/test.sh"), "{}", lines[1]);
    let ci = std::fs::read_to_string(".ci/run").expect(".ci/run");
    assert!(ci.contains("bash scripts/test.sh"));
    assert!(ci.contains("run plans/mixed.kdl --profile smoke --demo"));
}
