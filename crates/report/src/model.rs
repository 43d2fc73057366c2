//! [`RunReport`]: the whole result of one run as plain data — the `--json` file, the input of
//! `loadplan compare`, and what the CSV, JUnit and HTML writers render. It is built once, at the
//! end of the run, from the run's merged [`Snapshot`] (percentiles come from merged buckets,
//! never averaged), its history, the profile and the threshold verdicts.
//!
//! Invariants: latencies are milliseconds (the histograms' µs divided by 1000), rates are per
//! second over the measured elapsed time, fractions are `0.0..=1.0`; a number that has no data
//! is `null`, never `NaN`. The JSON Schema in `grammar/result.schema.json` is generated from
//! these types ([`schema`]) and a test keeps the checked-in copy equal to it. Readers ignore
//! fields they do not know, so adding a field does not bump [`FORMAT`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::thresholds::Verdict;
use crate::lang::ir::{Program, Step, WsStep};
use crate::metrics::{HistoryPoint, Latency, PhaseStats, Protocol, Snapshot, StepStats};
use crate::profile::{LoadProfile, Model};
use crate::runtime::RunResult;

/// Version of the result format; bumped only when a field changes meaning or disappears.
pub const FORMAT: u32 = 1;

/// The row name of the all-steps total, as Locust names it.
pub const AGGREGATED: &str = "Aggregated";

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    /// Result format version (currently 1).
    pub format: u32,
    /// The tool that wrote the file, e.g. `loadplan 0.1.0`.
    pub tool: String,
    pub plan: PlanInfo,
    /// The target base URL the load went to (`--host`, the demo target, or the plan's host).
    #[serde(default)]
    pub host: Option<String>,
    pub profile: ProfileInfo,
    /// The seed every random choice derived from (`--seed` reproduces the run).
    pub seed: u64,
    /// Wall-clock start of the run, seconds since the Unix epoch.
    pub started_at: f64,
    /// Measured run time in seconds (load and drain, from the start).
    pub elapsed_secs: f64,
    /// The time every count, rate and the history cover, seconds: `elapsed_secs`, less the
    /// time before a statistics reset. Rates (`rate`, `failure_rate`) are per second of it.
    #[serde(default)]
    pub stats_secs: f64,
    /// When the statistics were reset (seconds since the start), if they were.
    #[serde(default)]
    pub stats_reset_at_secs: Option<f64>,
    /// The load phase (seconds from the start until the duration passed, the iterations were
    /// done or the run was stopped); `elapsed_secs` less this is the drain, while the last
    /// users finished their iterations.
    #[serde(default)]
    pub load_secs: Option<f64>,
    /// The run was stopped early (Ctrl-C, SIGTERM, SIGHUP, a stop from the UI, or a threshold
    /// with `abort_on_fail`); see grammar/run.md.
    pub interrupted: bool,
    /// The threshold rule that stopped the run, if one did.
    pub aborted_by: Option<String>,
    /// Nothing failed: thresholds held (a threshold without data fails unless the profile allows
    /// it), no check failed, at least one request completed, nothing aborted the run, and, when
    /// the profile has no thresholds, no request failed. Exit code 0, or 4 when `interrupted`.
    pub passed: bool,
    /// Why the run failed, one line each as `loadplan run` prints them ("2 checks failed",
    /// "1 thresholds failed", "5 requests failed", "no request completed", "aborted by
    /// threshold …"); empty when it passed.
    #[serde(default)]
    pub reasons: Vec<String>,
    pub users: UsersInfo,
    /// One entry per statistics row that recorded anything, in the plan's order.
    pub steps: Vec<StepReport>,
    /// Locust's `Aggregated` row: every step but groups merged, HTTP requests and WebSocket
    /// messages together (groups time other steps; adding them would count twice). For what a
    /// user acts on, read [`totals`](Self::totals), which keeps the protocols apart.
    pub aggregated: StepReport,
    /// HTTP requests and WebSocket messages as separate totals (docs/metrics.md).
    #[serde(default)]
    pub totals: Totals,
    /// Results by scenario, group and tag: every scenario, group and `key=value` tag the plan
    /// declares, each the exact merge (histograms and counters) of the HTTP and WebSocket rows
    /// it selects (docs/results.md, "Tags and groups").
    #[serde(default)]
    pub breakdown: Vec<BreakdownRow>,
    /// Failures by step, error kind and message, most frequent first.
    pub errors: Vec<ErrorReport>,
    pub iterations: Iterations,
    pub checks: Checks,
    pub thresholds: Vec<ThresholdReport>,
    /// One point per tick (about one per second), over all steps but groups.
    pub history: Vec<HistoryRow>,
    /// Per statistics row, its own timeline: one point per tick in which it recorded
    /// anything (the per-step charts of the HTML report).
    #[serde(default)]
    pub step_history: Vec<StepHistory>,
    /// A distributed run (`loadplan master`): one entry per worker that joined, in the order
    /// they joined; empty for a single process. Their `requests` and `failures` sum to the
    /// merged totals.
    #[serde(default)]
    pub workers: Vec<WorkerInfo>,
    /// A distributed run: each worker lost mid-run and the load missing because of it
    /// (docs/results.md); empty when none was lost.
    #[serde(default)]
    pub gaps: Vec<GapInfo>,
}

