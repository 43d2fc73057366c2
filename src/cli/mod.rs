//! The command line: one file per subcommand, dispatched from [`main`].
//!
//! Exit codes (README, docs/results.md): 0 passed, 1 thresholds or checks failed, 2 plan/usage
//! error, 3 fatal runtime error, 4 interrupted (stopped before its planned end by a
//! signal or a stop from the UI, and nothing failed in what ran).
//!
//! Standard output goes through [`outln!`]/[`out!`], never `println!`: a closed pipe
//! (`loadplan check plan.kdl | true`) ends the output quietly instead of panicking.

/// `println!` that never panics: writes to the locked stdout; after the first failed
/// write (a closed pipe) all further output is dropped quietly.
macro_rules! outln {
    () => { $crate::cli::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics: a closed stderr (the terminal went away with SIGHUP)
/// must not take the run and its files down with it.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `print!` that never panics (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out(format_args!($($arg)*)) };
}

pub mod check;
pub mod compare;
pub mod completions;
pub mod demo;
pub mod graph;
pub mod master;
pub mod run;
pub mod schema;
pub mod ui;
pub mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::diag::Diagnostics;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_FATAL: u8 = 3;
/// The run was stopped before its planned end (Ctrl-C, SIGTERM, SIGHUP, a stop from the
/// UI) and nothing failed in what ran: not a pass, since the plan did not run in full.
pub const EXIT_INTERRUPTED: u8 = 4;

static STDOUT_BROKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Write to stdout; a failed write (EPIPE: the reader went away) silences stdout for the
/// rest of the process instead of panicking as `println!` does.
pub fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_fmt(args).is_err() || stdout.flush().is_err() {
        STDOUT_BROKEN.store(true, Ordering::Relaxed);
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "loadplan",
    version,
    about = "Declarative load testing: plans in KDL or YAML, true numbers, clear errors",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `--help` examples: every line that starts with `  loadplan ` is parsed by a test
// (tests/packaging_files.rs), so they stay valid commands.
const EXAMPLES: &str = "\
Examples:
  loadplan run plans/mixed.kdl --profile smoke --demo   # first try: the built-in demo target, 30 s
  loadplan check plans/mixed.kdl                        # check a plan, send nothing
  loadplan run plans/http.kdl --host http://localhost:8000 -u 10 -t 1m
  loadplan ui plans/mixed.kdl --demo                    # the web UI on http://127.0.0.1:8089

`loadplan help COMMAND` shows each command's own examples. Plans: grammar/README.md;
figures and result files: docs/ (in the source repository).";

const RUN_EXAMPLES: &str = "\
Examples:
  loadplan run plans/mixed.kdl --profile smoke --demo   # first try: against the built-in demo target
  loadplan run plans/http.kdl --host http://localhost:8000 --profile load
  loadplan run plans/http.kdl --host http://localhost:8000 -u 20 -r 5 -t 2m --seed 1
  loadplan run plans/http.kdl --demo --arrival-rate 200 --max-users 500   # open model
  loadplan run plans/mixed.kdl --demo --json out/run.json --csv out/run --junit out/junit.xml --html out/report.html

Exit codes: 0 passed, 1 checks or thresholds failed, 2 plan/usage error, 3 fatal runtime error.";

const DEMO_EXAMPLES: &str = "\
Examples:
  loadplan demo                                          # http://127.0.0.1:8000
  loadplan demo --latency 20ms --error-rate 0.05         # slower, 5 % of REST requests answer 500
  loadplan demo --bind 127.0.0.1:8000 --rate-limit       # the real server's per-IP limits";

const CHECK_EXAMPLES: &str = "\
Examples:
  loadplan check plans/mixed.kdl
  loadplan check plans/mixed.yaml --profile load";

const GRAPH_EXAMPLES: &str = "\
Examples:
  loadplan graph plans/mixed.kdl
  loadplan graph plans/mixed.kdl --format dot";

const SCHEMA_EXAMPLES: &str = "\
Examples:
  loadplan schema plan                                   # for `# yaml-language-server: $schema=…`
  loadplan schema profile";

const COMPARE_EXAMPLES: &str = "\
Examples:
  loadplan compare baseline.json current.json
  loadplan compare baseline.json current.json --tolerance 10%";

const MASTER_EXAMPLES: &str = "\
Examples:
  loadplan master plans/mixed.kdl --profile smoke --demo --expect-workers 2   # try it on one machine
  loadplan master plans/mixed.kdl --profile stress --expect-workers 2 --bind 0.0.0.0:5557 --secret S";

const WORKER_EXAMPLES: &str = "\
Examples:
  loadplan worker                                        # the master on 127.0.0.1:5557
  loadplan worker --master 10.0.0.5:5557 --secret S";

const UI_EXAMPLES: &str = "\
Examples:
  loadplan ui plans/mixed.kdl --demo                     # first try: http://127.0.0.1:8089
  loadplan ui plans/mixed.kdl --profile load --host http://localhost:8000";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  loadplan completions bash                              # source <(loadplan completions bash)
  loadplan completions zsh";

#[derive(Subcommand, Debug)]
// Parsed once at startup: the size of `run`'s arguments does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run a plan: generate load, show progress, print a summary.
    #[command(after_help = RUN_EXAMPLES)]
    Run(run::Args),
    /// Serve the built-in demo target (a stand-in for the Durable Code backend).
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(demo::Args),
    /// Check a plan (and a profile) without sending any request.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(check::Args),
    /// Print the compiled step graph of a plan.
    #[command(after_help = GRAPH_EXAMPLES)]
    Graph(graph::Args),
    /// Print the JSON Schema of YAML plans or profiles.
    #[command(after_help = SCHEMA_EXAMPLES)]
    Schema(schema::Args),
    /// Compare two `run --json` results; exit 1 on a regression beyond the tolerance.
    #[command(after_help = COMPARE_EXAMPLES)]
    Compare(compare::Args),
    /// Drive a distributed run: wait for workers, hand out users, merge their numbers.
    #[command(after_help = MASTER_EXAMPLES)]
    Master(master::Args),
    /// Join a master's distributed run and generate this worker's share of the load.
    #[command(after_help = WORKER_EXAMPLES)]
    Worker(worker::Args),
    /// Serve the web UI (http://127.0.0.1:8089) and start runs from the browser.
    #[command(after_help = UI_EXAMPLES)]
    Ui(ui::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(completions::Args),
}

/// Entry point for the binary: parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Check(a) => check::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Master(a) => master::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Ui(a) => ui::run(a),
        Command::Completions(a) => completions::run(a),
    };
    ExitCode::from(code)
}

