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
use crate::metrics::{render_progress_line, render_summary_with};
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
    /// PREFIX_failures.csv, and PREFIX_tags.csv (by scenario, group and tag).
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
    /// Write a markdown summary (verdict and why, host, per-step table, thresholds) for a
    /// pull-request comment.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// A previous result (`--json FILE`) to draw beside this run in --html and --summary-md:
    /// its figures, the change and what `loadplan compare` would call a regression. Read
    /// before any load is sent (a missing, unreadable or unrelated file: exit 2).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
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
    /// Keep serving the final metrics this long after the run, for one more scrape
    /// (e.g. 15s; the exporter serves them until the process exits in any case).
    #[arg(
        long,
        value_name = "DURATION",
        env = "LOADPLAN_METRICS_LINGER",
        value_parser = crate::lang::check::parse_duration_str
    )]
    pub metrics_linger: Option<Duration>,
    /// Serve the web UI while the run goes (stop, users, rate, live charts, downloads).
    #[arg(long)]
    pub ui: bool,
    /// With `run --ui`: exit when the run ends (by default the UI stays up, with the result
    /// and its downloads, until Ctrl-C or SIGTERM; `master --ui` always exits at the end).
    #[arg(long, requires = "ui")]
    pub ui_quit: bool,
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

/// Numeric flags in range, before anything runs (exit 2 with the reason): a zero that
/// would send nothing (`-u 0`, `-t 0s`, `--iterations 0`, `--max-users 0`) or a rate
/// the clock arithmetic cannot hold (`--arrival-rate 1e-300`).
fn check_numbers(args: &Args) -> Result<(), u8> {
    let mut problems = Vec::new();
    if let Some(u) = args.users {
        problems.extend(profile::users_problem("--users", u));
    }
    if let Some(m) = args.max_users {
        problems.extend(profile::users_problem("--max-users", m));
    }
    if let Some(r) = args.arrival_rate {
        problems.extend(profile::rate_problem("--arrival-rate", r));
    }
    if let Some(r) = args.spawn_rate {
        problems.extend(profile::rate_problem("--spawn-rate", r));
    }
    if args.duration.is_some_and(|d| d.is_zero()) {
        problems.push("--duration must be longer than 0s (a run of 0s sends nothing)".into());
    }
    if args.iterations == Some(0) {
        problems.push("--iterations must be at least 1 (0 iterations send nothing)".into());
    }
    if problems.is_empty() {
        return Ok(());
    }
    for p in problems {
        errln!("error: {p}");
    }
    Err(super::EXIT_USAGE)
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
                errln!("{}", profile::not_found(name, args.plan.parent()));
                return Err(super::EXIT_USAGE);
            };
            profile::parse(&src, Some(program)).map_err(|d| {
                super::report(d);
                super::EXIT_USAGE
            })?
        }
        None => LoadProfile::closed(1, 1.0, None),
    };
    check_numbers(args)?;
    if let Some(rate) = args.arrival_rate {
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
        errln!(
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
            *spawn_rate = r;
        }
    } else if args.users.is_some() || args.spawn_rate.is_some() {
        errln!(
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
    let baseline = match &args.baseline {
        Some(path) => match load_baseline(path, program, args) {
            Ok(b) => Some(Arc::new(b)),
            Err(m) => {
                errln!("error: --baseline {}: {m}", path.display());
                return Err(super::EXIT_USAGE);
            }
        },
        None => None,
    };
    let outputs = report::sinks::Outputs {
        csv: args.csv.clone(),
        json: args.json.clone(),
        junit: args.junit.clone(),
        html: args.html.clone(),
        summary_md: args.summary_md.clone(),
        baseline,
    };
    let metrics = args.metrics.and_then(|l| l.0);
    report::sinks::Sinks::start(program.clone(), profile, outputs, metrics)
        .await
        .map(|s| s.with_linger(args.metrics_linger))
        .map_err(|e| match e {
            report::sinks::StartError::Usage(m) => {
                errln!("error: {m}");
                super::EXIT_USAGE
            }
            report::sinks::StartError::Fatal(m) => {
                errln!("error: {m}");
                super::EXIT_FATAL
            }
        })
}

/// Reads `--baseline FILE`: a loadplan result of the current format, asked for with an
/// output that shows it, and of this plan (the same plan name, or at least one step in
/// common) — else the comparison would be all `new`/`gone` rows.
fn load_baseline(
    path: &std::path::Path,
    program: &lang::ir::Program,
    args: &Args,
) -> Result<report::compare::Baseline, String> {
    if args.html.is_none() && args.summary_md.is_none() {
        return Err(
            "the comparison is drawn in the report: add --html FILE and/or \
                    --summary-md FILE (or compare two results with `loadplan compare`)"
                .into(),
        );
    }
    let report = report::read_json(path)?;
    let shared = program
        .stats
        .iter()
        .any(|s| report.step(&s.kind, &s.name).is_some());
    if report.plan.name != program.name && !shared {
        return Err(format!(
            "the baseline is a run of plan `{}` and has no step of plan `{}`",
            report.plan.name, program.name
        ));
    }
    Ok(report::compare::Baseline {
        report,
        source: path.display().to_string(),
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
    let host = match &args.host {
        Some(h) => Some(check_host_flag(h)?),
        None => None,
    };
    if host.is_none() && program.host.is_none() {
        errln!("error: the plan has no host; pass --host URL or --demo");
        return Err(super::EXIT_USAGE);
    }
    Ok((None, host))
}

/// `--host` / `LOADPLAN_HOST` under the rule a plan's `host` obeys (the same diagnostic,
/// exit 2), before any load: a bad host would otherwise fail every request of the run.
pub fn check_host_flag(value: &str) -> Result<String, u8> {
    let from_env = std::env::var("LOADPLAN_HOST").is_ok_and(|v| v == value)
        && !std::env::args().any(|a| a == "--host" || a.starts_with("--host="));
    let origin = if from_env { "LOADPLAN_HOST" } else { "--host" };
    lang::compile::host_diagnostic(origin, value).map_err(|d| {
        super::report(d);
        super::EXIT_USAGE
    })
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
            errln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    rt.block_on(run_async(args, Arc::new(program), profile))
}

async fn run_async(args: Args, program: Arc<lang::ir::Program>, profile: LoadProfile) -> u8 {
    let ui_listen = match args.ui_listen.check(args.ui) {
        Ok(l) => l,
        Err(m) => {
            errln!("error: {m}");
            return super::EXIT_USAGE;
        }
    };
    // Signals are registered before anything starts, so an early Ctrl-C is never lost.
    let control = Control::default();
    let signals = match Interrupts::new() {
        Ok(i) => i.spawn(control.clone(), args.quiet),
        Err(e) => {
            errln!("error: cannot listen for Ctrl-C: {e}");
            return super::EXIT_FATAL;
        }
    };
    let (demo, host) = match target(&args, &program, !args.quiet).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    // Too low a `ulimit -n` for the users: say so before connects fail with `local`.
    if let Some(w) = crate::runtime::http::profile_nofile_warning(&program, &profile) {
        eprintln!("warning: {w}");
    }
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
        errln!("note: no duration, stages or --iterations: running until Ctrl-C");
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
                    errln!("error: {m}");
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
            errln!("metrics on http://{addr}/metrics");
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
            errln!("\naborting: threshold failed: {}", v.line());
        }
        if let Some(u) = &ui {
            u.hub.tick(t);
        }
        let line = render_progress_line(t.point, t.elapsed, t.planned);
        if let Some(b) = &bar {
            b.set_message(line);
        } else if !quiet && last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            errln!("{line}");
        }
    };
    let result = driver::run(program.clone(), &profile, &cfg, control, on_tick).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    signals.abort();
    // `run --ui` keeps the finished run on the page (downloads too) until Ctrl-C or
    // SIGTERM; `--ui-quit` exits at the end.
    let mut lingering = None;
    // Listening before the summary prints: a Ctrl-C meanwhile is not lost.
    let mut stop = (ui.is_some() && !args.ui_quit)
        .then(Interrupts::new)
        .and_then(Result::ok);
    if let Some(u) = ui {
        let aborted = sinks.aborted_by().map(|v| v.rule.clone());
        if args.ui_quit {
            u.finish(result.as_ref().ok(), aborted).await;
        } else {
            u.show(result.as_ref().ok(), aborted);
            lingering = Some(u);
        }
    }
    let code = match result {
        Ok(r) => {
            let ending = Ending {
                program: &program,
                profile: &profile,
                result: &r,
                seed,
                plan: &args.plan,
                host: cfg.host.clone(),
                summary_kv: args.summary_kv,
            };
            finish(ending, sinks, Extras::default()).await
        }
        Err(e) => {
            errln!("error: {e}");
            super::EXIT_FATAL
        }
    };
    if let Some(u) = lingering {
        errln!(
            "the run is over; the ui stays up on http://{} until Ctrl-C (--ui-quit exits at the end)",
            u.server.addr()
        );
        u.linger(async move {
            match stop.as_mut() {
                Some(s) => {
                    s.next().await;
                }
                None => std::future::pending::<()>().await,
            }
        })
        .await;
    }
    if let Some(d) = demo {
        d.shutdown().await;
    }
    code
}

