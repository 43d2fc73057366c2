//! `loadplan run --csv/--json/--junit/--html` as a process against the built-in demo target:
//! one run (2 users × 3 iterations, fixed seed) writes every file, and each test checks one
//! format — Locust's exact CSV headers, the JSON result against its checked-in schema, the
//! JUnit file as well-formed XML with the expected cases, and an HTML report without any URL.
//! The same run violates one threshold, so it also shows the exit code and the verdict lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PLAN: &str = r#"
plan "report-test"
scenario "s" {
    http GET "/health" { check status=200; }
    http GET "/api/oscilloscope/config" { check json="$.sample_rate" equals=1000; }
    http GET "/no/such/page" name="missing"
}
"#;

const PROFILE: &str = r#"
name: gate
users: 2
spawn_rate: 2
thresholds:
  - metric: error_rate
    max: 50%
  - metric: error_rate
    step: GET missing
    max: 1%
  - metric: p95
    step: GET /health
    max: 10s
"#;

struct Run {
    dir: tempfile::TempDir,
    out: Output,
}

impl Run {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = dir.path().join("plan.kdl");
        let profile = dir.path().join("gate.yml");
        std::fs::write(&plan, PLAN).expect("plan");
        std::fs::write(&profile, PROFILE).expect("profile");
        let arg = |name: &str| dir.path().join(name).display().to_string();
        let out = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
            .arg("run")
            .arg(&plan)
            .args(["--profile", &profile.display().to_string()])
            .args(["--demo", "--iterations", "3", "--seed", "1", "--quiet"])
            .args(["--csv", &arg("out")])
            .args(["--json", &arg("result.json")])
            .args(["--junit", &arg("junit.xml")])
            .args(["--html", &arg("report.html")])
            .output()
            .expect("run loadplan");
        Run { dir, out }
    })
}

#[test]
fn a_violated_threshold_exits_1_and_names_rule_actual_and_limit() {
    let r = run();
    let stdout = r.stdout();
    assert_eq!(
        r.out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&r.out.stderr)
    );
    let fail = stdout
        .lines()
        .find(|l| l.contains("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(fail.contains("error_rate[GET missing] <= 1%"), "{fail}");
    assert!(fail.contains("actual 100.00%, limit <= 1.00%"), "{fail}");
    assert!(stdout.contains("PASS error_rate <= 50%"), "{stdout}");
    assert!(
        stdout.contains("result: FAILED (1 thresholds failed)"),
        "{stdout}"
    );
}

#[test]
fn csv_headers_match_locust_exactly() {
    let r = run();
    let first = |name: &str| r.read(name).lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        first("out_stats.csv"),
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    );
    assert_eq!(
        first("out_stats_history.csv"),
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size"
    );
    assert_eq!(first("out_failures.csv"), "Method,Name,Error,Occurrences");
}

#[test]
fn csv_rows_carry_exact_counts_and_an_aggregated_row() {
    let r = run();
    let stats = r.read("out_stats.csv");
    let rows: Vec<Vec<&str>> = stats
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[1] == name)
            .unwrap_or_else(|| panic!("no row {name}:\n{stats}"))
    };
    assert_eq!(&row("/health")[..4], ["GET", "/health", "6", "0"]);
    assert_eq!(&row("missing")[..4], ["GET", "missing", "6", "6"]);
    assert_eq!(&row("Aggregated")[..4], ["", "Aggregated", "18", "6"]);
    assert_eq!(rows.last().map(|r| r[1]), Some("Aggregated"));
    assert!(rows.iter().all(|r| r.len() == 22));

    let failures = r.read("out_failures.csv");
    let lines: Vec<&str> = failures.lines().collect();
    assert_eq!(lines.len(), 2, "{failures}");
    assert!(lines[1].starts_with("GET,missing,status: "), "{failures}");
    assert!(lines[1].ends_with(",6"), "{failures}");

    let history = r.read("out_stats_history.csv");
    let last_aggregated = history
        .lines()
        .rfind(|l| l.split(',').nth(3) == Some("Aggregated"))
        .unwrap_or_else(|| panic!("no aggregated history row:\n{history}"));
    let cells: Vec<&str> = last_aggregated.split(',').collect();
    assert_eq!(cells.len(), 24);
    assert_eq!((cells[17], cells[18]), ("18", "6"), "{last_aggregated}");
}

