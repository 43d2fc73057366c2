//! Threshold evaluation on merged statistics (never on averaged percentiles).

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
    pub shown: String,
}

fn stats_for(program: &Program, total: &Snapshot, step: Option<&str>) -> Option<StepStats> {
    match step {
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

/// Evaluate thresholds against a total snapshot over `elapsed_secs`.
pub fn evaluate(
    program: &Program,
    thresholds: &[Threshold],
    total: &Snapshot,
    elapsed_secs: f64,
) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let s = stats_for(program, total, t.step.as_deref());
            let actual = s.and_then(|s| {
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
            });
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
            }
        })
        .collect()
}
