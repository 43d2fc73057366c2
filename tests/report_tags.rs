//! Tags and groups end to end: a plan with two scenarios, a group and tags runs a fixed
//! number of iterations against a counting server (tests/common/fault_server.rs), and the
//! breakdown by scenario, group and tag carries the exact counts in the terminal summary,
//! `PREFIX_tags.csv`, the JSON result, the HTML report and the Prometheus exposition; a
//! threshold selecting a tag, a group or a scenario passes or fails on those rows alone.
//! The plan-language side (inheritance, bounds, diagnostics) is tested at the bottom.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::fault_server::{Fault, FaultServer};
use common::proc::Proc;
use loadplan::source::{Source, Syntax};

const PLAN: &str = r#"
plan "tags"
threshold "p95" max="10s" tag="method=checkout"
threshold "max" max="0ms" group="login"
scenario "browse" {
    tags tier="web"
    http GET "/list" { tags method="list"; }
    group "login" {
        tags method="auth" tier="api"
        http GET "/login"
        http GET "/checkout" { tags method="checkout"; }
    }
}
scenario "buy" {
    tags tier="api" method="checkout"
    threshold "error_rate" max="0%"
    http GET "/cart"
    http GET "/pay"
}
"#;

/// 2 users (one per scenario) × 3 iterations: browse sends 3 × 3 requests, buy 3 × 2.
const EXPECTED: [(&str, &str, &str, u64); 8] = [
    ("scenario", "", "browse", 9),
    ("scenario", "", "buy", 6),
    ("group", "", "login", 6),
    ("tag", "method", "auth", 3),
    ("tag", "method", "checkout", 9),
    ("tag", "method", "list", 3),
    ("tag", "tier", "api", 12),
    ("tag", "tier", "web", 3),
];

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// A minimal HTTP/1.0 GET: the body.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split_once("\r\n\r\n")
        .map_or(raw.clone(), |(_, b)| b.to_string())
}

