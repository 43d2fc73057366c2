//! `loadplan run PLAN`: the main job — load from a plan under a profile, live
//! progress, a summary, and an exit code a pipeline can gate on.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::lang;
use crate::lang::check::parse_duration_str;
use crate::metrics::{render_progress_line, render_summary};
use crate::profile::{self, LoadProfile, Model};
use crate::report;
use crate::runtime::driver::{self, Control, Tick};
use crate::runtime::{RunConfig, RunResult};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The plan file (.kdl, .yaml or .yml).
    pub plan: PathBuf,
    /// Load profile: smoke, load, stress, soak, a name in profiles/, or a file.
    #[arg(long, short = 'p', env = "LOADPLAN_PROFILE")]
    pub profile: Option<String>,
    /// Target base URL (overrides the plan's host).
    #[arg(long, env = "LOADPLAN_HOST")]
    pub host: Option<String>,
    /// Number of concurrent users (overrides the profile).
    #[arg(long, short = 'u', conflicts_with = "arrival_rate")]
    pub users: Option<u64>,
    /// Open model: start this many iterations per second whatever the responses do
    /// (latency is then also measured from the intended start).
    #[arg(long, visible_alias = "rate")]
    pub arrival_rate: Option<f64>,
    /// Open model: the pool of users serving arrivals (default 1000).
    #[arg(long)]
    pub max_users: Option<u64>,
    /// Open model: Poisson-spaced arrivals instead of evenly spaced ones.
    #[arg(long)]
    pub poisson: bool,
    /// Users started per second (overrides the profile).
    #[arg(long, short = 'r')]
    pub spawn_rate: Option<f64>,
    /// Run length, e.g. 30s, 5m (overrides the profile).
    #[arg(long, short = 't', value_parser = parse_duration_str)]
    pub duration: Option<Duration>,
    /// Set a plan variable: --set name=value (repeatable).
    #[arg(long = "set", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Seed for every random choice (reproducible runs).
    #[arg(long, env = "LOADPLAN_SEED")]
    pub seed: Option<u64>,
    /// Iterations per user; the run ends when all users are done.
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Trace one user instead of a load run: per step the rendered request, the
    /// response, checks, captures, branches and WebSocket frames (secrets hidden).
    /// One user per scenario, one iteration (or --iterations N).
    #[arg(long)]
    pub trace: bool,
    /// With --trace: only this scenario.
    #[arg(long, requires = "trace")]
    pub scenario: Option<String>,
    /// Log every request and response of the run (body excerpts; `=full` for whole
    /// bodies) to --http-debug-file, secrets hidden.
    #[arg(long, num_args = 0..=1, default_missing_value = "excerpts", value_parser = ["excerpts", "full"], value_name = "full")]
    pub http_debug: Option<String>,
    /// Where --http-debug writes.
    #[arg(
        long,
        default_value = "loadplan-http-debug.log",
        requires = "http_debug"
    )]
    pub http_debug_file: PathBuf,
    /// Start the built-in demo target on a free loopback port and aim the run at it.
    #[arg(long)]
    pub demo: bool,
    /// No progress output (the summary is still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// End with one machine-readable line: `rps=… p50_ms=… p99_ms=… requests=… errors=…`.
    #[arg(long)]
    pub summary_kv: bool,
    /// Write Locust-compatible CSV files PREFIX_stats.csv, PREFIX_stats_history.csv and
    /// PREFIX_failures.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write the whole result as JSON (schema: grammar/result.schema.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report: one test case per threshold and per step with checks.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (default 127.0.0.1:9646).
    #[arg(
        long,
        value_name = "ADDR",
        env = "LOADPLAN_METRICS",
        num_args = 0..=1,
        default_missing_value = "1",
        value_parser = crate::metrics::prom::parse_listen
    )]
    pub metrics: Option<crate::metrics::prom::Listen>,
    /// Serve the web UI while the run goes (stop, users, rate, live charts, downloads).
    #[arg(long)]
    pub ui: bool,
    #[command(flatten)]
    pub ui_listen: crate::web::UiFlags,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=value"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has an empty name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Resolve the profile and apply command-line overrides.