/// The end-of-run summary's options (shared by `run` and `master`).
pub(super) fn summary_options(
    profile: &LoadProfile,
    r: &RunResult,
    host: &Option<String>,
) -> crate::metrics::SummaryOptions {
    crate::metrics::SummaryOptions {
        width: crate::metrics::terminal_width(),
        host: host.clone(),
        profile: Some(profile.name.clone()),
        reset_at: r.history.reset_at(),
        load_secs: r.history.load_end(),
    }
}

/// The thresholds' judgement over `secs`, with a threshold's abort (if any) as a reason.
pub(super) fn judge_run(
    program: &lang::ir::Program,
    profile: &LoadProfile,
    r: &RunResult,
    secs: f64,
    sinks: &report::sinks::Sinks,
) -> (
    report::thresholds::Judgement,
    Option<report::thresholds::Verdict>,
) {
    let mut judgement = report::thresholds::judge(program, profile, &r.total, secs);
    let aborted_by = sinks.aborted_by().cloned();
    if aborted_by.is_some() {
        judgement.reasons.push("aborted by a threshold".into());
    }
    (judgement, aborted_by)
}

/// A finished run as both ends of it see it: `run` and `master` end through [`finish`].
pub(super) struct Ending<'a> {
    pub program: &'a lang::ir::Program,
    pub profile: &'a LoadProfile,
    pub result: &'a RunResult,
    pub seed: u64,
    pub plan: &'a std::path::Path,
    pub host: Option<String>,
    pub summary_kv: bool,
}