/// One worker of a distributed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerInfo {
    /// The master's number for it (0, 1, … in the order the workers joined).
    pub index: u32,
    /// Its name (`--name`, `worker-N` from `JOB_COMPLETION_INDEX` in a Kubernetes Indexed Job,
    /// else host name and process id).
    pub name: String,
    /// Its remote address as the master saw it.
    pub peer: String,
    /// Requests and WebSocket messages it completed (its part of the merged count).
    pub requests: u64,
    pub failures: u64,
    /// Seconds into the run when the master found it lost; `null` if it stayed to the end.
    pub lost_at_secs: Option<f64>,
}

/// A lost worker and the load that was not generated because of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GapInfo {
    /// The lost worker's `index` (see `workers`).
    pub worker: u32,
    pub name: String,
    /// Why it counts as lost (`the connection closed`, `no heartbeat for 5s`, …).
    pub reason: String,
    /// When its last message arrived, seconds into the run: its load after this is missing.
    pub last_heard_secs: f64,
    /// When the master found it lost, seconds into the run.
    pub lost_at_secs: f64,
    /// Users it was running when last heard from.
    pub users_missing: u64,
    /// Its fraction of the whole load (`1/W` for one of `W` workers' original shares).
    pub load_fraction: f64,
    /// What the master did (`--on-worker-loss`): `rebalance`, `continue` or `abort`.
    pub action: String,
    /// When its users were handed to the other workers (`rebalance`).
    pub reassigned_at_secs: Option<f64>,
    /// The workers (indexes) that took its users over.
    pub reassigned_to: Vec<u32>,
    /// Seconds during which its load was not generated: from `last_heard_secs` to the
    /// re-assignment, or to the end of the run.
    pub missing_secs: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanInfo {
    /// The plan's name (`plan "name"`, or the file name).
    pub name: String,
    /// The plan file as given on the command line.
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    /// `closed` (users) or `open` (arrival rate).
    pub model: String,
    pub users: Option<u64>,
    pub spawn_rate: Option<f64>,
    pub arrival_rate: Option<f64>,
    pub max_users: Option<u64>,
    pub duration_secs: Option<f64>,
    pub stages: Vec<StageInfo>,
    pub weights: BTreeMap<String, u32>,
    pub stop_timeout_secs: f64,
}

