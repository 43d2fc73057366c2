//! Threshold evaluation on merged statistics (never on averaged percentiles): at the end of a
//! run for the verdicts and the exit code, and on every tick for rules with `abort_on_fail`
//! ([`Watch`]), which stop the run as soon as they fail.
//!
//! What a rule covers: a plain metric (`error_rate`, `p95`, `rate`) means HTTP requests, as
//! k6's `http_req_failed` does; `ws_*` means WebSocket messages and `http_*` says HTTP
//! explicitly; plain `check_rate` covers every check; a `step` selector covers that step;
//! `scenario`, `group` and `tag` selectors narrow a rule to the rows of its breakdown row
//! ([`parse_metric`], docs/metrics.md).
//!
//! Invariants: a rule is evaluated on the run's cumulative [`Snapshot`] only; a rule without
//! data FAILS at the end ("no data": a gate must not pass on nothing), unless the profile says
//! `allow_no_data: true`, while mid-run a rule without data is pending: it shows as passing
//! and never aborts (the ramp may not have reached it yet). [`judge`] adds the rule every run
//! obeys: at least one request completed.

use crate::lang::ir::Program;
use crate::metrics::{ErrorKind, Protocol, Snapshot, StepStats};
use crate::profile::{LoadProfile, Threshold};

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

pub use crate::profile::{BASE_METRICS, Scope, base_metric, known_metrics, parse_metric};

fn stats_for(program: &Program, total: &Snapshot, t: &Threshold) -> Option<StepStats> {
    let scope = parse_metric(&t.metric).map_or(Scope::Http, |(s, _)| s);
    let kind_of = |id: u32| {
        program
            .stats
            .get(id as usize)
            .map_or(Protocol::Http, |s| Protocol::of_kind(&s.kind))
    };
    let in_scope = |id: u32, explicit_step: bool| match (scope, kind_of(id)) {
        (_, Protocol::Group | Protocol::Control) => explicit_step,
        (Scope::Http, Protocol::Http) | (Scope::Ws, Protocol::Ws) | (Scope::All, _) => true,
        // A plain metric on a named step covers that step, whatever its protocol.
        (Scope::Http, Protocol::Ws) => explicit_step && !t.metric.starts_with("http_"),
        (Scope::Ws, Protocol::Http) => false,
    };
    // `scenario=`, `group=` and `tag=` narrow the rule to the steps they select.
    let selected = |id: u32| {
        program.stats.get(id as usize).is_some_and(|s| {
            t.scenario.as_ref().is_none_or(|n| s.scenarios.contains(n))
                && t.group.as_ref().is_none_or(|g| s.groups.contains(g))
                && t.tag
                    .as_ref()
                    .is_none_or(|(k, v)| s.tags.get(k).is_some_and(|x| x == v))
        })
    };
    match t.step.as_deref() {
        None => Some(total.aggregate(|id| in_scope(id, false) && selected(id))),
        Some(name) => {
            let ids: Vec<u32> = program
                .stats
                .iter()
                .enumerate()
                .filter(|(_, s)| s.name == name || format!("{} {}", s.kind, s.name) == name)
                .map(|(i, _)| i as u32)
                .filter(|&i| selected(i))
                .filter(|&i| in_scope(i, true))
                .collect();
            if ids.is_empty() {
                return None;
            }
            Some(total.aggregate(|id| ids.contains(&id)))
        }
    }
}

fn fmt(metric: &str, v: f64) -> String {
    match base_metric(metric) {
        "error_rate" | "check_rate" => format!("{:.2}%", v * 100.0),
        "rate" => format!("{v:.1}/s"),
        _ => format!("{:.1}ms", v / 1000.0),
    }
}

