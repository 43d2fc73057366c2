//! The Prometheus sink: `--metrics [ADDR]` serves the run's numbers at `/metrics` (text format
//! 0.0.4, or OpenMetrics when the scraper asks for it) through prometheus-client.
//!
//! Like every sink it reads snapshots only: on each 1 s tick the runner calls
//! [`Exporter::update`] with the run's cumulative [`Snapshot`], which rebuilds a small
//! [`Exposition`] (counters and fixed-bucket histograms) and swaps it in under a lock held only
//! for the swap; a scrape encodes the current exposition through a prometheus-client
//! [`Collector`](prometheus_client::collector::Collector). Virtual users never touch the registry.
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
//!
//! One file per concern: [`listen`](parse_listen) (the flag), `model` (the [`Exposition`]),
//! `encode` (the collector writing it), `server` (`/metrics` over HTTP); this file ties them
//! into the [`Exporter`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::registry::Registry;

use super::snapshot::Snapshot;
use super::summary::StepInfo;

mod encode;
mod listen;
mod model;
mod server;

use encode::SnapshotCollector;
pub use listen::{DEFAULT_ADDR, Listen, parse_listen};
use model::break_rows;
pub use model::{BUCKETS, BreakdownSel, Exposition, ThresholdState};

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
}

#[cfg(test)]
mod tests;