impl ProfileInfo {
    /// The profile as the JSON states it.
    pub fn of(p: &LoadProfile) -> ProfileInfo {
        let (model, users, spawn_rate, arrival_rate, max_users) = match p.model {
            Model::Closed { users, spawn_rate } => {
                ("closed", Some(users), Some(spawn_rate), None, None)
            }
            Model::Open {
                rate, max_users, ..
            } => ("open", None, None, Some(rate), Some(max_users)),
        };
        ProfileInfo {
            name: p.name.clone(),
            description: p.description.clone(),
            model: model.into(),
            users,
            spawn_rate,
            arrival_rate,
            max_users,
            duration_secs: p.duration.map(|d| d.as_secs_f64()),
            stages: p
                .stages
                .iter()
                .map(|s| StageInfo {
                    duration_secs: s.duration.as_secs_f64(),
                    target: s.target,
                })
                .collect(),
            weights: p.weights.clone(),
            stop_timeout_secs: p.stop_timeout.as_secs_f64(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageInfo {
    pub duration_secs: f64,
    pub target: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsersInfo {
    /// Most users live at once.
    pub peak: u64,
    /// Users started, by scenario.
    pub by_scenario: BTreeMap<String, u64>,
    /// `[seconds since start, live users]` at every change.
    pub timeline: Vec<(f64, u64)>,
}

/// Per-protocol totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    /// Every HTTP request (kind `http`, name `Aggregated HTTP requests`); what a plain `error_rate`,
    /// `p95` or `rate` threshold measures.
    pub http: StepReport,
    /// Every WebSocket message step: connects, sends, receives (one per frame), silences and
    /// closes (kind `ws`, name `Aggregated WebSocket messages`); what `ws_*` thresholds measure.
    pub ws: StepReport,
}

/// One row of the breakdown by scenario, group or tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BreakdownRow {
    /// `scenario`, `group` or `tag`.
    pub by: String,
    /// The tag key (`method`); empty for scenarios and groups.
    pub key: String,
    /// The scenario's or group's name, or the tag's value (`checkout`).
    pub value: String,
    /// The merged rows (`scenario`, `kind` and `name` say what was merged:
    /// `tag`, `method=checkout`).
    pub stats: StepReport,
}

impl BreakdownRow {
    /// `scenario browse`, `group login`, `tag method=checkout`.
    pub fn label(&self) -> String {
        if self.key.is_empty() {
            format!("{} {}", self.by, self.value)
        } else {
            format!("{} {}={}", self.by, self.key, self.value)
        }
    }
}

/// What one breakdown row selects: `(by, key, value)`.
pub type BreakdownKey = (&'static str, String, String);

/// The breakdown rows a plan declares, in order: scenarios (plan order), groups (first
/// appearance), tags (by key, then value), each with the statistics rows it merges: HTTP
/// and WebSocket rows only (groups time other steps and would count them twice).
pub fn breakdown_keys(program: &Program) -> Vec<(BreakdownKey, Vec<u32>)> {
    let counted = |id: usize| counts_in_total(program, id as u32);
    let select = |pred: &dyn Fn(&crate::lang::ir::StatEntry) -> bool| -> Vec<u32> {
        program
            .stats
            .iter()
            .enumerate()
            .filter(|(i, s)| counted(*i) && pred(s))
            .map(|(i, _)| i as u32)
            .collect()
    };
    let mut out = Vec::new();
    for sc in &program.scenarios {
        let ids = select(&|s| s.scenarios.contains(&sc.name));
        out.push((("scenario", String::new(), sc.name.clone()), ids));
    }
    let mut groups: Vec<&String> = Vec::new();
    let mut tags: std::collections::BTreeSet<(&String, &String)> = Default::default();
    for s in &program.stats {
        for g in &s.groups {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        tags.extend(s.tags.iter());
    }
    for g in groups {
        let ids = select(&|s| s.groups.contains(g));
        out.push((("group", String::new(), g.clone()), ids));
    }
    for (k, v) in tags {
        let ids = select(&|s| s.tags.get(k) == Some(v));
        out.push((("tag", k.clone(), v.clone()), ids));
    }
    out
}

/// The breakdown of a snapshot: each declared scenario, group and tag with its merged
/// statistics (see [`breakdown_keys`]).
pub fn breakdown(program: &Program, total: &Snapshot) -> Vec<(BreakdownKey, StepStats)> {
    breakdown_keys(program)
        .into_iter()
        .map(|(key, ids)| {
            let stats = total.aggregate(|id| ids.contains(&id));
            (key, stats)
        })
        .collect()
}

/// [`breakdown`] as the terminal summary's rows: `(by, name, stats)`, where the name of a
/// tag row is `key=value`.
/// Empty for a plan with one scenario and no group or tag (its one row is the total).
pub fn breakdown_rows(program: &Program, total: &Snapshot) -> Vec<(String, String, StepStats)> {
    let rows = breakdown(program, total);
    if rows.len() <= 1 {
        return Vec::new();
    }
    rows.into_iter()
        .map(|((by, key, value), stats)| {
            let name = if key.is_empty() {
                value
            } else {
                format!("{key}={value}")
            };
            (by.to_owned(), name, stats)
        })
        .collect()
}

/// Kind and name of the HTTP total row.
pub const HTTP_TOTAL: (&str, &str) = ("http", "Aggregated HTTP requests");
/// Kind and name of the WebSocket total row.
pub const WS_TOTAL: (&str, &str) = ("ws", "Aggregated WebSocket messages");

/// One statistics row (or the aggregated one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    /// Scenarios whose steps record into this row, comma-separated.
    pub scenario: String,
    /// `GET`, `POST`, … for HTTP; `WS`, `send`, `receive`, `close`, `group`; empty for the
    /// aggregated row.
    pub kind: String,
    /// The statistics name (`/api/racing/track/simple`), or `Aggregated`.
    pub name: String,
    pub count: u64,
    pub failures: u64,
    /// failures / count.
    pub error_rate: f64,
    /// Events per second over the run.
    pub rate: f64,
    /// Failed events per second over the run.
    pub failure_rate: f64,
    /// Whether the plan declares checks on this row's steps.
    pub has_checks: bool,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Bytes received: HTTP response bodies as they came over the wire (still
    /// compressed), WebSocket frame and server-sent event payloads.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// HTTP response bodies after content decoding (gzip, br, …); a body nothing decoded
    /// (not encoded, or not read by a check or capture) counts its wire bytes. See
    /// docs/metrics.md, "bytes".
    #[serde(default)]
    pub bytes_decoded: u64,
    /// Responses per HTTP status code.
    pub statuses: BTreeMap<String, u64>,
    /// Service time (from the actual send); `null` when nothing was timed.
    pub latency_ms: Option<Percentiles>,
    /// Open model: latency from the intended start (coordinated-omission corrected).
    pub corrected_ms: Option<Percentiles>,
    /// `receive` rows: time from the start of the session's latest `send` to each frame
    /// ("reply latency"); `latency_ms` is the wait for each frame.
    #[serde(default)]
    pub reply_ms: Option<Percentiles>,
    /// `receive` rows: time between consecutive frames of a `receive` (inter-arrival).
    #[serde(default)]
    pub interarrival_ms: Option<Percentiles>,
    /// `receive` rows: jitter, the standard deviation of the inter-arrival time (ms).
    #[serde(default)]
    pub jitter_ms: Option<f64>,
    /// HTTP rows: where the time of requests with a whole response went; `null` when
    /// there were none. See docs/metrics.md, "phases".
    #[serde(default)]
    pub phases: Option<PhaseReport>,
}

/// Where HTTP requests' time went (k6's `http_req_connecting`, `waiting`, `receiving`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseReport {
    /// Connections these requests opened (each has a `connect` sample; reused
    /// keep-alive connections have none).
    pub connections: u64,
    /// Name resolution of new connections to a host name (none for an IP literal).
    pub dns_ms: Option<Percentiles>,
    /// TCP connect of new connections, with the TLS handshake on `https://`.
    pub connect_ms: Option<Percentiles>,
    /// From sending the request to its response head: time to first byte, "waiting".
    pub wait_ms: Option<Percentiles>,
    /// Reading the response body, "receiving".
    pub receive_ms: Option<Percentiles>,
}

impl PhaseReport {
    /// `None` when no request had its phases measured.
    pub fn of(p: &PhaseStats) -> Option<Self> {
        if p.wait.is_empty() {
            return None;
        }
        Some(PhaseReport {
            connections: p.connect.len(),
            dns_ms: Percentiles::of(&p.dns),
            connect_ms: Percentiles::of(&p.connect),
            wait_ms: Percentiles::of(&p.wait),
            receive_ms: Percentiles::of(&p.receive),
        })
    }
}

/// Latency distribution in milliseconds (from the HDR histogram: 3 significant digits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p66: f64,
    pub p75: f64,
    pub p80: f64,
    pub p90: f64,
    pub p95: f64,
    pub p98: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    #[serde(rename = "p99.99")]
    pub p99_99: f64,
    pub max: f64,
}

/// The quantiles Locust reports, in its column order (also `Percentiles`' fields).
pub const LOCUST_QUANTILES: [(&str, f64); 11] = [
    ("50%", 0.5),
    ("66%", 0.66),
    ("75%", 0.75),
    ("80%", 0.8),
    ("90%", 0.9),
    ("95%", 0.95),
    ("98%", 0.98),
    ("99%", 0.99),
    ("99.9%", 0.999),
    ("99.99%", 0.9999),
    ("100%", 1.0),
];

impl Percentiles {
    /// `None` for an empty histogram.
    pub fn of(l: &Latency) -> Option<Self> {
        if l.is_empty() {
            return None;
        }
        let q = |q: f64| ms(l.value_at_quantile(q));
        Some(Percentiles {
            min: ms(l.min()),
            mean: l.mean() / 1000.0,
            p50: q(0.5),
            p66: q(0.66),
            p75: q(0.75),
            p80: q(0.8),
            p90: q(0.9),
            p95: q(0.95),
            p98: q(0.98),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: ms(l.max()),
        })
    }

    /// Values in [`LOCUST_QUANTILES`] order.
    pub fn locust_columns(&self) -> [f64; 11] {
        [
            self.p50,
            self.p66,
            self.p75,
            self.p80,
            self.p90,
            self.p95,
            self.p98,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.max,
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorReport {
    /// The failing row's kind and name.
    pub kind: String,
    pub name: String,
    /// Bounded error class (`status`, `timeout`, `check`, `ws_closed`, …).
    pub error_kind: String,
    pub message: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Iterations {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Open model: arrivals that found no free user.
    pub dropped: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Checks {
    pub passed: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdReport {
    /// The rule as written, e.g. `p95[GET /health] <= 500ms`.
    pub rule: String,
    pub metric: String,
    pub step: Option<String>,
    /// The limit as shown (`500.0ms`, `1.00%`, `10.0/s`).
    pub limit: String,
    /// Measured value in the metric's unit (ms for latency, a fraction for rates, req/s for
    /// `rate`); `null` when there was no data.
    pub actual: Option<f64>,
    /// The measured value as shown, or `no data`.
    pub shown: String,
    pub passed: bool,
    pub abort_on_fail: bool,
}

/// One tick of the run's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryRow {
    /// Seconds since the start, at the end of the tick.
    pub t_secs: f64,
    pub users: u64,
    /// Events per second over the tick.
    pub rate: f64,
    /// Failed events per second over the tick.
    pub failure_rate: f64,
    pub total_requests: u64,
    pub total_failures: u64,
    /// Latency percentiles over the tick, ms; `null` when the tick timed nothing.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl HistoryRow {
    /// A history point as the JSON has it (milliseconds).
    pub fn of(p: &HistoryPoint) -> HistoryRow {
        HistoryRow {
            t_secs: p.t_secs,
            users: p.users,
            rate: p.rate,
            failure_rate: p.failure_rate,
            total_requests: p.total_requests,
            total_failures: p.total_failures,
            p50_ms: p.p50_us.map(ms),
            p95_ms: p.p95_us.map(ms),
            p99_ms: p.p99_us.map(ms),
        }
    }
}

/// One statistics row's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepHistory {
    pub kind: String,
    pub name: String,
    pub points: Vec<StepHistoryRow>,
}

/// One tick of one statistics row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepHistoryRow {
    /// Seconds since the start, at the end of the tick.
    pub t_secs: f64,
    /// Events per second over the tick.
    pub rate: f64,
    /// Failed events per second over the tick.
    pub failure_rate: f64,
    /// Latency percentiles over the tick, ms; `null` when the tick timed nothing.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Why a run failed, from its own figures, in the words of `loadplan run`'s verdict
/// (report/thresholds.rs `judge`): failed checks, failed thresholds, failed requests when the
/// profile has no thresholds, no completed request, an abort. `rules` is whether the profile
/// declared thresholds.
pub fn reasons_of(r: &RunReport, rules: bool) -> Vec<String> {
    let mut out = Vec::new();
    if r.checks.failed > 0 {
        out.push(format!("{} checks failed", r.checks.failed));
    }
    let no_data = |t: &ThresholdReport| t.rule == super::thresholds::NO_REQUESTS_RULE;
    let failed = r
        .thresholds
        .iter()
        .filter(|t| !t.passed && !no_data(t))
        .count();
    if failed > 0 {
        out.push(format!("{failed} thresholds failed"));
    }
    let failures = r.totals.http.failures + r.totals.ws.failures;
    if !rules && failures > 0 {
        out.push(format!("{failures} requests failed"));
    }
    if r.thresholds.iter().any(|t| !t.passed && no_data(t)) {
        out.push("no request completed".into());
    }
    if let Some(rule) = &r.aborted_by {
        out.push(format!("aborted by threshold {rule}"));
    }
    out
}

/// What [`RunReport::build`] needs besides the run itself.
pub struct Context<'a> {
    pub program: &'a Program,
    /// The target base URL the run used (`--host`, the demo's address, or the plan's).
    pub host: Option<String>,
    pub profile: &'a LoadProfile,
    pub plan_file: &'a str,
    pub seed: u64,
    pub verdicts: &'a [Verdict],
    pub aborted_by: Option<String>,
    /// The run's verdict, as the exit code states it (the runner decides: thresholds, checks,
    /// failed requests without thresholds, an abort).
    pub passed: bool,
}

impl RunReport {
    pub fn build(cx: &Context<'_>, r: &RunResult) -> RunReport {
        let elapsed = r.elapsed.as_secs_f64();
        let secs = stats_secs(r);
        let with_checks = stats_with_checks(cx.program);
        let mut steps = Vec::new();
        for (&id, stats) in &r.total.steps {
            if stats.count == 0 {
                continue;
            }
            let (scenario, kind, name) = match cx.program.stats.get(id as usize) {
                Some(e) => (e.scenarios.join(","), e.kind.clone(), e.name.clone()),
                None => (String::new(), "?".into(), format!("step #{id}")),
            };
            let has = with_checks.get(id as usize).copied().unwrap_or(false);
            steps.push(step_report(scenario, kind, name, stats, secs, has));
        }
        let aggregated = step_report(
            String::new(),
            String::new(),
            AGGREGATED.into(),
            &aggregate(cx.program, &r.total),
            secs,
            with_checks.iter().any(|&b| b),
        );
        let total_of = |protocol: Protocol, (kind, name): (&str, &str)| {
            step_report(
                String::new(),
                kind.into(),
                name.into(),
                &protocol_total(cx.program, &r.total, protocol),
                secs,
                with_checks
                    .iter()
                    .enumerate()
                    .any(|(id, &b)| b && protocol_of(cx.program, id as u32) == protocol),
            )
        };
        let totals = Totals {
            http: total_of(Protocol::Http, HTTP_TOTAL),
            ws: total_of(Protocol::Ws, WS_TOTAL),
        };
        let breakdown_rows = breakdown_keys(cx.program)
            .into_iter()
            .map(|((by, key, value), ids)| {
                let stats = r.total.aggregate(|id| ids.contains(&id));
                let has = ids
                    .iter()
                    .any(|&id| with_checks.get(id as usize).copied().unwrap_or(false));
                let name = if key.is_empty() {
                    value.clone()
                } else {
                    format!("{key}={value}")
                };
                BreakdownRow {
                    by: by.to_owned(),
                    stats: step_report(String::new(), by.to_owned(), name, &stats, secs, has),
                    key,
                    value,
                }
            })
            .collect();
        let (passed_checks, failed_checks) = r.total.checks();
        let it = &r.total.iterations;
        let thresholds: Vec<ThresholdReport> = cx
            .verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| {
                // Past the profile's rules: the built-in `completed requests >= 1`.
                let t = cx.profile.thresholds.get(i);
                let metric = t.map_or("requests", |t| t.metric.as_str());
                ThresholdReport {
                    rule: v.rule.clone(),
                    metric: metric.to_owned(),
                    step: t.and_then(|t| t.step.clone()),
                    limit: v.limit.clone(),
                    actual: v.actual.map(|a| super::thresholds::display_unit(metric, a)),
                    shown: v.shown.clone(),
                    passed: v.passed,
                    abort_on_fail: t.is_some_and(|t| t.abort_on_fail),
                }
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut report = RunReport {
            format: FORMAT,
            tool: format!("loadplan {}", env!("CARGO_PKG_VERSION")),
            plan: PlanInfo {
                name: cx.program.name.clone(),
                file: cx.plan_file.to_owned(),
            },
            host: cx.host.clone().or_else(|| cx.program.host.clone()),
            profile: ProfileInfo::of(cx.profile),
            seed: cx.seed,
            started_at: (now - elapsed).max(0.0),
            elapsed_secs: elapsed,
            stats_secs: secs,
            stats_reset_at_secs: r.history.reset_at(),
            load_secs: r.history.load_end(),
            interrupted: r.interrupted,
            aborted_by: cx.aborted_by.clone(),
            passed: cx.passed,
            users: UsersInfo {
                peak: r.peak_users,
                by_scenario: r.users_by_scenario.clone(),
                timeline: r.users_timeline.clone(),
            },
            steps,
            aggregated,
            totals,
            breakdown: breakdown_rows,
            errors: errors(cx.program, &r.total),
            iterations: Iterations {
                started: it.started,
                completed: it.completed,
                failed: it.failed,
                dropped: it.dropped,
            },
            checks: Checks {
                passed: passed_checks,
                failed: failed_checks,
            },
            thresholds,
            history: r.history.points().iter().map(HistoryRow::of).collect(),
            step_history: step_history(cx.program, r),
            reasons: Vec::new(),
            workers: Vec::new(),
            gaps: Vec::new(),
        };
        report.reasons = reasons_of(&report, !cx.profile.thresholds.is_empty());
        report
    }

    /// The row for `kind` + `name`, if the run recorded it.
    pub fn step(&self, kind: &str, name: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.kind == kind && s.name == name)
    }
}

/// Every statistics row's own timeline from the history's per-step points, in the plan's
/// order; rows that never recorded anything are left out.
fn step_history(program: &Program, r: &RunResult) -> Vec<StepHistory> {
    let mut by_id: BTreeMap<u32, Vec<StepHistoryRow>> = BTreeMap::new();
    for p in r.history.points() {
        for s in &p.steps {
            by_id.entry(s.id).or_default().push(StepHistoryRow {
                t_secs: p.t_secs,
                rate: s.rate,
                failure_rate: s.failure_rate,
                p50_ms: s.p50_us.map(ms),
                p95_ms: s.p95_us.map(ms),
                p99_ms: s.p99_us.map(ms),
            });
        }
    }
    by_id
        .into_iter()
        .map(|(id, points)| {
            let (kind, name) = match program.stats.get(id as usize) {
                Some(e) => (e.kind.clone(), e.name.clone()),
                None => ("?".into(), format!("step #{id}")),
            };
            StepHistory { kind, name, points }
        })
        .collect()
}

/// The seconds a run's counts cover: its elapsed time less the time before a statistics
/// reset (rates are per second of it).
pub fn stats_secs(r: &RunResult) -> f64 {
    let elapsed = r.elapsed.as_secs_f64();
    (elapsed - r.history.reset_at().unwrap_or(0.0)).max(0.0)
}

/// All HTTP and WebSocket steps merged (not groups, not `set`/`if`/`start`): the
/// "Aggregated" row everywhere.
pub fn aggregate(program: &Program, total: &Snapshot) -> StepStats {
    total.aggregate(|id| counts_in_total(program, id))
}

/// Groups time other steps; counting them in totals would count those steps twice.
pub fn counts_in_total(program: &Program, id: u32) -> bool {
    matches!(protocol_of(program, id), Protocol::Http | Protocol::Ws)
}

/// The protocol of statistics row `id` (an unknown row counts as HTTP).
pub fn protocol_of(program: &Program, id: u32) -> Protocol {
    program
        .stats
        .get(id as usize)
        .map_or(Protocol::Http, |s| Protocol::of_kind(&s.kind))
}

/// Every row of `protocol` merged: the HTTP or the WebSocket total.
pub fn protocol_total(program: &Program, total: &Snapshot, protocol: Protocol) -> StepStats {
    total.aggregate(|id| protocol_of(program, id) == protocol)
}

fn step_report(
    scenario: String,
    kind: String,
    name: String,
    s: &StepStats,
    secs: f64,
    has_checks: bool,
) -> StepReport {
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    StepReport {
        scenario,
        kind,
        name,
        count: s.count,
        failures: s.failures,
        error_rate: s.fail_ratio(),
        rate: per_sec(s.count),
        failure_rate: per_sec(s.failures),
        has_checks,
        checks_passed: s.checks_passed,
        checks_failed: s.checks_failed,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        bytes_decoded: s.bytes_decoded,
        statuses: s
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        latency_ms: Percentiles::of(&s.latency),
        corrected_ms: Percentiles::of(&s.corrected),
        reply_ms: Percentiles::of(&s.reply),
        interarrival_ms: Percentiles::of(&s.gaps),
        jitter_ms: (!s.gaps.is_empty()).then(|| s.gaps.stdev() / 1000.0),
        phases: PhaseReport::of(&s.phases),
    }
}

fn errors(program: &Program, total: &Snapshot) -> Vec<ErrorReport> {
    let mut list: Vec<_> = total.errors.iter().collect();
    list.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    list.into_iter()
        .map(|(k, &count)| {
            let (kind, name) = match program.stats.get(k.step as usize) {
                Some(e) => (e.kind.clone(), e.name.clone()),
                None => ("?".into(), format!("step #{}", k.step)),
            };
            ErrorReport {
                kind,
                name,
                error_kind: k.kind.as_str().to_owned(),
                message: k.message.clone(),
                count,
            }
        })
        .collect()
}

/// µs → ms.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// For each statistics row, whether any step recording into it declares checks.
pub fn stats_with_checks(program: &Program) -> Vec<bool> {
    fn mark(out: &mut [bool], id: u32) {
        if let Some(b) = out.get_mut(id as usize) {
            *b = true;
        }
    }
    fn walk(steps: &[Step], out: &mut Vec<bool>) {
        for step in steps {
            match step {
                Step::Http(h) => {
                    if !h.checks.is_empty() {
                        mark(out, h.stat);
                    }
                    if let Some(e) = h.events.as_ref().filter(|e| !e.checks.is_empty()) {
                        mark(out, e.stat);
                    }
                }
                Step::Ws(ws) => {
                    for s in &ws.steps {
                        if let WsStep::Receive { stat, checks, .. } = s {
                            if !checks.is_empty() {
                                mark(out, *stat);
                            }
                        }
                    }
                }
                Step::Group { steps, .. }
                | Step::Repeat { steps, .. }
                | Step::Pick { steps, .. } => walk(steps, out),
                Step::If {
                    then, otherwise, ..
                } => {
                    walk(then, out);
                    walk(otherwise, out);
                }
                _ => {}
            }
        }
    }
    let mut out = vec![false; program.stats.len()];
    for sc in &program.scenarios {
        walk(&sc.on_start, &mut out);
        walk(&sc.steps, &mut out);
        walk(&sc.on_stop, &mut out);
    }
    out
}

/// The JSON Schema of [`RunReport`], as checked in at `grammar/result.schema.json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RunReport)).unwrap_or_default()
}

/// [`schema`] as the exact text of the checked-in file.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LOADPLAN_BLESS=1 cargo test --lib report::model` rewrites the checked-in schema.
    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../grammar/result.schema.json");
        if std::env::var_os("LOADPLAN_BLESS").is_some() {
            std::fs::write(&path, schema_text()).expect("write schema");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == schema_text(),
            "grammar/result.schema.json is stale: run LOADPLAN_BLESS=1 cargo test --lib report::model"
        );
    }

    #[test]
    fn empty_latency_has_no_percentiles() {
        assert_eq!(Percentiles::of(&Latency::new()), None);
        let mut l = Latency::new();
        l.record(1_500);
        let p = Percentiles::of(&l).expect("one value");
        assert!((p.min - 1.5).abs() < 0.01 && (p.max - 1.5).abs() < 0.01);
        assert_eq!(p.locust_columns().len(), LOCUST_QUANTILES.len());
    }
}
