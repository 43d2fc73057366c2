//! The [`Hub`]: the web UI's view of a run, fed by the same per-second [`Tick`]s the terminal
//! and the report sinks get, and read by the HTTP handlers.
//!
//! The driver calls [`Hub::tick`] from its tick callback; the hub keeps the run's cumulative
//! [`Snapshot`], a copy of its history and the threshold verdicts, and broadcasts one JSON
//! event per tick to the server-sent-event subscribers. At the end, [`Hub::finish`] stores the
//! driver's [`RunResult`] and the final verdicts, so downloads render the exact end-of-run
//! numbers through the report writers.
//!
//! Invariants: the state lock is a `std` mutex held only for in-memory work (never across an
//! `.await`); a tick does bounded work and never blocks on a slow browser (the event channel
//! is a bounded broadcast; lagging subscribers lose old events, not the run); control commands
//! go through [`Control::send`], the one command type shared with signals and the master.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::control::{Command, Control};
use crate::lang::ir::Program;
use crate::metrics::{History, HistoryPoint, Protocol, ROLLING_SECS};
use crate::profile::{LoadProfile, Model};
use crate::report::RunReport;
use crate::report::model::{
    Checks, Context, ErrorReport, HistoryRow, Iterations, ProfileInfo, StepReport, ThresholdReport,
    counts_in_total, ms, protocol_of, stats_secs,
};
use crate::report::thresholds::{Verdict, evaluate_live, judge};
use crate::runtime::RunResult;
use crate::runtime::driver::Tick;

/// The most `stats_history.csv` the UI keeps in memory; past it, rows stop (the download
/// says so in a header; `--csv` files are not limited).
const HISTORY_CSV_CAP: usize = 32 << 20;

/// Events kept for slow subscribers before they start losing the oldest.
const EVENT_BACKLOG: usize = 16;

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing started yet (`loadplan ui` waiting for the browser).
    Idle,
    Running,
    /// A stop was asked; users are finishing their iterations.
    Stopping,
    /// The run ended (normally, stopped, or failed to start: see `error`).
    Stopped,
}

/// Why a control request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not possible in the current state (HTTP 409).
    Conflict(String),
    /// A bad value (HTTP 400).
    Invalid(String),
}

/// The settings a run started with.
#[derive(Clone, Debug)]
pub struct Start {
    pub profile: LoadProfile,
    pub host: Option<String>,
    pub seed: u64,
}

struct Live {
    status: Status,
    /// Counts runs started by this hub (the browser refetches when it changes).
    run: u64,
    start: Option<Start>,
    control: Option<Control>,
    result: RunResult,
    planned: Option<Duration>,
    users: u64,
    /// Per statistics row: (events/s, failures/s) over the rolling window (the last
    /// [`ROLLING_SECS`], less at the start or after a reset).
    current: BTreeMap<u32, (f64, f64)>,
    /// The ticks of the rolling window: (length in seconds, per row (events, failures)).
    recent: std::collections::VecDeque<(f64, RowCounts)>,
    verdicts: Vec<Verdict>,
    /// Set when the run has ended: the run's verdict as `loadplan run` states it.
    passed: Option<bool>,
    aborted_by: Option<String>,
    error: Option<String>,
    /// A distributed run (`loadplan master --ui`): the worker table of the latest tick
    /// (`None` for a single process). Such a run can only be stopped from the UI.
    workers: Option<serde_json::Value>,
    /// `stats_history.csv` of the run so far, as `--csv` streams it.
    history_csv: crate::report::csv::HistoryWriter<Vec<u8>>,
    /// The history CSV reached [`HISTORY_CSV_CAP`]: later ticks are not in it.
    history_truncated: bool,
}

/// Shared between the run (ticks) and the HTTP handlers; see the module docs.
pub struct Hub {
    program: Arc<Program>,
    plan_file: String,
    live: Mutex<Live>,
    events: broadcast::Sender<Arc<str>>,
    /// Ticks go to the hub's own task (off the load path); `None` outside a runtime, where
    /// they are applied in place.
    ticks: Option<tokio::sync::mpsc::UnboundedSender<OwnedTick>>,
    /// The run the ticks belong to (mirrors `Live::run` without taking the lock).
    run_id: std::sync::atomic::AtomicU64,
}

