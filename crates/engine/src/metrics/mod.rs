//! Metrics: the stage after the runtime. Virtual users turn each finished step into an
//! [`Event`]; a per-task [`Recorder`] buffers events and flushes them into a sharded
//! [`Aggregator`]; a 1 s ticker takes a delta [`Snapshot`] from it, folds it into the run's total
//! ([`Snapshot::accumulate`]) and [`History`], and hands snapshots to the sinks (terminal
//! progress and [`render_summary`], Prometheus, web UI, reports, the master).
//!
//! ```text
//! user task ── Event ──► Recorder (owned, buffered) ──flush──► Aggregator shard (Mutex)
//!                                                                   │ take_delta (1 s tick)
//!                      sinks ◄── Snapshot total / History ◄── delta Snapshot ◄─ workers' deltas
//! ```
//!
//! Invariants that hold across the module:
//! - Users never lock anything shared per request; they lock one shard per flush.
//! - A snapshot is counters plus HDR histogram buckets ([`Latency`]), so merging is exact
//!   (task → process → master) and percentiles are computed from merged buckets, never averaged.
//! - Memory is bounded for any run length: histograms clamp at 1 hour, error messages are
//!   bounded per `(step, kind)`.
//!
//! Typical wiring (the runtime's side):
//!
//! ```
//! use std::sync::Arc;
//! use loadplan_engine::metrics::{Aggregator, Counter, Event, Snapshot};
//!
//! let agg = Arc::new(Aggregator::new());
//! let mut rec = agg.recorder(); // one per user task
//! rec.count(Counter::IterationStarted);
//! rec.record(Event::new(0, 12_345).with_status(200));
//! rec.flush(); // before think time; also done on drop
//!
//! let mut total = Snapshot::default();
//! total.accumulate(&agg.take_delta()); // every tick
//! assert_eq!(total.requests(), 1);
//! ```

mod event;
mod hist;
mod local;
pub mod prom;
mod snapshot;
mod summary;
mod tick;

pub use event::{Counter, ErrorKind, Event, Phases, Protocol, StepId};
pub use hist::{Latency, MAX_DECODED_COUNTS, MAX_US};
pub use local::{Aggregator, FLUSH_EVENTS, FLUSH_INTERVAL, FlushPolicy, Recorder};
pub use snapshot::{
    ErrorKey, History, HistoryPoint, IterationCounts, MAX_MESSAGE_LEN, MAX_MESSAGES_PER_KIND,
    OTHER_MESSAGES, PhaseStats, ROLLING_SECS, Snapshot, StepStats,
};
pub use summary::{
    StepInfo, SummaryOptions, format_ms, render_breakdown, render_progress_line, render_summary,
    render_summary_with, terminal_width,
};
pub use tick::Tick;
