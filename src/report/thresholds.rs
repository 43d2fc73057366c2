//! Threshold evaluation on merged statistics (never on averaged percentiles): at the end of a
//! run for the verdicts and the exit code, and on every tick for rules with `abort_on_fail`
//! ([`Watch`]), which stop the run as soon as they fail.
//!
//! Invariants: a rule is evaluated on the run's cumulative [`Snapshot`] only; a rule without
//! data passes for `error_rate`/`check_rate` (nothing failed) and fails otherwise at the end,
//! while mid-run a rule without data never aborts (the ramp may not have reached it yet).

use crate::lang::ir::Program;
use crate::metrics::{Snapshot, StepStats};
use crate::profile::Threshold;

/// One threshold's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub rule: String,
    /// Actual value in the rule's base unit (µs, fraction, req/s); None when no data.
    pub actual: Option<f64>,
    pub passed: bool,
    /// The actual value for people (`734.0ms`, `1.25%`, `12.0/s`, `no data`).
    pub shown: String,
    /// The limit(s) for people (`<= 500.0ms`, `>= 10.0/s`).
    pub limit: String,
}

impl Verdict {
    /// `PASS p95 <= 500ms  actual 312.0ms, limit <= 500.0ms` (no trailing whitespace).
    pub fn line(&self) -> String {
        format!(
            "{} {:<40} actual {}, limit {}",
            if self.passed { "PASS" } else { "FAIL" },
            self.rule,
            self.shown,
            self.limit
        )
    }
}

fn stats_for(program: &Program, total: &Snapshot, t: &Threshold) -> Option<StepStats> {
    match t.step.as_deref() {
        // A plan scenario's own rule: that scenario's steps (groups excluded).
        None if t.scenario.is_some() => Some(total.aggregate(|id| {
            program.stats.get(id as usize).is_some_and(|s| {
                s.kind != "group" && t.scenario.as_ref().is_some_and(|n| s.scenarios.contains(n))
            })
        })),
        None => Some(total.aggregate(|id| {
            program
                .stats
                .get(id as usize)
                .is_none_or(|s| s.kind != "group")
        })),
        Some(name) => {
            let ids: Vec<u32> = program
                .stats
                .iter()
                .enumerate()
                .filter(|(_, s)| s.name == name || format!("{} {}", s.kind, s.name) == name)
                .map(|(i, _)| i as u32)
                .collect();
            if ids.is_empty() {
                return None;
            }
            Some(total.aggregate(|id| ids.contains(&id)))
        }
    }
}

fn fmt(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" | "check_rate" => format!("{:.2}%", v * 100.0),
        "rate" => format!("{v:.1}/s"),
        _ => format!("{:.1}ms", v / 1000.0),
    }
}

/// A base-unit value in the unit reports show: ms for latency metrics, unchanged otherwise.
pub fn display_unit(metric: &str, v: f64) -> f64 {
    match metric {
        "error_rate" | "check_rate" | "rate" => v,
        _ => v / 1000.0,
    }
}

fn limit_text(t: &Threshold) -> String {
    let mut parts = Vec::new();
    if let Some(m) = t.max {
        parts.push(format!("<= {}", fmt(&t.metric, m)));
    }
    if let Some(m) = t.min {
        parts.push(format!(">= {}", fmt(&t.metric, m)));
    }
    parts.join(" and ")
}

fn actual(t: &Threshold, s: &StepStats, elapsed_secs: f64) -> Option<f64> {
    let lat = &s.latency;
    match t.metric.as_str() {
        "error_rate" => (s.count > 0).then(|| s.failures as f64 / s.count as f64),
        "check_rate" => {
            let n = s.checks_passed + s.checks_failed;
            (n > 0).then(|| s.checks_passed as f64 / n as f64)
        }
        "rate" => (elapsed_secs > 0.0).then(|| s.count as f64 / elapsed_secs),
        "max" => (!lat.is_empty()).then(|| lat.max() as f64),
        "avg" => (!lat.is_empty()).then(|| lat.mean()),
        p => {
            let q = match p {
                "p50" => 0.5,
                "p90" => 0.9,
                "p95" => 0.95,
                "p99" => 0.99,
                _ => 0.999,
            };
            (!lat.is_empty()).then(|| lat.value_at_quantile(q) as f64)
        }
    }
}

