//! The workspace's crate graph is the architecture (ARCHITECTURE.md): these tests read it
//! with `cargo tree` and fail when a crate gains a dependency its layer must not have.

use std::process::Command;

/// Every package in the dependency tree of `package` (normal dependencies, this platform).
fn tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree", "--quiet", "--edges", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .args(["--package", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn assert_none_of(package: &str, forbidden: &[&str]) {
    let deps = tree(package);
    assert!(
        deps.iter().any(|d| d == package),
        "{package} not in its own tree: {deps:?}"
    );
    let found: Vec<&String> = deps
        .iter()
        .filter(|d| forbidden.contains(&d.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "{package} must not depend on {found:?} (see ARCHITECTURE.md); its tree: {deps:?}"
    );
}

/// Async runtimes and network stacks: none of them may reach the front end.
const ASYNC_AND_NETWORK: &[&str] = &[
    "tokio",
    "mio",
    "hyper",
    "hyper-util",
    "h2",
    "reqwest",
    "axum",
    "tungstenite",
    "tokio-tungstenite",
    "rustls",
    "socket2",
];

#[test]
fn the_language_crate_is_pure() {
    assert_none_of(
        "loadplan-lang",
        &[
            ASYNC_AND_NETWORK,
            &[
                "loadplan-engine",
                "loadplan-report",
                "loadplan-web",
                "loadplan-dist",
                "loadplan-demo",
            ],
        ]
        .concat(),
    );
}

#[test]
fn layers_only_point_down() {
    // engine → lang; report → engine, lang; web and dist → report, engine, lang.
    assert_none_of(
        "loadplan-engine",
        &[
            "loadplan-report",
            "loadplan-web",
            "loadplan-dist",
            "loadplan-demo",
        ],
    );
    assert_none_of(
        "loadplan-report",
        &["loadplan-web", "loadplan-dist", "loadplan-demo"],
    );
    assert_none_of("loadplan-web", &["loadplan-dist", "loadplan-demo"]);
    assert_none_of("loadplan-dist", &["loadplan-web", "loadplan-demo"]);
    // The demo target stands alone: a stand-in for one backend, usable by tests and `--demo`.
    assert_none_of(
        "loadplan-demo",
        &["loadplan-lang", "loadplan-engine", "loadplan-report"],
    );
}

#[test]
fn no_c_crypto_build_and_no_blocking_client_in_the_graph() {
    // aws-lc-sys is a C build (cmake) that jsonschema's default features pulled into every
    // test build; ring is the provider everywhere. Checked over dev-dependencies too.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--quiet",
            "--workspace",
            "--edges",
            "normal,dev,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "--invert", "aws-lc-sys"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("aws-lc-sys"),
        "aws-lc-sys is in the build again:\n{text}"
    );
}
