//! `loadplan compare`: per-step deltas between two `--json` results (a baseline and a current
//! run) and the regressions beyond a tolerance — the CI gate "did this change make it slower".
//!
//! Rows are matched by kind and statistics name (the plan's stable identity of a step), plus the
//! HTTP and WebSocket totals (`Aggregated` for results written before the totals existed).
//! Regressions, each needing both the relative tolerance and an absolute floor so that noise on
//! tiny numbers is not flagged, **and** at least [`Options::min_samples`] events in both runs,
//! **and** a difference beyond chance at 99 % confidence ([`Z`]), so two identical runs never
//! show one:
//! - p50/p95/p99 latency rose by more than the tolerance and the latency floor, and above the
//!   baseline's upper confidence bound for that percentile (the distribution-free bound of the
//!   rank `q + Z·√(q(1−q)/n) + 1/n`, read from the baseline's reported percentiles; the
//!   baseline's max when that rank is past the last sample);
//! - the error rate rose by more than the tolerance (relative) and the error floor (absolute,
//!   in percentage points), and a two-proportion z-test says so;
//! - the request rate fell by more than the tolerance and a Poisson z-test says so.
//!
//! Rows below the sample minimum are still shown, marked `few samples`.
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
    /// Rows with fewer events than this in either run never regress.
    pub min_samples: u64,
}

/// One-sided z for 99 % confidence.
pub const Z: f64 = 2.326;

/// Default of [`Options::min_samples`].
pub const MIN_SAMPLES: u64 = 10;