/// Per statistics row: (events, failures).
type RowCounts = BTreeMap<u32, (u64, u64)>;

/// A tick as the hub's task receives it.
struct OwnedTick {
    run: u64,
    elapsed: Duration,
    planned: Option<Duration>,
    users: u64,
    total: crate::metrics::Snapshot,
    delta: crate::metrics::Snapshot,
    point: HistoryPoint,
}

#[derive(Serialize)]
struct Totals {
    http: Row,
    ws: Row,
}

/// A statistics row with its current (last tick) rates.
#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    step: StepReport,
    current_rate: f64,
    current_failure_rate: f64,
}

#[derive(Serialize)]
struct Stats {
    steps: Vec<Row>,
    /// Locust's `Aggregated` row (every step but groups, both protocols).
    aggregated: Row,
    /// HTTP requests and WebSocket messages apart (docs/metrics.md).
    totals: Totals,
    errors: Vec<ErrorReport>,
    /// By scenario, group and tag (the page's Tags tab; see [`RunReport::breakdown`]).
    breakdown: Vec<crate::report::model::BreakdownRow>,
    checks: Checks,
    iterations: Iterations,
    thresholds: Vec<ThresholdReport>,
    /// Why the run failed (see [`RunReport::reasons`]); shown once it ended.
    reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<UiPoint>>,
}

/// A history point as the page gets it: the run's figures plus each step's own.
#[derive(Serialize)]
struct UiPoint {
    #[serde(flatten)]
    row: HistoryRow,
    steps: Vec<UiStepPoint>,
}

