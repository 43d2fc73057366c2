//! The HTML report and the markdown summary of `plans/mixed.kdl --profile smoke --demo`
//! (shortened to 5 s): a p50/p95/p99-over-time chart for every step that recorded anything,
//! one self-contained file under 1 MB without any URL, that fits a 390 px phone in Chromium
//! (screenshots in `target/e2e-screenshots/report-*.png`); and `--summary-md` with the
//! verdict and its reasons, host, profile, a per-step table and the thresholds. A second run
//! with the first as `--baseline`: the comparison table, the baseline's series dashed in the
//! per-step charts, still one small file without URL, rendered in Chromium
//! (`report-baseline-*.png`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

struct Run {
    dir: tempfile::TempDir,
    out: Output,
}

impl Run {
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_else(|e| {
            panic!(
                "{name}: {e}\n{}{}",
                String::from_utf8_lossy(&self.out.stdout),
                String::from_utf8_lossy(&self.out.stderr)
            )
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.read("result.json")).expect("result.json is JSON")
    }
}

/// `loadplan run plans/mixed.kdl --profile smoke --demo` for 5 s with every report file.
fn launch(extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let arg = |name: &str| dir.path().join(name).display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "plans/mixed.kdl", "--profile", "smoke", "--demo"])
        .args(["-t", "5s", "--quiet"])
        .args(["--html", &arg("report.html")])
        .args(["--json", &arg("result.json")])
        .args(["--summary-md", &arg("summary.md")])
        .args(extra)
        .output()
        .expect("run loadplan");
    Run { dir, out }
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| launch(&["--seed", "1"]))
}

/// Another run of the same plan, with [`run`]'s result as its `--baseline`.
fn compared() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let base = run().dir.path().join("result.json");
        assert!(base.is_file(), "the baseline run wrote no result");
        let base = base.display().to_string();
        launch(&["--seed", "2", "--baseline", &base])
    })
}

fn steps(result: &Value) -> Vec<(String, String)> {
    result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or_default().to_owned(),
                s["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_step_has_a_percentile_chart_in_one_small_file_without_urls() {
    let r = run();
    let html = r.read("report.html");
    let result = r.json();
    let steps = steps(&result);
    assert!(
        steps.len() >= 5,
        "mixed.kdl records several steps: {steps:?}"
    );
    for (kind, name) in &steps {
        let marker = format!(
            "class=\"step-chart\" data-step=\"{}\"",
            loadplan::report::html::escape(&format!("{kind} {name}"))
        );
        let at = html
            .find(&marker)
            .unwrap_or_else(|| panic!("no per-step chart for {kind} {name}"));
        let chart = &html[at..];
        let chart = &chart[..chart.find("</div>").expect("chart ends")];
        assert!(chart.contains("<svg"), "{kind} {name}: no svg");
        for legend in [">p50<", ">p95<", ">p99<"] {
            assert!(chart.contains(legend), "{kind} {name}: no {legend} line");
        }
        assert!(
            chart.contains("<path") || chart.contains("<circle"),
            "{kind} {name}: nothing drawn"
        );
    }
    assert_eq!(
        html.matches("class=\"step-chart\"").count(),
        steps.len(),
        "one chart per step"
    );
    // The JSON keeps the same per-step timelines.
    let history = result["step_history"].as_array().expect("step_history");
    assert_eq!(history.len(), steps.len());
    for forbidden in ["http://", "https://", "<script", "src=", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "the report contains {forbidden:?}"
        );
    }
    assert!(html.len() < 1_000_000, "the report is {} bytes", html.len());
    eprintln!(
        "report.html: {} bytes, {} step charts",
        html.len(),
        steps.len()
    );
}

#[test]
fn the_report_names_host_and_why_it_passed_or_failed() {
    let r = run();
    let html = r.read("report.html");
    let result = r.json();
    let host = result["host"].as_str().expect("host");
    assert!(
        html.contains(&loadplan::report::html::escape(host)),
        "no host {host} in the report"
    );
    let reasons: Vec<&str> = result["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if result["passed"] == true {
        assert!(reasons.is_empty(), "{reasons:?}");
        assert!(html.contains("<b>Passed</b>"));
    } else {
        assert!(!reasons.is_empty(), "a failed run without a reason");
        assert!(html.contains("Failed because"));
        for reason in reasons {
            assert!(
                html.contains(&loadplan::report::html::escape(reason)),
                "{reason}"
            );
        }
    }
}

#[test]
fn the_markdown_summary_has_verdict_host_steps_and_thresholds() {
    let r = run();
    let md = r.read("summary.md");
    let result = r.json();
    let passed = result["passed"] == true;
    assert!(
        md.lines()
            .next()
            .is_some_and(|l| l.contains(if passed { "PASSED" } else { "FAILED" })),
        "{md}"
    );
    for reason in result["reasons"].as_array().expect("reasons") {
        let reason = reason.as_str().expect("text");
        assert!(md.contains(&format!("- {reason}")), "{reason}\n{md}");
    }
    assert!(md.contains(result["host"].as_str().expect("host")), "{md}");
    assert!(md.contains("**profile** smoke"), "{md}");
    assert!(
        md.contains("| Step | Count | Failures | Avg ms | p50 ms | p95 ms | p99 ms |"),
        "{md}"
    );
    for s in result["steps"].as_array().expect("steps") {
        let kind = s["kind"].as_str().expect("kind");
        let name = s["name"].as_str().expect("name").replace('_', "\\_");
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {kind} {name} |")))
            .unwrap_or_else(|| panic!("no row for {kind} {name}\n{md}"));
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[1], s["count"].to_string(), "{row}");
        assert!(
            cells[2].starts_with(&format!("{} (", s["failures"])),
            "{row}"
        );
    }
    for t in result["thresholds"].as_array().expect("thresholds") {
        let rule = t["rule"].as_str().expect("rule").replace('_', "\\_");
        let rule = rule.replace('<', "&lt;").replace('>', "&gt;");
        assert!(md.contains(&format!("| {rule} |")), "{rule}\n{md}");
    }
}