/// A base-unit value in the unit reports show: ms for latency metrics, unchanged otherwise.
pub fn display_unit(metric: &str, v: f64) -> f64 {
    match base_metric(metric) {
        "error_rate" | "check_rate" | "rate" | "requests" => v,
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
    match base_metric(&t.metric) {
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

/// Evaluate one threshold against a total snapshot over `elapsed_secs`. Without data the
/// rule fails, unless `allow_no_data`.
pub fn evaluate_one(
    program: &Program,
    t: &Threshold,
    total: &Snapshot,
    elapsed_secs: f64,
    allow_no_data: bool,
) -> Verdict {
    let actual = stats_for(program, total, t).and_then(|s| actual(t, &s, elapsed_secs));
    let passed = match actual {
        Some(a) => t.max.is_none_or(|m| a <= m) && t.min.is_none_or(|m| a >= m),
        None => allow_no_data,
    };
    let shown = match actual {
        Some(a) => fmt(&t.metric, a),
        None if allow_no_data => "no data (allowed)".into(),
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

/// Evaluate thresholds against a total snapshot over `elapsed_secs` (a rule without data
/// fails).
pub fn evaluate(
    program: &Program,
    thresholds: &[Threshold],
    total: &Snapshot,
    elapsed_secs: f64,
) -> Vec<Verdict> {
    evaluate_all(program, thresholds, total, elapsed_secs, false)
}

/// Every threshold through [`evaluate_one`].
fn evaluate_all(
    program: &Program,
    thresholds: &[Threshold],
    total: &Snapshot,
    elapsed_secs: f64,
    allow_no_data: bool,
) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| evaluate_one(program, t, total, elapsed_secs, allow_no_data))
        .collect()
}

/// Mid-run evaluation for live displays: a rule without data is pending (shown as
/// passing, `no data`), since the ramp may not have reached its step yet.
pub fn evaluate_live(
    program: &Program,
    thresholds: &[Threshold],
    total: &Snapshot,
    elapsed_secs: f64,
) -> Vec<Verdict> {
    let mut verdicts = evaluate_all(program, thresholds, total, elapsed_secs, true);
    for v in &mut verdicts {
        if v.actual.is_none() {
            v.shown = "no data".into();
        }
    }
    verdicts
}

/// Requests that completed: events of every non-group step (HTTP requests, WebSocket
/// messages), successful or failed, except those still in flight when the run stopped
/// (`aborted`).
pub fn completed_requests(program: &Program, total: &Snapshot) -> u64 {
    let not_group = |id: u32| super::model::counts_in_total(program, id);
    let all = total.aggregate(not_group).count;
    let aborted: u64 = total
        .errors
        .iter()
        .filter(|(k, _)| k.kind == ErrorKind::Aborted && not_group(k.step))
        .map(|(_, n)| *n)
        .sum();
    all.saturating_sub(aborted)
}

/// The end-of-run verdict: the profile's thresholds and the rules every run obeys.
#[derive(Clone, Debug, Default)]
pub struct Judgement {
    /// One per threshold, then the failed built-in rule (`completed requests >= 1`) when
    /// it failed, so reports and JUnit show it like any rule.
    pub verdicts: Vec<Verdict>,
    /// Why the run failed, for people (empty when it passed).
    pub reasons: Vec<String>,
}

impl Judgement {
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The rule text of the built-in rule.
pub const NO_REQUESTS_RULE: &str = "completed requests >= 1 (every run)";

/// Judge a finished run: its thresholds (no data fails unless `allow_no_data`), failed
/// checks, any failed request when the profile has no thresholds (as Locust does), and a
/// run in which no request completed (unless `allow_no_data`).
pub fn judge(
    program: &Program,
    profile: &LoadProfile,
    total: &Snapshot,
    elapsed_secs: f64,
) -> Judgement {
    let mut verdicts = evaluate_all(
        program,
        &profile.thresholds,
        total,
        elapsed_secs,
        profile.allow_no_data,
    );
    let mut reasons = Vec::new();
    let (_, checks_failed) = total.checks();
    if checks_failed > 0 {
        reasons.push(format!("{checks_failed} checks failed"));
    }
    let failed_rules = verdicts.iter().filter(|v| !v.passed).count();
    if failed_rules > 0 {
        reasons.push(format!("{failed_rules} thresholds failed"));
    }
    let request_failures = total.failures();
    if profile.thresholds.is_empty() && request_failures > 0 {
        reasons.push(format!("{request_failures} requests failed"));
    }
    let completed = completed_requests(program, total);
    if completed == 0 && !profile.allow_no_data {
        reasons.push("no request completed".into());
        verdicts.push(Verdict {
            rule: NO_REQUESTS_RULE.into(),
            actual: Some(0.0),
            passed: false,
            shown: "0".into(),
            limit: ">= 1 (set `allow_no_data: true` in the profile to allow)".into(),
        });
    }
    Judgement { verdicts, reasons }
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
                let mut v = evaluate_one(program, t, total, elapsed_secs, false);
                if v.actual.is_none() {
                    // Pending: the ramp may not have reached the rule's step yet.
                    v.passed = true;
                }
                if t.abort_on_fail && !v.passed && self.aborted.is_none() {
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
        let src = crate::lang::source::Source::new(
            "p.kdl",
            "scenario \"s\" { http GET \"/a\"; http GET \"/b\"; }\n",
        );
        crate::lang::compile_source(
            &src,
            crate::lang::source::Syntax::Kdl,
            std::path::Path::new("."),
        )
        .expect("compiles")
    }

    fn rule(metric: &str, step: Option<&str>, max: Option<f64>, abort: bool) -> Threshold {
        Threshold {
            metric: metric.into(),
            step: step.map(Into::into),
            scenario: None,
            group: None,
            tag: None,
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

    fn profile(rules: Vec<Threshold>, allow_no_data: bool) -> LoadProfile {
        let mut p = LoadProfile::closed(1, 1.0, None);
        p.thresholds = rules;
        p.allow_no_data = allow_no_data;
        p
    }

    #[test]
    fn a_rule_without_data_fails_unless_allowed() {
        let p = program();
        let mut s = Snapshot::default();
        s.record(Event::new(0, 1_000));
        let rules = vec![
            rule("p95", Some("GET /b"), Some(500_000.0), false),
            rule("error_rate", Some("GET /b"), Some(0.05), false),
        ];
        let j = judge(&p, &profile(rules.clone(), false), &s, 1.0);
        assert!(j.verdicts.iter().all(|v| !v.passed && v.shown == "no data"));
        assert_eq!(j.reasons, ["2 thresholds failed"]);
        let j = judge(&p, &profile(rules, true), &s, 1.0);
        assert!(j.passed(), "{:?}", j.reasons);
        assert!(j.verdicts.iter().all(|v| v.shown == "no data (allowed)"));
    }

    #[test]
    fn a_run_whose_requests_were_all_aborted_completed_none() {
        let p = program();
        let mut s = Snapshot::default();
        let j = judge(&p, &profile(Vec::new(), false), &s, 1.0);
        assert_eq!(j.reasons, ["no request completed"]);
        assert_eq!(j.verdicts.len(), 1);
        assert_eq!(j.verdicts[0].rule, NO_REQUESTS_RULE);
        s.record(Event::new(0, 2_000_000).with_error(ErrorKind::Aborted, "in flight"));
        assert_eq!(completed_requests(&p, &s), 0);
        let j = judge(&p, &profile(Vec::new(), false), &s, 1.0);
        assert_eq!(j.reasons, ["1 requests failed", "no request completed"]);
        s.record(Event::new(1, 1_000));
        assert_eq!(completed_requests(&p, &s), 1);
        assert!(judge(&p, &profile(Vec::new(), true), &Snapshot::default(), 1.0).passed());
    }

    #[test]
    fn metric_names_say_what_they_cover() {
        assert_eq!(
            parse_metric("error_rate"),
            Some((Scope::Http, "error_rate"))
        );
        assert_eq!(parse_metric("p95"), Some((Scope::Http, "p95")));
        assert_eq!(parse_metric("http_p95"), Some((Scope::Http, "p95")));
        assert_eq!(parse_metric("ws_p99.9"), Some((Scope::Ws, "p99.9")));
        assert_eq!(parse_metric("check_rate"), Some((Scope::All, "check_rate")));
        assert_eq!(
            parse_metric("ws_check_rate"),
            Some((Scope::Ws, "check_rate"))
        );
        assert_eq!(parse_metric("grpc_rate"), None);
        assert_eq!(parse_metric("ws_"), None);
        assert_eq!(base_metric("ws_error_rate"), "error_rate");
        assert!(known_metrics().contains(&"ws_error_rate".to_owned()));
    }
}
