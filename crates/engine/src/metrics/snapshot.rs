//! [`Snapshot`]: the mergeable unit every sink consumes. The aggregator's shards accumulate into
//! snapshots, the 1 s ticker takes a *delta* snapshot and folds it into the process total and the
//! [`History`]; workers ship deltas to the master, which merges them the same way. Sinks
//! (progress, Prometheus, UI, reports, thresholds) read snapshots and nothing else.
//!
//! Invariants:
//! - A snapshot holds only counters and histogram buckets, so [`Snapshot::merge`] is exact and
//!   associative: merging in any grouping gives the same numbers as recording everything in one
//!   place. Percentiles are always computed from merged buckets, never averaged.
//! - Distinct error messages are bounded per `(step, kind)` ([`MAX_MESSAGES_PER_KIND`], extra ones
//!   fold into [`OTHER_MESSAGES`]) and each message is truncated to [`MAX_MESSAGE_LEN`] bytes, on
//!   record, on merge and on decode, so a misbehaving target or peer cannot grow memory.
//! - `users` is a gauge: [`Snapshot::merge`] adds it (combining workers at one instant), while
//!   [`Snapshot::accumulate`] keeps the newer value (folding successive deltas of one process).

use super::event::{Counter, ErrorKind, Event, StepId};
use super::hist::Latency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Distinct messages kept per `(step, kind)`; further ones are counted under [`OTHER_MESSAGES`].
pub const MAX_MESSAGES_PER_KIND: usize = 20;
/// The message under which overflowing distinct messages are counted.
pub const OTHER_MESSAGES: &str = "(other messages)";
/// Longest error message kept, in bytes (cut at a char boundary, with a trailing `…`).
pub const MAX_MESSAGE_LEN: usize = 200;

/// Everything counted for one step.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StepStats {
    /// Finished events (requests, frames, groups).
    pub count: u64,
    /// Events that carried an error.
    pub failures: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// HTTP response bodies after content decoding (see [`Event::bytes_decoded`]).
    #[serde(default)]
    pub bytes_decoded: u64,
    /// Responses per HTTP status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Service time (from the actual send), µs.
    pub latency: Latency,
    /// Open model only: latency from the intended start (coordinated-omission corrected), µs.
    pub corrected: Latency,
    /// Received WebSocket frames: time since the session's latest `send`, µs.
    #[serde(default)]
    pub reply: Latency,
    /// Received WebSocket frames after the first of a `receive`: inter-arrival time, µs.
    #[serde(default)]
    pub gaps: Latency,
    /// HTTP requests with a whole response: where their time went.
    #[serde(default)]
    pub phases: PhaseStats,
}

/// The HTTP phase histograms of a row, µs (docs/metrics.md, "phases"). `dns` and
/// `connect` hold one sample per new connection, so their counts are connections opened.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseStats {
    pub dns: Latency,
    pub connect: Latency,
    pub wait: Latency,
    pub receive: Latency,
}

impl PhaseStats {
    fn record(&mut self, p: &super::event::Phases) {
        if let Some(us) = p.dns_us {
            self.dns.record(us);
        }
        if let Some(us) = p.connect_us {
            self.connect.record(us);
        }
        self.wait.record(p.wait_us);
        self.receive.record(p.receive_us);
    }

    pub fn merge(&mut self, other: &PhaseStats) {
        self.dns.merge(&other.dns);
        self.connect.merge(&other.connect);
        self.wait.merge(&other.wait);
        self.receive.merge(&other.receive);
    }
}

