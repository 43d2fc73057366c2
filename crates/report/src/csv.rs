//! `--csv PREFIX`: Locust-compatible CSV files, so tooling written for Locust reads ours.
//! `PREFIX_stats.csv` and `PREFIX_failures.csv` are written at the end from the
//! [`RunReport`]; `PREFIX_stats_history.csv` is streamed, one block of rows per tick, by
//! [`HistoryWriter`] (so memory does not grow with the run and a killed run keeps its rows).
//!
//! Invariants: headers are Locust 2.x's exactly ([`STATS_HEADER`], [`HISTORY_HEADER`],
//! [`FAILURES_HEADER`]); times are milliseconds, sizes bytes, rates per second; a value with no
//! data is `N/A`, as Locust writes it. History rows hold every row that recorded anything so far
//! (Locust's `--csv-full-history`) plus the `Aggregated` row; their percentile and per-second
//! columns cover the tick (about one second), the `Total …` columns the run so far.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::{
    AGGREGATED, LOCUST_QUANTILES, Percentiles, RunReport, StepReport, counts_in_total, ms,
};
use crate::lang::ir::Program;
use crate::metrics::{Snapshot, StepStats};

pub const STATS_HEADER: [&str; 22] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
];

pub const HISTORY_HEADER: [&str; 24] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

pub const FAILURES_HEADER: [&str; 4] = ["Method", "Name", "Error", "Occurrences"];

const NA: &str = "N/A";

/// The three file names for a prefix (`out/run` → `out/run_stats.csv`, …).
pub fn paths(prefix: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = prefix.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [
        with("_stats.csv"),
        with("_stats_history.csv"),
        with("_failures.csv"),
    ]
}

/// `PREFIX_tags.csv`: the breakdown by scenario, group and tag (not a Locust file).
pub fn tags_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push("_tags.csv");
    PathBuf::from(s)
}

/// The header of `PREFIX_tags.csv`: `By`, `Key`, `Value`, then the columns of
/// `PREFIX_stats.csv` after `Type` and `Name`.
pub fn tags_header() -> Vec<&'static str> {
    let mut h = vec!["By", "Key", "Value"];
    h.extend_from_slice(&STATS_HEADER[2..]);
    h
}

/// Writes `PREFIX_tags.csv`: one row per scenario, group and `key=value` tag the plan
/// declares, each the merge of the rows it selects ([`RunReport::breakdown`]).
pub fn write_tags(prefix: &Path, report: &RunReport) -> io::Result<()> {
    let mut w = csv::Writer::from_path(tags_path(prefix)).map_err(csv_err)?;
    w.write_record(tags_header()).map_err(csv_err)?;
    for b in &report.breakdown {
        let mut row = vec![b.by.clone(), b.key.clone(), b.value.clone()];
        row.extend(stats_row(&b.stats).into_iter().skip(2));
        w.write_record(row).map_err(csv_err)?;
    }
    w.flush()
}

fn csv_err(e: csv::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// A number for a CSV cell: up to 3 decimals, trailing zeros trimmed (`12.5`, `0.215`, `3`).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return NA.into();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn stats_row(s: &StepReport) -> Vec<String> {
    let mut row = vec![
        s.kind.clone(),
        s.name.clone(),
        s.count.to_string(),
        s.failures.to_string(),
    ];
    match &s.latency_ms {
        Some(p) => row.extend([num(p.p50), num(p.mean), num(p.min), num(p.max)]),
        None => row.extend(std::iter::repeat_n(NA.to_owned(), 4)),
    }
    row.push(match s.count {
        0 => "0".into(),
        n => num(s.bytes_in as f64 / n as f64),
    });
    row.push(num(s.rate));
    row.push(num(s.failure_rate));
    match &s.latency_ms {
        Some(p) => row.extend(p.locust_columns().iter().map(|&v| num(v))),
        None => row.extend(std::iter::repeat_n(NA.to_owned(), LOCUST_QUANTILES.len())),
    }
    row
}

/// The extra row after a `receive` row: the same frames timed from the session's latest
/// `send` ("reply latency"), named `NAME (since send)`; it counts no failures.
fn reply_row(s: &StepReport, reply: &Percentiles) -> StepReport {
    StepReport {
        name: format!("{}{REPLY_SUFFIX}", s.name),
        failures: 0,
        error_rate: 0.0,
        failure_rate: 0.0,
        latency_ms: Some(reply.clone()),
        ..s.clone()
    }
}

/// Suffix of the reply-latency rows of `PREFIX_stats.csv`.
pub const REPLY_SUFFIX: &str = " (since send)";

/// Writes `PREFIX_stats.csv` (rows in plan order, each `receive` row followed by its
/// reply-latency row, then `Aggregated`: every row but groups and reply rows, HTTP requests
/// and WebSocket messages together, as Locust writes it; see docs/metrics.md) and
/// `PREFIX_failures.csv` (most frequent first).
pub fn write_final(prefix: &Path, report: &RunReport) -> io::Result<()> {
    let [stats, _, failures] = paths(prefix);
    let mut w = csv::Writer::from_path(&stats).map_err(csv_err)?;
    w.write_record(STATS_HEADER).map_err(csv_err)?;
    for s in &report.steps {
        w.write_record(stats_row(s)).map_err(csv_err)?;
        if let Some(reply) = &s.reply_ms {
            w.write_record(stats_row(&reply_row(s, reply)))
                .map_err(csv_err)?;
        }
    }
    w.write_record(stats_row(&report.aggregated))
        .map_err(csv_err)?;
    w.flush()?;
    let mut w = csv::Writer::from_path(&failures).map_err(csv_err)?;
    w.write_record(FAILURES_HEADER).map_err(csv_err)?;
    for e in &report.errors {
        let error = format!("{}: {}", e.error_kind, e.message);
        w.write_record([e.kind.as_str(), &e.name, &error, &e.count.to_string()])
            .map_err(csv_err)?;
    }
    w.flush()?;
    write_tags(prefix, report)
}

