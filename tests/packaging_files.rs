//! Packaging files checked without external tools: the Dockerfile's structure, the
//! Kubernetes manifests (parsed, and their plan and profile checked by `loadplan check`),
//! the GitHub Actions gate (its command runs for real against the demo target), and
//! `--help`: every subcommand and flag has a one-line description.

use std::path::PathBuf;
use std::process::Command;

use clap::{CommandFactory, Parser};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    read(rel)
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_ports_and_entrypoint() {
    let text = read("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS builder"),
        "{froms:?}"
    );
    assert!(
        froms[1].starts_with("FROM debian:") && froms[1].contains("-slim"),
        "{froms:?}"
    );
    assert!(text.contains("ARG DEBIAN_RELEASE=bookworm"));
    let runtime = &lines[lines
        .iter()
        .position(|l| *l == froms[1])
        .expect("the runtime stage")..];
    let user = runtime
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("the runtime stage sets USER");
    let who = user["USER ".len()..].split(':').next().unwrap_or_default();
    assert!(who != "root" && who != "0", "{user}");
    for want in [
        "COPY --from=builder /usr/local/bin/loadplan /usr/local/bin/loadplan",
        "WORKDIR /app",
        "COPY plans ./plans",
        "COPY profiles ./profiles",
        "EXPOSE 8089 9646 5557",
        "ENTRYPOINT [\"loadplan\"]",
    ] {
        assert!(runtime.contains(&want), "runtime stage lacks `{want}`");
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target/"), "{ignore}");
    for needed in ["src", "profiles", "plans", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore.lines().any(|l| l.trim_end_matches('/') == needed),
            "{needed}"
        );
    }
}