/// One step over one tick (the page's per-step charts); `step` is "KIND NAME", as the
/// statistics table names the row.
#[derive(Serialize)]
struct UiStepPoint {
    step: String,
    rate: f64,
    failure_rate: f64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl Hub {
    pub fn new(program: Arc<Program>, plan_file: String) -> Arc<Hub> {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let runtime = tokio::runtime::Handle::try_current().ok();
        Arc::new_cyclic(|me: &std::sync::Weak<Hub>| {
            let ticks = runtime.map(|rt| {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OwnedTick>();
                let me = me.clone();
                rt.spawn(async move {
                    while let Some(t) = rx.recv().await {
                        match me.upgrade() {
                            Some(hub) => hub.apply(&t),
                            None => break,
                        }
                    }
                });
                tx
            });
            Hub::with_ticks(program, plan_file, events, ticks)
        })
    }

    fn with_ticks(
        program: Arc<Program>,
        plan_file: String,
        events: broadcast::Sender<Arc<str>>,
        ticks: Option<tokio::sync::mpsc::UnboundedSender<OwnedTick>>,
    ) -> Hub {
        Hub {
            ticks,
            run_id: std::sync::atomic::AtomicU64::new(0),
            program,
            plan_file,
            live: Mutex::new(Live {
                status: Status::Idle,
                run: 0,
                start: None,
                control: None,
                result: RunResult::default(),
                planned: None,
                users: 0,
                workers: None,
                history_csv: crate::report::csv::HistoryWriter::in_memory(),
                history_truncated: false,
                current: BTreeMap::new(),
                recent: std::collections::VecDeque::new(),
                verdicts: Vec::new(),
                passed: None,
                aborted_by: None,
                error: None,
            }),
            events,
        }
    }

    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    pub fn plan_file(&self) -> &str {
        &self.plan_file
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A subscription to the per-tick events (JSON text, as `/api/events` sends them).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Marks a run as started with `control`; refused while one is running.
    pub fn begin(&self, start: Start, control: Control) -> Result<u64, Refusal> {
        let mut live = self.lock();
        if matches!(live.status, Status::Running | Status::Stopping) {
            return Err(Refusal::Conflict("a run is already in progress".into()));
        }
        live.run += 1;
        self.run_id
            .store(live.run, std::sync::atomic::Ordering::SeqCst);
        live.status = Status::Running;
        live.planned = start
            .profile
            .duration
            .or_else(|| start.profile.stages_duration());
        live.start = Some(start);
        live.control = Some(control);
        live.result = RunResult::default();
        live.users = 0;
        live.current.clear();
        live.recent.clear();
        live.verdicts.clear();
        live.passed = None;
        live.aborted_by = None;
        live.error = None;
        live.workers = None;
        live.history_csv = crate::report::csv::HistoryWriter::in_memory();
        live.history_truncated = false;
        let run = live.run;
        self.publish(&mut live, None);
        Ok(run)
    }

    /// Marks the current run as a distributed one (`loadplan master --ui`): the state gets a
    /// `workers` table, and only stop and kill are accepted.
    pub fn distributed(&self) {
        let mut live = self.lock();
        live.workers = Some(serde_json::Value::Array(Vec::new()));
        self.publish(&mut live, None);
    }

    /// The master's worker table, shown from the next tick on.
    pub fn set_workers<T: Serialize>(&self, workers: &[T]) {
        let table = serde_json::to_value(workers).unwrap_or_default();
        self.lock().workers = Some(table);
    }

    /// One driver tick: handed to the hub's task, which folds it in and tells the subscribers
    /// (building the statistics JSON is not done on the task that generates load).
    pub fn tick(&self, t: &Tick) {
        let owned = OwnedTick {
            run: self.run_id.load(std::sync::atomic::Ordering::SeqCst),
            elapsed: t.elapsed,
            planned: t.planned,
            users: t.users,
            total: t.total.clone(),
            delta: t.delta.clone(),
            point: t.point.clone(),
        };
        match &self.ticks {
            Some(tx) => {
                if tx.send(owned).is_err() {
                    tracing::debug!("web ui: the hub's task has ended");
                }
            }
            None => self.apply(&owned),
        }
    }

    fn apply(&self, t: &OwnedTick) {
        let mut live = self.lock();
        // A tick that arrives after its run ended (or from an earlier run) changes nothing:
        // `finish` holds the run's final numbers.
        if t.run != live.run || live.status != Status::Running && live.status != Status::Stopping {
            return;
        }
        let secs = t.elapsed.as_secs_f64();
        // The driver's statistics restart at a reset: so does the copy here, from the same
        // instant, so the first rate after it covers the time since the reset.
        if t.point.since_secs > 0.0 && live.result.history.reset_at() != Some(t.point.since_secs) {
            live.result.history = History::after_reset(t.point.since_secs);
            live.recent.clear();
        }
        // The runner's own point: the copy here is the runner's history, point for point.
        let interval = t.point.span_secs;
        live.result.history.push_point(t.point.clone());
        if live.history_csv.len() > HISTORY_CSV_CAP {
            live.history_truncated = true;
        } else if let Err(e) =
            live.history_csv
                .tick(&self.program, t.elapsed, t.users, &t.delta, &t.total)
        {
            tracing::debug!(error = %e, "web ui: history CSV row not kept");
        }
        live.result.total = t.total.clone();
        live.result.elapsed = t.elapsed;
        if live.result.users_timeline.last().map(|p| p.1) != Some(t.users) {
            live.result.users_timeline.push((secs, t.users));
        }
        live.result.peak_users = live.result.peak_users.max(t.users);
        live.users = t.users;
        live.planned = t.planned;
        // Current rates over the rolling window, as the progress line states them.
        let counts = t
            .delta
            .steps
            .iter()
            .map(|(&id, s)| (id, (s.count, s.failures)))
            .collect();
        live.recent.push_back((interval, counts));
        let mut covered: f64 = live.recent.iter().map(|(s, _)| s).sum();
        while covered > ROLLING_SECS + 1e-6 && live.recent.len() > 1 {
            if let Some((s, _)) = live.recent.pop_front() {
                covered -= s;
            }
        }
        let mut sums: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for (_, counts) in &live.recent {
            for (&id, &(n, f)) in counts {
                let e = sums.entry(id).or_default();
                e.0 += n;
                e.1 += f;
            }
        }
        let per_sec = |n: u64| {
            if covered > 0.0 {
                n as f64 / covered
            } else {
                0.0
            }
        };
        live.current = sums
            .into_iter()
            .map(|(id, (n, f))| (id, (per_sec(n), per_sec(f))))
            .collect();
        if let Some(start) = &live.start {
            let stats_secs = stats_secs(&live.result);
            let verdicts = evaluate_live(
                &self.program,
                &start.profile.thresholds,
                &t.total,
                stats_secs,
            );
            live.verdicts = verdicts;
        }
        self.publish(&mut live, Some(&t.point));
    }

    /// The run has ended: keep its result and verdicts, tell the subscribers.
    pub fn finish(&self, result: RunResult, aborted_by: Option<String>) {
        let mut live = self.lock();
        if let Some(start) = live.start.clone() {
            let secs = stats_secs(&result);
            // The same verdict as `loadplan run` (grammar/run.md).
            let j = judge(&self.program, &start.profile, &result.total, secs);
            live.passed = Some(j.passed() && aborted_by.is_none());
            live.verdicts = j.verdicts;
        }
        live.result = result;
        live.users = 0;
        live.current.clear();
        live.aborted_by = aborted_by;
        live.status = Status::Stopped;
        live.control = None;
        self.publish(&mut live, None);
    }

    /// The run could not start or failed.
    pub fn fail(&self, message: String) {
        let mut live = self.lock();
        live.status = Status::Stopped;
        live.error = Some(message);
        live.control = None;
        live.passed = Some(false);
        self.publish(&mut live, None);
    }

    /// Sends a control command to the running run.
    pub fn send(&self, command: Command) -> Result<(), Refusal> {
        let mut live = self.lock();
        let Some(control) = live.control.clone() else {
            return Err(Refusal::Conflict("no run is in progress".into()));
        };
        if live.workers.is_some() && !matches!(command, Command::Stop | Command::Kill) {
            return Err(Refusal::Conflict(
                "a distributed run (loadplan master) hands the users out to its workers: \
                 from the UI it can only be stopped"
                    .into(),
            ));
        }
        match (&command, live.start.as_ref().map(|s| &s.profile.model)) {
            (Command::SetRate { rate }, _) if !(*rate > 0.0 && rate.is_finite()) => {
                return Err(Refusal::Invalid("rate must be a positive number".into()));
            }
            (Command::SetRate { .. }, Some(Model::Closed { .. })) => {
                return Err(Refusal::Conflict(
                    "this run uses the closed model (users); change the users instead".into(),
                ));
            }
            (Command::SetUsers { spawn_rate, .. }, _)
                if spawn_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) =>
            {
                return Err(Refusal::Invalid(
                    "spawn_rate must be a positive number".into(),
                ));
            }
            _ => {}
        }
        if matches!(command, Command::Stop | Command::Kill) {
            live.status = Status::Stopping;
        }
        if command == Command::ResetStats {
            // The driver starts its statistics afresh on its next pass; the copy here follows
            // on the next tick (which says when the reset happened).
            live.result.users_timeline = vec![(live.result.elapsed.as_secs_f64(), live.users)];
        }
        control.send(command);
        self.publish(&mut live, None);
        Ok(())
    }

    /// `GET /api/state`.
    pub fn state(&self) -> serde_json::Value {
        self.state_of(&self.lock())
    }

    /// `GET /api/stats`: the per-step table, failures, thresholds and the whole history.
    pub fn stats(&self) -> serde_json::Value {
        let mut live = self.lock();
        self.stats_of(&mut live, true)
    }

    /// `stats_history.csv` of the current (or last) run, and whether it stopped at the memory
    /// cap; `None` before any run started.
    pub fn history_csv(&self) -> Option<(String, bool)> {
        let live = self.lock();
        live.start.as_ref()?;
        Some((live.history_csv.text(), live.history_truncated))
    }

    /// The run so far (or the finished run) as the report writers take it; `None` before
    /// any run started.
    pub fn report(&self) -> Option<RunReport> {
        let live = self.lock();
        let start = live.start.as_ref()?;
        Some(self.build_report(&live, start, &live.result))
    }

    fn build_report(&self, live: &Live, start: &Start, result: &RunResult) -> RunReport {
        let passed = live
            .passed
            .unwrap_or_else(|| passed(&start.profile, &live.verdicts, result, &live.aborted_by));
        let cx = Context {
            program: &self.program,
            host: start.host.clone(),
            profile: &start.profile,
            plan_file: &self.plan_file,
            seed: start.seed,
            verdicts: &live.verdicts,
            aborted_by: live.aborted_by.clone(),
            passed,
        };
        RunReport::build(&cx, result)
    }

    fn state_of(&self, live: &Live) -> serde_json::Value {
        let profile = live.start.as_ref().map(|s| profile_json(&s.profile));
        serde_json::json!({
            "status": live.status,
            "run": live.run,
            "plan": { "name": self.program.name, "file": self.plan_file },
            "profile": profile,
            "host": live.start.as_ref().and_then(|s| s.host.clone()),
            "seed": live.start.as_ref().map(|s| s.seed),
            "users": live.users,
            "elapsed_secs": live.result.elapsed.as_secs_f64(),
            "planned_secs": live.planned.map(|d| d.as_secs_f64()),
            "passed": live.passed,
            "aborted_by": live.aborted_by,
            "error": live.error,
            "workers": live.workers,
        })
    }

    fn stats_of(&self, live: &mut Live, with_history: bool) -> serde_json::Value {
        let Some(start) = live.start.clone() else {
            return serde_json::json!({
                "steps": [], "aggregated": null, "errors": [], "thresholds": [], "history": [],
            });
        };
        // The report is built without the history (served from the points, below), so a
        // tick's work does not grow with the run's length.
        let history = std::mem::take(&mut live.result.history);
        let report = self.build_report(live, &start, &live.result);
        live.result.history = history;
        let current = |ids: &mut dyn Iterator<Item = u32>| -> (f64, f64) {
            ids.filter_map(|id| live.current.get(&id))
                .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        let program = &self.program;
        let row = |step: StepReport| {
            let mut ids = program
                .stats
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == step.kind && s.name == step.name)
                .map(|(i, _)| i as u32);
            let (current_rate, current_failure_rate) = current(&mut ids);
            Row {
                step,
                current_rate,
                current_failure_rate,
            }
        };
        let steps = report.steps.into_iter().map(row).collect();
        let mut all = (0..program.stats.len() as u32).filter(|&id| counts_in_total(program, id));
        let (current_rate, current_failure_rate) = current(&mut all);
        let total_row = |step: StepReport, protocol: Protocol| {
            let mut ids =
                (0..program.stats.len() as u32).filter(|&id| protocol_of(program, id) == protocol);
            let (current_rate, current_failure_rate) = current(&mut ids);
            Row {
                step,
                current_rate,
                current_failure_rate,
            }
        };
        let stats = Stats {
            steps,
            aggregated: Row {
                step: report.aggregated,
                current_rate,
                current_failure_rate,
            },
            totals: Totals {
                http: total_row(report.totals.http, Protocol::Http),
                ws: total_row(report.totals.ws, Protocol::Ws),
            },
            errors: report.errors,
            breakdown: report.breakdown,
            checks: report.checks,
            iterations: report.iterations,
            thresholds: report.thresholds,
            reasons: report.reasons,
            history: with_history.then(|| {
                live.result
                    .history
                    .points()
                    .iter()
                    .map(|p| self.ui_point(p))
                    .collect()
            }),
        };
        serde_json::to_value(&stats).unwrap_or_default()
    }

    fn ui_point(&self, p: &HistoryPoint) -> UiPoint {
        let steps = p
            .steps
            .iter()
            .map(|s| UiStepPoint {
                step: self.program.stats.get(s.id as usize).map_or_else(
                    || format!("? step #{}", s.id),
                    |e| format!("{} {}", e.kind, e.name),
                ),
                rate: s.rate,
                failure_rate: s.failure_rate,
                p50_ms: s.p50_us.map(ms),
                p95_ms: s.p95_us.map(ms),
                p99_ms: s.p99_us.map(ms),
            })
            .collect();
        UiPoint {
            row: HistoryRow::of(p),
            steps,
        }
    }

    /// Broadcasts the current state and statistics (and the tick's point) to the event
    /// subscribers.
    fn publish(&self, live: &mut Live, point: Option<&HistoryPoint>) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let event = serde_json::json!({
            "state": self.state_of(live),
            "stats": self.stats_of(live, false),
            "point": point.map(|p| self.ui_point(p)),
            "history_len": live.result.history.len(),
        });
        // No subscriber left is not an error: the next page load subscribes again.
        if self.events.send(Arc::from(event.to_string())).is_err() {
            tracing::debug!("web ui: no event subscriber");
        }
    }
}

