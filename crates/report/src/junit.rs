//! `--junit FILE`: the run's verdicts as a JUnit XML report, so CI systems show which rule
//! failed. One `<testsuite name="thresholds">` with a `<testcase>` per threshold and one
//! `<testsuite name="checks">` with a `<testcase>` per statistics row whose steps declare
//! checks (failed when any of its checks failed, skipped when the row never ran).
//!
//! Invariants: written by hand, every text and attribute escaped by [`escape`] (which also
//! drops characters XML 1.0 forbids), so any step name or error message yields well-formed XML.

use super::model::RunReport;

/// Escapes `&`, `<`, `>`, `"`, `'` and drops characters not allowed in XML 1.0.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

struct Case {
    class: String,
    name: String,
    failure: Option<(String, String)>,
    skipped: Option<String>,
}

/// The JUnit document.
pub fn render(report: &RunReport) -> String {
    let thresholds: Vec<Case> = report
        .thresholds
        .iter()
        .map(|t| Case {
            class: "loadplan.thresholds".into(),
            name: t.rule.clone(),
            failure: (!t.passed).then(|| {
                (
                    format!("actual {}, limit {}", t.shown, t.limit),
                    format!(
                        "threshold `{}` failed: actual {}, limit {}{}",
                        t.rule,
                        t.shown,
                        t.limit,
                        if report.aborted_by.as_deref() == Some(t.rule.as_str()) {
                            " (aborted the run)"
                        } else {
                            ""
                        }
                    ),
                )
            }),
            skipped: None,
        })
        .collect();
    let checks: Vec<Case> = report
        .steps
        .iter()
        .filter(|s| s.has_checks)
        .map(|s| {
            let total = s.checks_passed + s.checks_failed;
            Case {
                class: format!("loadplan.checks.{}", s.scenario),
                name: format!("{} {}", s.kind, s.name),
                failure: (s.checks_failed > 0).then(|| {
                    (
                        format!("{} of {total} checks failed", s.checks_failed),
                        format!(
                            "{} of {total} checks failed on {} {} ({} requests, {} failures)",
                            s.checks_failed, s.kind, s.name, s.count, s.failures
                        ),
                    )
                }),
                skipped: (total == 0).then(|| "no check ran".to_owned()),
            }
        })
        .collect();
    let all = thresholds.len() + checks.len();
    let failed = thresholds
        .iter()
        .chain(&checks)
        .filter(|c| c.failure.is_some())
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<testsuites name=\"{}\" tests=\"{all}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">\n",
        escape(&format!("loadplan {}", report.plan.name)),
        report.elapsed_secs
    ));
    suite(&mut out, "thresholds", &thresholds, report.elapsed_secs);
    suite(&mut out, "checks", &checks, report.elapsed_secs);
    out.push_str("</testsuites>\n");
    out
}

fn suite(out: &mut String, name: &str, cases: &[Case], secs: f64) {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    out.push_str(&format!("  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{secs:.3}\">\n",
        cases.len()
    ));
    for c in cases {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{secs:.3}\"",
            escape(&c.class),
            escape(&c.name)
        ));
        match (&c.failure, &c.skipped) {
            (Some((message, text)), _) => {
                out.push_str(&format!(">\n      <failure message=\"{}\" type=\"failure\">{}</failure>\n    </testcase>\n",
                    escape(message),
                    escape(text)
                ));
            }
            (None, Some(message)) => {
                out.push_str(&format!(
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    escape(message)
                ));
            }
            (None, None) => out.push_str("/>\n"),
        }
    }
    out.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_quotes_and_forbidden_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\u{7}\te"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\te"
        );
    }
}
