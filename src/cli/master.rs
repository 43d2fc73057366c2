//! `loadplan master PLAN --expect-workers N`: drive a run across workers.
//!
//! Everything `run` accepts about the plan, the profile and the outputs applies (the
//! arguments are `run`'s); the master compiles the plan and resolves the profile so
//! mistakes are reported before any worker is involved, then sends the sources and the
//! feeder files to the workers ([`crate::dist`]). A master bound beyond loopback without
//! a secret refuses to start (exit 2), as the UI does without a token. The summary,
//! thresholds and report files show the merged numbers; the progress output has a live
//! worker table (state, users, req/s, last heard), the summary a final one and every lost
//! worker's gap, and `--json` the same as `workers` and `gaps`. `--ui` serves the web UI
//! on the merged ticks with a workers view (a distributed run can only be stopped from
//! it). `--snapshot-out` writes the merged snapshot, the per-worker numbers, the gaps and
//! the count of refused connections as JSON.
//!
//! Exit codes as `run`'s; 2 also when a worker cannot compile the plan, 3 when the run
//! was aborted (a lost worker under `--on-worker-loss abort`, none left).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::Control;
use crate::dist::master::{
    Gap, GapLine, LossPolicy, Master, MasterConfig, Outcome, WorkerReport, WorkerStatus,
};
use crate::dist::protocol::{Job, ModelSpec, SourceFile};
use crate::lang::{self, check::parse_duration_str, ir::Program};
use crate::metrics::{Snapshot, render_progress_line};
use crate::profile::{self, LoadProfile, Model};
use crate::report;
use crate::runtime::driver::Tick;
use crate::runtime::schedule;

#[derive(clap::Args, Debug, Clone)]
#[group(id = "master_args")]
pub struct Args {
    #[command(flatten)]
    pub run: super::run::Args,
    /// Start when this many workers are connected.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub expect_workers: u32,
    /// Where workers connect (port 0: any free port; the address is printed). Beyond
    /// loopback a --secret is required.
    #[arg(long, default_value = "127.0.0.1:5557")]
    pub bind: SocketAddr,
    /// The secret workers must present.
    #[arg(long, env = "LOADPLAN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// What to do when a worker is lost mid-run.
    #[arg(long, value_enum, default_value = "rebalance")]
    pub on_worker_loss: LossPolicy,
    /// A worker silent this long is lost.
    #[arg(long, value_parser = parse_duration_str, default_value = "5s")]
    pub heartbeat_timeout: Duration,
    /// Write the merged snapshot, per-worker numbers and lost-worker gaps as JSON.
    #[arg(long, value_name = "FILE")]
    pub snapshot_out: Option<PathBuf>,
}

/// The `--snapshot-out` file.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    elapsed_secs: f64,
    interrupted: bool,
    aborted: Option<&'a str>,
    /// `(seconds, users)` once a second: the merged users gauge.
    users_timeline: &'a [(f64, u64)],
    total: &'a Snapshot,
    workers: &'a [WorkerReport],
    gaps: &'a [Gap],
    /// Connections refused at the handshake (each logged with its reason).
    refused_connections: u64,
}

/// A master reachable beyond this machine needs a secret (as the UI needs a token); the
/// message is for people, the caller exits 2.
pub fn check_bind(bind: SocketAddr, secret: Option<&str>) -> Result<(), String> {
    let loopback = match bind.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback())
        }
    };
    if !loopback && secret.is_none_or(|s| s.trim().is_empty()) {
        return Err(format!(
            "--bind {bind} is reachable beyond this machine: anyone who can reach it could join \
             as a worker and receive the plan. Set a secret with --secret SECRET or \
             LOADPLAN_SECRET (the same on every worker), or bind to 127.0.0.1"
        ));
    }
    Ok(())
}

