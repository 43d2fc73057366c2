//! The hot path: how virtual users hand events to the metrics pipeline without contending.
//!
//! Each user task owns a [`Recorder`] (never shared). [`Recorder::record`] only pushes the event
//! into a small local buffer; the buffer is applied to one shard of the shared [`Aggregator`]
//! when it holds [`FLUSH_EVENTS`] items, when [`FLUSH_INTERVAL`] has passed since the last flush
//! (checked at record time), on [`Recorder::flush`] and on drop. So a user takes a lock at most
//! once per 256 events or per 250 ms, and the lock is a shard's (recorders are spread over
//! shards round-robin), never a global histogram. The 1 s ticker calls
//! [`Aggregator::take_delta`], which swaps each shard's [`Snapshot`] out (the lock is held only
//! for the swap) and merges them outside the locks.
//!
//! Invariants:
//! - Locks are `std::sync::Mutex`, never held across `.await` (this module has no `async`).
//! - Every event recorded is counted in exactly one delta: at the latest in the delta taken after
//!   its recorder flushed. Events still buffered in a recorder are not in a delta yet; the
//!   runtime should call [`Recorder::flush`] before a user waits (think time, pacing) so idle
//!   users' events reach the next tick, and recorders flush on drop so none are lost at the end.
//! - Buffers start empty and grow only to what a user produces between flushes (≤ 256 events),
//!   so thousands of mostly idle users cost almost nothing.

use super::event::{Counter, Event};
use super::snapshot::{IterationCounts, Snapshot};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Buffered items that trigger a flush.
pub const FLUSH_EVENTS: usize = 256;
/// Age of the last flush that triggers a flush at the next record.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// When recorders flush. The defaults are [`FLUSH_EVENTS`] and [`FLUSH_INTERVAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPolicy {
    pub max_buffered: usize,
    pub max_age: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            max_buffered: FLUSH_EVENTS,
            max_age: FLUSH_INTERVAL,
        }
    }
}

/// Process-wide collector shared (in an `Arc`) by all recorders and the ticker.
#[derive(Debug)]
pub struct Aggregator {
    shards: Box<[Mutex<Snapshot>]>,
    next_shard: AtomicUsize,
    users: AtomicU64,
    policy: FlushPolicy,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    /// One shard per available core (1..=16), default flush policy.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_config(cores.clamp(1, 16), FlushPolicy::default())
    }

    /// `shards` mutex-protected accumulators (at least one) and the recorders' flush policy.
    pub fn with_config(shards: usize, policy: FlushPolicy) -> Self {
        Aggregator {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Snapshot::default()))
                .collect(),
            next_shard: AtomicUsize::new(0),
            users: AtomicU64::new(0),
            policy,
        }
    }

    /// A recorder for one user task; recorders are spread over shards round-robin.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        Recorder {
            agg: Arc::clone(self),
            shard,
            events: Vec::new(),
            lateness: Vec::new(),
            iterations: IterationCounts::default(),
            last_flush: Instant::now(),
        }
    }

    /// Sets the active-users gauge (the driver calls this as users start and stop).
    pub fn set_users(&self, users: u64) {
        self.users.store(users, Ordering::Relaxed);
    }

    pub fn users(&self) -> u64 {
        self.users.load(Ordering::Relaxed)
    }

    /// Everything flushed since the previous call, with the current users gauge; resets the
    /// shards. Called by the 1 s ticker.
    pub fn take_delta(&self) -> Snapshot {
        let mut delta = Snapshot::default();
        for shard in &self.shards {
            // Swap under the lock, merge outside it, so recorders never wait on a merge.
            let taken = std::mem::take(&mut *lock(shard));
            if delta.is_empty() {
                delta = taken;
            } else if !taken.is_empty() {
                delta.merge(&taken);
            }
        }
        delta.set_users(self.users());
        delta
    }

    fn apply(
        &self,
        shard: usize,
        events: &mut Vec<Event>,
        lateness: &mut Vec<u64>,
        iterations: &IterationCounts,
    ) {
        let mut snap = lock(&self.shards[shard]);
        for ev in events.drain(..) {
            snap.record(ev);
        }
        for us in lateness.drain(..) {
            snap.record_lateness(us);
        }
        snap.iterations.merge(iterations);
    }
}

