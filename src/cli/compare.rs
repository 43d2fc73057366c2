//! `loadplan compare BASELINE.json CURRENT.json`: per-step deltas between two `run --json`
//! results (request rate, error rate, p50/p95/p99) and an exit code for CI — 1 when a number
//! regressed beyond the tolerance, 0 otherwise, 2 when an input cannot be read or an output
//! written. `--html FILE` / `--summary-md FILE` also write the current run's report with the
//! baseline beside it, as `run --baseline` does.

use std::path::PathBuf;

use crate::report::compare::{self, Options};
use crate::report::{html, markdown};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The reference result (`loadplan run --json FILE`).
    pub baseline: PathBuf,
    /// The result to judge against it.
    pub current: PathBuf,
    /// Allowed relative change before a number counts as a regression, e.g. 10%.
    #[arg(long, default_value = "10%", value_parser = compare::parse_tolerance)]
    pub tolerance: f64,
    /// Latency rises smaller than this many milliseconds never count as regressions.
    #[arg(long, default_value_t = 1.0)]
    pub latency_floor_ms: f64,
    /// Error-rate rises smaller than this many percentage points never count as regressions.
    #[arg(long, default_value_t = 0.1)]
    pub error_floor_pp: f64,
    /// Rows with fewer events than this in either run are shown but never count as
    /// regressions (percentiles of a handful of samples are noise).
    #[arg(long, default_value_t = compare::MIN_SAMPLES)]
    pub min_samples: u64,
    /// Also write the current run's HTML report with the baseline drawn beside it (the
    /// comparison table, baseline series dashed under the charts).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the current run's markdown summary with the baseline's changes.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// A report writer given the baseline beside the run.
type Render = fn(&crate::report::RunReport, Option<&compare::Beside<'_>>) -> String;

pub fn run(args: Args) -> u8 {
    let read = |p: &PathBuf| crate::report::read_json(p);
    let (baseline, current) = match (read(&args.baseline), read(&args.current)) {
        (Ok(b), Ok(c)) => (b, c),
        (b, c) => {
            for e in [b.err(), c.err()].into_iter().flatten() {
                errln!("error: {e}");
            }
            return super::EXIT_USAGE;
        }
    };
    if !(args.latency_floor_ms >= 0.0 && args.error_floor_pp >= 0.0) {
        errln!("error: floors must be 0 or more");
        return super::EXIT_USAGE;
    }
    let options = Options {
        tolerance: args.tolerance,
        latency_floor_ms: args.latency_floor_ms,
        error_floor: args.error_floor_pp / 100.0,
        min_samples: args.min_samples,
    };
    let result = compare::compare(&baseline, &current, &options);
    out!("{}", compare::render(&result, &options));
    let baseline = compare::Baseline {
        report: baseline,
        source: args.baseline.display().to_string(),
    };
    let beside = compare::Beside::new(&baseline, &current, options);
    let outputs = [
        ("--html", &args.html, html::render_with as Render),
        ("--summary-md", &args.summary_md, markdown::render_with),
    ];
    for (flag, path, render) in outputs {
        if let Some(p) = path {
            if let Err(e) = std::fs::write(p, render(&current, Some(&beside))) {
                errln!("error: {flag} {}: {e}", p.display());
                return super::EXIT_USAGE;
            }
        }
    }
    if result.regressions().next().is_some() {
        super::EXIT_FAILED
    } else {
        super::EXIT_OK
    }
}