/// The container's args (strings) of a pod template.
fn container_args(doc: &Value) -> Vec<String> {
    doc["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("args are strings").to_owned())
        .collect()
}

#[test]
fn kubernetes_manifests_parse_and_their_plan_checks() {
    let mut kinds = Vec::new();
    for file in [
        "configmap.yml",
        "secret.yml",
        "service.yml",
        "master.yml",
        "worker.yml",
    ] {
        for doc in yaml_docs(&format!("examples/kubernetes/{file}")) {
            kinds.push(format!(
                "{}/{}",
                doc["kind"].as_str().unwrap_or("?"),
                doc["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap/loadplan-plan",
            "Job/loadplan-master",
            "Job/loadplan-worker",
            "Secret/loadplan",
            "Service/loadplan-master",
        ]
    );
    let kustomize = &yaml_docs("examples/kubernetes/kustomization.yml")[0];
    assert_eq!(kustomize["resources"].as_array().map(Vec::len), Some(5));

    let master = &yaml_docs("examples/kubernetes/master.yml")[0];
    let args = container_args(master);
    let worker = &yaml_docs("examples/kubernetes/worker.yml")[0];
    let n = worker["spec"]["parallelism"].as_u64().expect("parallelism");
    let expect = args
        .iter()
        .position(|a| a == "--expect-workers")
        .map(|i| args[i + 1].clone());
    assert_eq!(expect, Some(n.to_string()), "{args:?}");

    // The master's command line parses, and its plan and profile check.
    let dir = tempfile::tempdir().expect("tempdir");
    let cm = &yaml_docs("examples/kubernetes/configmap.yml")[0];
    for (k, v) in cm["data"].as_object().expect("data") {
        std::fs::write(dir.path().join(k), v.as_str().expect("text")).expect("write");
    }
    let local: Vec<String> = args
        .iter()
        .map(|a| a.replace("/plan/", &format!("{}/", dir.path().display())))
        .collect();
    loadplan::cli::Cli::try_parse_from(std::iter::once("loadplan".to_owned()).chain(local))
        .expect("the master's args parse");
    let wargs = container_args(worker);
    loadplan::cli::Cli::try_parse_from(std::iter::once("loadplan".to_owned()).chain(wargs))
        .expect("the workers' args parse");
    let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .arg("check")
        .arg(dir.path().join("plan.kdl"))
        .arg("--profile")
        .arg(dir.path().join("cluster.yml"))
        .output()
        .expect("run loadplan");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The master Job's container command (a small sh wrapper around `loadplan "$@"`) played
/// locally with `run` against the demo target: the exit code is loadplan's verdict, and
/// the result JSON is printed to the log between marker lines.
#[test]
fn kubernetes_master_wrapper_prints_the_result_and_exits_with_the_verdict() {
    let master = &yaml_docs("examples/kubernetes/master.yml")[0];
    let command = master["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .expect("the master's command");
    assert_eq!(command[0], "/bin/sh");
    assert_eq!(command[1], "-c");
    let script = command[2].as_str().expect("the script");
    assert_eq!(command[3], "loadplan", "$0 of the script");

    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_loadplan"), bin.join("loadplan"))
        .expect("symlink");
    let results = dir.path().join("results");
    std::fs::create_dir(&results).expect("mkdir");
    let script = script.replace("/results/", &format!("{}/", results.display()));
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let plan = dir.path().join("t.kdl");
    let play = |plan_text: &str| {
        std::fs::write(&plan, plan_text).expect("write the plan");
        let _ = std::fs::remove_file(results.join("result.json"));
        let out = Command::new("/bin/sh")
            .args(["-c", &script, "loadplan", "run"])
            .arg(&plan)
            .args(["--demo", "-u", "2", "-t", "2s", "--seed", "1", "--json"])
            .arg(results.join("result.json"))
            .env("PATH", &path)
            .env_remove("LOADPLAN_HOST")
            .output()
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = stdout
            .split_once("----- BEGIN loadplan result.json -----\n")
            .and_then(|(_, rest)| rest.split_once("\n----- END loadplan result.json -----"))
            .map(|(json, _)| json.to_owned())
            .unwrap_or_else(|| panic!("no result JSON in the log:\n{stdout}"));
        let json: Value = serde_json::from_str(&json).expect("the logged result is JSON");
        (out.status.code(), json)
    };
    let (code, json) = play(
        "plan \"ok\"\nscenario \"s\" weight=1 {\n    think between=\"50ms\" and=\"100ms\"\n    http GET \"/health\" { check status=200; }\n}\n",
    );
    assert_eq!(code, Some(0));
    assert_eq!(json["passed"], true);
    let (code, json) = play(
        "plan \"failing\"\nscenario \"s\" weight=1 {\n    think between=\"50ms\" and=\"100ms\"\n    http GET \"/no/such/page\" { check status=200; }\n}\n",
    );
    assert_eq!(code, Some(1), "a failed check is verdict 1");
    assert_eq!(json["passed"], false);
}

#[test]
fn github_actions_gate_runs_the_smoke_profile_and_uploads_reports() {
    let wf = &yaml_docs("examples/ci/github-actions.yml")[0];
    let steps = wf["jobs"]["smoke"]["steps"].as_array().expect("steps");
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert!(
        uses.iter()
            .any(|u| u.starts_with("actions/upload-artifact@")),
        "{uses:?}"
    );
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.contains("upload-artifact"))
        })
        .expect("upload step");
    assert_eq!(upload["if"], "always()");
    let gate = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("loadplan run"))
        .expect("a `loadplan run` step");
    assert!(gate.starts_with("mkdir -p reports\n"), "{gate}");
    let gate = &gate[gate.find("loadplan run").expect("loadplan run")..];
    for want in ["--profile smoke", "--junit ", "--html ", "--json "] {
        assert!(gate.contains(want), "{gate}");
    }

    // The same command, shortened, against the built-in demo target.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("reports")).expect("mkdir");
    let mut args: Vec<String> = gate
        .split_whitespace()
        .filter(|a| *a != "\\")
        .skip(1)
        .map(|a| {
            a.replace("plans/", &format!("{}/plans/", root().display()))
                .replace("reports/", &format!("{}/reports/", dir.path().display()))
        })
        .collect();
    args.extend(["--demo", "-t", "2s", "-u", "2", "--seed", "1"].map(String::from));
    let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .args(&args)
        .current_dir(dir.path())
        .env_remove("LOADPLAN_HOST")
        .output()
        .expect("run loadplan");
    assert!(
        out.status.success(),
        "{args:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["junit.xml", "report.html", "result.json"] {
        assert!(dir.path().join("reports").join(f).is_file(), "{f}");
    }
}

#[test]
fn every_subcommand_and_flag_has_a_description() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(name.clone());
            }
            walk(sub, &name, missing);
        }
    }
    let mut cmd = loadplan::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "loadplan", &mut missing);
    assert!(missing.is_empty(), "without a description: {missing:#?}");
}

#[test]
fn readme_packaging_commands_parse() {
    // The `loadplan …` lines of README's "Docker / just" and "Distributed" sections
    // (the `just …` lines are run by tests/packaging_tools.rs).
    let readme = read("README.md");
    let start = readme.find("## Docker / just").expect("the section");
    let end = readme[start..]
        .find("## Profiles")
        .map_or(readme.len(), |i| start + i);
    let mut seen = 0;
    for line in readme[start..end].lines() {
        let Some(cmd) = line.strip_prefix("loadplan ") else {
            continue;
        };
        let cmd = cmd.split(" #").next().unwrap_or_default();
        let args = std::iter::once("loadplan")
            .chain(cmd.split_whitespace())
            .map(|a| a.replace("HOST:", "127.0.0.1:"));
        if let Err(e) = loadplan::cli::Cli::try_parse_from(args) {
            panic!("README: `{line}` does not parse:\n{e}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "the master and worker lines");
}

/// `major.minor.patch` as numbers (missing parts are 0).
fn version(v: &str) -> (u64, u64, u64) {
    let mut n = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
    )
}

/// Cargo.toml's `rust-version` is true: at least the highest `rust-version` of every
/// package in Cargo.lock (as `cargo metadata --locked --offline` resolves them for this
/// machine's platform), and the README says the same.
#[test]
fn rust_version_covers_every_locked_dependency() {
    // The `[package]` table's `rust-version = "…"` line (no TOML parser among the
    // dependencies; the line is simple by convention).
    let ours = read("Cargo.toml")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "rust-version").then(|| v.trim().trim_matches('"').to_owned())
        })
        .expect("Cargo.toml sets rust-version");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let vv = Command::new(&rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let vv = String::from_utf8_lossy(&vv.stdout);
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", host])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = meta["packages"].as_array().expect("packages");
    assert!(packages.len() > 100, "only {} packages", packages.len());
    let mut highest: Option<((u64, u64, u64), String)> = None;
    for p in packages {
        if members.contains(&p["id"].as_str().unwrap_or_default()) {
            continue;
        }
        let Some(rv) = p["rust_version"].as_str() else {
            continue;
        };
        let who = format!("{} {} (rust-version {rv})", p["name"], p["version"]);
        if highest.as_ref().is_none_or(|(h, _)| version(rv) > *h) {
            highest = Some((version(rv), who));
        }
    }
    let (need, who) = highest.expect("some dependency declares a rust-version");
    assert!(
        version(&ours) >= need,
        "Cargo.toml says rust-version {ours}, but {who} needs more"
    );
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("Rust {ours}+")),
        "README must state the minimum Rust as `Rust {ours}+`"
    );
}