/// A poisoned shard only means a recorder panicked mid-flush; its counters are still usable.
fn lock(shard: &Mutex<Snapshot>) -> MutexGuard<'_, Snapshot> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-user-task buffer in front of the [`Aggregator`]. Owned by one task; `&mut` access only.
#[derive(Debug)]
pub struct Recorder {
    agg: Arc<Aggregator>,
    shard: usize,
    events: Vec<Event>,
    lateness: Vec<u64>,
    iterations: IterationCounts,
    last_flush: Instant,
}

impl Recorder {
    /// Buffers one finished step; flushes if the buffer is full or the last flush is old.
    pub fn record(&mut self, ev: Event) {
        self.events.push(ev);
        self.maybe_flush();
    }

    /// Counts an iteration transition (same buffering as events). The end of an
    /// iteration does not read the clock for the age check: what follows it does (the
    /// next iteration's start, or the flush before a user waits or stops), a clock
    /// read fewer per iteration of the closed loop.
    pub fn count(&mut self, counter: Counter) {
        self.iterations.count(counter, 1);
        if matches!(
            counter,
            Counter::IterationCompleted | Counter::IterationFailed
        ) {
            if self.buffered() >= self.agg.policy.max_buffered {
                self.flush();
            }
            return;
        }
        self.maybe_flush();
    }

    /// Open-model generator: how late (µs) an iteration started relative to its schedule.
    pub fn record_lateness(&mut self, us: u64) {
        self.lateness.push(us);
        self.maybe_flush();
    }

    /// Applies everything buffered to the aggregator now. Cheap (no lock) when nothing is
    /// buffered; call it before a user sleeps.
    pub fn flush(&mut self) {
        if self.events.is_empty() && self.lateness.is_empty() && self.iterations.is_zero() {
            return;
        }
        self.agg.apply(
            self.shard,
            &mut self.events,
            &mut self.lateness,
            &self.iterations,
        );
        self.iterations = IterationCounts::default();
        self.last_flush = Instant::now();
    }

    /// Items waiting for the next flush (iteration counters excluded).
    pub fn buffered(&self) -> usize {
        self.events.len() + self.lateness.len()
    }