pub fn resolve_profile(args: &Args, program: &lang::ir::Program) -> Result<LoadProfile, u8> {
    // Every `--set` name must be a variable of the plan (run and master).
    if let Err(m) = program.check_set(args.set.iter().map(|(k, _)| k.as_str())) {
        eprintln!("error: {m}");
        return Err(super::EXIT_USAGE);
    }
    let mut p = match &args.profile {
        Some(name) => {
            let Some(src) = profile::locate(name, args.plan.parent()) else {
                eprintln!("{}", profile::not_found(name, args.plan.parent()));
                return Err(super::EXIT_USAGE);
            };
            profile::parse(&src, Some(program)).map_err(|d| {
                super::report(d);
                super::EXIT_USAGE
            })?
        }
        None => LoadProfile::closed(1, 1.0, None),
    };
    if let Some(rate) = args.arrival_rate {
        if !(rate > 0.0 && rate.is_finite()) {
            eprintln!("error: --arrival-rate must be positive");
            return Err(super::EXIT_USAGE);
        }
        let (old_max, old_poisson) = match p.model {
            Model::Open {
                max_users, poisson, ..
            } => (max_users, poisson),
            Model::Closed { .. } => (1000, false),
        };
        p.model = Model::Open {
            rate,
            max_users: args.max_users.unwrap_or(old_max),
            poisson: args.poisson || old_poisson,
        };
    } else if let Model::Open {
        max_users, poisson, ..
    } = &mut p.model
    {
        if let Some(m) = args.max_users {
            *max_users = m;
        }
        *poisson |= args.poisson;
    } else if args.max_users.is_some() || args.poisson {
        eprintln!(
            "error: --max-users/--poisson apply to the open model (--arrival-rate or a profile with arrival_rate)"
        );
        return Err(super::EXIT_USAGE);
    }
    if let Model::Closed { users, spawn_rate } = &mut p.model {
        if let Some(u) = args.users {
            *users = u;
            if args.spawn_rate.is_none() && args.profile.is_none() {
                *spawn_rate = u as f64;
            }
        }
        if let Some(r) = args.spawn_rate {
            if !(r > 0.0 && r.is_finite()) {
                eprintln!("error: --spawn-rate must be positive");
                return Err(super::EXIT_USAGE);
            }
            *spawn_rate = r;
        }
    } else if args.users.is_some() || args.spawn_rate.is_some() {
        eprintln!(
            "error: --users/--spawn-rate apply to closed-model profiles; this profile uses arrival_rate"
        );
        return Err(super::EXIT_USAGE);
    }
    if let Some(d) = args.duration {
        p.duration = Some(d);
        p.stages.clear();
    }
    // Thresholds written in the plan hold under any profile.
    p.thresholds.extend(program.thresholds.iter().cloned());
    Ok(p)
}

pub use crate::report::sinks::step_infos;

/// Start the report sinks the flags ask for (files, metrics); an exit code when they
/// cannot start (bad path: 2, port taken: 3).
pub async fn start_sinks(
    args: &Args,
    program: &Arc<lang::ir::Program>,
    profile: &LoadProfile,
) -> Result<report::sinks::Sinks, u8> {
    let outputs = report::sinks::Outputs {
        csv: args.csv.clone(),
        json: args.json.clone(),
        junit: args.junit.clone(),
        html: args.html.clone(),
    };
    let metrics = args.metrics.and_then(|l| l.0);
    report::sinks::Sinks::start(program.clone(), profile, outputs, metrics)
        .await
        .map_err(|e| match e {
            report::sinks::StartError::Usage(m) => {
                eprintln!("error: {m}");
                super::EXIT_USAGE
            }
            report::sinks::StartError::Fatal(m) => {
                eprintln!("error: {m}");
                super::EXIT_FATAL
            }
        })
}

/// Where the load goes: the demo target when `--demo` (started here), else `--host`
/// or the plan's host. Exit code 2 when there is none.
pub async fn target(
    args: &Args,
    program: &lang::ir::Program,
    announce: bool,
) -> Result<(Option<crate::demo::DemoServer>, Option<String>), u8> {
    if args.demo {
        let d = super::start_demo(args.seed, announce).await?;
        let url = d.base_url();
        return Ok((Some(d), Some(url)));
    }
    if args.host.is_none() && program.host.is_none() {
        eprintln!("error: the plan has no host; pass --host URL or --demo");
        return Err(super::EXIT_USAGE);
    }
    Ok((None, args.host.clone()))
}

pub fn run(args: Args) -> u8 {
    let (_, program) = match lang::load_plan(&args.plan) {
        Ok(p) => p,
        Err(d) => {
            super::report(d);
            return super::EXIT_USAGE;
        }
    };
    let profile = match resolve_profile(&args, &program) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    rt.block_on(run_async(args, Arc::new(program), profile))
}