impl Default for Options {
    fn default() -> Self {
        Options {
            tolerance: 0.10,
            latency_floor_ms: 1.0,
            error_floor: 0.001,
            min_samples: MIN_SAMPLES,
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
    /// Fewer than the minimum samples in either run: shown, never a regression.
    pub few_samples: bool,
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
    let (bt, ct) = (&base.totals, &cur.totals);
    if bt.http.count + bt.ws.count == 0 || ct.http.count + ct.ws.count == 0 {
        step(&mut c, &base.aggregated, &cur.aggregated, o);
    } else {
        for (b, s) in [(&bt.http, &ct.http), (&bt.ws, &ct.ws)] {
            if b.count + s.count > 0 {
                step(&mut c, b, s, o);
            }
        }
    }
    c
}

/// The baseline's quantile function, linear between its reported percentiles.
fn quantile_at(p: &super::model::Percentiles, q: f64) -> f64 {
    let points = [
        (0.0, p.min),
        (0.5, p.p50),
        (0.66, p.p66),
        (0.75, p.p75),
        (0.8, p.p80),
        (0.9, p.p90),
        (0.95, p.p95),
        (0.98, p.p98),
        (0.99, p.p99),
        (0.999, p.p99_9),
        (0.9999, p.p99_99),
        (1.0, p.max),
    ];
    let q = q.clamp(0.0, 1.0);
    for w in points.windows(2) {
        let ((q0, v0), (q1, v1)) = (w[0], w[1]);
        if q <= q1 {
            let t = if q1 > q0 { (q - q0) / (q1 - q0) } else { 1.0 };
            return v0 + t * (v1 - v0);
        }
    }
    p.max
}

/// Upper 99 % confidence bound of the baseline's `q` quantile from `n` samples.
pub fn upper_bound(p: &super::model::Percentiles, n: u64, q: f64) -> f64 {
    let n = n.max(1) as f64;
    let rank = q + Z * (q * (1.0 - q) / n).sqrt() + 1.0 / n;
    if rank >= 1.0 {
        p.max
    } else {
        quantile_at(p, rank)
    }
}

/// Whether the error rate rose beyond chance (two-proportion z-test).
fn errors_rose(b: &StepReport, s: &StepReport) -> bool {
    let (nb, nc) = (b.count as f64, s.count as f64);
    let pool = (b.failures + s.failures) as f64 / (nb + nc);
    let se = (pool * (1.0 - pool) * (1.0 / nb + 1.0 / nc)).sqrt();
    se > 0.0 && (s.error_rate - b.error_rate) / se > Z
}

/// Whether the request rate fell beyond chance (counts as Poisson).
fn rate_fell(b: &StepReport, s: &StepReport) -> bool {
    let var = b.rate * b.rate / b.count as f64 + s.rate * s.rate / s.count as f64;
    var > 0.0 && (b.rate - s.rate) / var.sqrt() > Z
}

/// A row's name in the comparison: `GET /health`, or the name alone for a kindless row.
pub fn label(s: &StepReport) -> String {
    if s.kind.is_empty() {
        s.name.clone()
    } else {
        format!("{} {}", s.kind, s.name)
    }
}

fn step(c: &mut Comparison, b: &StepReport, s: &StepReport, o: &Options) {
    let name = label(b);
    let tol = o.tolerance;
    let few = b.count < o.min_samples.max(1) || s.count < o.min_samples.max(1);
    c.deltas.push(Delta {
        step: name.clone(),
        metric: "req/s",
        baseline: Some(b.rate),
        current: Some(s.rate),
        regression: !few && b.rate > 0.0 && s.rate < b.rate * (1.0 - tol) && rate_fell(b, s),
        few_samples: few,
    });
    let rose = |base: f64, cur: f64, floor: f64| cur > base * (1.0 + tol) && cur - base > floor;
    c.deltas.push(Delta {
        step: name.clone(),
        metric: "errors",
        baseline: Some(b.error_rate),
        current: Some(s.error_rate),
        regression: !few && rose(b.error_rate, s.error_rate, o.error_floor) && errors_rose(b, s),
        few_samples: few,
    });
    type Pick = fn(&super::model::Percentiles) -> f64;
    let quantiles: [(&'static str, f64, Pick); 3] = [
        ("p50", 0.5, |p| p.p50),
        ("p95", 0.95, |p| p.p95),
        ("p99", 0.99, |p| p.p99),
    ];
    for (metric, q, pick) in quantiles {
        let (bv, cv) = (
            b.latency_ms.as_ref().map(pick),
            s.latency_ms.as_ref().map(pick),
        );
        let beyond_chance = b
            .latency_ms
            .as_ref()
            .zip(cv)
            .is_some_and(|(p, y)| y > upper_bound(p, b.count, q));
        c.deltas.push(Delta {
            step: name.clone(),
            metric,
            baseline: bv,
            current: cv,
            regression: !few
                && beyond_chance
                && matches!((bv, cv), (Some(x), Some(y)) if rose(x, y, o.latency_floor_ms)),
            few_samples: few,
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

/// The change as shown: `+12.0%`, or `+0.50pp` for the error rate; `-` without a base.
pub fn change(d: &Delta) -> String {
    if d.metric == "errors" {
        return match (d.baseline, d.current) {
            (Some(b), Some(c)) => format!("{:+.2}pp", (c - b) * 100.0),
            _ => "-".into(),
        };
    }
    d.change()
        .map_or_else(|| "-".into(), |r| format!("{:+.1}%", r * 100.0))
}

/// A baseline result read for `run --baseline FILE` (or the first file of `compare`).
#[derive(Clone, Debug)]
pub struct Baseline {
    pub report: RunReport,
    /// Where it was read from, as shown in the report.
    pub source: String,
}

/// How one compared number came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// A regression by the rules of [`compare`].
    Worse,
    /// The same rules with the runs swapped: an improvement beyond noise.
    Better,
    /// Fewer than [`Options::min_samples`] events in either run: never judged.
    FewSamples,
    /// Within the tolerance, the floors or chance.
    Same,
}

impl Judged {
    /// The CSS class / data attribute value of the HTML report.
    pub fn as_str(self) -> &'static str {
        match self {
            Judged::Worse => "worse",
            Judged::Better => "better",
            Judged::FewSamples => "few",
            Judged::Same => "same",
        }
    }
}

/// A baseline beside a run (the HTML report and the markdown summary with `--baseline`, and
/// `compare --html`): the regressions as [`compare`] finds them, and the improvements by the
/// same rules with the two runs swapped, so "better" is as strict as "worse".
pub struct Beside<'a> {
    pub baseline: &'a Baseline,
    pub options: Options,
    pub worse: Comparison,
    better: Comparison,
}

impl<'a> Beside<'a> {
    pub fn new(baseline: &'a Baseline, current: &RunReport, options: Options) -> Self {
        Beside {
            worse: compare(&baseline.report, current, &options),
            better: compare(current, &baseline.report, &options),
            baseline,
            options,
        }
    }

    /// The delta of row `step` (a [`label`]) and `metric`, and its verdict.
    pub fn delta(&self, step: &str, metric: &str) -> Option<(&Delta, Judged)> {
        let d = self
            .worse
            .deltas
            .iter()
            .find(|d| d.step == step && d.metric == metric)?;
        let better = self
            .better
            .deltas
            .iter()
            .any(|d| d.step == step && d.metric == metric && d.regression);
        let judged = if d.regression {
            Judged::Worse
        } else if d.few_samples {
            Judged::FewSamples
        } else if better {
            Judged::Better
        } else {
            Judged::Same
        };
        Some((d, judged))
    }

    /// The total rows compared, as [`compare`] pairs them: HTTP and WebSocket totals, or the
    /// `Aggregated` rows when either run has no per-protocol totals.
    pub fn totals<'r>(&'r self, current: &'r RunReport) -> Vec<(&'r StepReport, &'r StepReport)> {
        let (bt, ct) = (&self.baseline.report.totals, &current.totals);
        if bt.http.count + bt.ws.count == 0 || ct.http.count + ct.ws.count == 0 {
            return vec![(&self.baseline.report.aggregated, &current.aggregated)];
        }
        [(&bt.http, &ct.http), (&bt.ws, &ct.ws)]
            .into_iter()
            .filter(|(b, c)| b.count + c.count > 0)
            .collect()
    }

    /// `10% tolerance, 1 ms and 0.1 pp floors, 99 % confidence, at least 10 events`.
    pub fn rules(&self) -> String {
        let o = &self.options;
        format!(
            "{}% tolerance, {} ms latency floor, {} pp error-rate floor, beyond chance at 99% confidence, at least {} events in both runs",
            short(o.tolerance * 100.0),
            short(o.latency_floor_ms),
            short(o.error_floor * 100.0),
            o.min_samples
        )
    }
}

/// `10`, `0.1`, `2.5`: at most 3 decimals, no trailing zeros.
fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
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
                if d.regression {
                    "REGRESSION"
                } else if d.few_samples {
                    "few samples"
                } else {
                    ""
                }
                .to_owned(),
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
            few_samples: false,
        };
        assert_eq!(change(&d), "+2.50pp");
    }