/// The run's verdict as `loadplan run` states it: thresholds hold, no check failed, nothing
/// aborted the run and, without thresholds, no request failed.
pub fn passed(
    profile: &LoadProfile,
    verdicts: &[Verdict],
    result: &RunResult,
    aborted_by: &Option<String>,
) -> bool {
    let (_, checks_failed) = result.total.checks();
    let rules_hold = verdicts.iter().all(|v| v.passed);
    let failures_ok = !profile.thresholds.is_empty() || result.total.failures() == 0;
    rules_hold && checks_failed == 0 && failures_ok && aborted_by.is_none()
}

fn profile_json(p: &LoadProfile) -> serde_json::Value {
    let info = ProfileInfo::of(p);
    serde_json::json!({
        "name": info.name,
        "model": info.model,
        "users": info.users,
        "spawn_rate": info.spawn_rate,
        "arrival_rate": info.arrival_rate,
        "max_users": info.max_users,
        "duration_secs": info.duration_secs,
        "stages": info.stages.len(),
        "thresholds": p.thresholds.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Event, Snapshot};

    fn program() -> Arc<Program> {
        let src = crate::source::Source::new(
            "p.kdl",
            "scenario \"s\" {\n  http GET \"/a\"\n  ws \"/ws\" name=\"c\" { receive \"f\" count=2; }\n}\n",
        );
        Arc::new(
            crate::lang::compile_source(
                &src,
                crate::source::Syntax::Kdl,
                std::path::Path::new("."),
            )
            .expect("compiles"),
        )
    }

    fn id(p: &Program, name: &str) -> u32 {
        p.stats.iter().position(|s| s.name == name).expect("row") as u32
    }

    /// Applies one tick of `secs` seconds ending at `t` (outside a runtime: in place).
    fn tick(hub: &Hub, history: &mut History, total: &mut Snapshot, delta: Snapshot, t: u64) {
        let elapsed = Duration::from_secs(t);
        hub.tick(&Tick::fold(total, history, &delta, elapsed, None, 1));
    }

    #[test]
    fn the_ui_has_separate_totals_and_rates_over_the_last_ten_seconds() {
        let p = program();
        let hub = Hub::new(p.clone(), "p.kdl".into());
        let start = Start {
            profile: LoadProfile::closed(1, 1.0, None),
            host: Some("http://127.0.0.1:1".into()),
            seed: 1,
        };
        hub.begin(start, Control::default()).expect("starts");
        let (mut history, mut total) = (History::new(), Snapshot::default());
        // 20 requests a second (one failed each second) and 100 frames a second for 5 s,
        // then 5 quiet seconds.
        for t in 1..=10u64 {
            let mut d = Snapshot::default();
            if t <= 5 {
                for i in 0..20 {
                    let ev = Event::new(id(&p, "/a"), 1_000);
                    d.record(if i == 0 {
                        ev.with_error(crate::metrics::ErrorKind::Status, "500")
                    } else {
                        ev
                    });
                }
                for _ in 0..100 {
                    d.record(Event::new(id(&p, "f"), 100_000));
                }
            }
            tick(&hub, &mut history, &mut total, d, t);
        }
        let stats = hub.stats();
        let http = &stats["totals"]["http"];
        let ws = &stats["totals"]["ws"];
        assert_eq!(http["count"], 100);
        assert_eq!(http["failures"], 5);
        assert_eq!(ws["count"], 500);
        assert_eq!(ws["failures"], 0);
        // The last tick had nothing; the last 10 s had 100 requests and 5 failures.
        assert!(
            (http["current_rate"].as_f64().unwrap_or(0.0) - 10.0).abs() < 1e-9,
            "{http}"
        );
        assert!((http["current_failure_rate"].as_f64().unwrap_or(0.0) - 0.5).abs() < 1e-9);
        assert!(
            (ws["current_rate"].as_f64().unwrap_or(0.0) - 50.0).abs() < 1e-9,
            "{ws}"
        );
        // Locust's row still merges both.
        assert_eq!(stats["aggregated"]["count"], 600);
        assert_eq!(hub.state()["host"], "http://127.0.0.1:1");
    }
}