/// What a distributed run adds to the common end (see [`finish`]).
#[derive(Default)]
pub(super) struct Extras<'a> {
    /// Why the run stopped outside the thresholds (the master lost its plan): a reason to
    /// fail, and a fatal exit.
    pub aborted: Option<&'a str>,
    /// Facts only this kind of run has, added to the report (the master's workers and gaps).
    pub decorate: Option<&'a dyn Fn(&mut report::RunReport)>,
    /// One more file after the sinks' (the master's `--snapshot-out`): its path, or the error.
    pub more_files: Option<&'a dyn Fn() -> Result<std::path::PathBuf, String>>,
    /// Printed after the summary tables (the master's workers and lost workers).
    pub after_summary: Option<&'a dyn Fn()>,
    /// Appended to the `--summary-kv` line (the master's ` workers=N lost=M`).
    pub kv: String,
}

/// The one end of a run, for `run` and `master` alike: judge it, write every file asked for
/// (first: a closed stdout or a second signal must not cost them), print the summary, the
/// verdicts, the seed and `--summary-kv`, and return the exit code.
pub(super) async fn finish(e: Ending<'_>, sinks: report::sinks::Sinks, x: Extras<'_>) -> u8 {
    let (program, profile, r, seed) = (e.program, e.profile, e.result, e.seed);
    let infos = step_infos(program);
    let host = e.host.or_else(|| program.host.clone());
    let opts = summary_options(profile, r, &host);
    let (mut judgement, aborted_by) =
        judge_run(program, profile, r, report::model::stats_secs(r), &sinks);
    if let Some(a) = x.aborted {
        judgement.reasons.push(format!("aborted: {a}"));
    }
    let plan_file = e.plan.display().to_string();
    let cx = report::model::Context {
        program,
        host,
        profile,
        plan_file: &plan_file,
        seed,
        verdicts: &judgement.verdicts,
        aborted_by: aborted_by.as_ref().map(|v| v.rule.clone()),
        passed: judgement.passed(),
    };
    let built = sinks.wants_report().then(|| {
        let mut built = report::RunReport::build(&cx, r);
        if let Some(decorate) = x.decorate {
            decorate(&mut built);
        }
        built
    });
    let (mut wrote, mut problems) = match sinks.finish(built.as_ref()).await {
        Ok(written) => (written, Vec::new()),
        Err(problems) => (Vec::new(), problems),
    };
    if let Some(more) = x.more_files {
        match more() {
            Ok(path) => wrote.push(path),
            Err(p) => problems.push(p),
        }
    }
    out!(
        "{}",
        render_summary_with(&infos, &r.total, r.elapsed, &opts)
    );
    out!(
        "{}",
        crate::metrics::render_breakdown(
            &report::model::breakdown_rows(program, &r.total),
            r.elapsed,
            &opts
        )
    );
    if let Some(after) = x.after_summary {
        after();
    }
    print_verdict_lines(&judgement.verdicts, aborted_by.as_ref());
    if r.interrupted {
        outln!(
            "\nrun interrupted after {:.1}s (seed {seed})",
            r.elapsed.as_secs_f64()
        );
    } else {
        outln!("\nseed {seed}");
    }
    if e.summary_kv {
        outln!("{}{}", summary_kv(program, r), x.kv);
    }
    for p in &wrote {
        outln!("wrote {}", p.display());
    }
    for p in &problems {
        errln!("error: {p}");
    }
    let code = outcome(&judgement.reasons, r.interrupted);
    if !problems.is_empty() || x.aborted.is_some() {
        super::EXIT_FATAL
    } else {
        code
    }
}

