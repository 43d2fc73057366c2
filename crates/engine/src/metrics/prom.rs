//! The Prometheus sink: `--metrics [ADDR]` serves the run's numbers at `/metrics` (text format
//! 0.0.4, or OpenMetrics when the scraper asks for it) through prometheus-client.
//!
//! Like every sink it reads snapshots only: on each 1 s tick the runner calls
//! [`Exporter::update`] with the run's cumulative [`Snapshot`], which rebuilds a small
//! [`Exposition`] (counters and fixed-bucket histograms) and swaps it in under a lock held only
//! for the swap; a scrape encodes the current exposition through a prometheus-client
//! [`Collector`]. Virtual users never touch the registry.
//!
//! Invariants:
//! - Names are `loadplan_*`, with units in the name and `_total` on counters.
//! - Latency histograms have fixed buckets ([`BUCKETS`], 100 µs to 60 s) filled from the merged
//!   HDR histogram with [`Latency::count_le`](super::Latency::count_le), so series from many
//!   instances (workers, replicas) aggregate with `sum by (le)`.
//! - Labels are bounded by the plan and the profile: `scenario`, `step` (statistics name),
//!   `method` (HTTP method or WebSocket step kind), `status_class`, `error_kind` (a closed set),
//!   `result`, `direction`, `outcome`, `rule`. No label takes a value from a response.
//! - Every step of the plan is exported from the first scrape, its counters at 0 (every
//!   `error_kind` of `loadplan_request_failures_total`, the `none` status class), so PromQL's
//!   `rate()` says 0, not "no data", before the first request or failure.
//! - `protocol` (`http`, `ws`, `group`) keeps HTTP requests and WebSocket messages apart:
//!   `sum by (protocol)` gives the separate totals (docs/metrics.md).
//! - Groups (timed transactions made of other steps) are exported apart, as
//!   `loadplan_transactions_total` and `loadplan_transaction_duration_seconds`, so summing the
//!   request series never counts a request twice.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::event::{ErrorKind, Protocol};
use super::snapshot::{IterationCounts, Snapshot, StepStats};
use super::summary::StepInfo;

/// Upper bounds of the latency buckets, seconds (`+Inf` is implicit): from 100 µs, so
/// sub-millisecond requests (a local target, a cache) do not all fall into one bucket.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// The default listen address (metrics on 9646, opt-in).
pub const DEFAULT_ADDR: &str = "127.0.0.1:9646";

/// What `--metrics` / `LOADPLAN_METRICS` asked for: `None` is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// Parses a `--metrics` value: an address (`127.0.0.1:9646`, `0.0.0.0:9646`, `:9646` for every
/// interface), `1`/`true`/`on` for the default address, `0`/`false`/`off`/empty for off.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" => Ok(Listen(None)),
        "1" | "true" | "on" | "yes" => default_addr().map(|a| Listen(Some(a))),
        _ => {
            let full = if t.starts_with(':') {
                format!("0.0.0.0{t}")
            } else {
                t.to_owned()
            };
            full.parse::<SocketAddr>()
                .map(|a| Listen(Some(a)))
                .map_err(|_| {
                    format!(
                        "`{s}` is not an address like 127.0.0.1:9646 (give the plan before \
                     --metrics, or write --metrics=ADDR)"
                    )
                })
        }
    }
}

fn default_addr() -> Result<SocketAddr, String> {
    DEFAULT_ADDR
        .parse()
        .map_err(|_| "bad default address".to_owned())
}

/// A rule's state for the `loadplan_threshold_passing` gauge.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdState {
    pub rule: String,
    pub metric: String,
    pub passing: bool,
}