#[test]
fn breakdown_counts_are_exact_in_every_output_and_thresholds_select_rows() {
    let server = FaultServer::start(Fault::Ok);
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("tags.kdl");
    std::fs::write(&plan, PLAN).expect("plan");
    let prefix = dir.path().join("out");
    let json = dir.path().join("out.json");
    let html = dir.path().join("out.html");
    let md = dir.path().join("summary.md");
    let metrics = free_port();
    let args: Vec<String> = [
        "run",
        plan.to_str().expect("utf-8"),
        "--host",
        &server.url(),
        "-u",
        "2",
        "--iterations",
        "3",
        "--seed",
        "7",
        "--csv",
        prefix.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
        "--summary-md",
        md.to_str().expect("utf-8"),
        "--metrics",
        &metrics.to_string(),
        "--metrics-linger",
        "8s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Proc::spawn(&refs);
    run.wait_line("serving the final values", Duration::from_secs(60));
    let exposition = get(metrics, "/metrics");
    let (status, stdout, stderr) = run.finish(Duration::from_secs(60));

    // The counting server saw exactly the requests the plan sends.
    let mut per_path: BTreeMap<String, u64> = BTreeMap::new();
    for head in server.heads() {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        *per_path.entry(path).or_default() += 1;
    }
    let want: BTreeMap<String, u64> = ["/cart", "/checkout", "/list", "/login", "/pay"]
        .iter()
        .map(|p| (p.to_string(), 3))
        .collect();
    assert_eq!(per_path, want, "{stderr}");

    // Terminal: the "By scenario, group and tag" table after the step table.
    let table = stdout
        .split("By scenario, group and tag")
        .nth(1)
        .unwrap_or_else(|| panic!("no breakdown table:\n{stdout}"));
    for (by, key, value, count) in EXPECTED {
        let name = if key.is_empty() {
            value.to_string()
        } else {
            format!("{key}={value}")
        };
        let line = table
            .lines()
            .find(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(by) && w.next() == Some(name.as_str())
            })
            .unwrap_or_else(|| panic!("no {by} {name} row:\n{table}"));
        let n: u64 = line
            .split_whitespace()
            .nth(2)
            .and_then(|c| c.parse().ok())
            .expect("count");
        assert_eq!(n, count, "{line}");
    }

    // CSV: PREFIX_tags.csv, one row per declared scenario, group and tag.
    let csv = std::fs::read_to_string(dir.path().join("out_tags.csv")).expect("out_tags.csv");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("By,Key,Value,Request Count,Failure Count,")
    );
    let rows: Vec<(String, String, String, u64, u64)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].into(),
                c[1].into(),
                c[2].into(),
                c[3].parse().expect("count"),
                c[4].parse().expect("failures"),
            )
        })
        .collect();
    let want_rows: Vec<(String, String, String, u64, u64)> = EXPECTED
        .iter()
        .map(|(b, k, v, n)| (b.to_string(), k.to_string(), v.to_string(), *n, 0))
        .collect();
    assert_eq!(rows, want_rows, "{csv}");

    // JSON: `breakdown`, and the thresholds measured on those rows alone.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let breakdown = report["breakdown"].as_array().expect("breakdown");
    assert_eq!(breakdown.len(), EXPECTED.len());
    for ((by, key, value, count), row) in EXPECTED.iter().zip(breakdown) {
        assert_eq!(row["by"], *by);
        assert_eq!(row["key"], *key);
        assert_eq!(row["value"], *value);
        assert_eq!(row["stats"]["count"], *count, "{row}");
        assert_eq!(row["stats"]["failures"], 0, "{row}");
    }
    let row = |by: &str, key: &str, value: &str| {
        breakdown
            .iter()
            .find(|r| r["by"] == by && r["key"] == key && r["value"] == value)
            .expect("row")
    };
    let thresholds = report["thresholds"].as_array().expect("thresholds");
    let rule = |text: &str| {
        thresholds
            .iter()
            .find(|t| t["rule"] == text)
            .unwrap_or_else(|| panic!("no rule {text}: {thresholds:?}"))
    };
    let checkout = rule("p95[tag method=checkout] <= 10s");
    assert_eq!(checkout["passed"], true);
    assert_eq!(
        checkout["actual"],
        row("tag", "method", "checkout")["stats"]["latency_ms"]["p95"],
        "the tag rule measures exactly the tag's merged histogram"
    );
    let login = rule("max[group login] <= 0ms");
    assert_eq!(login["passed"], false);
    assert_eq!(
        login["actual"],
        row("group", "", "login")["stats"]["latency_ms"]["max"]
    );
    assert_eq!(rule("error_rate[scenario buy] <= 0%")["passed"], true);
    assert_eq!(report["passed"], false);
    assert_eq!(
        status.code(),
        Some(1),
        "the failing group rule fails the run"
    );
    assert!(stdout.contains("FAIL max[group login] <= 0ms"), "{stdout}");
    assert!(
        stdout.contains("PASS p95[tag method=checkout] <= 10s"),
        "{stdout}"
    );

    // HTML: the breakdown table.
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("id=\"breakdown\""));
    for (by, key, value, count) in EXPECTED {
        let cells = format!(
            "<td class=\"l\">{by}</td><td class=\"l\">{key}</td><td class=\"l\">{value}</td><td>{count}</td>"
        );
        assert!(page.contains(&cells), "no {cells}");
    }

    // Markdown summary: the same rows.
    let summary = std::fs::read_to_string(&md).expect("summary.md");
    for (by, key, value, count) in EXPECTED {
        let name = if key.is_empty() {
            format!("{by} {value}")
        } else {
            format!("{by} {key}={value}")
        };
        let row = format!("| {name} | {count} | 0 (0.00%) |");
        assert!(summary.contains(&row), "no `{row}` in:\n{summary}");
    }

    // Prometheus: only declared scenarios, groups and tags become label values.
    for (by, key, value, count) in EXPECTED {
        let series = format!(
            "loadplan_breakdown_requests_total{{by=\"{by}\",key=\"{key}\",value=\"{value}\"}} {count}"
        );
        assert!(
            exposition.lines().any(|l| l == series),
            "no `{series}` in:\n{exposition}"
        );
        let histogram = format!(
            "loadplan_breakdown_duration_seconds_count{{by=\"{by}\",key=\"{key}\",value=\"{value}\"}} {count}"
        );
        assert!(
            exposition.lines().any(|l| l == histogram),
            "no `{histogram}`"
        );
    }
    let series = exposition
        .lines()
        .filter(|l| l.starts_with("loadplan_breakdown_requests_total{"))
        .count();
    assert_eq!(series, EXPECTED.len(), "{exposition}");
}

