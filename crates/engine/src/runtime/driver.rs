//! The driver: starts and stops users to follow the profile, ticks the metrics.
//!
//! Closed model: the target number of users at time t is `min(users, 1 + ⌊t·rate⌋)`,
//! or the linear interpolation of `stages`. Users get ids in start order and run the
//! scenario [`schedule`](super::schedule) assigns to their id; users stop in reverse
//! order, so the scenario split is exact at every level. A stopping user gets a soft
//! stop (finish the iteration) and, `stop_timeout` later, a hard one (abandon it).
//! Every second the aggregator's delta folds into the run total and history.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::schedule;
use super::user::{Shared, SharedOpts, User};
use super::{RunConfig, RunError, RunResult};
use crate::lang::ir::Program;
use crate::metrics::{Aggregator, History, Snapshot};
use crate::profile::{LoadProfile, Model};

pub use crate::metrics::Tick;

pub use crate::control::{Command, Control};

/// A manual change of the number of users (from the UI or the master).
struct Manual {
    from: u64,
    to: u64,
    rate: f64,
    since: Instant,
}

impl Manual {
    fn target(&self) -> u64 {
        let moved = (self.since.elapsed().as_secs_f64() * self.rate).floor() as u64 + 1;
        if self.to >= self.from {
            (self.from + moved).min(self.to)
        } else {
            self.from.saturating_sub(moved).max(self.to)
        }
    }
}

/// A running user task and its two stop tokens.
pub(super) struct Slot {
    pub(super) soft: CancellationToken,
    pub(super) hard: CancellationToken,
    pub(super) handle: JoinHandle<()>,
}

/// End of a run: soft-stop every user (finish the iteration), hard-stop them after
/// `grace` or at once on kill, then wait for every task.
pub(super) async fn wind_down(slots: &mut Vec<Slot>, grace: Duration, kill: &CancellationToken) {
    for s in slots.iter() {
        s.soft.cancel();
    }
    let deadline = Instant::now() + grace;
    while slots.iter().any(|s| !s.handle.is_finished()) {
        if Instant::now() >= deadline || kill.is_cancelled() {
            for s in slots.iter() {
                s.hard.cancel();
            }
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = kill.cancelled() => {}
        }
    }
    for s in slots.drain(..) {
        // A user task that panicked has already recorded what it could.
        let _ = s.handle.await;
    }
}

/// How many of the given user ids run each scenario.
pub(super) fn users_by_scenario(
    program: &Program,
    pattern: &[usize],
    ids: impl IntoIterator<Item = u64>,
) -> std::collections::BTreeMap<String, u64> {
    let mut by = std::collections::BTreeMap::new();
    for id in ids {
        let sc = &program.scenarios[schedule::scenario_of(pattern, id)].name;
        *by.entry(sc.clone()).or_insert(0) += 1;
    }
    by
}

pub(super) type Timeline = Arc<Mutex<Vec<(f64, u64)>>>;

fn target_users(profile: &LoadProfile, users: u64, rate: f64, t: f64) -> Option<u64> {
    if profile.stages.is_empty() {
        let n = 1.0 + (t * rate).floor();
        return Some((n.max(0.0) as u64).min(users));
    }
    let mut acc = 0.0;
    let mut level = 0.0;
    for s in &profile.stages {
        let d = s.duration.as_secs_f64();
        if t < acc + d {
            let frac = if d > 0.0 { (t - acc) / d } else { 1.0 };
            return Some((level + (s.target - level) * frac).round().max(0.0) as u64);
        }
        acc += d;
        level = s.target;
    }
    None
}

/// The share of a run's users this process runs (distributed runs): user ids
/// `offset + k·stride`, so the union of all shares is a single process's id set and
/// [`schedule::scenario_of`] splits it exactly as one process would. The default,
/// `(0, 1)`, is every user. In the open model a share runs `1/stride` of the rate,
/// of the pool and of the iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    pub offset: u64,
    pub stride: u64,
}

impl Default for Share {
    fn default() -> Self {
        Self {
            offset: 0,
            stride: 1,
        }
    }
}