impl StepStats {
    /// Counts one event (its error message is handled by [`Snapshot::record`]).
    pub fn record(&mut self, ev: &Event) {
        self.count += 1;
        self.failures += u64::from(ev.error.is_some());
        self.checks_passed += u64::from(ev.checks_passed);
        self.checks_failed += u64::from(ev.checks_failed);
        self.bytes_in = self.bytes_in.saturating_add(ev.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(ev.bytes_out);
        self.bytes_decoded = self.bytes_decoded.saturating_add(ev.bytes_decoded);
        if let Some(p) = &ev.phases {
            self.phases.record(p);
        }
        if let Some(status) = ev.status {
            *self.statuses.entry(status).or_insert(0) += 1;
        }
        if !ev.untimed {
            self.latency.record(ev.latency_us);
        }
        if let Some(us) = ev.corrected_us {
            self.corrected.record(us);
        }
        if let Some(us) = ev.reply_us {
            self.reply.record(us);
        }
        if let Some(us) = ev.gap_us {
            self.gaps.record(us);
        }
    }

    /// Adds `other` (exact).
    pub fn merge(&mut self, other: &StepStats) {
        self.count += other.count;
        self.failures += other.failures;
        self.checks_passed += other.checks_passed;
        self.checks_failed += other.checks_failed;
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.bytes_decoded = self.bytes_decoded.saturating_add(other.bytes_decoded);
        self.phases.merge(&other.phases);
        for (&status, &n) in &other.statuses {
            *self.statuses.entry(status).or_insert(0) += n;
        }
        self.latency.merge(&other.latency);
        self.corrected.merge(&other.corrected);
        self.reply.merge(&other.reply);
        self.gaps.merge(&other.gaps);
    }

    /// Failures / count, 0.0 when nothing was counted.
    pub fn fail_ratio(&self) -> f64 {
        ratio(self.failures, self.count)
    }
}

/// Key of the failures table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ErrorKey {
    pub step: StepId,
    pub kind: ErrorKind,
    pub message: String,
}

/// Iteration lifecycle counters.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IterationCounts {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Open model: arrivals that found no free user.
    pub dropped: u64,
}

impl IterationCounts {
    pub fn count(&mut self, counter: Counter, n: u64) {
        match counter {
            Counter::IterationStarted => self.started += n,
            Counter::IterationCompleted => self.completed += n,
            Counter::IterationFailed => self.failed += n,
            Counter::IterationDropped => self.dropped += n,
        }
    }

    pub fn merge(&mut self, other: &IterationCounts) {
        self.started += other.started;
        self.completed += other.completed;
        self.failed += other.failed;
        self.dropped += other.dropped;
    }

    pub fn is_zero(&self) -> bool {
        *self == IterationCounts::default()
    }
}

/// Counters and histograms for a window (a tick delta) or a whole run. See the module docs.
/// Missing fields decode as empty, so older peers' snapshots still merge.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Snapshot {
    pub steps: BTreeMap<StepId, StepStats>,
    /// Occurrences per `(step, kind, message)`; serialized as a list of entries.
    #[serde(with = "error_entries")]
    pub errors: BTreeMap<ErrorKey, u64>,
    pub iterations: IterationCounts,
    /// Active virtual users (a gauge; see the module docs for merge semantics).
    pub users: u64,
    /// Open model: how late the generator started iterations relative to schedule, µs.
    pub lateness: Latency,
}

impl Snapshot {
    /// Counts one event, its status and its error message.
    pub fn record(&mut self, ev: Event) {
        self.steps.entry(ev.step).or_default().record(&ev);
        if let Some((kind, message)) = ev.error {
            add_error(
                &mut self.errors,
                ErrorKey {
                    step: ev.step,
                    kind,
                    message,
                },
                1,
            );
        }
    }

    pub fn count(&mut self, counter: Counter, n: u64) {
        self.iterations.count(counter, n);
    }

    /// Open model: records how late (µs) an iteration started relative to its schedule.
    pub fn record_lateness(&mut self, us: u64) {
        self.lateness.record(us);
    }

    /// Adds `other` exactly; `users` are **added** (use to combine workers' snapshots taken at
    /// the same instant).
    pub fn merge(&mut self, other: &Snapshot) {
        self.merge_counters(other);
        self.users += other.users;
    }

    /// Folds a later delta of the same process into a running total: counters add, `users`
    /// takes the delta's (newer) value.
    pub fn accumulate(&mut self, delta: &Snapshot) {
        self.merge_counters(delta);
        self.users = delta.users;
    }

    /// Overwrites the users gauge.
    pub fn set_users(&mut self, users: u64) {
        self.users = users;
    }

    fn merge_counters(&mut self, other: &Snapshot) {
        for (&id, stats) in &other.steps {
            match self.steps.get_mut(&id) {
                Some(mine) => mine.merge(stats),
                None => {
                    self.steps.insert(id, stats.clone());
                }
            }
        }
        for (key, &n) in &other.errors {
            match self.errors.get_mut(key) {
                Some(mine) => *mine += n,
                None => add_error(&mut self.errors, key.clone(), n),
            }
        }
        self.iterations.merge(&other.iterations);
        self.lateness.merge(&other.lateness);
    }