/// `--help` teaches by example: the top level and every subcommand end with examples
/// (the first try with `--demo` up front), and every example is a command that parses.
#[test]
fn help_shows_examples_that_parse_and_the_demo_first_try() {
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
            .args(args)
            .output()
            .expect("run loadplan");
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let examples = help
            .split_once("Examples:")
            .unwrap_or_else(|| panic!("`loadplan {args:?}` shows no examples:\n{help}"))
            .1;
        assert!(
            examples.contains("loadplan run plans/mixed.kdl --profile smoke --demo"),
            "`loadplan {args:?}` does not show the first try with --demo:\n{help}"
        );
    }

    let mut cmd = loadplan::cli::Cli::command();
    cmd.build();
    let mut parsed = 0;
    let mut helps = vec![(
        "loadplan".to_owned(),
        cmd.get_after_help().map(|h| h.to_string()),
    )];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        helps.push((
            sub.get_name().to_owned(),
            sub.get_after_help().map(|h| h.to_string()),
        ));
    }
    for (name, help) in helps {
        let help = help.unwrap_or_default();
        assert!(help.starts_with("Examples:\n"), "{name}: no examples");
        let mut here = 0;
        for line in help.lines() {
            let Some(cmd) = line.strip_prefix("  loadplan ") else {
                continue;
            };
            let cmd = cmd.split(" #").next().unwrap_or_default();
            let args = std::iter::once("loadplan").chain(cmd.split_whitespace());
            if let Err(e) = loadplan::cli::Cli::try_parse_from(args) {
                panic!("{name} --help: `{line}` does not parse:\n{e}");
            }
            for a in cmd.split_whitespace().filter(|a| a.starts_with("plans/")) {
                assert!(root().join(a).is_file(), "{name} --help names {a}");
            }
            here += 1;
        }
        assert!(here >= 2, "{name}: {here} example(s)");
        parsed += here;
    }
    assert!(parsed >= 20, "{parsed} examples");
}

/// Docker Compose has the Job semantics too: the master's exit code is the verdict and
/// ends the stack (`up --exit-code-from master`, as the justfile's distributed run does);
/// nothing restarts after a run, and the workers follow the master.
#[test]
fn compose_master_exit_code_is_the_verdict_and_nothing_restarts() {
    let compose = &yaml_docs("docker-compose.yml")[0];
    let services = &compose["services"];
    for name in ["master", "worker"] {
        assert_eq!(
            services[name]["restart"], "no",
            "{name}: a finished run must not start again"
        );
    }
    assert_eq!(
        services["worker"]["depends_on"],
        serde_json::json!(["master"])
    );
    let master_cmd = services["master"]["command"]
        .as_str()
        .expect("master command");
    for want in [
        "master plans/",
        "--expect-workers ${WORKERS:-1}",
        "--json reports/result.json",
        "--junit reports/junit.xml",
    ] {
        assert!(master_cmd.contains(want), "`{want}` missing: {master_cmd}");
    }
    let worker_cmd = services["worker"]["command"]
        .as_str()
        .expect("worker command");
    assert!(
        worker_cmd.starts_with("worker --master master:5557"),
        "{worker_cmd}"
    );

    // The distributed run of the justfile and the file's own usage line end the stack
    // with the master's exit code.
    let justfile = read("justfile");
    assert!(
        justfile.contains(
            "up --scale \"worker=$workers\" --abort-on-container-exit --exit-code-from master master worker"
        ),
        "the justfile's distributed run"
    );
    let text = read("docker-compose.yml");
    assert!(
        text.lines().any(|l| l.starts_with('#')
            && l.contains("docker compose up")
            && l.contains("--exit-code-from master")),
        "docker-compose.yml documents `up --exit-code-from master`"
    );
}