pub fn run(args: Args) -> u8 {
    if let Err(message) = check_bind(args.bind, args.secret.as_deref()) {
        eprintln!("error: {message}");
        return super::EXIT_USAGE;
    }
    let (source, program) = match lang::load_plan(&args.run.plan) {
        Ok(p) => p,
        Err(d) => {
            super::report(d);
            return super::EXIT_USAGE;
        }
    };
    let profile = match super::run::resolve_profile(&args.run, &program) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let profile_source = args
        .run
        .profile
        .as_deref()
        .and_then(|name| profile::locate(name, args.run.plan.parent()))
        .map(|s| SourceFile {
            name: s.name().to_string(),
            text: s.text().to_string(),
        });
    let plan = SourceFile {
        name: source.name().to_string(),
        text: source.text().to_string(),
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    rt.block_on(run_async(
        args,
        Arc::new(program),
        profile,
        plan,
        profile_source,
    ))
}

async fn run_async(
    args: Args,
    program: Arc<Program>,
    profile: LoadProfile,
    plan: SourceFile,
    profile_source: Option<SourceFile>,
) -> u8 {
    let quiet = args.run.quiet;
    let ui_listen = match args.run.ui_listen.check(args.run.ui) {
        Ok(l) => l,
        Err(m) => {
            errln!("error: {m}");
            return super::EXIT_USAGE;
        }
    };
    let (demo, host) = match super::run::target(&args.run, &program, false).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    let plan_dir = match args.run.plan.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let files = match crate::dist::master::data_files(&program, &plan_dir) {
        Ok((files, local)) => {
            for f in local {
                eprintln!(
                    "note: feeder file {f} is not under the plan's folder: each worker reads its own copy"
                );
            }
            files
        }
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_USAGE;
        }
    };
    let seed = super::seed_or_clock(args.run.seed);
    let planned = profile.duration.or_else(|| profile.stages_duration());
    let job = Job {
        plan,
        profile: profile_source,
        model: ModelSpec::from(&profile.model),
        duration_secs: profile.duration.map(|d| d.as_secs_f64()),
        clear_stages: profile.stages.is_empty(),
        seed,
        iterations: args.run.iterations,
        host: host.clone(),
        set: args.run.set.iter().cloned().collect(),
        insecure: args.run.insecure,
        files,
    };
    let job_bytes = serde_json::to_string(&job).map_or(0, |t| t.len());
    if job_bytes > crate::dist::protocol::MAX_JOB_BYTES {
        eprintln!(
            "error: the plan, profile and feeder files make a {} MiB job, over the {} MiB a master sends to its workers",
            job_bytes >> 20,
            crate::dist::protocol::MAX_JOB_BYTES >> 20
        );
        return super::EXIT_USAGE;
    }
    let cfg = MasterConfig {
        expect_workers: args.expect_workers,
        secret: args.secret.clone().unwrap_or_default(),
        on_loss: args.on_worker_loss,
        heartbeat_timeout: args.heartbeat_timeout,
        job,
        planned,
        stop_timeout: profile.stop_timeout,
        uncounted: (0..program.stats.len() as u32)
            .filter(|&id| !report::model::counts_in_total(&program, id))
            .collect(),
    };
    if let Some(p) = &args.snapshot_out {
        if p.parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            errln!("error: --snapshot-out {}: no such directory", p.display());
            return super::EXIT_USAGE;
        }
    }
    let mut sinks = match super::run::start_sinks(&args.run, &program, &profile).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let master = match Master::bind(args.bind, cfg).await {
        Ok(m) => m,
        Err(e) => {
            errln!("error: cannot listen on {}: {e}", args.bind);
            return super::EXIT_FATAL;
        }
    };
    match master.local_addr() {
        Ok(addr) => errln!("master listening on {addr}"),
        Err(e) => {
            errln!("error: {e}");
            return super::EXIT_FATAL;
        }
    }
    if !quiet {
        errln!("waiting for {} workers", args.expect_workers);
    }
    let control = Control::default();
    // SIGINT, SIGTERM and SIGHUP stop the run like the first Ctrl-C (summary, files).
    let signals = match super::run::Interrupts::new() {
        Ok(i) => i.spawn(control.clone(), false),
        Err(e) => {
            errln!("error: cannot listen for stop signals: {e}");
            return super::EXIT_FATAL;
        }
    };
    // The web UI shows the merged ticks and the worker table; from it a distributed run
    // can only be stopped (the users and rate are the master's to hand out).
    let ui = match ui_listen {
        Some(l) => {
            let start = crate::web::Start {
                profile: profile.clone(),
                host,
                seed,
            };
            let file = args.run.plan.display().to_string();
            match crate::web::Attached::start(&l, program.clone(), file, start, control.clone())
                .await
            {
                Ok(u) => {
                    u.hub.distributed();
                    Some(u)
                }
                Err(m) => {
                    errln!("error: {m}");
                    return super::EXIT_FATAL;
                }
            }
        }
        None => None,
    };
    let tty = std::io::stderr().is_terminal();
    let mut last_line: Option<Instant> = None;
    let mut last_states: Vec<&'static str> = Vec::new();
    let tick_control = control.clone();
    let on_tick = |t: &Tick, workers: &[WorkerStatus]| {
        if let Some(v) = sinks.tick(t, &tick_control) {
            errln!("aborting: threshold failed: {}", v.line());
        }
        if let Some(u) = &ui {
            u.hub.set_workers(workers);
            u.hub.tick(t);
        }
        let states: Vec<&'static str> = workers.iter().map(|w| w.state).collect();
        let due = last_line.is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
        if !quiet && (tty || due) {
            errln!("{}", render_progress_line(t.point, t.elapsed, t.planned));
        }
        // The worker table: on the first tick, every 5 s, and when a worker's state changes.
        if !quiet && (due || states != last_states) {
            errln!("{}", render_worker_table(workers).trim_end());
        }
        if due {
            last_line = Some(Instant::now());
        }
        last_states = states;
    };
    let note = |line: &str| {
        if !quiet || line.contains("lost") || line.contains("refused") {
            errln!("{line}");
        }
    };
    let mut outcome = master.run(control, note, on_tick).await;
    signals.abort();
    if let Some(d) = demo {
        d.shutdown().await;
    }
    outcome.result.users_by_scenario = users_by_scenario(&program, &profile);
    if let Some(u) = ui {
        let aborted = sinks.aborted_by().map(|v| v.rule.clone());
        u.finish(Some(&outcome.result), aborted).await;
    }
    finish(&args, &program, &profile, seed, &outcome, sinks).await
}