    fn row(latencies_ms: &[f64], failures: u64, secs: f64) -> StepReport {
        let mut l = crate::metrics::Latency::new();
        for ms in latencies_ms {
            l.record((ms * 1000.0) as u64);
        }
        let count = latencies_ms.len() as u64;
        StepReport {
            kind: "GET".into(),
            name: "/a".into(),
            count,
            failures,
            error_rate: failures as f64 / count as f64,
            rate: count as f64 / secs,
            latency_ms: super::super::model::Percentiles::of(&l),
            ..StepReport::default()
        }
    }

    fn deltas(b: &StepReport, s: &StepReport) -> Vec<(&'static str, bool, bool)> {
        let mut c = Comparison::default();
        step(&mut c, b, s, &Options::default());
        c.deltas
            .iter()
            .map(|d| (d.metric, d.regression, d.few_samples))
            .collect()
    }

    #[test]
    fn a_step_with_few_samples_never_regresses() {
        // 5 samples each: one slow outlier moves p95/p99 by 75 % and 1.5 ms, one failure
        // 0 → 20 %, and a slower elapsed time the rate by 25 %: all flagged by the old rule.
        let b = row(&[1.0, 1.0, 1.0, 1.0, 2.0], 0, 1.0);
        let s = row(&[1.0, 1.0, 1.0, 1.0, 3.5], 1, 1.25);
        for (metric, regression, few) in deltas(&b, &s) {
            assert!(!regression && few, "{metric}");
        }
    }

    #[test]
    fn a_median_shift_inside_the_confidence_bound_is_not_a_regression() {
        // 40 samples each (10..55 ms, four of each); four samples move from 20 to 40 ms: the
        // median rises 30 → 35 ms (+17 %, +5 ms, flagged by the old rule) but stays below
        // the baseline's 99 % upper bound for the median (~40 ms at n = 40).
        let base: Vec<f64> = (0..40).map(|i| 10.0 + f64::from(i % 10) * 5.0).collect();
        let cur: Vec<f64> = base
            .iter()
            .map(|&v| if (v - 20.0).abs() < 1e-9 { 40.0 } else { v })
            .collect();
        let (b, s) = (row(&base, 0, 4.0), row(&cur, 0, 4.4));
        let d = deltas(&b, &s);
        let p50 = (
            b.latency_ms.as_ref().map(|p| p.p50),
            s.latency_ms.as_ref().map(|p| p.p50),
        );
        assert!(p50.1 > p50.0.map(|v| v * 1.1 + 1.0), "{p50:?}");
        assert!(d.iter().all(|(_, r, _)| !r), "{d:?}");
    }

    #[test]
    fn a_real_shift_with_enough_samples_is_a_regression() {
        let base: Vec<f64> = (0..200).map(|i| 1.0 + f64::from(i % 20) * 0.25).collect();
        let slow: Vec<f64> = base.iter().map(|v| v * 3.0 + 20.0).collect();
        let (b, s) = (row(&base, 0, 10.0), row(&slow, 40, 10.0));
        let d = deltas(&b, &s);
        for metric in ["p50", "p95", "p99", "errors"] {
            assert!(
                d.iter().any(|(m, r, _)| *m == metric && *r),
                "{metric}: {d:?}"
            );
        }
        // Same counts over the same time: the rate did not fall.
        assert!(d.iter().any(|(m, r, _)| *m == "req/s" && !r), "{d:?}");
    }

    #[test]
    fn the_upper_bound_is_the_max_past_the_last_sample() {
        let b = row(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0, 1.0);
        let p = b.latency_ms.as_ref().expect("percentiles");
        assert!((upper_bound(p, 10, 0.99) - p.max).abs() < 1e-9);
        assert!(upper_bound(p, 10_000, 0.5) < p.p66);
    }
}