impl Share {
    /// The global id of this share's `k`-th user.
    pub fn id(&self, k: u64) -> u64 {
        self.offset + k * self.stride.max(1)
    }

    /// How many of the global ids `0..n` belong to this share.
    pub fn count(&self, n: u64) -> u64 {
        n.saturating_sub(self.offset).div_ceil(self.stride.max(1))
    }

    fn is_all(&self) -> bool {
        self.offset == 0 && self.stride <= 1
    }

    /// The open model's profile and config for this share.
    fn scale_open(&self, profile: &LoadProfile, cfg: &RunConfig) -> (LoadProfile, RunConfig) {
        let k = self.stride.max(1) as f64;
        let mut p = profile.clone();
        if let Model::Open {
            rate, max_users, ..
        } = &mut p.model
        {
            *rate /= k;
            *max_users = max_users.div_ceil(self.stride.max(1)).max(1);
        }
        for s in &mut p.stages {
            s.target /= k;
        }
        let mut c = cfg.clone();
        c.iterations = cfg.iterations.map(|n| self.count(n));
        // Distinct arrival streams per share (identical Poisson streams would not sum
        // to a Poisson stream).
        c.seed = super::user::mix_seed(cfg.seed, self.offset);
        (p, c)
    }
}

/// Run a program under a profile until it ends, is stopped, or is killed.
pub async fn run(
    program: Arc<Program>,
    profile: &LoadProfile,
    cfg: &RunConfig,
    control: Control,
    on_tick: impl FnMut(&Tick) + Send,
) -> Result<RunResult, RunError> {
    run_share(program, profile, cfg, Share::default(), control, on_tick).await
}