/// The live worker table (progress output): state, users, req/s over the last tick, and
/// how long ago each worker was last heard from.
pub fn render_worker_table(workers: &[WorkerStatus]) -> String {
    let width = workers
        .iter()
        .map(|w| w.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "  {:>3} {:<width$}  {:<7} {:>6} {:>9}  last heard\n",
        "#", "name", "state", "users", "req/s"
    );
    for w in workers {
        out.push_str(&format!(
            "  {:>3} {:<width$}  {:<7} {:>6} {:>9.1}  {:.1}s ago\n",
            w.index, w.name, w.state, w.users, w.rate, w.last_heard_secs
        ));
    }
    out
}

/// The final worker table: each worker's state, its part of the merged numbers, its
/// average rate over the time it ran, and when it was last heard from.
fn render_final_workers(workers: &[WorkerReport], elapsed_secs: f64) -> String {
    let label = |w: &WorkerReport| format!("worker {} ({})", w.index, w.name);
    let width = workers
        .iter()
        .map(|w| label(w).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for w in workers {
        let state = match w.lost_at_secs {
            Some(t) => format!("lost at {t:.1}s"),
            None => "finished".into(),
        };
        let ran = w.lost_at_secs.unwrap_or(elapsed_secs).max(1e-3);
        out.push_str(&format!(
            "  {:<width$}  {:<15} requests {:>8}  failures {:>6}  {:>9.1} req/s  last heard at {:.1}s\n",
            label(w),
            state,
            w.requests,
            w.failures,
            w.requests as f64 / ran,
            w.last_heard_secs
        ));
    }
    out
}

/// Users per scenario over the global id space (the split a single process makes).
fn users_by_scenario(program: &Program, profile: &LoadProfile) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Model::Closed { users, .. } = profile.model else {
        return out;
    };
    let weights = schedule::weights(program, profile);
    let pattern = schedule::pattern(&weights);
    for id in 0..users {
        if let Some(s) = program.scenarios.get(schedule::scenario_of(&pattern, id)) {
            *out.entry(s.name.clone()).or_insert(0) += 1;
        }
    }
    out
}

async fn finish(
    args: &Args,
    program: &Program,
    profile: &LoadProfile,
    seed: u64,
    outcome: &Outcome,
    sinks: report::sinks::Sinks,
) -> u8 {
    if let Some(e) = &outcome.compile_error {
        errln!("error: the plan does not compile on {e}");
        return super::EXIT_USAGE;
    }
    let r = &outcome.result;
    let decorate = |built: &mut report::RunReport| {
        built.workers = outcome.workers.iter().map(WorkerReport::info).collect();
        built.gaps = outcome.gaps.clone();
    };
    let snapshot_out = |path: &std::path::PathBuf| {
        let out = SnapshotOut {
            elapsed_secs: r.elapsed.as_secs_f64(),
            interrupted: r.interrupted,
            aborted: outcome.aborted.as_deref(),
            users_timeline: &r.users_timeline,
            total: &r.total,
            workers: &outcome.workers,
            gaps: &outcome.gaps,
            refused_connections: outcome.refused,
        };
        serde_json::to_vec_pretty(&out)
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(path, bytes).map_err(|e| e.to_string()))
            .map(|()| path.clone())
            .map_err(|e| format!("--snapshot-out {}: {e}", path.display()))
    };
    let more_files = args.snapshot_out.as_ref().map(|p| move || snapshot_out(p));
    let after_summary = || {
        outln!("\nWorkers");
        out!(
            "{}",
            render_final_workers(&outcome.workers, r.elapsed.as_secs_f64())
        );
        if !outcome.gaps.is_empty() {
            outln!("\nLost workers");
            for g in &outcome.gaps {
                outln!("  {}", g.line());
            }
        }
    };
    let ending = super::run::Ending {
        program,
        profile,
        result: r,
        seed,
        plan: &args.run.plan,
        host: args.run.host.clone(),
        summary_kv: args.run.summary_kv,
    };
    let extras = super::run::Extras {
        aborted: outcome.aborted.as_deref(),
        decorate: Some(&decorate),
        more_files: more_files
            .as_ref()
            .map(|f| f as &dyn Fn() -> Result<std::path::PathBuf, String>),
        after_summary: Some(&after_summary),
        kv: format!(
            " workers={} lost={}",
            outcome.workers.len(),
            outcome.gaps.len()
        ),
    };
    super::run::finish(ending, sinks, extras).await
}