/// Labels identifying a statistics row.
#[derive(Clone, Debug, Default, PartialEq)]
struct RowId {
    scenario: String,
    step: String,
    method: String,
    /// `http`, `ws` or `group` ([`Protocol`]).
    protocol: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Row {
    id: RowId,
    group: bool,
    count: u64,
    /// `(status class, count)`; events without an HTTP status are `none`.
    statuses: Vec<(&'static str, u64)>,
    failures: Vec<(ErrorKind, u64)>,
    checks_passed: u64,
    checks_failed: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Non-cumulative counts per [`BUCKETS`] bound.
    buckets: Vec<u64>,
    sum_secs: f64,
    /// WebSocket frames: `("sent" | "received", count)`.
    ws: Option<(&'static str, u64)>,
    /// `receive` rows: time since the latest send.
    reply: Option<Hist>,
    /// HTTP rows: response bodies after content decoding.
    bytes_decoded: u64,
    /// HTTP rows: `(phase, (sum in seconds, count, buckets))` for `dns`, `connect`,
    /// `wait`, `receive`.
    phases: Vec<(&'static str, Hist)>,
}

/// A histogram as exported: sum in seconds, count, non-cumulative counts per [`BUCKETS`].
type Hist = (f64, u64, Vec<u64>);

/// What one breakdown series merges: `((by, key, value), statistics row ids)`; `by` is
/// `scenario`, `group` or `tag`, `key` the tag key (empty otherwise). Only what the plan
/// declares, so the label values are bounded and known before the run.
pub type BreakdownSel = ((&'static str, String, String), Vec<u32>);

/// One breakdown series: its labels and the merged counts.
#[derive(Clone, Debug, Default, PartialEq)]
struct BreakRow {
    by: &'static str,
    key: String,
    value: String,
    count: u64,
    failures: u64,
    buckets: Vec<u64>,
    sum_secs: f64,
}

/// Everything one scrape shows; rebuilt on each tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    rows: Vec<Row>,
    breakdown: Vec<BreakRow>,
    users: u64,
    iterations: IterationCounts,
    thresholds: Vec<ThresholdState>,
    plan: String,
    profile: String,
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
    let histogram = |l: &super::Latency| (l.mean() * l.len() as f64 / 1e6, l.len(), rebucket(l));
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
fn rebucket(l: &super::Latency) -> Vec<u64> {
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
fn break_rows(sel: &[BreakdownSel], total: &Snapshot) -> Vec<BreakRow> {
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

/// The live exporter: a registry whose one collector encodes the latest [`Exposition`].
#[derive(Debug)]
pub struct Exporter {
    state: Arc<Mutex<Exposition>>,
    registry: Registry,
    breakdown: Vec<BreakdownSel>,
}

impl Exporter {
    /// An exporter labelled with the plan's and the profile's names (`loadplan_run_info`).
    pub fn new(plan: &str, profile: &str) -> Exporter {
        let state = Arc::new(Mutex::new(Exposition {
            plan: plan.to_owned(),
            profile: profile.to_owned(),
            ..Exposition::default()
        }));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector(state.clone())));
        Exporter {
            state,
            registry,
            breakdown: Vec::new(),
        }
    }

    /// Also export the breakdown by scenario, group and tag (`loadplan_breakdown_*`).
    pub fn with_breakdown(mut self, sel: Vec<BreakdownSel>) -> Exporter {
        self.breakdown = sel;
        self
    }

    /// Rebuilds the exposition from the run's cumulative snapshot (call once per tick).
    pub fn update(
        &self,
        steps: &[StepInfo],
        total: &Snapshot,
        users: u64,
        thresholds: Vec<ThresholdState>,
    ) {
        let mut next = Exposition::build(steps, total, users);
        next.breakdown = break_rows(&self.breakdown, total);
        next.thresholds = thresholds;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        next.plan = std::mem::take(&mut state.plan);
        next.profile = std::mem::take(&mut state.profile);
        *state = next;
    }

    /// The text exposition: OpenMetrics when `openmetrics`, else Prometheus text 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> Result<String, fmt::Error> {
        let mut out = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        }
        Ok(out)
    }

    /// Serves `/metrics` on `listener` until `shutdown` is cancelled.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::routing::get;
        let me = self;
        let handler = move |headers: HeaderMap| {
            let exporter = Arc::clone(&me);
            async move {
                let openmetrics = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("application/openmetrics-text"));
                match exporter.encode(openmetrics) {
                    Ok(body) => {
                        let content_type = if openmetrics {
                            "application/openmetrics-text; version=1.0.0; charset=utf-8"
                        } else {
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE
                        };
                        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
                    }
                    Err(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [(header::CONTENT_TYPE, "text/plain")],
                        "encoding failed\n".to_owned(),
                    ),
                }
            }
        };
        let app = axum::Router::new()
            .route("/metrics", get(handler))
            .route("/", get(|| async { "loadplan: metrics at /metrics\n" }));
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Exposition>>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn labels(id: &RowId) -> Labels<'_> {
    vec![
        ("scenario", id.scenario.as_str()),
        ("step", id.step.as_str()),
        ("method", id.method.as_str()),
        ("protocol", id.protocol),
    ]
}

fn with<'a>(mut l: Labels<'a>, key: &'static str, value: &'a str) -> Labels<'a> {
    l.push((key, value));
    l
}

/// One metric family: a descriptor, then its series (skipped entirely when it has none, so the
/// exposition has no empty families).
fn family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    kind: MetricType,
    series: Vec<(Labels<'a>, Value)>,
) -> fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let unit = unit.as_ref();
    let mut m = enc.encode_descriptor(name, help, unit, kind)?;
    for (l, v) in series {
        let mut s = m.encode_family(&l)?;
        match v {
            Value::Counter(n) => s.encode_counter::<NoLabelSet, u64, u64>(&n, None)?,
            Value::Gauge(n) => s.encode_gauge(&n)?,
            Value::Histogram(sum, count, buckets) => {
                let bounds: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(buckets).collect();
                s.encode_histogram::<NoLabelSet>(sum, count, &bounds, None)?
            }
        }
    }
    Ok(())
}