/// [`run`] for one [`Share`] of the users (a distributed worker's part of the run).
pub async fn run_share(
    program: Arc<Program>,
    profile: &LoadProfile,
    cfg: &RunConfig,
    share: Share,
    control: Control,
    mut on_tick: impl FnMut(&Tick) + Send,
) -> Result<RunResult, RunError> {
    let weights = schedule::weights(&program, profile);
    let pattern = schedule::pattern(&weights);
    if pattern.is_empty() {
        return Err(RunError::Unsupported("every scenario has weight 0".into()));
    }
    let shared = Arc::new(
        Shared::new(
            &program,
            SharedOpts {
                host: cfg.host.clone(),
                insecure: cfg.insecure,
                seed: cfg.seed,
                set: cfg.set.clone(),
                feed_share: share,
                trace: cfg.http_debug.clone(),
            },
        )
        .map_err(RunError::Client)?,
    );
    let agg = Arc::new(Aggregator::new());
    let planned = match (profile.duration, profile.stages_duration()) {
        (Some(d), _) => Some(d),
        (None, Some(s)) => Some(s),
        (None, None) => None,
    };
    let (users, rate) = match profile.model {
        Model::Closed { users, spawn_rate } => (users, spawn_rate),
        Model::Open { .. } => {
            let setup = super::open::Setup {
                shared,
                agg,
                pattern,
                planned,
                share,
            };
            if !share.is_all() {
                let (p, c) = share.scale_open(profile, cfg);
                return Ok(super::open::run(program, &p, &c, control, setup, on_tick).await);
            }
            return Ok(super::open::run(program, profile, cfg, control, setup, on_tick).await);
        }
    };
    // Users of this process (all of them unless the run is distributed).
    let local_users = share.count(users);
    let start = Instant::now();
    let timeline: Timeline = Arc::new(Mutex::new(vec![(0.0, 0)]));
    let live = Arc::new(AtomicU64::new(0));
    let mut slots: Vec<Slot> = Vec::new();
    let mut ticker = Ticker::new(agg.clone(), start, planned);
    let mut peak = 0u64;
    let mut interrupted = false;
    let mut manual: Option<Manual> = None;
    // Stopped users whose tasks may still be finishing (awaited at the end).
    let mut retired: Vec<Slot> = Vec::new();

    let step = Duration::from_millis(20);

    loop {
        let elapsed = start.elapsed();
        let t = elapsed.as_secs_f64();
        if control.stop.is_cancelled() || control.kill.is_cancelled() {
            interrupted = true;
            break;
        }
        if planned.is_some_and(|p| elapsed >= p) {
            break;
        }
        let running_now = slots.iter().filter(|s| !s.soft.is_cancelled()).count() as u64;
        for command in control.drain() {
            match command {
                Command::SetUsers {
                    users: to,
                    spawn_rate,
                } => {
                    manual = Some(Manual {
                        from: running_now,
                        to: share.count(to),
                        rate: spawn_rate.filter(|r| *r > 0.0).unwrap_or(rate)
                            / share.stride.max(1) as f64,
                        since: Instant::now(),
                    });
                }
                Command::ResetStats => ticker.reset(),
                Command::SetRate { .. } | Command::Stop | Command::Kill => {}
            }
        }
        let target = match &manual {
            Some(m) => m.target(),
            None => match target_users(profile, users, rate, t) {
                Some(n) => share.count(n),
                None => break,
            },
        };
        // Start users up to the target. Active users are always ids 0..n (ramping down
        // stops the highest), so a ramp back up reuses the same ids and the scenario
        // split stays exact. Users that finished their iterations are not restarted.
        loop {
            let active = slots.iter().take_while(|s| !s.soft.is_cancelled()).count();
            if active as u64 >= target || (cfg.iterations.is_some() && active < slots.len()) {
                break;
            }
            let id = share.id(active as u64);
            let soft = CancellationToken::new();
            let hard = control.kill.child_token();
            let scenario = schedule::scenario_of(&pattern, id);
            let user = User::new(id, scenario, shared.clone(), agg.recorder(), hard.clone());
            let (soft2, live2, tl, iterations) =
                (soft.clone(), live.clone(), timeline.clone(), cfg.iterations);
            live.fetch_add(1, Ordering::SeqCst);
            push_timeline(&timeline, start, live.load(Ordering::SeqCst));
            let handle = tokio::spawn(async move {
                user.run(soft2, iterations).await;
                let n = live2.fetch_sub(1, Ordering::SeqCst) - 1;
                push_timeline(&tl, start, n);
            });
            let slot = Slot { soft, hard, handle };
            match slots.get_mut(active) {
                Some(old) => retired.push(std::mem::replace(old, slot)),
                None => slots.push(slot),
            }
        }
        // Stop users above the target, newest first (stages ramping down).
        let mut running = slots.iter().filter(|s| !s.soft.is_cancelled()).count() as u64;
        while running > target {
            if let Some(slot) = slots.iter().rev().find(|s| !s.soft.is_cancelled()) {
                stop_later(slot, profile.stop_timeout);
            }
            running -= 1;
        }
        peak = peak.max(live.load(Ordering::SeqCst));
        agg.set_users(live.load(Ordering::SeqCst));
        ticker.maybe(live.load(Ordering::SeqCst), &mut on_tick);
        if cfg.iterations.is_some()
            && slots.len() as u64 >= local_users.min(target.max(1))
            && slots.iter().all(|s| s.handle.is_finished())
            && (slots.len() as u64) >= local_users
        {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = control.stop.cancelled() => {}
            _ = control.kill.cancelled() => {}
        }
    }

    ticker.load_ended();
    // Distinct user ids (ids are reused after a ramp down).
    let started = slots.len() as u64;
    slots.append(&mut retired);
    wind_down(&mut slots, profile.stop_timeout, &control.kill).await;
    agg.set_users(0);
    ticker.now(0, &mut on_tick);
    let elapsed = start.elapsed();
    let peak_by = users_by_scenario(&program, &pattern, (0..started).map(|k| share.id(k)));
    let users_timeline = timeline.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(RunResult {
        total: ticker.total,
        history: ticker.history,
        elapsed,
        users_timeline,
        users_by_scenario: peak_by,
        peak_users: peak,
        interrupted,
    })
}

