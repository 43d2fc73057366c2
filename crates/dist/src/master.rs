//! The master side of a distributed run: wait for the expected workers, hand each its
//! share of the users, merge their deltas exactly, watch their heartbeats and cover for
//! the ones that are lost.
//!
//! Shares follow the single-process id space: of `W` workers, worker `i` runs user ids
//! `i, i+W, i+2W, …` ([`Share`]), so the deterministic scenario split is the one a single
//! process would make. A lost worker's unfinished shares are split again among the
//! survivors (share `(o, s)` over `K` survivors becomes `(o + s·m, s·K)` for survivor `m`)
//! for the time left, or dropped, or the run aborts, per [`LossPolicy`]; each loss is
//! recorded as a [`Gap`]. Every second the deltas received are merged into one window
//! ([`Snapshot::merge`]) and folded into the run total, exactly as a single process
//! folds its aggregator's deltas, and the sinks see a [`Tick`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::hub::{self, Event, Hub};
use super::protocol::{Assignment, DataFile, Job, MAX_DATA_BYTES, Message, ModelSpec};
use crate::control::{Command, Control};
use crate::metrics::{History, Snapshot};
use crate::report::model::{GapInfo, WorkerInfo};
use crate::runtime::RunResult;
use crate::runtime::driver::{Share, Tick};

/// The plan's feeder files to send with the job, read from the plan's folder, and the
/// feeders left to each worker's own disk (absolute paths, or paths with `..`). Files
/// together over [`MAX_DATA_BYTES`] are an error for people (the caller exits 2).
pub fn data_files(
    program: &crate::lang::ir::Program,
    plan_dir: &std::path::Path,
) -> Result<(Vec<DataFile>, Vec<String>), String> {
    let mut files: Vec<DataFile> = Vec::new();
    let mut local = Vec::new();
    let mut total = 0usize;
    for f in &program.feeders {
        if files.iter().any(|d| d.path == f.file) || local.contains(&f.file) {
            continue;
        }
        if !sendable(&f.file) {
            local.push(f.file.clone());
            continue;
        }
        let path = plan_dir.join(&f.file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read feeder file {}: {e}", path.display()))?;
        total += text.len();
        if total > MAX_DATA_BYTES {
            return Err(format!(
                "the plan's feeder files are larger than the {} MiB a master sends to its workers \
                 (at {}); give each worker its own copy under an absolute path",
                MAX_DATA_BYTES >> 20,
                f.file
            ));
        }
        files.push(DataFile::new(f.file.clone(), text));
    }
    Ok((files, local))
}

/// A path a worker may recreate under its own folder: relative, plain names only.
pub fn sendable(path: &str) -> bool {
    let p = std::path::Path::new(path);
    !path.is_empty()
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

/// What to do when a worker is lost mid-run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LossPolicy {
    /// Split its users among the remaining workers for the time left.
    #[default]
    Rebalance,
    /// Go on without its users.
    Continue,
    /// Stop the run.
    Abort,
}

/// The master's settings.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    pub expect_workers: u32,
    /// The secret workers must present (empty: none).
    pub secret: String,
    pub on_loss: LossPolicy,
    /// A worker silent this long is lost.
    pub heartbeat_timeout: Duration,
    pub job: Job,
    /// The run's planned length (duration or stages), if any.
    pub planned: Option<Duration>,
    pub stop_timeout: Duration,
    /// Statistics rows left out of each worker's request and failure counts: groups, which
    /// time other steps (so the counts add up to the merged `Aggregated` row).
    pub uncounted: std::collections::BTreeSet<u32>,
}

/// One worker's part of the result.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerReport {
    pub index: u32,
    pub name: String,
    pub peer: String,
    pub requests: u64,
    pub failures: u64,
    /// Seconds into the run when the worker was found lost.
    pub lost_at_secs: Option<f64>,
    /// Seconds into the run when its last message arrived.
    pub last_heard_secs: f64,
    pub snapshot: Snapshot,
}

impl WorkerReport {
    /// Its entry in the `--json` result.
    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            index: self.index,
            name: self.name.clone(),
            peer: self.peer.clone(),
            requests: self.requests,
            failures: self.failures,
            lost_at_secs: self.lost_at_secs,
        }
    }
}