fn compile(name: &str, text: &str) -> Result<loadplan::lang::ir::Program, String> {
    let source = Source::new(name, text);
    let syntax = Syntax::from_path(name).expect("syntax");
    loadplan::lang::compile_source(&source, syntax, Path::new(".")).map_err(|d| d.render_plain())
}

#[test]
fn tags_are_inherited_and_a_step_value_wins() {
    let p = compile("p.kdl", PLAN).expect("compiles");
    let tags = |name: &str| {
        let e = p.stats.iter().find(|s| s.name == name).expect("entry");
        let t: Vec<String> = e.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (t.join(" "), e.groups.join(","))
    };
    assert_eq!(
        tags("/list"),
        ("method=list tier=web".into(), String::new())
    );
    assert_eq!(
        tags("/login"),
        ("method=auth tier=api".into(), "login".into())
    );
    assert_eq!(
        tags("/checkout"),
        ("method=checkout tier=api".into(), "login".into())
    );
    assert_eq!(
        tags("/cart"),
        ("method=checkout tier=api".into(), String::new())
    );
}

#[test]
fn bad_tags_and_selectors_are_diagnosed_with_their_place() {
    let cases = [
        (
            "scenario \"s\" {\n    tag method=\"x\"\n    http GET \"/\"\n}\n",
            "p.kdl:2:5",
            "did you mean `tags`?",
        ),
        (
            "scenario \"s\" {\n    http GET \"/\" { tags m=\"{{ a }}\"; }\n}\n",
            "p.kdl:2:27",
            "tag `m` is a template",
        ),
        (
            "scenario \"s\" {\n    http GET \"/\" { tags \"x\"; }\n}\n",
            "p.kdl:2:25",
            "too many arguments for `tags`",
        ),
        (
            "scenario \"s\" {\n    http GET \"/\" { tags m-x=\"a\"; }\n}\n",
            "p.kdl:2:25",
            "not a valid tag key",
        ),
        (
            "scenario \"s\" {\n    http GET \"/\" { tags m=\"a\"; }\n    http GET \"/\" { tags m=\"b\"; }\n}\n",
            "p.kdl:3:20",
            "is tagged m=\"a\" at one step and m=\"b\" here",
        ),
        (
            "scenario \"s\" {\n    http GET \"/\" { tags m=\"a\"; }\n    http GET \"/\"\n}\n",
            "p.kdl:3:5",
            "is tagged m=\"a\" at one step and without `m` here",
        ),
        (
            "threshold \"p95\" max=\"1s\" tag=\"method=chekout\"\nscenario \"s\" {\n    http GET \"/\" { tags method=\"checkout\"; }\n}\n",
            "p.kdl:1:30",
            "did you mean `method=checkout`?",
        ),
        (
            "threshold \"p95\" max=\"1s\" tag=\"method\"\nscenario \"s\" {\n    http GET \"/\"\n}\n",
            "p.kdl:1:30",
            "written `key=value`",
        ),
        (
            "threshold \"p95\" max=\"1s\" group=\"nope\"\nscenario \"s\" {\n    group \"login\" { http GET \"/\"; }\n}\n",
            "p.kdl:1:32",
            "the plan's groups are: `login`",
        ),
        (
            "scenarios:\n  - name: s\n    tags: { m: \"{{ a }}\" }\n    steps:\n      - http: GET /\n",
            "p.yaml:3:16",
            "tag `m` is a template",
        ),
    ];
    for (text, at, says) in cases {
        let name = at.split(':').next().expect("file");
        let err = compile(name, text).expect_err(text);
        assert!(err.contains(at), "expected {at} in:\n{err}");
        assert!(err.contains(says), "expected `{says}` in:\n{err}");
    }
}

#[test]
fn a_plan_declares_at_most_sixteen_tag_keys() {
    let keys = |n: usize| {
        let props: Vec<String> = (0..n).map(|i| format!("k{i}=\"v\"")).collect();
        format!(
            "scenario \"s\" {{\n    tags {}\n    http GET \"/\"\n}}\n",
            props.join(" ")
        )
    };
    assert!(compile("p.kdl", &keys(16)).is_ok());
    let err = compile("p.kdl", &keys(17)).expect_err("17 keys");
    assert!(err.contains("more than 16 tag keys"), "{err}");
    assert!(err.contains("p.kdl:2:"), "{err}");
}