enum Value {
    Counter(u64),
    Gauge(i64),
    Histogram(f64, u64, Vec<u64>),
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let x = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (groups, steps): (Vec<&Row>, Vec<&Row>) = x.rows.iter().partition(|r| r.group);
        use MetricType::{Counter, Gauge, Histogram};
        use Value as V;
        let info: Labels = vec![
            ("plan", x.plan.as_str()),
            ("profile", x.profile.as_str()),
            ("version", env!("CARGO_PKG_VERSION")),
        ];
        family(
            &mut enc,
            "loadplan_run_info",
            "The running plan and profile (always 1).",
            None,
            Gauge,
            vec![(info, V::Gauge(1))],
        )?;
        family(
            &mut enc,
            "loadplan_users",
            "Virtual users running now.",
            None,
            Gauge,
            vec![(vec![], V::Gauge(x.users as i64))],
        )?;
        let it = &x.iterations;
        family(
            &mut enc,
            "loadplan_iterations_started",
            "Scenario iterations started.",
            None,
            Counter,
            vec![(vec![], V::Counter(it.started))],
        )?;
        family(
            &mut enc,
            "loadplan_iterations",
            "Scenario iterations ended, by outcome (completed, failed, dropped: an open-model arrival that found no free user).",
            None,
            Counter,
            [
                ("completed", it.completed),
                ("failed", it.failed),
                ("dropped", it.dropped),
            ]
            .into_iter()
            .map(|(o, n)| (vec![("outcome", o)], V::Counter(n)))
            .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_requests",
            "Finished requests (HTTP requests, WebSocket connects, sends, receives, closes) by status class (none: no HTTP status).",
            None,
            Counter,
            steps
                .iter()
                .flat_map(|r| {
                    r.statuses
                        .iter()
                        .map(|(c, n)| (with(labels(&r.id), "status_class", c), V::Counter(*n)))
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_request_failures",
            "Failed requests by error kind.",
            None,
            Counter,
            steps
                .iter()
                .flat_map(|r| {
                    r.failures.iter().map(|(k, n)| {
                        (
                            with(labels(&r.id), "error_kind", k.as_str()),
                            V::Counter(*n),
                        )
                    })
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_request_duration",
            "Service time of requests (from the actual send), from the merged HDR histogram.",
            Some(Unit::Seconds),
            Histogram,
            steps
                .iter()
                .map(|r| {
                    (
                        labels(&r.id),
                        V::Histogram(r.sum_secs, r.count, r.buckets.clone()),
                    )
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_checks",
            "Checks evaluated on responses and frames, by result (passed, failed).",
            None,
            Counter,
            x.rows
                .iter()
                .filter(|r| r.checks_passed + r.checks_failed > 0)
                .flat_map(|r| {
                    [("passed", r.checks_passed), ("failed", r.checks_failed)]
                        .map(|(res, n)| (with(labels(&r.id), "result", res), V::Counter(n)))
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_data_received",
            "Bytes received (response bodies, WebSocket frames).",
            Some(Unit::Bytes),
            Counter,
            steps
                .iter()
                .map(|r| (labels(&r.id), V::Counter(r.bytes_in)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_data_decoded",
            "HTTP response bodies after content decoding (gzip, br, ...); data_received counts them as they came over the wire.",
            Some(Unit::Bytes),
            Counter,
            steps
                .iter()
                .filter(|r| r.id.protocol == Protocol::Http.as_str())
                .map(|r| (labels(&r.id), V::Counter(r.bytes_decoded)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_request_phase_duration",
            "HTTP requests with a whole response, by phase: dns and connect (TCP, with TLS on https) once per new connection, wait (send to response head, time to first byte), receive (the body).",
            Some(Unit::Seconds),
            Histogram,
            steps
                .iter()
                .flat_map(|r| {
                    r.phases.iter().map(|(phase, (sum, count, buckets))| {
                        (
                            with(labels(&r.id), "phase", phase),
                            V::Histogram(*sum, *count, buckets.clone()),
                        )
                    })
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_data_sent",
            "Bytes sent (request bodies, WebSocket frames).",
            Some(Unit::Bytes),
            Counter,
            steps
                .iter()
                .map(|r| (labels(&r.id), V::Counter(r.bytes_out)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_ws_messages",
            "WebSocket messages sent and received (matched or not), by direction.",
            None,
            Counter,
            steps
                .iter()
                .filter_map(|r| {
                    r.ws.map(|(dir, n)| (with(labels(&r.id), "direction", dir), V::Counter(n)))
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_ws_reply_duration",
            "Received WebSocket frames: time since the session's latest send (reply latency); the request duration of a receive row is the wait for each frame.",
            Some(Unit::Seconds),
            Histogram,
            steps
                .iter()
                .filter_map(|r| {
                    r.reply.as_ref().map(|(sum, count, buckets)| {
                        (labels(&r.id), V::Histogram(*sum, *count, buckets.clone()))
                    })
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_transactions",
            "Finished groups (transactions timed as one).",
            None,
            Counter,
            groups
                .iter()
                .map(|r| (labels(&r.id), V::Counter(r.count)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_transaction_duration",
            "Duration of groups (transactions timed as one).",
            Some(Unit::Seconds),
            Histogram,
            groups
                .iter()
                .map(|r| {
                    (
                        labels(&r.id),
                        V::Histogram(r.sum_secs, r.count, r.buckets.clone()),
                    )
                })
                .collect(),
        )?;
        let by_labels = |b: &'_ BreakRow| -> Vec<(&'static str, String)> {
            vec![
                ("by", b.by.to_owned()),
                ("key", b.key.clone()),
                ("value", b.value.clone()),
            ]
        };
        let owned: Vec<Vec<(&'static str, String)>> = x.breakdown.iter().map(by_labels).collect();
        let borrowed =
            |i: usize| -> Labels<'_> { owned[i].iter().map(|(k, v)| (*k, v.as_str())).collect() };
        family(
            &mut enc,
            "loadplan_breakdown_requests",
            "Finished HTTP requests and WebSocket messages by scenario, group or declared tag (by=scenario|group|tag, key: the tag key, value: the name or tag value).",
            None,
            Counter,
            x.breakdown
                .iter()
                .enumerate()
                .map(|(i, b)| (borrowed(i), V::Counter(b.count)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_breakdown_failures",
            "Failed HTTP requests and WebSocket messages by scenario, group or declared tag.",
            None,
            Counter,
            x.breakdown
                .iter()
                .enumerate()
                .map(|(i, b)| (borrowed(i), V::Counter(b.failures)))
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_breakdown_duration",
            "Service time by scenario, group or declared tag, from the merged HDR histograms.",
            Some(Unit::Seconds),
            Histogram,
            x.breakdown
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        borrowed(i),
                        V::Histogram(b.sum_secs, b.count, b.buckets.clone()),
                    )
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "loadplan_threshold_passing",
            "Whether each profile threshold holds on the run so far (1 holds, 0 fails).",
            None,
            Gauge,
            x.thresholds
                .iter()
                .map(|t| {
                    (
                        vec![("rule", t.rule.as_str()), ("metric", t.metric.as_str())],
                        V::Gauge(i64::from(t.passing)),
                    )
                })
                .collect(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Event;

    fn steps() -> Vec<StepInfo> {
        let info = |id, kind: &str, name: &str| StepInfo {
            id,
            scenario: "s".into(),
            kind: kind.into(),
            name: name.into(),
        };
        vec![
            info(0, "GET", "/health"),
            info(1, "receive", "frame"),
            info(2, "group", "session"),
        ]
    }

    #[test]
    fn listen_values_cover_on_off_and_addresses() {
        assert_eq!(
            parse_listen("1"),
            Ok(Listen(Some(DEFAULT_ADDR.parse().expect("addr"))))
        );
        assert_eq!(parse_listen("off"), Ok(Listen(None)));
        assert_eq!(parse_listen(""), Ok(Listen(None)));
        assert_eq!(
            parse_listen(":9000"),
            Ok(Listen(Some("0.0.0.0:9000".parse().expect("addr"))))
        );
        assert!(parse_listen("plan.kdl").is_err());
    }

    #[test]
    fn histograms_rebucket_the_hdr_counts_and_groups_stay_apart() {
        let mut s = Snapshot::default();
        for us in [500, 2_000, 2_000, 70_000_000] {
            s.record(Event::new(0, us).with_status(200));
        }
        s.record(Event::new(0, 3_000).with_error(ErrorKind::Connect, "refused"));
        s.record(Event::new(1, 10).with_error(ErrorKind::WsTimeout, "1 of 5"));
        s.record(Event::new(1, 10));
        s.record(Event::new(2, 1_000_000));
        let e = Exporter::new("p", "smoke");
        e.update(&steps(), &s, 3, vec![]);
        let text = e.encode(false).expect("encode");
        let has = |line: &str| text.lines().any(|l| l == line);
        let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
        assert!(
            has(&format!(
                "loadplan_request_duration_seconds_bucket{{{base},le=\"0.001\"}} 1"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_request_duration_seconds_bucket{{{base},le=\"0.0025\"}} 3"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_request_duration_seconds_bucket{{{base},le=\"60\"}} 4"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} 5"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_requests_total{{{base},status_class=\"2xx\"}} 4"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_requests_total{{{base},status_class=\"none\"}} 1"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_request_failures_total{{{base},error_kind=\"connect\"}} 1"
            )),
            "{text}"
        );
        assert!(
            has(
                "loadplan_ws_messages_total{scenario=\"s\",step=\"frame\",method=\"receive\",protocol=\"ws\",direction=\"received\"} 1"
            ),
            "{text}"
        );
        assert!(
            has(
                "loadplan_transactions_total{scenario=\"s\",step=\"session\",method=\"group\",protocol=\"group\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("method=\"group\",protocol=\"group\",status_class"),
            "{text}"
        );
        assert!(has("loadplan_users 3"), "{text}");
        let om = e.encode(true).expect("openmetrics");
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn every_counter_is_exported_at_zero_before_the_first_event() {
        let e = Exporter::new("p", "smoke");
        e.update(&steps(), &Snapshot::default(), 0, vec![]);
        let text = e.encode(false).expect("encode");
        let has = |line: &str| text.lines().any(|l| l == line);
        let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
        for kind in ErrorKind::ALL {
            let line = format!(
                "loadplan_request_failures_total{{{base},error_kind=\"{}\"}} 0",
                kind.as_str()
            );
            assert!(has(&line), "{line}\n{text}");
        }
        assert!(
            has(&format!(
                "loadplan_requests_total{{{base},status_class=\"none\"}} 0"
            )),
            "{text}"
        );
        assert!(
            has(&format!(
                "loadplan_request_duration_seconds_count{{{base}}} 0"
            )),
            "{text}"
        );
    }

    #[test]
    fn phases_and_decoded_bytes_are_exported_for_http_rows_only() {
        let mut s = Snapshot::default();
        let phased = |connect: Option<u64>| Event {
            bytes_in: 100,
            bytes_decoded: 400,
            phases: Some(crate::metrics::Phases {
                dns_us: None,
                connect_us: connect,
                wait_us: 200_000,
                receive_us: 50,
            }),
            ..Event::new(0, 201_000).with_status(200)
        };
        s.record(phased(Some(300)));
        s.record(phased(None));
        s.record(Event::new(1, 10));
        let e = Exporter::new("p", "smoke");
        e.update(&steps(), &s, 1, vec![]);
        let text = e.encode(false).expect("encode");
        let has = |line: &str| text.lines().any(|l| l == line);
        let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
        for (phase, le, n) in [
            ("wait", "0.1", 0),
            ("wait", "0.25", 2),
            ("connect", "0.0005", 1),
            ("connect", "+Inf", 1),
            ("receive", "0.0001", 2),
            ("dns", "+Inf", 0),
        ] {
            let line = format!(
                "loadplan_request_phase_duration_seconds_bucket{{{base},phase=\"{phase}\",le=\"{le}\"}} {n}"
            );
            assert!(has(&line), "{line}\n{text}");
        }
        assert!(
            has(&format!("loadplan_data_decoded_bytes_total{{{base}}} 800")),
            "{text}"
        );
        assert!(
            has(&format!("loadplan_data_received_bytes_total{{{base}}} 200")),
            "{text}"
        );
        assert!(!text.contains("step=\"frame\",method=\"receive\",protocol=\"ws\",phase"));
    }

    #[test]
    fn sub_millisecond_requests_spread_over_buckets_from_100_microseconds() {
        let mut s = Snapshot::default();
        for us in [80, 200, 400, 900] {
            s.record(Event::new(0, us).with_status(200));
        }
        let e = Exporter::new("p", "smoke");
        e.update(&steps(), &s, 1, vec![]);
        let text = e.encode(false).expect("encode");
        let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
        for (le, n) in [("0.0001", 1), ("0.00025", 2), ("0.0005", 3), ("0.001", 4)] {
            let line =
                format!("loadplan_request_duration_seconds_bucket{{{base},le=\"{le}\"}} {n}");
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }

    #[test]
    fn http_and_websocket_rows_carry_their_protocol() {
        let mut s = Snapshot::default();
        s.record(Event::new(0, 100).with_status(200));
        s.record(Event::new(1, 100));
        let e = Exporter::new("p", "smoke");
        e.update(&steps(), &s, 1, vec![]);
        let text = e.encode(false).expect("encode");
        assert!(
            text.contains("method=\"GET\",protocol=\"http\",status_class=\"2xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("method=\"receive\",protocol=\"ws\",status_class=\"none\"} 1"),
            "{text}"
        );
    }
}