    /// All steps for which `include` is true merged into one (the "Aggregated" row).
    pub fn aggregate(&self, include: impl Fn(StepId) -> bool) -> StepStats {
        let mut total = StepStats::default();
        for (_, stats) in self.steps.iter().filter(|(id, _)| include(**id)) {
            total.merge(stats);
        }
        total
    }

    /// Total events over all steps.
    pub fn requests(&self) -> u64 {
        self.steps.values().map(|s| s.count).sum()
    }

    /// Total failed events over all steps.
    pub fn failures(&self) -> u64 {
        self.steps.values().map(|s| s.failures).sum()
    }

    /// `(passed, failed)` checks over all steps.
    pub fn checks(&self) -> (u64, u64) {
        self.steps.values().fold((0, 0), |(p, f), s| {
            (p + s.checks_passed, f + s.checks_failed)
        })
    }

    /// True when nothing at all was counted (the users gauge is ignored).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
            && self.errors.is_empty()
            && self.iterations.is_zero()
            && self.lateness.is_empty()
    }
}

/// Adds `n` occurrences of `key`, enforcing the per-`(step, kind)` bound on distinct messages.
///
/// Which messages are kept does not depend on arrival order: the [`MAX_MESSAGES_PER_KIND`]
/// smallest messages (byte order) of a `(step, kind)` keep their own counts, every other one
/// is counted under [`OTHER_MESSAGES`]. A kept message that a smaller one displaces moves its
/// count there. A kept message was never displaced (fewer than the bound were ever smaller), so
/// its count is exact, and the table is a function of the events alone: merging is associative
/// and commutative in every case.
fn add_error(errors: &mut BTreeMap<ErrorKey, u64>, mut key: ErrorKey, n: u64) {
    truncate_message(&mut key.message);
    if let Some(count) = errors.get_mut(&key) {
        *count += n;
        return;
    }
    if key.message != OTHER_MESSAGES {
        let first = ErrorKey {
            step: key.step,
            kind: key.kind,
            message: String::new(),
        };
        let kept: Vec<&ErrorKey> = errors
            .range(first..)
            .take_while(|(k, _)| k.step == key.step && k.kind == key.kind)
            .filter(|(k, _)| k.message != OTHER_MESSAGES)
            .map(|(k, _)| k)
            .collect();
        if kept.len() >= MAX_MESSAGES_PER_KIND {
            let largest = kept.last().map(|k| (*k).clone());
            match largest {
                Some(largest) if largest.message > key.message => {
                    let moved = errors.remove(&largest).unwrap_or(0);
                    let other = ErrorKey {
                        message: OTHER_MESSAGES.to_owned(),
                        ..largest
                    };
                    *errors.entry(other).or_insert(0) += moved;
                }
                _ => key.message = OTHER_MESSAGES.to_owned(),
            }
        }
    }
    *errors.entry(key).or_insert(0) += n;
}

