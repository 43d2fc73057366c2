//! The open model: iterations start at an arrival rate, whatever the responses do.
//!
//! A generator computes intended start times (uniform spacing `1/rate`, or Poisson
//! with exponential gaps from the run's seed; `stages` ramp the rate linearly) and
//! hands each arrival to an idle user from a pool of at most `max_users`. When every
//! user is busy the arrival is **dropped** and counted, never queued behind slow
//! responses. Each iteration knows how late it started (`lateness`), so every step also
//! records its latency from the intended start (coordinated-omission corrected) next
//! to its service time; the generator's own lateness is a metric too.
//!
//! Arrival `k` runs scenario `pattern[k % len]` (the closed model's GCD interleave, see
//! [`schedule`]), so arrivals split over scenarios by weight exactly and
//! deterministically; each pool user serves one scenario. When the pool is full and
//! no user of the arrival's scenario is idle, an idle user of another scenario is
//! retired to make room. A user whose start fails (a unique feeder ran out of rows)
//! counts its arrival as started and failed and frees its place in the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::driver::{Command, Control, Slot, Tick, Ticker, Timeline, push_timeline, wind_down};
use super::schedule;
use super::user::{Shared, User, mix_seed};
use super::{RunConfig, RunResult};
use crate::lang::ir::Program;
use crate::metrics::{Aggregator, Counter};
use crate::profile::{LoadProfile, Model};

/// What the driver prepared for the run.
pub struct Setup {
    pub shared: Arc<Shared>,
    pub agg: Arc<Aggregator>,
    pub pattern: Vec<usize>,
    pub planned: Option<Duration>,
    /// This process's share of a distributed run: its `k`-th arrival is the run's
    /// arrival `share.id(k)` (for the scenario split) and its `k`-th user has the
    /// global id `share.id(k)`.
    pub share: super::driver::Share,
}

struct Worker {
    /// Arrivals for this user; `None` once it left the pool, which closes its queue and
    /// so ends it when idle (an idle user waits on nothing else).
    tx: Option<mpsc::Sender<Instant>>,
    slot: Slot,
    scenario: usize,
    alive: bool,
}

/// What a pool user tells the generator after an arrival.
enum Back {
    /// Done with its iteration, ready for the next arrival of its scenario.
    Idle(usize),
    /// Could not start (its arrival is counted as failed); its place is free.
    Gone(usize),
}

/// The generator wakes at most once per window: arrivals due within it start together at
/// its end (their lateness recorded), so a high rate costs a few thousand wake-ups a second
/// rather than one per arrival, and lateness stays well under a millisecond (see
/// [`super::arrival_timer`]).
const BATCH: Duration = Duration::from_micros(500);

/// Below this rate nothing arrives (the generator looks again shortly): a gap of
/// `1/rate` seconds past ~11 days is no arrival at all within a run.
const MIN_ARRIVAL_RATE: f64 = 1e-6;

/// `start + at` seconds, clamped to what the clock can hold.
fn instant_at(start: Instant, at: f64) -> Instant {
    let limit = crate::lang::check::MAX_DURATION;
    let d = Duration::try_from_secs_f64(at.max(0.0)).map_or(limit, |d| d.min(limit));
    start.checked_add(d).unwrap_or(start)
}

/// Arrival rate (per second) at `t` seconds: the base rate, ramped by stages.
pub fn rate_at(profile: &LoadProfile, base: f64, t: f64) -> Option<f64> {
    if profile.stages.is_empty() {
        return Some(base);
    }
    let mut acc = 0.0;
    let mut level = base;
    for s in &profile.stages {
        let d = s.duration.as_secs_f64();
        if t < acc + d {
            let frac = if d > 0.0 { (t - acc) / d } else { 1.0 };
            return Some(level + (s.target - level) * frac);
        }
        acc += d;
        level = s.target;
    }
    None
}

/// The next arrival after `t` (seconds), or None when the stages are over.
fn next_arrival(
    profile: &LoadProfile,
    base: f64,
    poisson: bool,
    rng: &mut StdRng,
    t: f64,
) -> Option<f64> {
    let r = rate_at(profile, base, t)?;
    if !(r >= MIN_ARRIVAL_RATE && r.is_finite()) {
        // Nothing arrives at rate zero: look again a little later.
        return Some(t + 0.01);
    }
    let gap = if poisson {
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        -u.ln() / r
    } else {
        1.0 / r
    };
    Some(t + gap)
}