/// Streams `PREFIX_stats_history.csv`: created (with its header) before the run starts, so a
/// bad path fails early; one block of rows per tick, flushed each time.
pub struct HistoryWriter<W: io::Write = BufWriter<File>> {
    out: csv::Writer<W>,
    last: Duration,
}

impl HistoryWriter {
    pub fn create(prefix: &Path) -> io::Result<Self> {
        let [_, history, _] = paths(prefix);
        HistoryWriter::to(BufWriter::new(File::create(history)?))
    }
}

impl HistoryWriter<Vec<u8>> {
    /// The same rows kept in memory (the web UI's `stats_history.csv` download).
    pub fn in_memory() -> Self {
        // Writing the header to a Vec cannot fail.
        HistoryWriter::to(Vec::new()).unwrap_or_else(|_| HistoryWriter {
            out: csv::Writer::from_writer(Vec::new()),
            last: Duration::ZERO,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.get_ref().len()
    }

    /// Nothing written yet beyond the header? (Never: the header is written at once.)
    pub fn is_empty(&self) -> bool {
        self.out.get_ref().is_empty()
    }

    /// The file so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.out.get_ref()).into_owned()
    }
}

impl<W: io::Write> HistoryWriter<W> {
    fn to(w: W) -> io::Result<Self> {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(HISTORY_HEADER).map_err(csv_err)?;
        out.flush()?;
        Ok(HistoryWriter {
            out,
            last: Duration::ZERO,
        })
    }

    /// Appends the rows of one tick: `delta` is the tick's snapshot, `total` the run so far.
    pub fn tick(
        &mut self,
        program: &Program,
        elapsed: Duration,
        users: u64,
        delta: &Snapshot,
        total: &Snapshot,
    ) -> io::Result<()> {
        let secs = elapsed.saturating_sub(self.last).as_secs_f64();
        self.last = elapsed;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let empty = StepStats::default();
        for (&id, tot) in total.steps.iter().filter(|(_, s)| s.count > 0) {
            let (kind, name) = program
                .stats
                .get(id as usize)
                .map_or(("?", ""), |e| (e.kind.as_str(), e.name.as_str()));
            let window = delta.steps.get(&id).unwrap_or(&empty);
            let row = history_row(&stamp, users, kind, name, window, tot, secs);
            self.out.write_record(row).map_err(csv_err)?;
        }
        let window = delta.aggregate(|id| counts_in_total(program, id));
        let tot = total.aggregate(|id| counts_in_total(program, id));
        let row = history_row(&stamp, users, "", AGGREGATED, &window, &tot, secs);
        self.out.write_record(row).map_err(csv_err)?;
        self.out.flush()
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn history_row(
    stamp: &str,
    users: u64,
    kind: &str,
    name: &str,
    window: &StepStats,
    total: &StepStats,
    secs: f64,
) -> Vec<String> {
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut row = vec![
        stamp.to_owned(),
        users.to_string(),
        kind.to_owned(),
        name.to_owned(),
        num(per_sec(window.count)),
        num(per_sec(window.failures)),
    ];
    match Percentiles::of(&window.latency) {
        Some(p) => row.extend(p.locust_columns().iter().map(|&v| num(v))),
        None => row.extend(std::iter::repeat_n(NA.to_owned(), LOCUST_QUANTILES.len())),
    }
    row.push(total.count.to_string());
    row.push(total.failures.to_string());
    let l = &total.latency;
    if l.is_empty() {
        row.extend(std::iter::repeat_n(NA.to_owned(), 4));
    } else {
        row.extend([
            num(ms(l.value_at_quantile(0.5))),
            num(l.mean() / 1000.0),
            num(ms(l.min())),
            num(ms(l.max())),
        ]);
    }
    row.push(match total.count {
        0 => "0".into(),
        n => num(total.bytes_in as f64 / n as f64),
    });
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_decimals_without_trailing_zeros() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(0.215), "0.215");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(1.23456), "1.235");
        assert_eq!(num(f64::NAN), "N/A");
    }

    #[test]
    fn paths_append_locust_suffixes_to_the_prefix() {
        let [a, b, c] = paths(Path::new("out/run"));
        assert_eq!(a, Path::new("out/run_stats.csv"));
        assert_eq!(b, Path::new("out/run_stats_history.csv"));
        assert_eq!(c, Path::new("out/run_failures.csv"));
    }

    #[test]
    fn headers_have_the_expected_lengths() {
        assert_eq!(STATS_HEADER.len(), 11 + LOCUST_QUANTILES.len());
        assert_eq!(HISTORY_HEADER.len(), 6 + LOCUST_QUANTILES.len() + 7);
    }
}