/// One worker as the progress output and the web UI show it, once a tick.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    pub index: u32,
    pub name: String,
    /// `running`, `done` (its shares finished) or `lost`.
    pub state: &'static str,
    /// Users it runs now (its last delta's gauge; 0 once done or lost).
    pub users: u64,
    /// Requests and messages per second over the last tick.
    pub rate: f64,
    /// Seconds since its last message (heartbeat or delta).
    pub last_heard_secs: f64,
    pub requests: u64,
    pub failures: u64,
}

/// A lost worker and the load that was missing because of it: the `--json` result's own
/// entry, which the master fills in as the loss happens (one type for the terminal line, the
/// result file and `--snapshot-out`).
pub type Gap = GapInfo;

impl LossPolicy {
    /// Its name on the command line and in the result (`action`).
    pub fn as_str(self) -> &'static str {
        match self {
            LossPolicy::Rebalance => "rebalance",
            LossPolicy::Continue => "continue",
            LossPolicy::Abort => "abort",
        }
    }
}

/// The terminal line of a lost worker.
pub trait GapLine {
    fn line(&self) -> String;
}

impl GapLine for Gap {
    fn line(&self) -> String {
        let what = match self.action.as_str() {
            "rebalance" if self.reassigned_to.is_empty() => "nothing left to re-assign".to_string(),
            "rebalance" => format!(
                "re-assigned to worker{} {} at {:.1}s",
                if self.reassigned_to.len() == 1 {
                    ""
                } else {
                    "s"
                },
                join(&self.reassigned_to),
                self.reassigned_at_secs.unwrap_or(self.lost_at_secs)
            ),
            "continue" => "not replaced (--on-worker-loss continue)".into(),
            _ => "run aborted (--on-worker-loss abort)".into(),
        };
        format!(
            "worker {} ({}) lost at {:.1}s ({}): {} users, {:.0}% of the load, missing for {:.1}s; {what}",
            self.worker,
            self.name,
            self.lost_at_secs,
            self.reason,
            self.users_missing,
            self.load_fraction * 100.0,
            self.missing_secs
        )
    }
}

/// Events and failed events of `s`, groups (`uncounted`) left out.
fn counted(s: &Snapshot, uncounted: &std::collections::BTreeSet<u32>) -> (u64, u64) {
    s.steps
        .iter()
        .filter(|(id, _)| !uncounted.contains(id))
        .fold((0, 0), |(n, f), (_, st)| (n + st.count, f + st.failures))
}

fn join(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a distributed run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The merged run, as a single process would report it.
    pub result: RunResult,
    pub workers: Vec<WorkerReport>,
    pub gaps: Vec<Gap>,
    /// A worker could not compile the plan (exit 2).
    pub compile_error: Option<String>,
    /// Why the run was cut short by the master (exit 3).
    pub aborted: Option<String>,
    /// Connections refused at the handshake (wrong secret or version, not a `hello`, a
    /// first frame over the limit, too many pending); each is also logged with its reason.
    pub refused: u64,
}

struct Worker {
    name: String,
    peer: SocketAddr,
    tx: Option<mpsc::Sender<Message>>,
    last_heard: Instant,
    total: Snapshot,
    /// Requests and messages in the deltas since the last tick.
    window_requests: u64,
    lost_at: Option<Instant>,
}

struct Share_ {
    worker: u32,
    share: Share,
    /// The users gauge of its last delta (`None` before the first).
    users: Option<u64>,
    /// Finished, or covered elsewhere after its worker was lost.
    settled: bool,
}

/// A bound master, ready to run.
pub struct Master {
    listener: TcpListener,
    cfg: MasterConfig,
}