/// Evaluate one threshold against a total snapshot over `elapsed_secs`.
pub fn evaluate_one(
    program: &Program,
    t: &Threshold,
    total: &Snapshot,
    elapsed_secs: f64,
) -> Verdict {
    let actual = stats_for(program, total, t).and_then(|s| actual(t, &s, elapsed_secs));
    let passed = match actual {
        Some(a) => t.max.is_none_or(|m| a <= m) && t.min.is_none_or(|m| a >= m),
        None => t.metric == "error_rate" || t.metric == "check_rate",
    };
    let shown = match actual {
        Some(a) => fmt(&t.metric, a),
        None => "no data".into(),
    };
    Verdict {
        rule: t.text.clone(),
        actual,
        passed,
        shown,
        limit: limit_text(t),
    }
}

/// Evaluate thresholds against a total snapshot over `elapsed_secs`.
pub fn evaluate(
    program: &Program,
    thresholds: &[Threshold],
    total: &Snapshot,
    elapsed_secs: f64,
) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| evaluate_one(program, t, total, elapsed_secs))
        .collect()
}

/// Mid-run evaluation, once per tick: every rule's current state (for the Prometheus gauges)
/// and the first failing `abort_on_fail` rule, which stops the run.
#[derive(Debug, Default)]
pub struct Watch {
    /// The verdict that aborted the run, once one did.
    pub aborted: Option<Verdict>,
}

impl Watch {
    /// Evaluates `thresholds` on the running total; returns the verdicts (empty when
    /// `all` is false and no rule aborts) and records the first failing abort rule.
    pub fn tick(
        &mut self,
        program: &Program,
        thresholds: &[Threshold],
        total: &Snapshot,
        elapsed_secs: f64,
        all: bool,
    ) -> Vec<Option<Verdict>> {
        thresholds
            .iter()
            .map(|t| {
                if !all && !t.abort_on_fail {
                    return None;
                }
                let v = evaluate_one(program, t, total, elapsed_secs);
                if t.abort_on_fail && !v.passed && v.actual.is_some() && self.aborted.is_none() {
                    self.aborted = Some(v.clone());
                }
                Some(v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Event;

    fn program() -> Program {
        let src = crate::source::Source::new(
            "p.kdl",
            "scenario \"s\" { http GET \"/a\"; http GET \"/b\"; }\n",
        );
        crate::lang::compile_source(&src, crate::source::Syntax::Kdl, std::path::Path::new("."))
            .expect("compiles")
    }

    fn rule(metric: &str, step: Option<&str>, max: Option<f64>, abort: bool) -> Threshold {
        Threshold {
            metric: metric.into(),
            step: step.map(Into::into),
            scenario: None,
            max,
            min: None,
            abort_on_fail: abort,
            text: format!("{metric} rule"),
        }
    }

    #[test]
    fn verdict_lines_name_rule_actual_and_limit() {
        let p = program();
        let mut s = Snapshot::default();
        for us in [1_000, 2_000, 900_000] {
            s.record(Event::new(0, us));
        }
        let v = evaluate(&p, &[rule("max", None, Some(500_000.0), false)], &s, 1.0);
        assert!(!v[0].passed);
        let line = v[0].line();
        assert!(line.starts_with("FAIL max rule"), "{line}");
        assert!(line.ends_with("actual 900.1ms, limit <= 500.0ms"), "{line}");
    }

    #[test]
    fn watch_reports_the_first_failing_abort_rule_only() {
        let p = program();
        let mut s = Snapshot::default();
        s.record(Event::new(1, 10).with_error(crate::metrics::ErrorKind::Status, "500"));
        let rules = [
            rule("error_rate", Some("GET /a"), Some(0.01), true),
            rule("error_rate", Some("GET /b"), Some(0.01), false),
            rule("error_rate", Some("/b"), Some(0.01), true),
        ];
        let mut w = Watch::default();
        let states = w.tick(&p, &rules, &s, 1.0, false);
        assert!(states[1].is_none());
        // No data on /a: passes, and never aborts.
        assert!(states[0].as_ref().is_some_and(|v| v.passed));
        assert_eq!(
            w.aborted.as_ref().map(|v| v.rule.as_str()),
            Some("error_rate rule")
        );
        assert_eq!(
            w.aborted.as_ref().map(|v| v.shown.as_str()),
            Some("100.00%")
        );
    }
}