#[test]
fn json_result_validates_against_the_checked_in_schema() {
    let r = run();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/result.schema.json");
    let checked_in = std::fs::read_to_string(&schema_path).expect("grammar/result.schema.json");
    assert_eq!(
        checked_in,
        loadplan::report::model::schema_text(),
        "grammar/result.schema.json is stale: regenerate it from report::model::schema_text()"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).expect("schema is JSON");
    let result: serde_json::Value = serde_json::from_str(&r.read("result.json")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&result)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let report = loadplan::report::read_json(&r.path("result.json")).expect("reads back");
    assert_eq!(report.plan.name, "report-test");
    assert_eq!(report.profile.name, "gate");
    assert_eq!(report.seed, 1);
    assert!(!report.passed);
    assert_eq!(report.aggregated.count, 18);
    assert_eq!(report.iterations.completed + report.iterations.failed, 6);
    assert_eq!(report.thresholds.len(), 3);
    assert_eq!(
        report
            .thresholds
            .iter()
            .map(|t| t.passed)
            .collect::<Vec<_>>(),
        [true, false, true]
    );
    let health = report.step("GET", "/health").expect("health row");
    assert_eq!((health.count, health.checks_passed), (6, 6));
    assert!(
        health
            .latency_ms
            .as_ref()
            .is_some_and(|p| p.p50 > 0.0 && p.p50 <= p.p99)
    );
    assert!(!report.history.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].error_kind, "status");
}

#[test]
fn junit_is_well_formed_xml_with_a_case_per_threshold_and_checked_step() {
    use quick_xml::events::{BytesStart, Event};
    let r = run();
    let xml = r.read("junit.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let attr = |e: &BytesStart<'_>, key: &[u8]| {
        e.try_get_attribute(key)
            .expect("attribute parses")
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .expect("attribute unescapes")
                    .into_owned()
            })
            .unwrap_or_default()
    };
    let mut open: Vec<String> = Vec::new();
    let mut suite = String::new();
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    loop {
        let ev = reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML: {e}\n{xml}"));
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testsuite" => suite = attr(e, b"name"),
                    b"testcase" => cases.push((suite.clone(), attr(e, b"name"))),
                    b"failure" => failures.push(attr(e, b"message")),
                    _ => {}
                }
                if matches!(ev, Event::Start(_)) {
                    open.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                }
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                assert_eq!(
                    open.pop().as_deref(),
                    Some(name.as_str()),
                    "mismatched </{name}>"
                );
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements: {open:?}");
    let names: Vec<(&str, &str)> = cases
        .iter()
        .map(|(s, n)| (s.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("thresholds", "error_rate <= 50%"),
            ("thresholds", "error_rate[GET missing] <= 1%"),
            ("thresholds", "p95[GET /health] <= 10s"),
            ("checks", "GET /health"),
            ("checks", "GET /api/oscilloscope/config"),
        ]
    );
    assert_eq!(failures, ["actual 100.00%, limit <= 1.00%"]);
}

#[test]
fn html_report_is_self_contained_with_charts_and_no_url() {
    let r = run();
    let html = r.read("report.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for needle in [
        "<svg",
        "Requests per second",
        "Users",
        "Response time",
        "Aggregated",
        "missing",
    ] {
        assert!(html.contains(needle), "no {needle:?} in the report");
    }
    for forbidden in ["http://", "https://", "<script", "src=", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "the report contains {forbidden:?}"
        );
    }
}

#[test]
fn the_failed_verdict_gives_the_same_reasons_in_json_and_html_as_the_terminal() {
    let r = run();
    let result: serde_json::Value =
        serde_json::from_str(&r.read("result.json")).expect("result.json");
    assert_eq!(
        result["reasons"],
        serde_json::json!(["1 thresholds failed"]),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("result: FAILED (1 thresholds failed)"));
    let html = r.read("report.html");
    assert!(
        html.contains("Failed because</b><ul><li>1 thresholds failed</li></ul>"),
        "the report does not say why it failed"
    );
}