impl Master {
    pub async fn bind(addr: SocketAddr, cfg: MasterConfig) -> std::io::Result<Master> {
        Ok(Master {
            listener: TcpListener::bind(addr).await?,
            cfg,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the workers, runs, and returns the merged outcome. `note` receives
    /// one-line messages for the terminal (joins, refusals, losses).
    pub async fn run(
        self,
        control: Control,
        mut note: impl FnMut(&str),
        mut on_tick: impl FnMut(&Tick, &[WorkerStatus]),
    ) -> Outcome {
        let (events_tx, mut events) = mpsc::channel::<Event>(1024);
        let hub = Arc::new(Hub::new(self.cfg.secret.clone(), events_tx));
        let app = hub::router(hub).into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move { axum::serve(self.listener, app).await });
        let mut c = Coordinator {
            cfg: self.cfg,
            workers: Vec::new(),
            shares: BTreeMap::new(),
            gaps: Vec::new(),
            start: Instant::now(),
            aborted: None,
            compile_error: None,
            refused: 0,
        };
        let outcome = c
            .drive(&control, &mut events, &mut note, &mut on_tick)
            .await;
        server.abort();
        outcome
    }
}

struct Coordinator {
    cfg: MasterConfig,
    workers: Vec<Worker>,
    shares: BTreeMap<u32, Share_>,
    gaps: Vec<Gap>,
    start: Instant,
    aborted: Option<String>,
    compile_error: Option<String>,
    refused: u64,
}

impl Coordinator {
    fn send(&self, worker: u32, m: Message) {
        if let Some(tx) = self
            .workers
            .get(worker as usize)
            .and_then(|w| w.tx.as_ref())
        {
            // A full queue means a stuck worker; the heartbeat check will find it.
            tx.try_send(m).ok();
        }
    }

    fn broadcast(&self, m: &Message) {
        for i in 0..self.workers.len() {
            self.send(i as u32, m.clone());
        }
    }

    fn alive(&self) -> Vec<u32> {
        (0..self.workers.len() as u32)
            .filter(|&i| self.workers[i as usize].tx.is_some())
            .collect()
    }

    fn users_now(&self) -> u64 {
        self.shares
            .values()
            .filter(|s| !s.settled)
            .filter_map(|s| s.users)
            .sum()
    }

    fn add_share(&mut self, worker: u32, share: Share) -> u32 {
        let id = self.shares.len() as u32;
        self.shares.insert(
            id,
            Share_ {
                worker,
                share,
                users: None,
                settled: false,
            },
        );
        id
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    async fn drive(
        &mut self,
        control: &Control,
        events: &mut mpsc::Receiver<Event>,
        note: &mut impl FnMut(&str),
        on_tick: &mut impl FnMut(&Tick, &[WorkerStatus]),
    ) -> Outcome {
        let expected = self.cfg.expect_workers;
        // Gathering: ends when the expected workers are connected (or on Ctrl-C).
        while (self.alive().len() as u32) < expected {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.gathering(ev, note),
                    None => break,
                },
                _ = control.stop.cancelled() => {
                    self.aborted = Some("stopped before the workers were all connected".into());
                    return self.outcome(History::new(), Vec::new(), Duration::ZERO, true);
                }
            }
        }
        let alive = self.alive();
        let w = alive.len() as u64;
        self.start = Instant::now();
        for (i, &worker) in alive.iter().enumerate() {
            let share = Share {
                offset: i as u64,
                stride: w,
            };
            let id = self.add_share(worker, share);
            let assignment = Assignment {
                id,
                share,
                duration_secs: None,
                spawn_rate: None,
            };
            let job = Box::new(self.cfg.job.clone());
            self.send(worker, Message::Start { job, assignment });
            self.workers[worker as usize].last_heard = Instant::now();
        }
        note(&format!("started {w} workers"));

        let mut window = Snapshot::default();
        let mut total = Snapshot::default();
        let mut history = History::new();
        let mut timeline = vec![(0.0, 0)];
        let mut last_tick = self.start;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.reset();
        let mut stopping = false;
        let mut killing = false;
        let mut stopped_at: Option<Instant> = None;
        // Running: bounded by the shares settling, by the deadline below, or by the
        // last worker going.
        while self.shares.values().any(|s| !s.settled) && self.aborted.is_none() {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.running(ev, &mut window, note),
                    None => break,
                },
                _ = ticker.tick() => {
                    self.check_heartbeats(note);
                    self.broadcast(&Message::Heartbeat {});
                    let now = Instant::now();
                    let users = self.users_now();
                    self.fold(&mut window, &mut total, &mut history, users, last_tick, on_tick);
                    last_tick = now;
                    timeline.push((self.secs(now), users));
                    // A run that overstays its plan (or its stop) by far is killed.
                    let late = match (self.cfg.planned, stopped_at) {
                        (_, Some(at)) => at.elapsed() > self.cfg.stop_timeout + Duration::from_secs(10),
                        (Some(p), None) => self.start.elapsed() > p + self.cfg.stop_timeout + Duration::from_secs(15),
                        (None, None) => false,
                    };
                    if late && !killing {
                        killing = true;
                        stopped_at = Some(now);
                        self.broadcast(&Message::Control { command: Command::Kill });
                    } else if late {
                        self.aborted = Some("workers did not finish in time".into());
                    }
                },
                _ = control.stop.cancelled(), if !stopping => {
                    stopping = true;
                    stopped_at = Some(Instant::now());
                    self.broadcast(&Message::Control { command: Command::Stop });
                },
                _ = control.kill.cancelled(), if !killing => {
                    killing = true;
                    self.broadcast(&Message::Control { command: Command::Kill });
                },
            }
        }
        if self.aborted.is_some() || self.compile_error.is_some() {
            self.broadcast(&Message::Control {
                command: Command::Kill,
            });
        }
        let elapsed = self.start.elapsed();
        self.fold(&mut window, &mut total, &mut history, 0, last_tick, on_tick);
        timeline.push((elapsed.as_secs_f64(), 0));
        self.broadcast(&Message::Bye {});
        // Let the sessions deliver `bye` before the server goes (bounded wait).
        let until = Instant::now() + Duration::from_secs(2);
        for w in &mut self.workers {
            w.tx = None;
        }
        while let Ok(Some(_)) = tokio::time::timeout_at(until.into(), events.recv()).await {}
        let interrupted = stopping || killing || self.aborted.is_some();
        let mut out = self.outcome(history, timeline, elapsed, interrupted);
        out.result.total = total;
        out
    }

    fn fold(
        &mut self,
        window: &mut Snapshot,
        total: &mut Snapshot,
        history: &mut History,
        users: u64,
        last_tick: Instant,
        on_tick: &mut impl FnMut(&Tick, &[WorkerStatus]),
    ) {
        let statuses = self.statuses(last_tick);
        let mut delta = std::mem::take(window);
        delta.set_users(users);
        let elapsed = self.start.elapsed();
        // The driver's fold: the interval runs from the history's last point, so the points
        // tile the run.
        let tick = Tick::fold(total, history, &delta, elapsed, self.cfg.planned, users);
        on_tick(&tick, &statuses);
    }

    /// Every worker's state now, with its rate since `last_tick` (at least a second; its
    /// window reset).
    fn statuses(&mut self, last_tick: Instant) -> Vec<WorkerStatus> {
        // Workers send a delta a second: a shorter window (the last fold, right after a
        // tick) still holds about a second of a worker's load.
        let secs = last_tick.elapsed().as_secs_f64().max(1.0);
        let mut out = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter_mut().enumerate() {
            let i = i as u32;
            let open = self.shares.values().filter(|s| s.worker == i && !s.settled);
            let (mut any, mut users) = (false, 0);
            for s in open {
                any = true;
                users += s.users.unwrap_or(0);
            }
            let state = if w.lost_at.is_some() {
                "lost"
            } else if any {
                "running"
            } else {
                "done"
            };
            out.push(WorkerStatus {
                index: i,
                name: w.name.clone(),
                state,
                users: if state == "running" { users } else { 0 },
                rate: std::mem::take(&mut w.window_requests) as f64 / secs,
                last_heard_secs: w.last_heard.elapsed().as_secs_f64(),
                requests: counted(&w.total, &self.cfg.uncounted).0,
                failures: counted(&w.total, &self.cfg.uncounted).1,
            });
        }
        out
    }

    fn gathering(&mut self, ev: Event, note: &mut impl FnMut(&str)) {
        match ev {
            Event::Joined {
                name,
                peer,
                tx,
                reply,
            } => {
                let index = self.workers.len() as u32;
                if reply.send(Ok(index)).is_ok() {
                    self.workers.push(Worker {
                        name: name.clone(),
                        peer,
                        tx: Some(tx),
                        last_heard: Instant::now(),
                        total: Snapshot::default(),
                        window_requests: 0,
                        lost_at: None,
                    });
                    note(&format!(
                        "worker {index} ({name}, {peer}) connected: {}/{}",
                        self.alive().len(),
                        self.cfg.expect_workers
                    ));
                }
            }
            Event::Refused { peer, reason } => {
                self.refused += 1;
                note(&format!("refused {peer}: {reason}"));
            }
            Event::Closed { worker, reason } => {
                if let Some(w) = self.workers.get_mut(worker as usize) {
                    w.tx = None;
                    note(&format!(
                        "worker {worker} ({}) left before the start: {reason}",
                        w.name
                    ));
                }
            }
            Event::Message { worker, .. } => {
                if let Some(w) = self.workers.get_mut(worker as usize) {
                    w.last_heard = Instant::now();
                }
            }
        }
    }

    fn running(&mut self, ev: Event, window: &mut Snapshot, note: &mut impl FnMut(&str)) {
        match ev {
            Event::Joined { reply, .. } => {
                let reason = format!(
                    "the run has already started with {} workers",
                    self.cfg.expect_workers
                );
                reply.send(Err(reason)).ok();
            }
            Event::Refused { peer, reason } => {
                self.refused += 1;
                note(&format!("refused {peer}: {reason}"));
            }
            Event::Closed { worker, reason } => self.lost(worker, &reason, note),
            Event::Message { worker, message } => {
                let Some(w) = self.workers.get_mut(worker as usize) else {
                    return;
                };
                if w.lost_at.is_some() {
                    return;
                }
                w.last_heard = Instant::now();
                match message {
                    Message::Delta {
                        assignment,
                        snapshot,
                    } => {
                        w.total.accumulate(&snapshot);
                        w.window_requests += counted(&snapshot, &self.cfg.uncounted).0;
                        window.merge(&snapshot);
                        if let Some(s) = self.shares.get_mut(&assignment) {
                            s.users = Some(snapshot.users);
                        }
                    }
                    Message::Done { assignment, .. } => {
                        if let Some(s) = self.shares.get_mut(&assignment) {
                            s.settled = true;
                            s.users = Some(0);
                        }
                    }
                    Message::Failed {
                        assignment,
                        message,
                    } => {
                        note(&format!("worker {worker} failed: {message}"));
                        if let Some(s) = self.shares.get_mut(&assignment) {
                            s.settled = true;
                        }
                        self.aborted = Some(format!("worker {worker}: {message}"));
                    }
                    Message::CompileError { message } => {
                        self.compile_error =
                            Some(format!("worker {worker} ({}): {message}", w.name));
                        self.aborted = Some("a worker could not compile the plan".into());
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_heartbeats(&mut self, note: &mut impl FnMut(&str)) {
        let timeout = self.cfg.heartbeat_timeout;
        let silent: Vec<u32> = self
            .alive()
            .into_iter()
            .filter(|&i| self.workers[i as usize].last_heard.elapsed() > timeout)
            .collect();
        for i in silent {
            let reason = format!("no heartbeat for {:.0}s", timeout.as_secs_f64());
            self.lost(i, &reason, note);
        }
    }

    /// A worker is gone: record the gap and apply the policy to its unfinished shares.
    fn lost(&mut self, worker: u32, reason: &str, note: &mut impl FnMut(&str)) {
        let now = Instant::now();
        let Some(w) = self.workers.get_mut(worker as usize) else {
            return;
        };
        if w.lost_at.is_some()
            || w.tx.is_none() && !self.shares.values().any(|s| s.worker == worker)
        {
            return;
        }
        // Dropping the sender closes the session (and the socket, if it still exists).
        w.tx = None;
        w.lost_at = Some(now);
        let (name, last_heard) = (w.name.clone(), w.last_heard);
        let open: Vec<u32> = self
            .shares
            .iter()
            .filter(|(_, s)| s.worker == worker && !s.settled)
            .map(|(&id, _)| id)
            .collect();
        if open.is_empty() {
            return;
        }
        // Its users as last reported; a share not heard from yet counts its whole size.
        let all_users = match &self.cfg.job.model {
            ModelSpec::Closed { users, .. } => *users,
            ModelSpec::Open { max_users, .. } => *max_users,
        };
        let users_missing: u64 = open
            .iter()
            .map(|id| {
                let s = &self.shares[id];
                s.users.unwrap_or_else(|| s.share.count(all_users))
            })
            .sum();
        let load_fraction: f64 = open
            .iter()
            .map(|id| 1.0 / self.shares[id].share.stride.max(1) as f64)
            .sum();
        let mut gap = Gap {
            worker,
            name,
            reason: reason.to_string(),
            last_heard_secs: self.secs(last_heard),
            lost_at_secs: self.secs(now),
            users_missing,
            load_fraction,
            action: self.cfg.on_loss.as_str().into(),
            reassigned_at_secs: None,
            reassigned_to: Vec::new(),
            missing_secs: 0.0,
        };
        for id in &open {
            if let Some(s) = self.shares.get_mut(id) {
                s.settled = true;
            }
        }
        let survivors = self.alive();
        let remaining = self
            .cfg
            .planned
            .map(|p| p.saturating_sub(self.start.elapsed()).as_secs_f64());
        match self.cfg.on_loss {
            LossPolicy::Abort => {
                self.aborted = Some(format!("worker {worker} lost ({reason})"));
            }
            LossPolicy::Continue => {}
            LossPolicy::Rebalance if survivors.is_empty() => {
                self.aborted = Some(format!("worker {worker} lost ({reason}) and none is left"));
            }
            LossPolicy::Rebalance if remaining.is_some_and(|r| r <= 0.0) => {}
            LossPolicy::Rebalance => {
                let k = survivors.len() as u64;
                for id in open {
                    let old = self.shares[&id].share;
                    for (m, &to) in survivors.iter().enumerate() {
                        let share = Share {
                            offset: old.offset + old.stride * m as u64,
                            stride: old.stride * k,
                        };
                        let id = self.add_share(to, share);
                        let assignment = Assignment {
                            id,
                            share,
                            duration_secs: remaining,
                            // The lost users were already running: start them at once.
                            spawn_rate: Some((all_users as f64).max(1.0) * 100.0),
                        };
                        self.send(to, Message::Assign { assignment });
                    }
                }
                gap.reassigned_at_secs = Some(self.secs(Instant::now()));
                gap.reassigned_to = survivors;
            }
        }
        note(&gap.line());
        self.gaps.push(gap);
    }

    fn outcome(
        &self,
        history: History,
        users_timeline: Vec<(f64, u64)>,
        elapsed: Duration,
        interrupted: bool,
    ) -> Outcome {
        let end = elapsed.as_secs_f64();
        let gaps = self
            .gaps
            .iter()
            .cloned()
            .map(|mut g| {
                let until = g.reassigned_at_secs.unwrap_or(end);
                g.missing_secs = (until - g.last_heard_secs).max(0.0);
                g
            })
            .collect();
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerReport {
                index: i as u32,
                name: w.name.clone(),
                peer: w.peer.to_string(),
                requests: counted(&w.total, &self.cfg.uncounted).0,
                failures: counted(&w.total, &self.cfg.uncounted).1,
                lost_at_secs: w.lost_at.map(|t| self.secs(t)),
                last_heard_secs: self.secs(w.last_heard),
                snapshot: w.total.clone(),
            })
            .collect();
        let peak_users = users_timeline.iter().map(|(_, n)| *n).max().unwrap_or(0);
        Outcome {
            result: RunResult {
                total: Snapshot::default(),
                history,
                elapsed,
                users_timeline,
                users_by_scenario: BTreeMap::new(),
                peak_users,
                interrupted,
            },
            workers,
            gaps,
            compile_error: self.compile_error.clone(),
            aborted: self.aborted.clone(),
            refused: self.refused,
        }
    }
}