/// loadplan's own diagnostics (`tracing`: a task that failed, a socket option refused): warnings
/// and errors go to stderr; `RUST_LOG=debug` (any env-filter directive) shows more. These are
/// about the tool, never about the target: a run's results go through the metrics.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Reads and compiles the plan at `path`; its diagnostics, if any, are printed and the exit
/// code is the usage error.
pub fn load_plan(path: &std::path::Path) -> Result<crate::lang::ir::Program, u8> {
    crate::lang::load_plan(path)
        .map(|(_, program)| program)
        .map_err(|d| {
            report(d);
            EXIT_USAGE
        })
}

/// Print diagnostics to stderr (colour when stderr is a terminal).
pub fn report(diags: Diagnostics) {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let all = diags.into_sorted();
    let n = all.len();
    // Never panics on a closed stderr (`loadplan check plan.kdl 2>&1 | head -1`).
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    for d in all {
        if write!(err, "{}", d.render(color)).is_err() {
            return;
        }
    }
    let _ = writeln!(
        err,
        "error: {n} problem{} found",
        if n == 1 { "" } else { "s" }
    );
}

/// The async runtime for load: one scheduler thread per core this process may use.
/// On a single core (e.g. under `taskset`) the current-thread scheduler avoids the
/// work-stealing machinery entirely.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
    }
}

/// Start the built-in demo target on a free loopback port (for `--demo`).
pub async fn start_demo(seed: Option<u64>, announce: bool) -> Result<crate::demo::DemoServer, u8> {
    let cfg = crate::demo::DemoConfig {
        seed,
        ..crate::demo::DemoConfig::default()
    };
    match crate::demo::DemoServer::start(([127, 0, 0, 1], 0).into(), cfg).await {
        Ok(d) => {
            if announce {
                eprintln!("demo target listening on {}", d.base_url());
            }
            Ok(d)
        }
        Err(e) => {
            eprintln!("error: cannot start the demo target: {e}");
            Err(EXIT_FATAL)
        }
    }
}

/// The run's seed: the one given, or one from the clock (printed with the summary so
/// the run can be repeated).
pub fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}