/// The pool of users serving arrivals.
struct Pool {
    workers: Vec<Worker>,
    /// Idle users, by scenario.
    idle: Vec<Vec<usize>>,
    /// Places of users that are gone (retired, or could not start), for reuse: the
    /// pool never holds more than `max_users` places however often users change.
    free: Vec<usize>,
    /// Tasks of users that left the pool, awaited at the end (finished ones pruned).
    retired: Vec<Slot>,
    /// Users alive (started or starting).
    alive: u64,
    /// Arrivals handed out and not yet back.
    busy: u64,
    /// Users started so far (their ids are `share.id(0..started)`), and by scenario.
    started: u64,
    by_scenario: Vec<u64>,
}

impl Pool {
    fn new(scenarios: usize) -> Self {
        Self {
            workers: Vec::new(),
            idle: vec![Vec::new(); scenarios],
            free: Vec::new(),
            retired: Vec::new(),
            alive: 0,
            busy: 0,
            started: 0,
            by_scenario: vec![0; scenarios],
        }
    }

    fn back(&mut self, b: Back) {
        self.busy = self.busy.saturating_sub(1);
        match b {
            Back::Idle(i) => {
                if let Some(w) = self.workers.get(i).filter(|w| w.alive) {
                    if let Some(pool) = self.idle.get_mut(w.scenario) {
                        pool.push(i);
                    }
                }
            }
            Back::Gone(i) => self.leave(i),
        }
    }

    /// The user at place `i` leaves the pool; its place is free for a new one.
    fn leave(&mut self, i: usize) {
        if let Some(w) = self.workers.get_mut(i).filter(|w| w.alive) {
            w.alive = false;
            w.tx = None;
            w.slot.soft.cancel();
            self.alive = self.alive.saturating_sub(1);
            self.free.push(i);
        }
    }

    /// Hand an arrival to an idle user of `scenario`. None when none is idle.
    fn hand_to_idle(&mut self, scenario: usize, intended: Instant) -> Option<bool> {
        let i = self.idle.get_mut(scenario).and_then(Vec::pop)?;
        Some(
            self.workers
                .get(i)
                .and_then(|w| w.tx.as_ref())
                .is_some_and(|tx| tx.try_send(intended).is_ok()),
        )
    }

    /// Room for a new user: below `max_users`, or made by retiring an idle user of
    /// another scenario.
    fn make_room(&mut self, max_users: u64) -> bool {
        if self.alive < max_users {
            return true;
        }
        match self.idle.iter_mut().find_map(Vec::pop) {
            Some(i) => {
                self.leave(i);
                true
            }
            None => false,
        }
    }

    /// The place for a new user, and the global id's index.
    fn place(&self) -> (usize, u64) {
        (
            self.free.last().copied().unwrap_or(self.workers.len()),
            self.started,
        )
    }

    fn add(&mut self, w: Worker) {
        if let Some(n) = self.by_scenario.get_mut(w.scenario) {
            *n += 1;
        }
        self.started += 1;
        self.alive += 1;
        match self.free.pop() {
            Some(i) if i < self.workers.len() => {
                let old = std::mem::replace(&mut self.workers[i], w);
                self.retired.retain(|s| !s.handle.is_finished());
                self.retired.push(old.slot);
            }
            _ => self.workers.push(w),
        }
    }
}

/// What the generator tells the run's collector (see [`run`]).
enum ToTicker {
    /// A second has passed: fold the aggregator's delta in and feed the sinks. `users` is
    /// the number of live users at that moment.
    Tick { users: u64 },
    /// `reset_stats`.
    Reset,
    /// The load phase is over; the drain begins.
    LoadEnded,
}

/// What the generator hands back when it is done.
struct Generated {
    by_scenario: std::collections::BTreeMap<String, u64>,
    timeline: Timeline,
    interrupted: bool,
}

/// Ticks waiting for the collector, at most: a collector this far behind misses ticks (the
/// generator never waits for it; the next tick's delta holds the missed seconds' events).
const TICKS_QUEUED: usize = 4;