pub(super) fn push_timeline(tl: &Timeline, start: Instant, n: u64) {
    if let Ok(mut t) = tl.lock() {
        t.push((start.elapsed().as_secs_f64(), n));
    }
}

fn stop_later(slot: &Slot, grace: Duration) {
    slot.soft.cancel();
    let hard = slot.hard.clone();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        hard.cancel();
    });
}

/// The run's statistics over time: every second the aggregator's delta is folded into
/// the total and the history, and the sinks see it.
pub(super) struct Ticker {
    agg: Arc<Aggregator>,
    start: Instant,
    planned: Option<Duration>,
    last: Instant,
    pub(super) total: Snapshot,
    pub(super) history: History,
}

impl Ticker {
    pub(super) fn new(agg: Arc<Aggregator>, start: Instant, planned: Option<Duration>) -> Self {
        Self {
            agg,
            start,
            planned,
            last: start,
            total: Snapshot::default(),
            history: History::new(),
        }
    }

    /// A second has passed since the last tick.
    pub(super) fn due(&self) -> bool {
        self.last.elapsed() >= Duration::from_secs(1)
    }

    /// Tick when it is due.
    pub(super) fn maybe(&mut self, users: u64, on_tick: &mut impl FnMut(&Tick)) {
        if self.due() {
            self.now(users, on_tick);
        }
    }

    /// Tick now (also the final tick at the end of a run).
    pub(super) fn now(&mut self, users: u64, on_tick: &mut impl FnMut(&Tick)) {
        self.last = Instant::now();
        let delta = self.agg.take_delta();
        let elapsed = self.start.elapsed();
        on_tick(&Tick::fold(
            &mut self.total,
            &mut self.history,
            &delta,
            elapsed,
            self.planned,
            users,
        ));
    }

    /// The load phase is over (the duration passed, the iterations were done, or a stop):
    /// what follows until the last user ends is the drain.
    pub(super) fn load_ended(&mut self) {
        self.history
            .mark_load_end(self.start.elapsed().as_secs_f64());
    }

    /// `reset_stats`: start the numbers afresh; the run goes on. Rates and the history restart
    /// at the reset (the history remembers when); iterations in progress at the reset count as
    /// started after it, so `completed` never exceeds `started`.
    pub(super) fn reset(&mut self) {
        let delta = self.agg.take_delta();
        self.total.accumulate(&delta);
        let it = self.total.iterations;
        let in_flight = it.started.saturating_sub(it.completed + it.failed);
        let users = self.total.users;
        self.total = Snapshot::default();
        self.total.iterations.started = in_flight;
        self.total.users = users;
        self.history = History::after_reset(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_ramp_targets() {
        let p = LoadProfile::closed(10, 2.0, None);
        assert_eq!(target_users(&p, 10, 2.0, 0.0), Some(1));
        assert_eq!(target_users(&p, 10, 2.0, 1.0), Some(3));
        assert_eq!(target_users(&p, 10, 2.0, 100.0), Some(10));
    }

    #[test]
    fn shares_partition_the_user_ids() {
        let shares: Vec<Share> = (0..3).map(|offset| Share { offset, stride: 3 }).collect();
        for n in 0..20u64 {
            assert_eq!(shares.iter().map(|s| s.count(n)).sum::<u64>(), n);
        }
        let mut ids: Vec<u64> = shares
            .iter()
            .flat_map(|s| (0..s.count(10)).map(|k| s.id(k)))
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert_eq!(Share::default().count(7), 7);
    }

    #[test]
    fn stages_interpolate_and_end() {
        let mut p = LoadProfile::closed(10, 2.0, None);
        p.stages = vec![
            crate::profile::Stage {
                duration: Duration::from_secs(10),
                target: 10.0,
            },
            crate::profile::Stage {
                duration: Duration::from_secs(10),
                target: 0.0,
            },
        ];
        assert_eq!(target_users(&p, 10, 2.0, 5.0), Some(5));
        assert_eq!(target_users(&p, 10, 2.0, 15.0), Some(5));
        assert_eq!(target_users(&p, 10, 2.0, 25.0), None);
    }
}