    fn maybe_flush(&mut self) {
        let policy = &self.agg.policy;
        if self.buffered() >= policy.max_buffered || self.last_flush.elapsed() >= policy.max_age {
            self.flush();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::event::ErrorKind;

    /// Flushes only on size or explicitly: no timing involved.
    fn size_only(shards: usize) -> Arc<Aggregator> {
        Arc::new(Aggregator::with_config(
            shards,
            FlushPolicy {
                max_buffered: FLUSH_EVENTS,
                max_age: Duration::from_secs(3_600),
            },
        ))
    }

    #[test]
    fn recorders_can_move_into_tasks_and_the_aggregator_is_shared() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<Recorder>();
        send_sync::<Aggregator>();
    }

    #[test]
    fn recorder_flushes_when_its_buffer_is_full() {
        let agg = size_only(2);
        let mut rec = agg.recorder();
        for i in 0..FLUSH_EVENTS as u64 - 1 {
            rec.record(Event::new(0, i));
        }
        assert!(agg.take_delta().is_empty());
        assert_eq!(rec.buffered(), FLUSH_EVENTS - 1);
        rec.record(Event::new(0, 1));
        assert_eq!(rec.buffered(), 0);
        assert_eq!(agg.take_delta().steps[&0].count, FLUSH_EVENTS as u64);
    }

    #[test]
    fn recorder_flushes_on_explicit_flush_and_on_drop() {
        let agg = size_only(1);
        let mut rec = agg.recorder();
        rec.record(Event::new(4, 10));
        rec.count(Counter::IterationStarted);
        rec.flush();
        let delta = agg.take_delta();
        assert_eq!(delta.steps[&4].count, 1);
        assert_eq!(delta.iterations.started, 1);

        rec.record(Event::new(4, 10));
        rec.count(Counter::IterationCompleted);
        drop(rec);
        let delta = agg.take_delta();
        assert_eq!(delta.steps[&4].count, 1);
        assert_eq!(delta.iterations.completed, 1);
    }

    #[test]
    fn recorder_flushes_at_record_time_once_the_last_flush_is_old() {
        // max_age zero: every record finds its last flush "old enough".
        let agg = Arc::new(Aggregator::with_config(
            1,
            FlushPolicy {
                max_buffered: FLUSH_EVENTS,
                max_age: Duration::ZERO,
            },
        ));
        let mut rec = agg.recorder();
        rec.record(Event::new(0, 10));
        assert_eq!(rec.buffered(), 0);
        assert_eq!(agg.take_delta().requests(), 1);
    }

    #[test]
    fn an_iteration_end_waits_for_the_next_start_to_check_the_age() {
        let agg = Arc::new(Aggregator::with_config(
            1,
            FlushPolicy {
                max_buffered: FLUSH_EVENTS,
                max_age: Duration::ZERO,
            },
        ));
        let mut rec = agg.recorder();
        rec.count(Counter::IterationCompleted);
        assert_eq!(agg.take_delta().iterations.completed, 0);
        rec.count(Counter::IterationStarted);
        let delta = agg.take_delta();
        assert_eq!(
            (delta.iterations.completed, delta.iterations.started),
            (1, 1)
        );
    }

    #[test]
    fn take_delta_returns_everything_since_the_previous_call_and_resets() {
        let agg = size_only(3);
        let mut recs: Vec<Recorder> = (0..5).map(|_| agg.recorder()).collect();
        for (i, rec) in recs.iter_mut().enumerate() {
            for _ in 0..=i {
                rec.record(Event::new(1, 100).with_status(200));
            }
            rec.flush();
        }
        agg.set_users(5);
        let first = agg.take_delta();
        assert_eq!(first.steps[&1].count, 15);
        assert_eq!(first.steps[&1].statuses[&200], 15);
        assert_eq!(first.users, 5);

        let second = agg.take_delta();
        assert!(second.is_empty());
        assert_eq!(second.users, 5, "the gauge is reported in every delta");
    }

    #[test]
    fn recorders_on_many_threads_are_counted_exactly() {
        let agg = size_only(4);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let agg = Arc::clone(&agg);
                s.spawn(move || {
                    let mut rec = agg.recorder();
                    for i in 0..10_000u64 {
                        let mut ev = Event::new((i % 4) as u32, 1_000 + i + t);
                        if i % 100 == 0 {
                            ev = ev.with_error(ErrorKind::Reset, "connection reset by peer");
                        }
                        rec.record(ev);
                    }
                    rec.count(Counter::IterationCompleted);
                });
            }
        });
        let delta = agg.take_delta();
        assert_eq!(delta.requests(), 80_000);
        assert_eq!(delta.failures(), 800);
        assert_eq!(delta.errors.values().sum::<u64>(), 800);
        assert_eq!(delta.iterations.completed, 8);
        let total = delta.aggregate(|_| true);
        assert_eq!(total.latency.len(), 80_000);
    }

    #[test]
    fn a_million_events_go_through_a_recorder() {
        // Sanity, not a benchmark: no timing is asserted.
        let agg = Arc::new(Aggregator::new());
        let mut rec = agg.recorder();
        for i in 0..1_000_000u64 {
            rec.record(Event {
                bytes_in: 512,
                ..Event::new((i % 8) as u32, 200 + i % 50_000).with_status(200)
            });
        }
        drop(rec);
        let delta = agg.take_delta();
        assert_eq!(delta.requests(), 1_000_000);
        assert_eq!(delta.aggregate(|_| true).bytes_in, 512_000_000);
    }
}