/// Run the open model until the duration or the stages end, or a stop.
///
/// The arrival generator runs on a task of its own and never runs a sink: once a second it
/// flushes its own events and sends a [`ToTicker::Tick`] over a bounded channel (dropping it
/// when the queue is full, never waiting). This task is the collector: it folds the deltas
/// into the run's total and history and calls `on_tick` (CSV, Prometheus, the web UI,
/// thresholds, the progress line), so their cost never shows as generator lateness.
pub async fn run(
    program: Arc<Program>,
    profile: &LoadProfile,
    cfg: &RunConfig,
    control: Control,
    setup: Setup,
    mut on_tick: impl FnMut(&Tick) + Send,
) -> RunResult {
    let start = Instant::now();
    let agg = setup.agg.clone();
    let planned = setup.planned;
    let (tx, mut rx) = mpsc::channel::<ToTicker>(TICKS_QUEUED);
    let generator = tokio::spawn(generate(
        program,
        profile.clone(),
        cfg.clone(),
        control,
        setup,
        start,
        tx,
    ));
    let mut ticker = Ticker::new(agg.clone(), start, planned);
    // Ends when the generator is done (it drops its sender after the drain).
    while let Some(m) = rx.recv().await {
        match m {
            ToTicker::Tick { users } => ticker.now(users, &mut on_tick),
            ToTicker::Reset => ticker.reset(),
            ToTicker::LoadEnded => ticker.load_ended(),
        }
    }
    let generated = match generator.await {
        Ok(g) => g,
        Err(e) => {
            // A panic in the generator is a bug; the run still reports what it counted.
            tracing::error!("open model: the arrival generator failed: {e}");
            Generated {
                by_scenario: Default::default(),
                timeline: Arc::new(std::sync::Mutex::new(vec![(0.0, 0)])),
                interrupted: true,
            }
        }
    };
    agg.set_users(0);
    ticker.now(0, &mut on_tick);
    let users_timeline = generated
        .timeline
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    let peak = users_timeline.iter().map(|(_, n)| *n).max().unwrap_or(0);
    RunResult {
        total: ticker.total,
        history: ticker.history,
        elapsed: start.elapsed(),
        users_timeline,
        users_by_scenario: generated.by_scenario,
        peak_users: peak,
        interrupted: generated.interrupted,
    }
}