async fn run_async(args: Args, program: Arc<lang::ir::Program>, profile: LoadProfile) -> u8 {
    let ui_listen = match args.ui_listen.check(args.ui) {
        Ok(l) => l,
        Err(m) => {
            eprintln!("error: {m}");
            return super::EXIT_USAGE;
        }
    };
    // Signals are registered before anything starts, so an early Ctrl-C is never lost.
    let control = Control::default();
    let signals = match Interrupts::new() {
        Ok(i) => i.spawn(control.clone(), args.quiet),
        Err(e) => {
            eprintln!("error: cannot listen for Ctrl-C: {e}");
            return super::EXIT_FATAL;
        }
    };
    let (demo, host) = match target(&args, &program, !args.quiet).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    let seed = super::seed_or_clock(args.seed);
    if args.trace {
        let opts = crate::runtime::trace::TraceRun {
            host,
            seed,
            set: args.set.iter().cloned().collect(),
            scenario: args.scenario.clone(),
            iterations: args.iterations.unwrap_or(1),
            insecure: args.insecure,
        };
        let ok = crate::runtime::trace::run(program, opts).await;
        signals.abort();
        drop(demo);
        return match ok {
            Ok(true) => super::EXIT_OK,
            Ok(false) => super::EXIT_FAILED,
            Err(m) => {
                eprintln!("error: {m}");
                super::EXIT_FATAL
            }
        };
    }
    let http_debug = match &args.http_debug {
        None => None,
        Some(mode) => {
            match crate::runtime::trace::Trace::to_file(&args.http_debug_file, mode == "full") {
                Ok(t) => {
                    if !args.quiet {
                        eprintln!(
                            "note: logging every request and response to {}",
                            args.http_debug_file.display()
                        );
                    }
                    Some(Arc::new(t))
                }
                Err(e) => {
                    eprintln!(
                        "error: cannot write {}: {e}",
                        args.http_debug_file.display()
                    );
                    return super::EXIT_USAGE;
                }
            }
        }
    };
    let cfg = RunConfig {
        host,
        seed,
        iterations: args.iterations,
        insecure: args.insecure,
        set: args.set.iter().cloned().collect::<BTreeMap<_, _>>(),
        http_debug,
    };
    if profile.duration.is_none()
        && profile.stages.is_empty()
        && args.iterations.is_none()
        && !args.quiet
    {
        eprintln!("note: no duration, stages or --iterations: running until Ctrl-C");
    }
    let ui = match ui_listen {
        Some(l) => {
            let start = crate::web::Start {
                profile: profile.clone(),
                host: cfg.host.clone(),
                seed,
            };
            let file = args.plan.display().to_string();
            match crate::web::Attached::start(&l, program.clone(), file, start, control.clone())
                .await
            {
                Ok(u) => Some(u),
                Err(m) => {
                    eprintln!("error: {m}");
                    return super::EXIT_FATAL;
                }
            }
        }
        None => None,
    };
    let mut sinks = match start_sinks(&args, &program, &profile).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(addr) = sinks.metrics_addr() {
        if !args.quiet {
            eprintln!("metrics on http://{addr}/metrics");
        }
    }
    let tty = std::io::stderr().is_terminal();
    let bar = (!args.quiet && tty).then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut last_line = Instant::now();
    let quiet = args.quiet;
    let tick_control = control.clone();
    let on_tick = |t: &Tick| {
        if let Some(v) = sinks.tick(t, &tick_control) {
            eprintln!("\naborting: threshold failed: {}", v.line());
        }
        if let Some(u) = &ui {
            u.hub.tick(t);
        }
        let line = render_progress_line(t.point, t.elapsed, t.planned);
        if let Some(b) = &bar {
            b.set_message(line);
        } else if !quiet && last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            eprintln!("{line}");
        }
    };
    let result = driver::run(program.clone(), &profile, &cfg, control, on_tick).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    signals.abort();
    if let Some(u) = ui {
        let aborted = sinks.aborted_by().map(|v| v.rule.clone());
        u.finish(result.as_ref().ok(), aborted).await;
    }
    if let Some(d) = demo {
        d.shutdown().await;
    }
    match result {
        Ok(r) => finish(&program, &profile, &r, seed, &args, sinks).await,
        Err(e) => {
            eprintln!("error: {e}");
            super::EXIT_FATAL
        }
    }
}

