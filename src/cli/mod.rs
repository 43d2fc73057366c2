//! The command line: one file per subcommand, dispatched from [`main`].
//!
//! Exit codes (DESIGN.md): 0 passed, 1 thresholds or checks failed, 2 plan/usage
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
    about = "Declarative load testing: plans in KDL or YAML, true numbers, clear errors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once at startup: the size of `run`'s arguments does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run a plan: generate load, show progress, print a summary.
    Run(run::Args),
    /// Serve the built-in demo target (a stand-in for the Durable Code backend).
    Demo(demo::Args),
    /// Check a plan (and a profile) without sending any request.
    Check(check::Args),
    /// Print the compiled step graph of a plan.
    Graph(graph::Args),
    /// Print the JSON Schema of YAML plans or profiles.
    Schema(schema::Args),
    /// Compare two `run --json` results; exit 1 on a regression beyond the tolerance.
    Compare(compare::Args),
    /// Drive a distributed run: wait for workers, hand out users, merge their numbers.
    Master(master::Args),
    /// Join a master's distributed run and generate this worker's share of the load.
    Worker(worker::Args),
    /// Serve the web UI (http://127.0.0.1:8089) and start runs from the browser.
    Ui(ui::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
}

/// Entry point for the binary: parse arguments, run, map to an exit code.
pub fn main() -> ExitCode {
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
