//! The encoder: a prometheus-client [`Collector`] that writes the current [`Exposition`] as
//! metric families (names, help, units, labels).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::model::{BUCKETS, BreakRow, Exposition, Row, RowId};
use crate::metrics::Protocol;

#[derive(Debug)]
pub(super) struct SnapshotCollector(pub(super) Arc<Mutex<Exposition>>);

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

/// The duration histogram of each row.
fn durations<'a>(rows: &[&'a Row]) -> Vec<(Labels<'a>, Value)> {
    rows.iter()
        .map(|r| {
            let h = Value::Histogram(r.sum_secs, r.count, r.buckets.clone());
            (labels(&r.id), h)
        })
        .collect()
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
            durations(&steps),
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
            durations(&groups),
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