async fn finish(
    program: &lang::ir::Program,
    profile: &LoadProfile,
    r: &RunResult,
    seed: u64,
    args: &Args,
    sinks: report::sinks::Sinks,
) -> u8 {
    let kv = args.summary_kv;
    let infos = step_infos(program);
    print!("{}", render_summary(&infos, &r.total, r.elapsed));
    let verdicts = crate::report::thresholds::evaluate(
        program,
        &profile.thresholds,
        &r.total,
        r.elapsed.as_secs_f64(),
    );
    let mut failed = false;
    if !verdicts.is_empty() {
        println!("\nThresholds");
        for v in &verdicts {
            println!("  {}", v.line());
            failed |= !v.passed;
        }
    }
    let (_, checks_failed) = r.total.checks();
    if checks_failed > 0 {
        failed = true;
    }
    // Without thresholds any failed request fails the run (as Locust does); with
    // thresholds the profile states how many failures are acceptable.
    let request_failures = r.total.failures();
    if profile.thresholds.is_empty() && request_failures > 0 {
        failed = true;
    }
    let aborted_by = sinks.aborted_by().cloned();
    if let Some(v) = &aborted_by {
        failed = true;
        println!("\nrun aborted by threshold: {}", v.line());
    }
    let plan_file = args.plan.display().to_string();
    let cx = report::model::Context {
        program,
        profile,
        plan_file: &plan_file,
        seed,
        verdicts: &verdicts,
        aborted_by: aborted_by.as_ref().map(|v| v.rule.clone()),
        passed: !failed,
    };
    let built = sinks
        .wants_report()
        .then(|| report::RunReport::build(&cx, r));
    let files = sinks.finish(built.as_ref()).await;
    if r.interrupted {
        println!(
            "\nrun interrupted after {:.1}s (seed {seed})",
            r.elapsed.as_secs_f64()
        );
    } else {
        println!("\nseed {seed}");
    }
    if kv {
        let all = r.total.aggregate(|id| {
            program
                .stats
                .get(id as usize)
                .is_none_or(|s| s.kind != "group")
        });
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "rps={:.1} p50_ms={:.3} p99_ms={:.3} requests={} errors={}",
            all.count as f64 / secs,
            all.latency.value_at_quantile(0.5) as f64 / 1000.0,
            all.latency.value_at_quantile(0.99) as f64 / 1000.0,
            all.count,
            all.failures
        );
        if !all.corrected.is_empty() {
            // Open model: the latency from the intended start, and what was asked for.
            line.push_str(&format!(
                " p99_corrected_ms={:.3} dropped={}",
                all.corrected.value_at_quantile(0.99) as f64 / 1000.0,
                r.total.iterations.dropped
            ));
        }
        println!("{line}");
    }
    let write_failed = match files {
        Ok(written) => {
            for p in written {
                println!("wrote {}", p.display());
            }
            false
        }
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            true
        }
    };
    let code = if failed {
        let mut reasons = Vec::new();
        if checks_failed > 0 {
            reasons.push(format!("{checks_failed} checks failed"));
        }
        let failed_rules = verdicts.iter().filter(|v| !v.passed).count();
        if failed_rules > 0 {
            reasons.push(format!("{failed_rules} thresholds failed"));
        }
        if aborted_by.is_some() {
            reasons.push("aborted by a threshold".into());
        }
        if profile.thresholds.is_empty() && request_failures > 0 {
            reasons.push(format!("{request_failures} requests failed"));
        }
        println!("result: FAILED ({})", reasons.join(", "));
        super::EXIT_FAILED
    } else {
        println!("result: PASSED");
        super::EXIT_OK
    };
    if write_failed {
        super::EXIT_FATAL
    } else {
        code
    }
}

/// SIGINT (Ctrl-C) handling: the first stops gracefully, the second at once.
struct Interrupts {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            sig: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) -> bool {
        self.sig.recv().await.is_some()
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> bool {
        tokio::signal::ctrl_c().await.is_ok()
    }

    fn spawn(mut self, c: Control, quiet: bool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.next().await {
                if !quiet {
                    eprintln!(
                        "\nstopping: letting iterations finish (Ctrl-C again to stop at once)"
                    );
                }
                c.stop.cancel();
                if self.next().await {
                    c.kill.cancel();
                }
            }
        })
    }
}
