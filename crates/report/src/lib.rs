//! Sinks that turn a run into verdicts and files: [`thresholds`] (pass/fail rules, also watched
//! mid-run), the [`model`] of a finished run ([`RunReport`], the `--json` file), and the writers
//! that render it — [`csv`] (Locust's columns), [`junit`], [`html`] (with [`svg`] charts) — plus
//! [`compare`] for two JSON results and [`sinks`], which wires all of them (and the Prometheus
//! exporter) to a run's ticks and end.
//!
//! Invariants: sinks read snapshots and the compiled program only; they never touch virtual
//! users. Every file is rendered from the same [`RunReport`], so the numbers agree across
//! formats.

// The crates this one builds on, under the module names the code uses (`crate::lang::…`).
use loadplan_engine::{metrics, runtime};
use loadplan_lang::{self as lang, profile};

pub mod compare;
pub mod csv;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod sinks;
pub mod svg;
pub mod thresholds;

pub use model::RunReport;

use std::io;
use std::path::Path;

/// Writes the `--json` file (pretty-printed, newline-terminated).
pub fn write_json(path: &Path, report: &RunReport) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

/// Reads a `--json` file; the error names the problem for people.
pub fn read_json(path: &Path) -> Result<RunReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(model::FORMAT) => {}
        Some(f) => {
            return Err(format!(
                "{} has result format {f}; this loadplan reads format {}",
                path.display(),
                model::FORMAT
            ));
        }
        None => {
            return Err(format!(
                "{} is not a loadplan result (no `format` field; write one with `loadplan run --json FILE`)",
                path.display()
            ));
        }
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{} is not a valid loadplan result: {e}", path.display()))
}
