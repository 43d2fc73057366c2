//! The open model: iterations start at an arrival rate, whatever the responses do.
//!
//! A generator computes intended start times (uniform spacing `1/rate`, or Poisson
//! with exponential gaps from the run's seed; `stages` ramp the rate linearly) and
//! hands each arrival to an idle user from a pool of at most `max_users`. When every
//! user is busy the arrival is **dropped** and counted, never queued behind slow
//! responses. Each iteration knows how late it started (`lateness`), so every step also
//! records its latency from the intended start (coordinated-omission corrected) next
//! to its service time; the generator's own lateness is a metric too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::driver::{
    Command, Control, Slot, Tick, Ticker, Timeline, push_timeline, users_by_scenario, wind_down,
};
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
}

struct Worker {
    tx: mpsc::Sender<Instant>,
    slot: Slot,
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
    if r <= 0.0 {
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

/// Run the open model until the duration or the stages end, or a stop.
pub async fn run(
    program: Arc<Program>,
    profile: &LoadProfile,
    cfg: &RunConfig,
    control: Control,
    setup: Setup,
    mut on_tick: impl FnMut(&Tick) + Send,
) -> RunResult {
    let Setup {
        shared,
        agg,
        pattern,
        planned,
    } = setup;
    // Commands may change the rate (ending the stages) and the pool size.
    let mut own = profile.clone();
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
    let (idle_tx, mut idle_rx) = mpsc::channel::<usize>(max_users.clamp(1, 1 << 20) as usize);
    let mut workers: Vec<Worker> = Vec::new();
    let mut idle: Vec<usize> = Vec::new();
    let live = Arc::new(AtomicU64::new(0));
    let timeline: Timeline = Arc::new(std::sync::Mutex::new(vec![(0.0, 0)]));
    let start = Instant::now();
    let mut ticker = Ticker::new(agg.clone(), start, planned);
    let mut interrupted = false;
    let mut next_at = Some(0.0);
    let mut dispatched = 0u64;

    'run: loop {
        if control.stop.is_cancelled() || control.kill.is_cancelled() {
            interrupted = true;
            break;
        }
        let now = start.elapsed();
        if planned.is_some_and(|p| now >= p) {
            break;
        }
        if cfg.iterations.is_some_and(|n| dispatched >= n) && workers.len() == idle.len() {
            break;
        }
        while let Ok(id) = idle_rx.try_recv() {
            idle.push(id);
        }
        for command in control.drain() {
            match command {
                Command::SetRate { rate } if rate > 0.0 && rate.is_finite() => {
                    base = rate;
                    profile.stages.clear();
                    // Re-plan the next arrival at the new rate from now.
                    let now = start.elapsed().as_secs_f64();
                    next_at = next_arrival(profile, base, poisson, &mut rng, now);
                }
                Command::SetUsers { users, .. } => max_users = users,
                Command::ResetStats => ticker.reset(),
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
            let intended = start + Duration::from_secs_f64(at);
            let target = match idle.pop() {
                Some(id) => Some(id),
                None if (workers.len() as u64) < max_users => {
                    let id = workers.len();
                    workers.push(spawn_worker(
                        id as u64,
                        &pattern,
                        &shared,
                        &agg,
                        &control,
                        idle_tx.clone(),
                        &live,
                        &timeline,
                        start,
                    ));
                    Some(id)
                }
                None => None,
            };
            match target.and_then(|id| workers.get(id)) {
                Some(w) if w.tx.try_send(intended).is_ok() => {
                    gen_rec.record_lateness(
                        Instant::now()
                            .saturating_duration_since(intended)
                            .as_micros() as u64,
                    );
                    dispatched += 1;
                }
                _ => gen_rec.count(Counter::IterationDropped),
            }
            next_at = next_arrival(profile, base, poisson, &mut rng, at);
            if next_at.is_none() {
                break 'run;
            }
        }
        agg.set_users(live.load(Ordering::SeqCst));
        if ticker.due() {
            // The generator's own events (lateness, dropped) belong in this tick.
            gen_rec.flush();
            ticker.now(live.load(Ordering::SeqCst), &mut on_tick);
        }
        let wake = match next_at {
            Some(at) => (start + Duration::from_secs_f64(at))
                .min(Instant::now() + Duration::from_millis(50)),
            None if cfg.iterations.is_some() => Instant::now() + Duration::from_millis(20),
            None => break,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            Some(id) = idle_rx.recv() => idle.push(id),
            _ = control.stop.cancelled() => {}
            _ = control.kill.cancelled() => {}
        }
    }

    ticker.load_ended();
    let started = workers.len() as u64;
    // Closing the idle queue makes any user still reporting back stop at once.
    drop(idle_rx);
    let mut slots: Vec<Slot> = workers.drain(..).map(|w| w.slot).collect();
    wind_down(&mut slots, profile.stop_timeout, &control.kill).await;
    gen_rec.flush();
    agg.set_users(0);
    ticker.now(0, &mut on_tick);
    let by = users_by_scenario(&program, &pattern, 0..started);
    let users_timeline = timeline.lock().map(|t| t.clone()).unwrap_or_default();
    let peak = users_timeline.iter().map(|(_, n)| *n).max().unwrap_or(0);
    RunResult {
        total: ticker.total,
        history: ticker.history,
        elapsed: start.elapsed(),
        users_timeline,
        users_by_scenario: by,
        peak_users: peak,
        interrupted,
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_worker(
    id: u64,
    pattern: &[usize],
    shared: &Arc<Shared>,
    agg: &Arc<Aggregator>,
    control: &Control,
    idle_tx: mpsc::Sender<usize>,
    live: &Arc<AtomicU64>,
    timeline: &Timeline,
    start: Instant,
) -> Worker {
    let (tx, mut rx) = mpsc::channel::<Instant>(1);
    let soft = CancellationToken::new();
    let hard = control.kill.child_token();
    let scenario = schedule::scenario_of(pattern, id);
    let mut user = User::new(id, scenario, shared.clone(), agg.recorder(), hard.clone());
    let (soft2, live2, tl) = (soft.clone(), live.clone(), timeline.clone());
    let n = live.fetch_add(1, Ordering::SeqCst) + 1;
    push_timeline(timeline, start, n);
    let handle = tokio::spawn(async move {
        if user.start().await {
            loop {
                let intended = tokio::select! {
                    _ = soft2.cancelled() => break,
                    i = rx.recv() => match i { Some(i) => i, None => break },
                };
                let lateness = Instant::now().saturating_duration_since(intended);
                if user.iteration(Some(lateness)).await.is_none() {
                    break;
                }
                // Idle users must not sit on buffered events.
                user.rec.flush();
                if idle_tx.send(id as usize).await.is_err() {
                    break;
                }
            }
            user.stop().await;
        }
        let n = live2.fetch_sub(1, Ordering::SeqCst) - 1;
        push_timeline(&tl, start, n);
    });
    Worker {
        tx,
        slot: Slot { soft, hard, handle },
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
}
