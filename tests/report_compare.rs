//! `loadplan compare` on real `run --json` results: a run compared with itself passes, the same
//! run with an injected latency regression fails (exit 1) and names the regressed numbers, and
//! unreadable input is a usage error (exit 2). `compare --html` / `--summary-md` on two crafted
//! results whose changes are known exactly, and `run --baseline` refusing a bad baseline
//! (exit 2) before any request reaches the target.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PLAN: &str = r#"
plan "compare-test"
scenario "s" {
    http GET "/health"
    http GET "/api/oscilloscope/config"
}
"#;

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("loadplan"))
}

/// One baseline result, shared by the tests of this file.
fn baseline() -> &'static (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = dir.path().join("plan.kdl");
        std::fs::write(&plan, PLAN).expect("plan");
        let json = dir.path().join("base.json");
        let out = bin()
            .arg("run")
            .arg(&plan)
            .args([
                "--demo",
                "-u",
                "2",
                "--iterations",
                "5",
                "--seed",
                "4",
                "--quiet",
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        (dir, json)
    })
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("compare")
        .arg(a)
        .arg(b)
        .args(extra)
        .output()
        .expect("compare")
}

#[test]
fn an_equal_run_passes() {
    let (_, base) = baseline();
    let out = compare(base, base, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    assert!(stdout.contains("GET /health"), "{stdout}");
    assert!(
        stdout.contains("result: no regression beyond 10% tolerance"),
        "{stdout}"
    );
}

#[test]
fn an_injected_latency_regression_is_flagged() {
    let (dir, base) = baseline();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base).expect("read")).expect("json");
    // /health gets 3× slower plus 20 ms: beyond both the 10 % tolerance and the 1 ms floor.
    let steps = v["steps"].as_array_mut().expect("steps");
    let health = steps
        .iter_mut()
        .find(|s| s["name"] == "/health")
        .expect("health row");
    for q in ["p50", "p95", "p99"] {
        let old = health["latency_ms"][q].as_f64().expect("number");
        health["latency_ms"][q] = serde_json::json!(old * 3.0 + 20.0);
    }
    let current = dir.path().join("slower.json");
    std::fs::write(&current, serde_json::to_string(&v).expect("ser")).expect("write");

    let out = compare(base, &current, &["--tolerance", "10%"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let flagged: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("REGRESSION"))
        .collect();
    assert_eq!(flagged.len(), 3, "{stdout}");
    assert!(
        flagged.iter().all(|l| l.starts_with("GET /health")),
        "{stdout}"
    );
    assert!(
        stdout.contains("result: 3 regressions beyond 10% tolerance"),
        "{stdout}"
    );

    // A tolerance wider than the change lets it pass.
    let out = compare(base, &current, &["--tolerance", "100000%"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unreadable_input_exits_2() {
    let (dir, base) = baseline();
    let missing = dir.path().join("missing.json");
    assert_eq!(compare(base, &missing, &[]).status.code(), Some(2));
    let not_result = dir.path().join("other.json");
    std::fs::write(&not_result, "{\"hello\": 1}").expect("write");
    let out = compare(&not_result, base, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loadplan result"));
    assert_eq!(
        compare(base, base, &["--tolerance", "lots"]).status.code(),
        Some(2)
    );
}

/// Sets row `name` of a result to exact figures: `pcts` are min, p50, p66, p75, p80, p90, p95,
/// p98, p99, p99.9, p99.99, max (ms).
fn set_row(
    v: &mut serde_json::Value,
    name: &str,
    count: u64,
    failures: u64,
    rate: f64,
    pcts: [f64; 12],
) {
    let row = v["steps"]
        .as_array_mut()
        .expect("steps")
        .iter_mut()
        .find(|s| s["name"] == name)
        .expect("row");
    row["count"] = count.into();
    row["failures"] = failures.into();
    row["error_rate"] = (failures as f64 / count as f64).into();
    row["rate"] = rate.into();
    let keys = [
        "min", "p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99_9", "p99_99", "max",
    ];
    for (k, ms) in keys.into_iter().zip(pcts) {
        row["latency_ms"][k] = ms.into();
    }
    row["latency_ms"]["mean"] = 120.0.into();
}

#[test]
fn compare_html_draws_the_exact_changes_beside_the_run() {
    let (dir, base) = baseline();
    let text = std::fs::read_to_string(base).expect("read");
    let mut then: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut now = then.clone();
    set_row(
        &mut then,
        "/health",
        1000,
        10,
        100.0,
        [
            10.0, 100.0, 120.0, 140.0, 150.0, 180.0, 200.0, 220.0, 300.0, 320.0, 330.0, 340.0,
        ],
    );
    set_row(
        &mut now,
        "/health",
        1000,
        50,
        80.0,
        [
            10.0, 100.0, 130.0, 150.0, 170.0, 200.0, 230.0, 235.0, 240.0, 260.0, 265.0, 270.0,
        ],
    );
    let (a, b) = (dir.path().join("then.json"), dir.path().join("now.json"));
    std::fs::write(&a, then.to_string()).expect("write");
    std::fs::write(&b, now.to_string()).expect("write");
    let (html, md) = (dir.path().join("cmp.html"), dir.path().join("cmp.md"));
    let out = bin()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--html")
        .arg(&html)
        .arg("--summary-md")
        .arg(&md)
        .output()
        .expect("compare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Request rate -20 %, error rate +4 pp and p95 +15 % regress; p99 -20 % improves beyond
    // the baseline's bound the other way round; p50 is unchanged.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("result: 3 regressions"), "{stdout}");
    let html = std::fs::read_to_string(&html).expect("html written");
    let at = html
        .find("<tr data-step=\"GET /health\">")
        .unwrap_or_else(|| panic!("no comparison row\n{html}"));
    let row = &html[at..at + html[at..].find("</tr>").expect("row ends")];
    let cell = |metric: &str| {
        let m = format!("data-metric=\"{metric}\"");
        let i = row.find(&m).unwrap_or_else(|| panic!("{metric}: {row}"));
        let rest = &row[i..];
        let judged = rest
            .split("data-judged=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        let shown = rest[rest.find('>').expect(">") + 1..].split('<').next();
        (
            judged.expect("judged").to_owned(),
            shown.expect("text").to_owned(),
        )
    };
    assert_eq!(cell("req/s"), ("worse".into(), "-20.0%".into()), "{row}");
    assert_eq!(cell("errors"), ("worse".into(), "+4.00pp".into()), "{row}");
    assert_eq!(cell("p50"), ("same".into(), "+0.0%".into()), "{row}");
    assert_eq!(cell("p95"), ("worse".into(), "+15.0%".into()), "{row}");
    assert_eq!(cell("p99"), ("better".into(), "-20.0%".into()), "{row}");
    for figure in [
        "<td class=\"base\">100.00</td><td>80.00</td>",
        "<td class=\"base\">1.00%</td><td>5.00%</td>",
        "<td class=\"base\">200</td><td>230</td>",
        "<td class=\"base\">300</td><td>240</td>",
    ] {
        assert!(row.contains(figure), "{figure}: {row}");
    }
    assert!(html.contains("3 regressions</span>"), "no verdict badge");
    // The HTTP totals are the same in both files: cards with a change of 0.
    let cards = &html[html.find("id=\"baseline-totals\"").expect("total cards")..];
    let cards = &cards[..cards.find("</div>\n").expect("cards end")];
    for metric in ["req/s", "errors", "p50", "p95", "p99"] {
        assert!(
            cards.contains(&format!("class=\"card same\" data-metric=\"{metric}\"")),
            "{metric}: {cards}"
        );
    }
    assert!(cards.contains("HTTP p95 ms · baseline "), "{cards}");
    assert!(!html.contains("://"), "a URL in the report");
    let md = std::fs::read_to_string(&md).expect("md written");
    assert!(
        md.contains("| GET /health | 1000 | 50 (5.00%, +4.00pp) 🔴 | 80.00 (-20.0%) 🔴 | 120 | 100 (+0.0%) | 230 (+15.0%) 🔴 | 240 (-20.0%) 🟢 |"),
        "{md}"
    );
    assert!(md.contains("**3 regressions**"), "{md}");
}

#[test]
fn run_refuses_a_bad_baseline_before_sending_load() {
    let (dir, base) = baseline();
    let server = common::fault_server::FaultServer::start(common::fault_server::Fault::Ok);
    let plan = dir.path().join("other.kdl");
    std::fs::write(
        &plan,
        "plan \"other\"\nscenario \"s\" {\n    http GET \"/nothing-shared\"\n}\n",
    )
    .expect("plan");
    let not_json = dir.path().join("garbage.json");
    std::fs::write(&not_json, "not json").expect("write");
    let mut future: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base).expect("read")).expect("json");
    future["format"] = 999.into();
    let future_file = dir.path().join("future.json");
    std::fs::write(&future_file, future.to_string()).expect("write");
    let html = dir.path().join("never.html").display().to_string();
    let cases: [(&Path, &[&str], &str); 5] = [
        (
            &dir.path().join("absent.json"),
            &["--html", &html],
            "cannot read",
        ),
        (&not_json, &["--html", &html], "is not JSON"),
        (&future_file, &["--html", &html], "has result format 999"),
        (
            base,
            &["--summary-md", &html],
            "is a run of plan `compare-test` and has no step of plan `other`",
        ),
        (base, &[], "add --html FILE"),
    ];
    // `run PLAN` against the counting server, 3 iterations, with `extra`.
    let run = |extra: &[&std::ffi::OsStr]| {
        bin()
            .arg("run")
            .arg(&plan)
            .args(["--host", &server.url(), "--iterations", "3", "--quiet"])
            .args(extra)
            .output()
            .expect("run")
    };
    for (file, outputs, says) in cases {
        let mut args = vec!["--baseline".as_ref(), file.as_os_str()];
        args.extend(outputs.iter().map(std::ffi::OsStr::new));
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(
            stderr.contains("--baseline") && stderr.contains(says),
            "{says}: {stderr}"
        );
    }
    assert_eq!(server.connections(), 0, "load was sent");
    assert!(!Path::new(&html).exists(), "a report was written");
    // The same plan with a good baseline of it runs.
    let ok = dir.path().join("ok.json");
    for args in [
        ["--json".as_ref(), ok.as_os_str()],
        ["--baseline".as_ref(), ok.as_os_str()],
    ] {
        let out = run(&[&args[..], &["--html".as_ref(), html.as_ref()]].concat());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = std::fs::read_to_string(&html).expect("report");
    assert!(
        report.contains("<tr data-step=\"GET /nothing-shared\">"),
        "{report}"
    );
    assert_eq!(server.requests(), 6);
}