/// The thresholds (and the built-in rule when it failed), and the rule that aborted.
pub fn print_verdict_lines(
    verdicts: &[crate::report::thresholds::Verdict],
    aborted_by: Option<&crate::report::thresholds::Verdict>,
) {
    if !verdicts.is_empty() {
        outln!("\nThresholds");
        for v in verdicts {
            outln!("  {}", v.line());
        }
    }
    if let Some(v) = aborted_by {
        outln!("\nrun aborted by threshold: {}", v.line());
    }
}

/// The last line and the exit code: FAILED (1) when anything failed, even in an
/// interrupted run (what ran already failed); INTERRUPTED (4) when the run was stopped
/// before its planned end and nothing failed (not a pass: the plan did not run in
/// full); PASSED (0) otherwise.
pub fn outcome(reasons: &[String], interrupted: bool) -> u8 {
    let note = if interrupted { ", interrupted" } else { "" };
    if !reasons.is_empty() {
        outln!("result: FAILED ({}{note})", reasons.join(", "));
        super::EXIT_FAILED
    } else if interrupted {
        outln!("result: INTERRUPTED (stopped before its planned end; nothing failed in what ran)");
        super::EXIT_INTERRUPTED
    } else {
        outln!("result: PASSED");
        super::EXIT_OK
    }
}

/// `--summary-kv`: one machine-readable line.
fn summary_kv(program: &lang::ir::Program, r: &RunResult) -> String {
    let all = r
        .total
        .aggregate(|id| crate::report::model::counts_in_total(program, id));
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
        // `lateness_p99_ms`: how late the generator started arrivals (its own precision).
        line.push_str(&format!(
            " p99_corrected_ms={:.3} dropped={} lateness_p99_ms={:.3}",
            all.corrected.value_at_quantile(0.99) as f64 / 1000.0,
            r.total.iterations.dropped,
            r.total.lateness.value_at_quantile(0.99) as f64 / 1000.0
        ));
    }
    if r.interrupted {
        line.push_str(" interrupted=1");
    }
    line
}

/// Stop signals: SIGINT (Ctrl-C), SIGTERM (`docker stop`, Kubernetes, `timeout`) and
/// SIGHUP (the terminal went away). The first stops gracefully — users finish their
/// iteration within `stop_timeout`, then the summary, every file and the verdict — and a
/// second Ctrl-C stops at once, still writing everything.
pub struct Interrupts {
    #[cfg(unix)]
    sigs: [tokio::signal::unix::Signal; 3],
}

impl Interrupts {
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                sigs: [
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                ],
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next stop signal's name; None when no more can come.
    #[cfg(unix)]
    pub async fn next(&mut self) -> Option<&'static str> {
        let [int, term, hup] = &mut self.sigs;
        tokio::select! {
            s = int.recv() => s.map(|()| SIGINT),
            s = term.recv() => s.map(|()| "SIGTERM"),
            s = hup.recv() => s.map(|()| "SIGHUP"),
        }
    }

    #[cfg(not(unix))]
    pub async fn next(&mut self) -> Option<&'static str> {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }

    pub fn spawn(mut self, c: Control, quiet: bool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Some(name) = self.next().await {
                c.stop.cancel();
                if !quiet {
                    errln!(
                        "\n{name}: stopping, letting iterations finish (Ctrl-C again to stop at once)"
                    );
                }
                // Only a person presses Ctrl-C twice. SIGTERM and SIGHUP may come more
                // than once for one stop (`timeout` signals the process and its group;
                // orchestrators follow with SIGKILL anyway), so they never escalate.
                while let Some(again) = self.next().await {
                    if again == SIGINT {
                        c.kill.cancel();
                        break;
                    }
                }
            }
        })
    }
}

const SIGINT: &str = "SIGINT";
