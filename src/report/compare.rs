//! `loadplan compare`: per-step deltas between two `--json` results (a baseline and a current
//! run) and the regressions beyond a tolerance — the CI gate "did this change make it slower".
//!
//! Rows are matched by kind and statistics name (the plan's stable identity of a step), plus the
//! `Aggregated` row. Regressions, each needing both the relative tolerance and an absolute floor
//! so that noise on tiny numbers is not flagged:
//! - p50/p95/p99 latency rose by more than the tolerance **and** by more than the latency floor;
//! - the error rate rose by more than the tolerance (relative) **and** by more than the error
//!   floor (absolute, in percentage points);
//! - the request rate fell by more than the tolerance.
//!
//! Steps present in only one run are listed as notes, not regressions.

use super::model::{RunReport, StepReport};

/// How strict the comparison is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Relative tolerance, e.g. 0.10 for 10 %.
    pub tolerance: f64,
    /// Latency increases below this many ms are never regressions.
    pub latency_floor_ms: f64,
    /// Error-rate increases below this fraction (0.001 = 0.1 percentage point) are never
    /// regressions.
    pub error_floor: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tolerance: 0.10,
            latency_floor_ms: 1.0,
            error_floor: 0.001,
        }
    }
}

/// One compared number.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    /// `GET /health`, or `Aggregated`.
    pub step: String,
    /// `req/s`, `errors`, `p50`, `p95`, `p99`.
    pub metric: &'static str,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub regression: bool,
}

impl Delta {
    /// Relative change, when both sides have a non-zero baseline.
    pub fn change(&self) -> Option<f64> {
        match (self.baseline, self.current) {
            (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub deltas: Vec<Delta>,
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Delta> {
        self.deltas.iter().filter(|d| d.regression)
    }
}

pub fn compare(base: &RunReport, cur: &RunReport, o: &Options) -> Comparison {
    let mut c = Comparison::default();
    if base.plan.name != cur.plan.name {
        c.notes.push(format!(
            "the runs are of different plans (`{}` and `{}`)",
            base.plan.name, cur.plan.name
        ));
    }
    for b in &base.steps {
        match cur.step(&b.kind, &b.name) {
            Some(s) => step(&mut c, b, s, o),
            None => c
                .notes
                .push(format!("{} {}: only in the baseline", b.kind, b.name)),
        }
    }
    for s in &cur.steps {
        if base.step(&s.kind, &s.name).is_none() {
            c.notes
                .push(format!("{} {}: only in the current run", s.kind, s.name));
        }
    }
    step(&mut c, &base.aggregated, &cur.aggregated, o);
    c
}

fn label(s: &StepReport) -> String {
    if s.kind.is_empty() {
        s.name.clone()
    } else {
        format!("{} {}", s.kind, s.name)
    }
}

fn step(c: &mut Comparison, b: &StepReport, s: &StepReport, o: &Options) {
    let name = label(b);
    let tol = o.tolerance;
    c.deltas.push(Delta {
        step: name.clone(),
        metric: "req/s",
        baseline: Some(b.rate),
        current: Some(s.rate),
        regression: b.rate > 0.0 && s.rate < b.rate * (1.0 - tol),
    });
    let rose = |base: f64, cur: f64, floor: f64| cur > base * (1.0 + tol) && cur - base > floor;
    c.deltas.push(Delta {
        step: name.clone(),
        metric: "errors",
        baseline: Some(b.error_rate),
        current: Some(s.error_rate),
        regression: rose(b.error_rate, s.error_rate, o.error_floor),
    });
    type Pick = fn(&super::model::Percentiles) -> f64;
    let quantiles: [(&'static str, Pick); 3] =
        [("p50", |p| p.p50), ("p95", |p| p.p95), ("p99", |p| p.p99)];
    for (metric, pick) in quantiles {
        let (bv, cv) = (
            b.latency_ms.as_ref().map(pick),
            s.latency_ms.as_ref().map(pick),
        );
        c.deltas.push(Delta {
            step: name.clone(),
            metric,
            baseline: bv,
            current: cv,
            regression: matches!((bv, cv), (Some(x), Some(y)) if rose(x, y, o.latency_floor_ms)),
        });
    }
}

fn value(metric: &str, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if metric == "errors" => format!("{:.2}%", v * 100.0),
        Some(v) if metric == "req/s" => format!("{v:.2}"),
        Some(v) => format!("{v:.3} ms"),
    }
}

fn change(d: &Delta) -> String {
    if d.metric == "errors" {
        return match (d.baseline, d.current) {
            (Some(b), Some(c)) => format!("{:+.2}pp", (c - b) * 100.0),
            _ => "-".into(),
        };
    }
    d.change()
        .map_or_else(|| "-".into(), |r| format!("{:+.1}%", r * 100.0))
}

/// The table of deltas, the notes and a last `result:` line.
pub fn render(c: &Comparison, o: &Options) -> String {
    let rows: Vec<[String; 6]> = c
        .deltas
        .iter()
        .map(|d| {
            [
                d.step.clone(),
                d.metric.to_owned(),
                value(d.metric, d.baseline),
                value(d.metric, d.current),
                change(d),
                if d.regression { "REGRESSION" } else { "" }.to_owned(),
            ]
        })
        .collect();
    let header = ["Step", "Metric", "Baseline", "Current", "Change", ""].map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, r) in std::iter::once(&header).chain(&rows).enumerate() {
        let mut line = String::new();
        for (j, (cell, w)) in r.iter().zip(widths).enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if j < 2 || j == 5 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 10));
            out.push('\n');
        }
    }
    for n in &c.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let n = c.regressions().count();
    if n == 0 {
        out.push_str(&format!(
            "result: no regression beyond {:.0}% tolerance\n",
            o.tolerance * 100.0
        ));
    } else {
        out.push_str(&format!(
            "result: {n} regression{} beyond {:.0}% tolerance\n",
            if n == 1 { "" } else { "s" },
            o.tolerance * 100.0
        ));
    }
    out
}

/// Parses `10%` or `10` (percent) into a fraction.
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!("`{s}` is not a percentage (e.g. 10%)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_a_percentage() {
        assert_eq!(parse_tolerance("10%"), Ok(0.1));
        assert_eq!(parse_tolerance("2.5"), Ok(0.025));
        assert!(parse_tolerance("-1%").is_err());
        assert!(parse_tolerance("ten").is_err());
    }

    #[test]
    fn errors_change_in_percentage_points() {
        let d = Delta {
            step: "x".into(),
            metric: "errors",
            baseline: Some(0.01),
            current: Some(0.035),
            regression: true,
        };
        assert_eq!(change(&d), "+2.50pp");
    }
}