fn truncate_message(message: &mut String) {
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// JSON maps need string keys, so the failures table travels as a list of entries; decoding
/// re-applies the message bounds.
mod error_entries {
    use super::{ErrorKey, ErrorKind, StepId, add_error};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct EntryRef<'a> {
        step: StepId,
        kind: ErrorKind,
        message: &'a str,
        count: u64,
    }

    #[derive(Deserialize)]
    struct Entry {
        step: StepId,
        kind: ErrorKind,
        message: String,
        count: u64,
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ErrorKey, u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().map(|(k, &count)| EntryRef {
            step: k.step,
            kind: k.kind,
            message: &k.message,
            count,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<ErrorKey, u64>, D::Error> {
        let entries = Vec::<Entry>::deserialize(deserializer)?;
        let mut map = BTreeMap::new();
        for e in entries {
            let key = ErrorKey {
                step: e.step,
                kind: e.kind,
                message: e.message,
            };
            add_error(&mut map, key, e.count);
        }
        Ok(map)
    }
}

/// One tick of the run's timeline, computed from that tick's delta (percentiles over the tick's
/// merged buckets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// Seconds since the run started, at the end of the tick.
    pub t_secs: f64,
    pub users: u64,
    /// Events in this tick.
    pub requests: u64,
    /// Failed events in this tick.
    pub failures: u64,
    /// Events per second over this tick.
    pub rate: f64,
    /// Failed events per second over this tick.
    pub failure_rate: f64,
    /// Events since the start of the run.
    pub total_requests: u64,
    /// Failed events since the start of the run.
    pub total_failures: u64,
    /// Latency percentiles over this tick, µs; `None` when the tick had no events.
    pub p50_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// When the statistics start, seconds since the run started: 0, or the last reset.
    #[serde(default)]
    pub since_secs: f64,
    /// The rolling window the `window_*` figures cover, seconds: the last
    /// [`ROLLING_SECS`], or less since the start or a reset.
    #[serde(default)]
    pub window_secs: f64,
    /// Events per second over the rolling window.
    #[serde(default)]
    pub window_rate: f64,
    /// Failed events per second over the rolling window.
    #[serde(default)]
    pub window_failure_rate: f64,
    /// Latency p95 over the rolling window, µs.
    #[serde(default)]
    pub window_p95_us: Option<u64>,
    /// Per statistics row that recorded anything in this tick: its own figures (filled by
    /// [`History::push`]; empty from [`History::push_aggregate`]).
    #[serde(default)]
    pub steps: Vec<StepPoint>,
    /// Seconds this point covers: one tick, or more once a long run's history has been
    /// coarsened ([`MAX_HISTORY_POINTS`]).
    #[serde(default)]
    pub span_secs: f64,
}

/// The most points a [`History`] keeps. Past it, adjacent points are merged in pairs (the
/// resolution halves: 1 s, then 2 s, 4 s, …), so an overnight soak keeps a bounded history
/// instead of one point per second forever. A merged point sums its counts, takes rates
/// over its whole span and, for percentiles (which cannot be merged from two values), the
/// larger of the two: a chart of a coarsened history never hides a spike.
pub const MAX_HISTORY_POINTS: usize = 2048;

impl HistoryPoint {
    /// `self` followed by `next` as one point covering both spans.
    fn merged(self, next: HistoryPoint) -> HistoryPoint {
        let span = self.span_secs + next.span_secs;
        let per_sec = |n: u64| if span > 0.0 { n as f64 / span } else { 0.0 };
        let requests = self.requests + next.requests;
        let failures = self.failures + next.failures;
        let max = |a: Option<u64>, b: Option<u64>| a.max(b);
        // Per-row rates are per second of each point's span: back to counts, summed, then
        // over the merged span.
        let mut steps: Vec<StepPoint> = Vec::with_capacity(self.steps.len().max(next.steps.len()));
        for (p, part) in [(self.steps, self.span_secs), (next.steps, next.span_secs)] {
            for mut b in p {
                b.rate *= part;
                b.failure_rate *= part;
                match steps.iter_mut().find(|a| a.id == b.id) {
                    Some(a) => {
                        a.rate += b.rate;
                        a.failure_rate += b.failure_rate;
                        a.p50_us = max(a.p50_us, b.p50_us);
                        a.p95_us = max(a.p95_us, b.p95_us);
                        a.p99_us = max(a.p99_us, b.p99_us);
                    }
                    None => steps.push(b),
                }
            }
        }
        for a in &mut steps {
            a.rate = if span > 0.0 { a.rate / span } else { 0.0 };
            a.failure_rate = if span > 0.0 {
                a.failure_rate / span
            } else {
                0.0
            };
        }
        HistoryPoint {
            requests,
            failures,
            rate: per_sec(requests),
            failure_rate: per_sec(failures),
            p50_us: max(self.p50_us, next.p50_us),
            p95_us: max(self.p95_us, next.p95_us),
            p99_us: max(self.p99_us, next.p99_us),
            steps,
            span_secs: span,
            ..next
        }
    }
}

/// One statistics row over one tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepPoint {
    /// The statistics row.
    pub id: u32,
    /// Events per second over the tick.
    pub rate: f64,
    /// Failed events per second over the tick.
    pub failure_rate: f64,
    /// Latency percentiles over the tick, µs; `None` when the row timed nothing.
    pub p50_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// Length of the rolling window of the live figures, seconds.
pub const ROLLING_SECS: f64 = 10.0;

/// The run's timeline: one [`HistoryPoint`] appended per tick by the ticker. Grows by about
/// 100 bytes per tick plus about 60 per statistics row active in it (≈9 MB for a 24 h run at
/// 1 s ticks, plus ≈5 MB per busy step). After a statistics reset it starts
/// afresh, remembering when ([`History::after_reset`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    points: Vec<HistoryPoint>,
    /// When the statistics were last reset, seconds since the run started.
    #[serde(default)]
    reset_at: Option<f64>,
    /// When the load phase ended (seconds since the run started); the rest is the drain.
    #[serde(default)]
    load_end: Option<f64>,
    /// The ticks of the rolling window: `(end, length in seconds, aggregated window)`.
    #[serde(skip)]
    recent: std::collections::VecDeque<(f64, f64, StepStats)>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty history whose statistics start `at_secs` into the run (a reset).
    pub fn after_reset(at_secs: f64) -> Self {
        History {
            reset_at: Some(at_secs),
            ..History::default()
        }
    }

    /// When the statistics were last reset (seconds since the run started), if they were.
    pub fn reset_at(&self) -> Option<f64> {
        self.reset_at
    }

    /// Records when the load phase ended (the first call counts).
    pub fn mark_load_end(&mut self, at_secs: f64) {
        self.load_end.get_or_insert(at_secs);
    }

    /// When the load phase ended (seconds since the run started), if the runner said.
    pub fn load_end(&self) -> Option<f64> {
        self.load_end
    }

    /// The end of the last tick (or the start of the statistics): the next tick's interval
    /// starts there.
    pub fn since_secs(&self) -> f64 {
        self.points
            .last()
            .map_or(self.reset_at.unwrap_or(0.0), |p| p.t_secs)
    }

    /// The next tick's interval when it ends `elapsed` into the run.
    pub fn interval_to(&self, elapsed: Duration) -> Duration {
        elapsed.saturating_sub(Duration::try_from_secs_f64(self.since_secs()).unwrap_or_default())
    }

    /// Appends the point for a tick ending `t_secs` into the run, lasting `interval`, from the
    /// tick's `delta`, counting every step.
    pub fn push(&mut self, t_secs: f64, interval: Duration, delta: &Snapshot) -> &HistoryPoint {
        self.push_users(t_secs, interval, delta.users, delta)
    }

    /// Like [`History::push`] with the user count given, keeping each row's own figures
    /// ([`HistoryPoint::steps`]).
    pub fn push_users(
        &mut self,
        t_secs: f64,
        interval: Duration,
        users: u64,
        delta: &Snapshot,
    ) -> &HistoryPoint {
        let window = delta.aggregate(|_| true);
        let secs = interval.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let steps = delta
            .steps
            .iter()
            .filter(|(_, s)| s.count > 0)
            .map(|(&id, s)| {
                let q = |q| (!s.latency.is_empty()).then(|| s.latency.value_at_quantile(q));
                StepPoint {
                    id,
                    rate: per_sec(s.count),
                    failure_rate: per_sec(s.failures),
                    p50_us: q(0.5),
                    p95_us: q(0.95),
                    p99_us: q(0.99),
                }
            })
            .collect();
        self.push_aggregate(t_secs, interval, users, &window);
        let last = self.points.len() - 1;
        let point = &mut self.points[last];
        point.steps = steps;
        point
    }

    /// Like [`History::push`], from an already aggregated window (callers that exclude some
    /// steps, e.g. groups, from the totals).
    pub fn push_aggregate(
        &mut self,
        t_secs: f64,
        interval: Duration,
        users: u64,
        window: &StepStats,
    ) -> &HistoryPoint {
        let secs = interval.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let (total_requests, total_failures) = self
            .points
            .last()
            .map_or((0, 0), |p| (p.total_requests, p.total_failures));
        let quantile =
            |q| (!window.latency.is_empty()).then(|| window.latency.value_at_quantile(q));
        self.recent.push_back((t_secs, secs, window.clone()));
        while self
            .recent
            .front()
            .is_some_and(|(end, len, _)| end - len < t_secs - ROLLING_SECS - 1e-6)
            && self.recent.len() > 1
        {
            self.recent.pop_front();
        }
        let mut rolling = StepStats::default();
        let mut window_secs = 0.0;
        for (_, len, w) in &self.recent {
            rolling.merge(w);
            window_secs += len;
        }
        let per_window = |n: u64| {
            if window_secs > 0.0 {
                n as f64 / window_secs
            } else {
                0.0
            }
        };
        self.push_point(HistoryPoint {
            t_secs,
            users,
            requests: window.count,
            failures: window.failures,
            rate: per_sec(window.count),
            failure_rate: per_sec(window.failures),
            total_requests: total_requests + window.count,
            total_failures: total_failures + window.failures,
            p50_us: quantile(0.5),
            p95_us: quantile(0.95),
            p99_us: quantile(0.99),
            since_secs: self.reset_at.unwrap_or(0.0),
            window_secs,
            window_rate: per_window(rolling.count),
            window_failure_rate: per_window(rolling.failures),
            window_p95_us: (!rolling.latency.is_empty())
                .then(|| rolling.latency.value_at_quantile(0.95)),
            steps: Vec::new(),
            span_secs: secs,
        })
    }

    /// Appends a point another history computed: a copy that follows a runner's ticks (the
    /// web UI's) keeps the runner's points as they are.
    pub fn push_point(&mut self, point: HistoryPoint) -> &HistoryPoint {
        self.points.push(point);
        if self.points.len() > MAX_HISTORY_POINTS {
            self.coarsen();
        }
        self.points.last().expect("a point was just pushed")
    }

    /// Halves the resolution: adjacent points merged in pairs ([`MAX_HISTORY_POINTS`]).
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.points);
        self.points.reserve(old.len() / 2 + 1);
        let mut it = old.into_iter();
        // The newest point stays as it is: callers still fill it in (`push_users`).
        let newest = it.next_back();
        while let Some(a) = it.next() {
            let p = match it.next() {
                Some(b) => a.merged(b),
                None => a,
            };
            self.points.push(p);
        }
        self.points.extend(newest);
    }

    pub fn points(&self) -> &[HistoryPoint] {
        &self.points
    }

    pub fn last(&self) -> Option<&HistoryPoint> {
        self.points.last()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_events(n: u64) -> impl Iterator<Item = Event> {
        (0..n).map(|i| {
            let step = (i % 3) as StepId;
            let mut ev = Event {
                bytes_in: 100 + i % 7,
                bytes_out: 20,
                checks_passed: 1,
                checks_failed: u32::from(i % 11 == 0),
                corrected_us: (step == 2).then_some(2_000 + i * 13),
                ..Event::new(step, 500 + (i * 7919) % 2_000_000)
            }
            .with_status(if i % 10 == 0 { 503 } else { 200 });
            if i % 10 == 0 {
                ev = ev.with_error(ErrorKind::Status, "expected status 200, got 503");
            }
            if i % 17 == 0 {
                ev = ev.with_error(ErrorKind::Timeout, "timed out after 5s");
            }
            ev
        })
    }

    #[test]
    fn merging_two_snapshots_equals_recording_into_one() {
        let (mut a, mut b, mut all) = (
            Snapshot::default(),
            Snapshot::default(),
            Snapshot::default(),
        );
        for (i, ev) in sample_events(30_000).enumerate() {
            if i % 2 == 0 { &mut a } else { &mut b }.record(ev.clone());
            all.record(ev);
        }
        a.count(Counter::IterationStarted, 4);
        b.count(Counter::IterationStarted, 6);
        all.count(Counter::IterationStarted, 10);
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        for (id, stats) in &all.steps {
            let m = &merged.steps[id];
            assert_eq!(m.latency.buckets(), stats.latency.buckets());
            assert_eq!(m.corrected.buckets(), stats.corrected.buckets());
            for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
                assert_eq!(
                    m.latency.value_at_quantile(q),
                    stats.latency.value_at_quantile(q)
                );
            }
        }
        assert_eq!(merged.iterations.started, 10);
    }

    #[test]
    fn merge_is_associative() {
        let parts: Vec<Snapshot> = (0..3u64)
            .map(|k| {
                let mut s = Snapshot::default();
                for ev in sample_events(1_000 + k * 10) {
                    s.record(ev);
                }
                s
            })
            .collect();
        let mut left = parts[0].clone();
        left.merge(&parts[1]);
        left.merge(&parts[2]);
        let mut right = parts[1].clone();
        right.merge(&parts[2]);
        let mut right_total = parts[0].clone();
        right_total.merge(&right);
        assert_eq!(left, right_total);
    }

    #[test]
    fn serde_round_trip_preserves_histograms_exactly() {
        let mut s = Snapshot::default();
        for ev in sample_events(5_000) {
            s.record(ev);
        }
        s.count(Counter::IterationDropped, 3);
        s.record_lateness(1_234);
        s.set_users(42);
        let json = serde_json::to_string(&s).expect("serialize");
        let back: Snapshot = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        for (id, stats) in &s.steps {
            assert_eq!(back.steps[id].latency.buckets(), stats.latency.buckets());
        }
        assert_eq!(back.errors, s.errors);
    }

    #[test]
    fn distinct_error_messages_are_bounded_per_step_and_kind() {
        let mut s = Snapshot::default();
        for i in 0..50 {
            s.record(Event::new(1, 10).with_error(ErrorKind::Other, format!("boom {i}")));
            s.record(Event::new(1, 10).with_error(ErrorKind::Other, format!("boom {i}")));
        }
        s.record(Event::new(2, 10).with_error(ErrorKind::Other, "elsewhere"));
        let for_step_1: Vec<_> = s.errors.iter().filter(|(k, _)| k.step == 1).collect();
        assert_eq!(for_step_1.len(), MAX_MESSAGES_PER_KIND + 1);
        let other = ErrorKey {
            step: 1,
            kind: ErrorKind::Other,
            message: OTHER_MESSAGES.into(),
        };
        assert_eq!(s.errors[&other], 60);
        assert_eq!(s.errors.values().sum::<u64>(), 101);

        // Merging keeps the bound too.
        let mut t = Snapshot::default();
        for i in 100..130 {
            t.record(Event::new(1, 10).with_error(ErrorKind::Other, format!("boom {i}")));
        }
        t.merge(&s);
        assert_eq!(
            t.errors.iter().filter(|(k, _)| k.step == 1).count(),
            MAX_MESSAGES_PER_KIND + 1
        );
        assert_eq!(t.errors.values().sum::<u64>(), 131);
    }

    #[test]
    fn long_error_messages_are_truncated() {
        let mut s = Snapshot::default();
        s.record(Event::new(0, 1).with_error(ErrorKind::Body, "é".repeat(500)));
        let key = s.errors.keys().next().expect("one error");
        assert!(key.message.len() <= MAX_MESSAGE_LEN);
        assert!(key.message.ends_with('…'));
    }

    #[test]
    fn users_add_on_merge_and_take_latest_on_accumulate() {
        let (mut w1, mut w2) = (Snapshot::default(), Snapshot::default());
        w1.set_users(30);
        w2.set_users(20);
        let mut combined = w1.clone();
        combined.merge(&w2);
        assert_eq!(combined.users, 50);

        let mut total = Snapshot::default();
        total.accumulate(&w1);
        total.accumulate(&w2);
        assert_eq!(total.users, 20);
    }

    #[test]
    fn failures_follow_the_error_field_not_failed_checks() {
        let mut s = Snapshot::default();
        s.record(Event {
            checks_failed: 1,
            ..Event::new(0, 5)
        });
        s.record(Event {
            checks_failed: 1,
            ..Event::new(0, 5).with_error(ErrorKind::Check, "status was 500")
        });
        let st = &s.steps[&0];
        assert_eq!((st.count, st.failures, st.checks_failed), (2, 1, 2));
        assert_eq!(s.checks(), (0, 2));
        assert!((st.fail_ratio() - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn history_points_come_from_each_tick_delta() {
        let mut history = History::new();
        let mut delta = Snapshot::default();
        for us in [1_000, 2_000, 3_000, 4_000] {
            delta.record(Event::new(0, us));
        }
        delta.record(Event::new(1, 10_000).with_error(ErrorKind::Timeout, "t"));
        delta.set_users(7);
        let p = history
            .push(1.0, Duration::from_millis(500), &delta)
            .clone();
        assert_eq!((p.users, p.requests, p.failures), (7, 5, 1));
        assert!((p.rate - 10.0).abs() < 1e-9);
        assert!((p.failure_rate - 2.0).abs() < 1e-9);
        assert_eq!(p.p50_us, Some(3_000 + 1)); // upper bound of 3 000's bucket
        assert_eq!(p.p99_us, Some(10_007));

        let p2 = history
            .push(2.0, Duration::from_secs(1), &Snapshot::default())
            .clone();
        assert_eq!(
            (p2.requests, p2.total_requests, p2.total_failures),
            (0, 5, 1)
        );
        assert_eq!(p2.p95_us, None);
        assert_eq!(history.len(), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Many distinct messages, split over parts merged in different groupings and orders,
        /// always give the table of recording everything in one place.
        #[test]
        fn failure_tables_merge_associatively_with_many_messages(
            events in proptest::collection::vec((0u32..2, 0u32..60, 0usize..4), 1..400),
            order in proptest::strategy::Strategy::prop_shuffle(
                proptest::strategy::Just(vec![0usize, 1, 2, 3])
            ),
        ) {
            let mut parts = vec![Snapshot::default(); 4];
            let mut all = Snapshot::default();
            for (step, msg, part) in &events {
                let ev = Event::new(*step, 10).with_error(ErrorKind::Other, format!("m{msg:02}"));
                parts[*part].record(ev.clone());
                all.record(ev);
            }
            // ((a + b) + c) + d in the given order.
            let mut left = Snapshot::default();
            for &i in &order {
                left.merge(&parts[i]);
            }
            // a + (b + (c + d)).
            let mut right = parts[3].clone();
            for i in (0..3).rev() {
                let mut p = parts[i].clone();
                p.merge(&right);
                right = p;
            }
            proptest::prop_assert_eq!(&left.errors, &all.errors);
            proptest::prop_assert_eq!(&right.errors, &all.errors);
            let total: u64 = all.errors.values().sum();
            proptest::prop_assert_eq!(total, events.len() as u64);
            for step in 0..2 {
                let kept = all
                    .errors
                    .keys()
                    .filter(|k| k.step == step && k.message != OTHER_MESSAGES)
                    .count();
                proptest::prop_assert!(kept <= MAX_MESSAGES_PER_KIND);
            }
        }
    }

    #[test]
    fn live_figures_cover_a_rolling_window_of_ten_seconds() {
        let mut history = History::new();
        // 30 events a second for 10 s, then 12 silent seconds.
        for t in 1..=22u64 {
            let mut delta = Snapshot::default();
            if t <= 10 {
                for _ in 0..30 {
                    delta.record(Event::new(0, 1_000 * t));
                }
            }
            let p = history
                .push(t as f64, Duration::from_secs(1), &delta)
                .clone();
            assert!(
                (p.window_secs - (t.min(10) as f64)).abs() < 1e-9,
                "{t}: {p:?}"
            );
            let expected = match t {
                1..=10 => 30.0,
                11..=19 => 30.0 * (20 - t) as f64 / 10.0,
                _ => 0.0,
            };
            assert!((p.window_rate - expected).abs() < 1e-9, "{t}: {p:?}");
        }
        // The last second alone says 0 while the window still saw requests at t = 15.
        let at15 = &history.points()[14];
        assert_eq!(at15.rate, 0.0);
        assert!((at15.window_rate - 15.0).abs() < 1e-9);
        assert!(at15.window_p95_us.is_some());
    }

    #[test]
    fn after_a_reset_the_first_interval_starts_at_the_reset() {
        let mut history = History::after_reset(18.0);
        assert_eq!(
            history.interval_to(Duration::from_secs(19)),
            Duration::from_secs(1)
        );
        let mut delta = Snapshot::default();
        for _ in 0..54 {
            delta.record(Event::new(0, 1_000));
        }
        let p = history
            .push(19.0, history.interval_to(Duration::from_secs(19)), &delta)
            .clone();
        assert!((p.rate - 54.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.since_secs, 18.0);
        assert_eq!(history.reset_at(), Some(18.0));
    }

    #[test]
    fn a_long_history_stays_bounded_and_keeps_every_count() {
        let mut history = History::new();
        let mut total = 0u64;
        for t in 1..=5_000u64 {
            let mut delta = Snapshot::default();
            let n = 1 + t % 7;
            for i in 0..n {
                // One slow request at t = 4321 must survive every coarsening.
                let us = if t == 4_321 && i == 0 {
                    9_000_000
                } else {
                    1_000
                };
                delta.record(Event::new((i % 2) as u32, us));
            }
            total += n;
            history.push(t as f64, Duration::from_secs(1), &delta);
        }
        let points = history.points();
        assert!(points.len() <= MAX_HISTORY_POINTS + 1, "{}", points.len());
        assert_eq!(points.iter().map(|p| p.requests).sum::<u64>(), total);
        assert_eq!(points.last().map(|p| p.total_requests), Some(total));
        let spans: f64 = points.iter().map(|p| p.span_secs).sum();
        assert!((spans - 5_000.0).abs() < 1e-6, "{spans}");
        // Rates times spans give back the counts, overall and per row.
        let from_rates: f64 = points.iter().map(|p| p.rate * p.span_secs).sum();
        assert!((from_rates - total as f64).abs() < 1e-3, "{from_rates}");
        let row_counts: f64 = points
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| s.rate * p.span_secs))
            .sum();
        assert!((row_counts - total as f64).abs() < 1e-3, "{row_counts}");
        let worst = points.iter().filter_map(|p| p.p99_us).max();
        assert!(worst.is_some_and(|w| w >= 8_900_000), "{worst:?}");
        // Time stays ordered.
        assert!(points.windows(2).all(|w| w[0].t_secs < w[1].t_secs));
    }
}