fn require(what: &str, ok: bool, fix: &str) {
    assert!(
        ok,
        "the browser check needs {what}, which is missing.\nInstall: {fix}\n\
         (all at once, as root: bash scripts/setup.sh)"
    );
}

/// Opens `run`'s report in headless Chromium with tests/e2e/report.mjs (screenshots
/// `target/e2e-screenshots/NAME-phone.png` and `-desktop.png`).
fn check_in_chromium(r: &Run, name: &str, extra: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require("node", node_ok, "apt-get install -y nodejs npm");
    let chromium = std::env::var_os("LOADPLAN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    require(
        &format!("Chromium at {}", chromium.display()),
        chromium.exists(),
        "apt-get install -y chromium chromium-driver (or set LOADPLAN_CHROMIUM)",
    );
    require(
        "playwright-core in tests/e2e/node_modules",
        root.join("tests/e2e/node_modules/playwright-core").is_dir(),
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e",
    );
    let report = r.dir.path().join("report.html");
    assert!(report.is_file(), "no report");
    let shots = root.join("target/e2e-screenshots");
    let out = Command::new("node")
        .current_dir(root)
        .arg("tests/e2e/report.mjs")
        .arg(&report)
        .arg(&shots)
        .arg(name)
        .args(extra)
        .env("LOADPLAN_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the report check failed:\n{text}");
    assert!(shots.join(format!("{name}-phone.png")).is_file());
}

#[test]
fn the_report_fits_a_phone_in_chromium() {
    check_in_chromium(run(), "report", &[]);
}

#[test]
fn the_compared_report_renders_in_chromium() {
    check_in_chromium(compared(), "report-baseline", &["baseline"]);
}

/// The HTML between `marker` and the end of its element `end`.
fn section<'a>(html: &'a str, marker: &str, end: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the report"));
    let rest = &html[at..];
    &rest[..rest.find(end).expect("element ends")]
}

#[test]
fn a_baseline_is_drawn_beside_every_step_in_one_small_file() {
    let (base, r) = (run(), compared());
    let html = r.read("report.html");
    let (then, now) = (base.json(), r.json());
    let base_steps = steps(&then);
    // The comparison table: a row per step of either run and per total, every change judged.
    let table = section(&html, "<table class=\"compare\">", "</table>");
    let mut rows = steps(&now);
    rows.extend(
        base_steps
            .iter()
            .filter(|s| !rows.contains(s))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for (kind, name) in &rows {
        let marker = format!(
            "data-step=\"{}\"",
            loadplan::report::html::escape(&format!("{kind} {name}"))
        );
        let row = section(table, &marker, "</tr>");
        assert_eq!(
            row.matches("data-judged=").count(),
            5,
            "{kind} {name}: {row}"
        );
    }
    let http = &then["totals"]["http"];
    let total = section(
        table,
        "data-step=\"http Aggregated HTTP requests\"",
        "</tr>",
    );
    let base_rate = format!(
        "<td class=\"base\">{:.2}</td>",
        http["rate"].as_f64().expect("rate")
    );
    assert!(total.contains(&base_rate), "{base_rate}: {total}");
    for judged in table.split("data-judged=\"").skip(1) {
        let j = judged.split('"').next().unwrap_or_default();
        assert!(["worse", "better", "few", "same"].contains(&j), "{j}");
    }
    // Every step chart of a step the baseline timed also draws the baseline, dashed.
    for s in now["step_history"].as_array().expect("step_history") {
        let (kind, name) = (
            s["kind"].as_str().expect("kind"),
            s["name"].as_str().expect("name"),
        );
        let marker = format!(
            "data-step=\"{}\"",
            loadplan::report::html::escape(&format!("{kind} {name}"))
        );
        let chart = section(&html, &format!("class=\"step-chart\" {marker}"), "</div>");
        let in_base = then["step_history"]
            .as_array()
            .expect("base step_history")
            .iter()
            .any(|h| h["kind"] == kind && h["name"] == name);
        assert_eq!(
            chart.contains("class=\"baseline\""),
            in_base,
            "{kind} {name}"
        );
        assert_eq!(
            chart.contains(">baseline (dashed)<"),
            in_base,
            "{kind} {name}"
        );
    }
    for forbidden in ["http://", "https://", "<script", "src=", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "the report contains {forbidden:?}"
        );
    }
    assert!(html.len() < 1_000_000, "the report is {} bytes", html.len());
    eprintln!("compared report.html: {} bytes", html.len());
    // The markdown summary carries the changes.
    let md = r.read("summary.md");
    assert!(md.contains("Compared with the baseline `"), "{md}");
    assert!(
        md.contains("| Step | Count | Failures | Req/s | Avg ms | p50 ms | p95 ms | p99 ms |"),
        "{md}"
    );
}
