//! The tick: once a second a runner folds the delta it gathered (its aggregator's, or its
//! workers' merged) into the run's total and history, and its sinks see the result. One fold
//! for every runner, so a run's timeline means the same whoever ran it.

use std::time::Duration;

use super::{History, HistoryPoint, Snapshot};

/// What a runner shows its sinks every tick.
pub struct Tick<'a> {
    pub elapsed: Duration,
    pub planned: Option<Duration>,
    pub users: u64,
    pub total: &'a Snapshot,
    pub point: &'a HistoryPoint,
    /// This tick's delta, per step (sinks that need per-step windows, e.g. the CSV history).
    pub delta: &'a Snapshot,
}

impl<'a> Tick<'a> {
    /// Folds `delta`, a tick ending `elapsed` into the run, into the run's `total` and
    /// `history`, and the tick the sinks see. The tick's interval runs from the history's last
    /// point, or from the start of the statistics (the run, or a reset), so the points tile
    /// the timeline. The point counts `delta.users` users.
    pub fn fold(
        total: &'a mut Snapshot,
        history: &'a mut History,
        delta: &'a Snapshot,
        elapsed: Duration,
        planned: Option<Duration>,
        users: u64,
    ) -> Tick<'a> {
        total.accumulate(delta);
        let interval = history.interval_to(elapsed);
        let point = history.push(elapsed.as_secs_f64(), interval, delta);
        Tick {
            elapsed,
            planned,
            users,
            total,
            point,
            delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Event;

    #[test]
    fn ticks_tile_the_timeline_and_sum_into_the_total() {
        let (mut total, mut history) = (Snapshot::default(), History::new());
        for (t_ms, n) in [(1_000u64, 10u64), (2_500, 30), (3_000, 5)] {
            let mut delta = Snapshot::default();
            for _ in 0..n {
                delta.record(Event::new(0, 1_000));
            }
            let elapsed = Duration::from_millis(t_ms);
            let tick = Tick::fold(&mut total, &mut history, &delta, elapsed, None, 1);
            assert_eq!(tick.point.requests, n);
            assert_eq!(tick.point.t_secs, elapsed.as_secs_f64());
        }
        let spans: Vec<f64> = history.points().iter().map(|p| p.span_secs).collect();
        assert_eq!(spans, vec![1.0, 1.5, 0.5]);
        assert_eq!(history.points()[1].rate, 20.0);
        assert_eq!(total.requests(), 45);
        assert_eq!(history.last().map(|p| p.total_requests), Some(45));
    }
}