/// The arrival generator (its own task): dispatches arrivals, and tells the collector when
/// a tick is due, the load ended or the statistics were reset.
async fn generate(
    program: Arc<Program>,
    mut own: LoadProfile,
    cfg: RunConfig,
    control: Control,
    setup: Setup,
    start: Instant,
    ticks: mpsc::Sender<ToTicker>,
) -> Generated {
    let Setup {
        shared,
        agg,
        pattern,
        planned,
        share,
    } = setup;
    let cfg = &cfg;
    // Commands may change the rate (ending the stages) and the pool size.
    let profile = &mut own;
    let (mut base, mut max_users, poisson) = match profile.model {
        Model::Open {
            rate,
            max_users,
            poisson,
        } => (rate, max_users, poisson),
        Model::Closed { .. } => (0.0, 0, false),
    };
    let mut rng = StdRng::seed_from_u64(mix_seed(cfg.seed, u64::MAX));
    let mut gen_rec = agg.recorder();
    let (back_tx, mut back_rx) = mpsc::channel::<Back>(max_users.clamp(1, 1 << 20) as usize);
    let mut pool = Pool::new(program.scenarios.len());
    let live = Arc::new(AtomicU64::new(0));
    let timeline: Timeline = Arc::new(std::sync::Mutex::new(vec![(0.0, 0)]));
    let mut last_tick = start;
    let mut interrupted = false;
    let mut next_at = Some(0.0);
    let mut arrivals = 0u64;
    let mut dispatched = 0u64;
    let mut timer = super::arrival_timer::ArrivalTimer::new();
    // Registered once, not per wake-up.
    let stop = control.stop.cancelled();
    let kill = control.kill.cancelled();
    tokio::pin!(stop, kill);

    'run: loop {
        if control.stop.is_cancelled() || control.kill.is_cancelled() {
            interrupted = true;
            break;
        }
        let now = start.elapsed();
        if planned.is_some_and(|p| now >= p) {
            break;
        }
        while let Ok(b) = back_rx.try_recv() {
            pool.back(b);
        }
        if cfg.iterations.is_some_and(|n| dispatched >= n) && pool.busy == 0 {
            break;
        }
        for command in control.drain() {
            match command {
                Command::SetRate { rate }
                    if crate::profile::rate_problem("rate", rate).is_none() =>
                {
                    base = rate;
                    profile.stages.clear();
                    // Re-plan the next arrival at the new rate from now.
                    let now = start.elapsed().as_secs_f64();
                    next_at = next_arrival(profile, base, poisson, &mut rng, now);
                }
                Command::SetUsers { users, .. } => max_users = users,
                Command::ResetStats => {
                    // Events recorded before the reset are dropped with the old numbers.
                    gen_rec.flush();
                    if ticks.send(ToTicker::Reset).await.is_err() {
                        tracing::debug!("open model: the collector has ended");
                    }
                }
                _ => {}
            }
        }
        // Dispatch every arrival that is due.
        while let Some(at) = next_at {
            if at > start.elapsed().as_secs_f64() {
                break;
            }
            if planned.is_some_and(|p| at >= p.as_secs_f64())
                || cfg.iterations.is_some_and(|n| dispatched >= n)
            {
                next_at = None;
                break;
            }
            let intended = instant_at(start, at);
            let scenario = schedule::scenario_of(&pattern, share.id(arrivals));
            arrivals += 1;
            let handed = match pool.hand_to_idle(scenario, intended) {
                Some(ok) => ok,
                None if pool.make_room(max_users) => {
                    let (index, k) = pool.place();
                    let new = Spawn {
                        index,
                        id: share.id(k),
                        scenario,
                        first: intended,
                        start,
                    };
                    pool.add(new.spawn(&shared, &agg, &control, back_tx.clone(), &live, &timeline));
                    true
                }
                None => false,
            };
            if handed {
                gen_rec.record_lateness(
                    Instant::now()
                        .saturating_duration_since(intended)
                        .as_micros() as u64,
                );
                dispatched += 1;
                pool.busy += 1;
            } else {
                gen_rec.count(Counter::IterationDropped);
            }
            next_at = next_arrival(profile, base, poisson, &mut rng, at);
            if next_at.is_none() {
                break 'run;
            }
        }
        agg.set_users(live.load(Ordering::SeqCst));
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            // The generator's own events (lateness, dropped) belong in this tick. The
            // collector does the rest; a full queue skips this tick rather than wait.
            gen_rec.flush();
            let users = live.load(Ordering::SeqCst);
            if let Err(mpsc::error::TrySendError::Full(_)) =
                ticks.try_send(ToTicker::Tick { users })
            {
                tracing::debug!("open model: the collector is behind; tick skipped");
            }
        }
        // Users reporting back do not wake the generator: their reports are read when
        // arrivals are due (above), the only time the pool is needed.
        let now = Instant::now();
        let wake = match next_at {
            Some(at) => instant_at(start, at)
                .max(now + BATCH)
                .min(now + Duration::from_millis(50)),
            None if cfg.iterations.is_some() => now + Duration::from_millis(20),
            None => break,
        };
        tokio::select! {
            _ = timer.sleep_until(wake) => {}
            _ = &mut stop => {}
            _ = &mut kill => {}
        }
    }

    if ticks.send(ToTicker::LoadEnded).await.is_err() {
        tracing::debug!("open model: the collector has ended");
    }
    let by_scenario: std::collections::BTreeMap<String, u64> = program
        .scenarios
        .iter()
        .zip(&pool.by_scenario)
        .filter(|(_, n)| **n > 0)
        .map(|(sc, n)| (sc.name.clone(), *n))
        .collect();
    // Closing the report-back queue makes any user still reporting back stop at once.
    drop(back_rx);
    let mut slots: Vec<Slot> = pool.workers.drain(..).map(|w| w.slot).collect();
    slots.append(&mut pool.retired);
    wind_down(&mut slots, profile.stop_timeout, &control.kill).await;
    gen_rec.flush();
    Generated {
        by_scenario,
        timeline,
        interrupted,
    }
}

/// A pool user about to start: its place in the pool, global id, scenario and first
/// arrival.
struct Spawn {
    index: usize,
    id: u64,
    scenario: usize,
    first: Instant,
    start: Instant,
}