#[test]
fn the_web_ui_serves_the_breakdown_of_the_finished_run() {
    let server = FaultServer::start(Fault::Ok);
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("tags.kdl");
    std::fs::write(&plan, PLAN).expect("plan");
    let url = server.url();
    let run = Proc::spawn(&[
        "run",
        plan.to_str().expect("utf-8"),
        "--host",
        &url,
        "-u",
        "2",
        "--iterations",
        "3",
        "--ui",
        "--ui-bind",
        "127.0.0.1:0",
        "-q",
    ]);
    let line = run.wait_line("ui listening on ", Duration::from_secs(60));
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|a| a.trim().trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stats: serde_json::Value = loop {
        let state: serde_json::Value =
            serde_json::from_str(&get(addr, "/api/state")).unwrap_or_default();
        if state["status"] == "stopped" && !state["passed"].is_null() {
            break serde_json::from_str(&get(addr, "/api/stats")).expect("stats JSON");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not end: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = stats["breakdown"].as_array().expect("breakdown");
    let got: Vec<(String, String, String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["by"].as_str().unwrap_or("").into(),
                r["key"].as_str().unwrap_or("").into(),
                r["value"].as_str().unwrap_or("").into(),
                r["stats"]["count"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    let want: Vec<(String, String, String, u64)> = EXPECTED
        .iter()
        .map(|(b, k, v, n)| (b.to_string(), k.to_string(), v.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    let page = get(addr, "/");
    assert!(page.contains("id=\"tab-tags\""), "the page has a Tags tab");
}

#[test]
fn a_distributed_run_gives_the_same_exact_breakdown() {
    let server = FaultServer::start(Fault::Ok);
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("tags.kdl");
    std::fs::write(&plan, PLAN).expect("plan");
    let json = dir.path().join("out.json");
    let prefix = dir.path().join("out");
    let url = server.url();
    let mut master = Proc::spawn(&[
        "master",
        plan.to_str().expect("utf-8"),
        "--expect-workers",
        "2",
        "--secret",
        "s3cret",
        "--bind",
        "127.0.0.1:0",
        "--host",
        &url,
        "--users",
        "2",
        "--iterations",
        "3",
        "--seed",
        "7",
        "--quiet",
        "--json",
        json.to_str().expect("utf-8"),
        "--csv",
        prefix.to_str().expect("utf-8"),
    ]);
    let addr = master.master_address();
    let mut workers: Vec<Proc> = Proc::workers(&addr, "s3cret", 2);
    let (status, stdout, stderr) = master.finish(Duration::from_secs(60));
    for w in &mut workers {
        w.finish(Duration::from_secs(10));
    }
    assert_eq!(
        status.code(),
        Some(1),
        "the group rule fails:\n{stdout}\n{stderr}"
    );
    assert_eq!(server.requests(), 15, "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let counts: Vec<u64> = report["breakdown"]
        .as_array()
        .expect("breakdown")
        .iter()
        .map(|r| r["stats"]["count"].as_u64().unwrap_or(u64::MAX))
        .collect();
    let want: Vec<u64> = EXPECTED.iter().map(|e| e.3).collect();
    assert_eq!(counts, want);
    let csv = std::fs::read_to_string(dir.path().join("out_tags.csv")).expect("out_tags.csv");
    assert!(
        csv.lines().any(|l| l.starts_with("tag,tier,api,12,0,")),
        "{csv}"
    );
    assert!(stdout.contains("By scenario, group and tag"), "{stdout}");
}

#[test]
fn groups_and_sets_shared_across_differently_tagged_scenarios_are_fine() {
    let text = "scenario \"a\" {\n    tags tier=\"web\"\n    set \"x\" \"1\"\n    group \"g\" { http GET \"/a\"; }\n}\nscenario \"b\" {\n    tags tier=\"api\"\n    set \"x\" \"1\"\n    group \"g\" { http GET \"/b\"; }\n}\n";
    let p = compile("p.kdl", text).expect("a group or set row is in no tag's breakdown");
    let g = p
        .stats
        .iter()
        .find(|s| s.kind == "group")
        .expect("group row");
    assert_eq!(g.scenarios, ["a", "b"]);
}
