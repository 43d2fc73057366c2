//! `--summary-md FILE`: the run as a short markdown summary for a pull-request comment (or a
//! CI job summary): the verdict and why, target host, plan and profile, a per-step table
//! (count, failures, avg, p50, p95, p99 in ms), the breakdown by scenario, group and tag, and
//! the thresholds.
//!
//! Invariants: rendered from the same [`RunReport`] as every other file; text from the plan
//! or the run is escaped so that it cannot break the table (`|`, newlines) or become markup.

use super::compare::{self, Beside, Judged};
use super::model::{RunReport, StepReport};

/// Markdown-safe text: table pipes, backticks, angle brackets and newlines neutralised.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn row(out: &mut String, s: &StepReport, bold: bool, beside: Option<&Beside<'_>>) {
    let p = s.latency_ms.as_ref();
    let name = if s.kind.is_empty() || bold {
        esc(&s.name)
    } else {
        esc(&format!("{} {}", s.kind, s.name))
    };
    let b = if bold { "**" } else { "" };
    let Some(beside) = beside else {
        out.push_str(&format!(
            "| {b}{name}{b} | {} | {} ({:.2}%) | {} | {} | {} | {} |\n",
            s.count,
            s.failures,
            s.error_rate * 100.0,
            ms(p.map(|p| p.mean)),
            ms(p.map(|p| p.p50)),
            ms(p.map(|p| p.p95)),
            ms(p.map(|p| p.p99)),
        ));
        return;
    };
    // With a baseline: each compared figure followed by its change, marked when it is a
    // regression (🔴) or an improvement (🟢) by the rules of `loadplan compare`.
    let label = compare::label(s);
    let delta = |metric: &str| match beside.delta(&label, metric) {
        Some((d, judged)) => {
            let mark = match judged {
                Judged::Worse => " 🔴",
                Judged::Better => " 🟢",
                Judged::FewSamples | Judged::Same => "",
            };
            (compare::change(d), mark)
        }
        None => ("new".into(), ""),
    };
    let after = |metric: &str| {
        let (change, mark) = delta(metric);
        format!(" ({change}){mark}")
    };
    let (errors, errors_mark) = delta("errors");
    out.push_str(&format!(
        "| {b}{name}{b} | {} | {} ({:.2}%, {errors}){errors_mark} | {:.2}{} | {} | {}{} | {}{} | {}{} |\n",
        s.count,
        s.failures,
        s.error_rate * 100.0,
        s.rate,
        after("req/s"),
        ms(p.map(|p| p.mean)),
        ms(p.map(|p| p.p50)),
        after("p50"),
        ms(p.map(|p| p.p95)),
        after("p95"),
        ms(p.map(|p| p.p99)),
        after("p99"),
    ));
}

/// The summary document.
pub fn render(r: &RunReport) -> String {
    render_with(r, None)
}

/// The summary document; with a baseline, its verdict line and each compared figure's change
/// (`p95 210 (+12.0%) 🔴`).
pub fn render_with(r: &RunReport, beside: Option<&Beside<'_>>) -> String {
    let mut out = String::new();
    let verdict = if r.passed { "✅ PASSED" } else { "❌ FAILED" };
    out.push_str(&format!(
        "### loadplan: {} — {verdict}\n\n",
        esc(&r.plan.name)
    ));
    if !r.passed {
        if r.reasons.is_empty() {
            out.push_str("Failed (see the thresholds below).\n\n");
        } else {
            out.push_str("Failed because:\n");
            for reason in &r.reasons {
                out.push_str(&format!("- {}\n", esc(reason)));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "**Host** `{}` · **profile** {} ({}) · **plan** `{}` · ran {:.1} s · seed {}{}\n\n",
        r.host.as_deref().unwrap_or("-").replace('`', "'"),
        esc(&r.profile.name),
        esc(&r.profile.model),
        r.plan.file.replace('`', "'"),
        r.elapsed_secs,
        r.seed,
        if r.interrupted { " · interrupted" } else { "" }
    ));
    if let Some(b) = beside {
        baseline_line(&mut out, b);
        out.push_str("| Step | Count | Failures | Req/s | Avg ms | p50 ms | p95 ms | p99 ms |\n");
        out.push_str("|:--|--:|--:|--:|--:|--:|--:|--:|\n");
    } else {
        out.push_str("| Step | Count | Failures | Avg ms | p50 ms | p95 ms | p99 ms |\n");
        out.push_str("|:--|--:|--:|--:|--:|--:|--:|\n");
    }
    for s in &r.steps {
        row(&mut out, s, false, beside);
    }
    match beside {
        // The totals `compare` pairs (the Aggregated rows for results without totals).
        Some(b) => {
            for (_, total) in b.totals(r) {
                row(&mut out, total, true, beside);
            }
        }
        None => {
            for total in [&r.totals.http, &r.totals.ws] {
                if total.count > 0 {
                    row(&mut out, total, true, None);
                }
            }
        }
    }
    out.push('\n');
    // By scenario, group and tag (when there is more than the one scenario's row).
    if r.breakdown.len() > 1 {
        out.push_str(
            "| By scenario, group, tag | Count | Failures | Avg ms | p50 ms | p95 ms | p99 ms |\n",
        );
        out.push_str("|:--|--:|--:|--:|--:|--:|--:|\n");
        for b in &r.breakdown {
            row(&mut out, &b.stats, false, None);
        }
        out.push('\n');
    }
    if !r.thresholds.is_empty() {
        out.push_str("| Threshold | Actual | Limit | Result |\n|:--|--:|--:|:--|\n");
        for t in &r.thresholds {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                esc(&t.rule),
                esc(&t.shown),
                esc(&t.limit),
                if t.passed { "✅ pass" } else { "❌ FAIL" }
            ));
        }
        out.push('\n');
    }
    if r.checks.passed + r.checks.failed > 0 {
        out.push_str(&format!(
            "Checks: {} passed, {} failed.\n\n",
            r.checks.passed, r.checks.failed
        ));
    }
    out.push_str(&format!(
        "<sub>{} · latencies in milliseconds (service time)</sub>\n",
        esc(&r.tool)
    ));
    out
}

/// Which baseline, and what the comparison found.
fn baseline_line(out: &mut String, b: &Beside<'_>) {
    let n = b.worse.regressions().count();
    let found = match n {
        0 => "no regression".to_owned(),
        1 => "**1 regression** 🔴".to_owned(),
        n => format!("**{n} regressions** 🔴"),
    };
    out.push_str(&format!(
        "Compared with the baseline `{}` (seed {}, {:.1} s): {found}. In brackets the change from the baseline (error rate in percentage points); 🔴 worse, 🟢 better, each only beyond the rules of `loadplan compare` ({}).\n\n",
        b.baseline.source.replace('`', "'"),
        b.baseline.report.seed,
        b.baseline.report.elapsed_secs,
        esc(&b.rules())
    ));
    for note in &b.worse.notes {
        out.push_str(&format!("- note: {}\n", esc(note)));
    }
    if !b.worse.notes.is_empty() {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_and_newlines_cannot_break_the_table() {
        assert_eq!(esc("a|b\nc"), "a\\|b c");
        assert_eq!(esc("<b>"), "&lt;b&gt;");
    }
}