impl Spawn {
    fn spawn(
        self,
        shared: &Arc<Shared>,
        agg: &Arc<Aggregator>,
        control: &Control,
        back: mpsc::Sender<Back>,
        live: &Arc<AtomicU64>,
        timeline: &Timeline,
    ) -> Worker {
        let Spawn {
            index,
            id,
            scenario,
            first,
            start,
        } = self;
        let (tx, mut rx) = mpsc::channel::<Instant>(1);
        let soft = CancellationToken::new();
        let hard = control.kill.child_token();
        let mut user = User::new(id, scenario, shared.clone(), agg.recorder(), hard.clone());
        let (live2, tl) = (live.clone(), timeline.clone());
        let n = live.fetch_add(1, Ordering::SeqCst) + 1;
        push_timeline(timeline, start, n);
        let handle = tokio::spawn(async move {
            if user.start().await {
                let mut next = Some(first);
                loop {
                    // Idle, it waits for its next arrival only: leaving the pool and the
                    // end of the run close its queue.
                    let intended = match next.take() {
                        Some(i) => i,
                        None => match rx.recv().await {
                            Some(i) => i,
                            None => break,
                        },
                    };
                    let lateness = Instant::now().saturating_duration_since(intended);
                    if user.iteration(Some(lateness)).await.is_none() {
                        break;
                    }
                    // Idle users must not sit on buffered events.
                    user.rec.flush();
                    if back.send(Back::Idle(index)).await.is_err() {
                        break;
                    }
                }
                user.stop().await;
            } else {
                // The arrival it was given is counted (started, failed) and its place in
                // the pool is freed: the generator neither waits for it nor counts it busy.
                user.rec.count(Counter::IterationStarted);
                user.rec.count(Counter::IterationFailed);
                user.rec.flush();
                let _ = back.send(Back::Gone(index)).await;
            }
            let n = live2.fetch_sub(1, Ordering::SeqCst) - 1;
            push_timeline(&tl, start, n);
        });
        Worker {
            tx: Some(tx),
            slot: Slot { soft, hard, handle },
            scenario,
            alive: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_arrivals_are_evenly_spaced() {
        let p = LoadProfile::closed(1, 1.0, None);
        let mut rng = StdRng::seed_from_u64(1);
        let t = next_arrival(&p, 4.0, false, &mut rng, 1.0);
        assert_eq!(t, Some(1.25));
    }

    #[test]
    fn poisson_gaps_have_mean_and_variance_of_the_rate() {
        let p = LoadProfile::closed(1, 1.0, None);
        let mut rng = StdRng::seed_from_u64(7);
        let rate = 1000.0;
        let n = 200_000;
        let mut t = 0.0;
        let mut gaps = Vec::with_capacity(n);
        for _ in 0..n {
            let next = next_arrival(&p, rate, true, &mut rng, t).expect("no stages");
            gaps.push(next - t);
            t = next;
        }
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        // Exponential(λ): mean 1/λ, variance 1/λ²; within 2 % at this sample size.
        assert!((mean * rate - 1.0).abs() < 0.02, "mean {mean}");
        assert!((var * rate * rate - 1.0).abs() < 0.04, "variance {var}");
    }

    #[test]
    fn rate_stages_ramp_linearly_then_end() {
        let mut p = LoadProfile::closed(1, 1.0, None);
        p.stages = vec![crate::profile::Stage {
            duration: Duration::from_secs(10),
            target: 100.0,
        }];
        assert_eq!(rate_at(&p, 0.0, 5.0), Some(50.0));
        assert_eq!(rate_at(&p, 0.0, 11.0), None);
    }

    #[test]
    fn tiny_rates_and_far_arrivals_never_overflow_the_clock() {
        let p = LoadProfile::closed(1, 1.0, None);
        let mut rng = StdRng::seed_from_u64(1);
        for rate in [1e-300, f64::MIN_POSITIVE, 0.0, f64::NAN, f64::INFINITY] {
            assert_eq!(next_arrival(&p, rate, false, &mut rng, 1.0), Some(1.01));
        }
        let start = Instant::now();
        assert!(instant_at(start, 1e300) > start);
        assert!(instant_at(start, f64::NAN) >= start);
        assert_eq!(instant_at(start, -5.0), start);
    }
}
