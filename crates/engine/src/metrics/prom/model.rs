//! The exposition model: what one scrape shows, built from the run's cumulative [`Snapshot`]
//! on each tick (rows per statistics step, the breakdown, gauges), with the latency histograms
//! re-bucketed to the fixed [`BUCKETS`].

use std::collections::BTreeMap;

use crate::metrics::Latency;
use crate::metrics::event::{ErrorKind, Protocol};
use crate::metrics::snapshot::{IterationCounts, Snapshot, StepStats};
use crate::metrics::summary::StepInfo;

/// Upper bounds of the latency buckets, seconds (`+Inf` is implicit): from 100 µs, so
/// sub-millisecond requests (a local target, a cache) do not all fall into one bucket.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdState {
    pub rule: String,
    pub metric: String,
    pub passing: bool,
}

/// Labels identifying a statistics row.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct RowId {
    pub(super) scenario: String,
    pub(super) step: String,
    pub(super) method: String,
    /// `http`, `ws` or `group` ([`Protocol`]).
    pub(super) protocol: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Row {
    pub(super) id: RowId,
    pub(super) group: bool,
    pub(super) count: u64,
    /// `(status class, count)`; events without an HTTP status are `none`.
    pub(super) statuses: Vec<(&'static str, u64)>,
    pub(super) failures: Vec<(ErrorKind, u64)>,
    pub(super) checks_passed: u64,
    pub(super) checks_failed: u64,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    /// Non-cumulative counts per [`BUCKETS`] bound.
    pub(super) buckets: Vec<u64>,
    pub(super) sum_secs: f64,
    /// WebSocket frames: `("sent" | "received", count)`.
    pub(super) ws: Option<(&'static str, u64)>,
    /// `receive` rows: time since the latest send.
    pub(super) reply: Option<Hist>,
    /// HTTP rows: response bodies after content decoding.
    pub(super) bytes_decoded: u64,
    /// HTTP rows: `(phase, (sum in seconds, count, buckets))` for `dns`, `connect`,
    /// `wait`, `receive`.
    pub(super) phases: Vec<(&'static str, Hist)>,
}

/// A histogram as exported: sum in seconds, count, non-cumulative counts per [`BUCKETS`].
pub(super) type Hist = (f64, u64, Vec<u64>);

/// What one breakdown series merges: `((by, key, value), statistics row ids)`; `by` is
/// `scenario`, `group` or `tag`, `key` the tag key (empty otherwise). Only what the plan
/// declares, so the label values are bounded and known before the run.
pub type BreakdownSel = ((&'static str, String, String), Vec<u32>);

/// One breakdown series: its labels and the merged counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct BreakRow {
    pub(super) by: &'static str,
    pub(super) key: String,
    pub(super) value: String,
    pub(super) count: u64,
    pub(super) failures: u64,
    pub(super) buckets: Vec<u64>,
    pub(super) sum_secs: f64,
}

/// Everything one scrape shows; rebuilt on each tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    pub(super) rows: Vec<Row>,
    pub(super) breakdown: Vec<BreakRow>,
    pub(super) users: u64,
    pub(super) iterations: IterationCounts,
    pub(super) thresholds: Vec<ThresholdState>,
    pub(super) plan: String,
    pub(super) profile: String,
}

impl Exposition {
    /// The exposition of `total` (a cumulative snapshot), rows labelled from `steps`.
    pub fn build(steps: &[StepInfo], total: &Snapshot, users: u64) -> Exposition {
        let mut failures: BTreeMap<u32, BTreeMap<ErrorKind, u64>> = BTreeMap::new();
        for (k, &n) in &total.errors {
            *failures
                .entry(k.step)
                .or_default()
                .entry(k.kind)
                .or_default() += n;
        }
        let empty = StepStats::default();
        // Every step of the plan from the start (counters at 0), then rows the snapshot has
        // that the plan's table lacks.
        // One lookup per row (the plan's table by id), not a scan per row.
        let by_id: BTreeMap<u32, &StepInfo> = steps.iter().map(|i| (i.id, i)).collect();
        let mut ids: Vec<u32> = steps.iter().map(|i| i.id).collect();
        ids.extend(total.steps.keys().filter(|id| !by_id.contains_key(id)));
        let rows = ids
            .into_iter()
            .map(|id| {
                let s = total.steps.get(&id).unwrap_or(&empty);
                let info = by_id.get(&id).copied();
                let id_labels = match info {
                    Some(i) => RowId {
                        scenario: i.scenario.clone(),
                        step: i.name.clone(),
                        method: i.kind.clone(),
                        protocol: Protocol::of_kind(&i.kind).as_str(),
                    },
                    None => RowId {
                        scenario: String::new(),
                        step: format!("step #{id}"),
                        method: "?".into(),
                        protocol: Protocol::Http.as_str(),
                    },
                };
                let mut fails: BTreeMap<ErrorKind, u64> =
                    ErrorKind::ALL.iter().map(|&k| (k, 0)).collect();
                fails.extend(failures.remove(&id).unwrap_or_default());
                row(id_labels, s, fails)
            })
            .collect();
        Exposition {
            rows,
            users,
            iterations: total.iterations,
            ..Exposition::default()
        }
    }
}

fn row(id: RowId, s: &StepStats, failures: BTreeMap<ErrorKind, u64>) -> Row {
    let mut classes: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut with_status = 0;
    for (&code, &n) in &s.statuses {
        let class = match code / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            5 => "5xx",
            _ => "other",
        };
        *classes.entry(class).or_default() += n;
        with_status += n;
    }
    // Always present (0 until an event without a status), so the family exists from the start.
    classes.insert("none", s.count.saturating_sub(with_status));
    let buckets = rebucket(&s.latency);
    let histogram = |l: &Latency| (l.mean() * l.len() as f64 / 1e6, l.len(), rebucket(l));
    let reply = (id.method == "receive").then(|| histogram(&s.reply));
    let p = &s.phases;
    let phases = if id.protocol == Protocol::Http.as_str() {
        [
            ("dns", &p.dns),
            ("connect", &p.connect),
            ("wait", &p.wait),
            ("receive", &p.receive),
        ]
        .map(|(name, l)| (name, histogram(l)))
        .to_vec()
    } else {
        Vec::new()
    };
    let lost = |kinds: &[ErrorKind]| -> u64 { kinds.iter().filter_map(|k| failures.get(k)).sum() };
    let ws = match id.method.as_str() {
        "send" => Some(("sent", s.count.saturating_sub(s.failures))),
        "receive" => Some((
            "received",
            s.count.saturating_sub(lost(&[
                ErrorKind::WsTimeout,
                ErrorKind::WsClosed,
                ErrorKind::WsProtocol,
            ])),
        )),
        _ => None,
    };
    Row {
        group: id.protocol == Protocol::Group.as_str(),
        id,
        count: s.count,
        statuses: classes.into_iter().collect(),
        failures: failures.into_iter().collect(),
        checks_passed: s.checks_passed,
        checks_failed: s.checks_failed,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        buckets,
        sum_secs: s.latency.mean() * s.latency.len() as f64 / 1e6,
        ws,
        reply,
        bytes_decoded: s.bytes_decoded,
        phases,
    }
}

/// Non-cumulative counts per [`BUCKETS`] bound.
fn rebucket(l: &Latency) -> Vec<u64> {
    let mut below = 0;
    BUCKETS
        .iter()
        .map(|&le| {
            let cumulative = l.count_le((le * 1e6) as u64);
            let n = cumulative.saturating_sub(below);
            below = below.max(cumulative);
            n
        })
        .collect()
}

/// The breakdown series of `total`: each selection's rows merged (histograms and counters).
pub(super) fn break_rows(sel: &[BreakdownSel], total: &Snapshot) -> Vec<BreakRow> {
    sel.iter()
        .map(|((by, key, value), ids)| {
            let s = total.aggregate(|id| ids.contains(&id));
            BreakRow {
                by,
                key: key.clone(),
                value: value.clone(),
                count: s.count,
                failures: s.failures,
                buckets: rebucket(&s.latency),
                sum_secs: s.latency.mean() * s.latency.len() as f64 / 1e6,
            }
        })
        .collect()
}
