//! Plain-text rendering of metrics for the terminal: the end-of-run summary (per-step table,
//! failures, checks) and the one-line periodic status printed when stdout is not a TTY. This is a
//! sink at the end of the pipeline: it reads a [`Snapshot`] (or a [`HistoryPoint`]) and the
//! program's step names, and never touches live state.
//!
//! Invariants: output is deterministic for given inputs (rows in the order of `steps`, failures
//! by count then key), uses no colour and no terminal width detection, and has no trailing
//! whitespace, so it can be snapshot-tested and pasted into CI logs. Latencies are shown in ms
//! with three significant digits, the precision the histograms keep.

use super::event::StepId;
use super::snapshot::{HistoryPoint, Snapshot, StepStats};
use std::collections::BTreeSet;
use std::time::Duration;

/// How a step is labelled in tables (from the compiled program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    pub id: StepId,
    pub scenario: String,
    /// "GET", "POST", "WS", "group", "send", "receive", …
    pub kind: String,
    /// Stats name, e.g. "/api/racing/track/simple".
    pub name: String,
}

impl StepInfo {
    /// Whether the step's events count in the "Aggregated" row. Groups time a transaction made
    /// of other steps; adding them would count those requests twice.
    pub fn counts_in_total(&self) -> bool {
        kind_counts_in_total(&self.kind)
    }
}

fn kind_counts_in_total(kind: &str) -> bool {
    kind != "group"
}

/// Longest name shown in the tables (in chars); longer ones are cut with "...".
const MAX_NAME: usize = 60;
const QUANTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// The end-of-run summary. `elapsed` is the measured run time (for req/s).
pub fn render_summary(steps: &[StepInfo], total: &Snapshot, elapsed: Duration) -> String {
    let rows = rows(steps, total);
    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    out.push_str(&format!(
        "Requests over {} (latency in ms, avg size in bytes)\n",
        fmt_duration(elapsed)
    ));
    if rows.is_empty() {
        out.push_str("No requests were recorded.\n");
    } else {
        requests_table(&rows, secs).render(&mut out);
        if rows.iter().any(|r| !r.stats.corrected.is_empty()) {
            out.push('\n');
            out.push_str("Latency from intended start, coordinated-omission corrected (ms)\n");
            corrected_table(&rows).render(&mut out);
        }
    }
    if !total.errors.is_empty() {
        out.push('\n');
        out.push_str("Failures\n");
        failures_table(steps, total).render(&mut out);
    }
    let footer = footer_lines(total);
    if !footer.is_empty() {
        out.push('\n');
        out.push_str(&footer);
    }
    out
}

/// One status line for non-TTY output, e.g.
/// `[00:01:05/00:05:00] users 50 | 123.4 req/s | 7800 reqs | 12 fails (0.15%) | p95 45.2 ms`.
/// `point` is the latest tick; `planned` the run's duration if known.
pub fn render_progress_line(
    point: &HistoryPoint,
    elapsed: Duration,
    planned: Option<Duration>,
) -> String {
    let clock = match planned {
        Some(p) => format!("{}/{}", fmt_clock(elapsed), fmt_clock(p)),
        None => fmt_clock(elapsed),
    };
    let p95 = point
        .p95_us
        .map_or_else(|| "-".to_owned(), |us| format!("{} ms", fmt_ms(us)));
    format!(
        "[{clock}] users {} | {:.1} req/s | {} reqs | {} fails ({}) | p95 {p95}",
        point.users,
        point.rate,
        point.total_requests,
        point.total_failures,
        fmt_pct(point.total_failures, point.total_requests),
    )
}

struct Row<'a> {
    scenario: &'a str,
    kind: &'a str,
    name: String,
    stats: &'a StepStats,
}

/// Rendered rows: steps in the order given, then steps the snapshot has but `steps` lacks.
fn rows<'a>(steps: &'a [StepInfo], total: &'a Snapshot) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for info in steps {
        if let Some(stats) = total.steps.get(&info.id).filter(|s| s.count > 0) {
            if seen.insert(info.id) {
                rows.push(Row {
                    scenario: &info.scenario,
                    kind: &info.kind,
                    name: info.name.clone(),
                    stats,
                });
            }
        }
    }
    for (id, stats) in &total.steps {
        if stats.count > 0 && !seen.contains(id) {
            rows.push(Row {
                scenario: "",
                kind: "?",
                name: format!("step #{id}"),
                stats,
            });
        }
    }
    rows
}

fn requests_table(rows: &[Row<'_>], secs: f64) -> Table {
    let scenarios: BTreeSet<&str> = rows.iter().map(|r| r.scenario).collect();
    let with_scenario = scenarios.len() > 1;
    let mut headers = Vec::new();
    if with_scenario {
        headers.push(("Scenario", Align::Left));
    }
    headers.extend([
        ("Type", Align::Left),
        ("Name", Align::Left),
        ("# reqs", Align::Right),
        ("# fails", Align::Right),
        ("req/s", Align::Right),
        ("min", Align::Right),
    ]);
    headers.extend(QUANTILES.iter().map(|(h, _)| (*h, Align::Right)));
    headers.extend([("max", Align::Right), ("avg size", Align::Right)]);
    let mut table = Table::new(headers);

    let mut aggregated = StepStats::default();
    for row in rows {
        if kind_counts_in_total(row.kind) {
            aggregated.merge(row.stats);
        }
        let mut cells = Vec::new();
        if with_scenario {
            cells.push(row.scenario.to_owned());
        }
        cells.extend([row.kind.to_owned(), cut(&row.name)]);
        cells.extend(stat_cells(row.stats, secs));
        table.row(cells);
    }
    table.rule();
    let mut cells = Vec::new();
    if with_scenario {
        cells.push(String::new());
    }
    cells.extend([String::new(), "Aggregated".to_owned()]);
    cells.extend(stat_cells(&aggregated, secs));
    table.row(cells);
    table
}

fn stat_cells(stats: &StepStats, secs: f64) -> Vec<String> {
    let l = &stats.latency;
    let mut cells = vec![
        stats.count.to_string(),
        format!(
            "{} ({})",
            stats.failures,
            fmt_pct(stats.failures, stats.count)
        ),
        if secs > 0.0 {
            format!("{:.2}", stats.count as f64 / secs)
        } else {
            "-".to_owned()
        },
        ms_or_dash(l.len(), l.min()),
    ];
    cells.extend(
        QUANTILES
            .iter()
            .map(|(_, q)| ms_or_dash(l.len(), l.value_at_quantile(*q))),
    );
    cells.push(ms_or_dash(l.len(), l.max()));
    cells.push(match stats.count {
        0 => "-".to_owned(),
        n => (stats.bytes_in / n).to_string(),
    });
    cells
}

fn corrected_table(rows: &[Row<'_>]) -> Table {
    let mut headers = vec![
        ("Type", Align::Left),
        ("Name", Align::Left),
        ("# reqs", Align::Right),
    ];
    headers.extend(QUANTILES.iter().map(|(h, _)| (*h, Align::Right)));
    headers.push(("max", Align::Right));
    let mut table = Table::new(headers);
    for row in rows.iter().filter(|r| !r.stats.corrected.is_empty()) {
        let c = &row.stats.corrected;
        let mut cells = vec![row.kind.to_owned(), cut(&row.name), c.len().to_string()];
        cells.extend(
            QUANTILES
                .iter()
                .map(|(_, q)| fmt_ms(c.value_at_quantile(*q))),
        );
        cells.push(fmt_ms(c.max()));
        table.row(cells);
    }
    table
}

fn failures_table(steps: &[StepInfo], total: &Snapshot) -> Table {
    let mut table = Table::new(vec![
        ("# occurrences", Align::Right),
        ("Step", Align::Left),
        ("Kind", Align::Left),
        ("Message", Align::Left),
    ]);
    let mut errors: Vec<_> = total.errors.iter().collect();
    // Most frequent first; ties in key order, so the output is deterministic.
    errors.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (key, count) in errors {
        let step = steps.iter().find(|s| s.id == key.step).map_or_else(
            || format!("step #{}", key.step),
            |s| format!("{} {}", s.kind, s.name),
        );
        table.row(vec![
            count.to_string(),
            cut(&step),
            key.kind.as_str().to_owned(),
            key.message.clone(),
        ]);
    }
    table
}

fn footer_lines(total: &Snapshot) -> String {
    let mut out = String::new();
    let (passed, failed) = total.checks();
    if passed + failed > 0 {
        out.push_str(&format!(
            "Checks: {passed} passed, {failed} failed ({})\n",
            fmt_pct(failed, passed + failed)
        ));
    }
    let it = &total.iterations;
    if !it.is_zero() {
        out.push_str(&format!(
            "Iterations: {} started, {} completed, {} failed",
            it.started, it.completed, it.failed
        ));
        if it.dropped > 0 {
            out.push_str(&format!(", {} dropped", it.dropped));
        }
        out.push('\n');
    }
    let late = &total.lateness;
    if !late.is_empty() {
        out.push_str(&format!(
            "Generator lateness (ms): p50 {}, p99 {}, max {}\n",
            fmt_ms(late.value_at_quantile(0.5)),
            fmt_ms(late.value_at_quantile(0.99)),
            fmt_ms(late.max())
        ));
    }
    out
}

/// µs as ms with three significant digits (the histogram's precision); the thresholds compare
/// the value as it would round, so 99.97 ms prints "100", not "100.0".
fn fmt_ms(us: u64) -> String {
    let ms = us as f64 / 1_000.0;
    if ms < 0.9995 {
        format!("{ms:.3}")
    } else if ms < 9.995 {
        format!("{ms:.2}")
    } else if ms < 99.95 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

fn ms_or_dash(len: u64, us: u64) -> String {
    if len == 0 { "-".to_owned() } else { fmt_ms(us) }
}

fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0.00%".to_owned()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn fmt_clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3_600, s / 60 % 60, s % 60)
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = d.as_secs();
        if whole < 3_600 {
            format!("{}m {:02}s", whole / 60, whole % 60)
        } else {
            format!(
                "{}h {:02}m {:02}s",
                whole / 3_600,
                whole / 60 % 60,
                whole % 60
            )
        }
    }
}

fn cut(name: &str) -> String {
    if name.chars().count() <= MAX_NAME {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(MAX_NAME - 3).collect();
        s.push_str("...");
        s
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

enum Line {
    Cells(Vec<String>),
    Rule,
}

/// Minimal fixed-width table: column widths fit the widest cell, two spaces between columns.
struct Table {
    headers: Vec<(&'static str, Align)>,
    lines: Vec<Line>,
}

impl Table {
    fn new(headers: Vec<(&'static str, Align)>) -> Self {
        Table {
            headers,
            lines: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.lines.push(Line::Cells(cells));
    }

    fn rule(&mut self) {
        self.lines.push(Line::Rule);
    }

    fn render(&self, out: &mut String) {
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for line in &self.lines {
            if let Line::Cells(cells) = line {
                for (w, c) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let aligns: Vec<Align> = self.headers.iter().map(|(_, a)| *a).collect();
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| (*h).to_owned()).collect();
        self.write_cells(out, &headers, &widths, &aligns);
        self.write_rule(out, &widths);
        for line in &self.lines {
            match line {
                Line::Cells(cells) => self.write_cells(out, cells, &widths, &aligns),
                Line::Rule => self.write_rule(out, &widths),
            }
        }
    }

    fn write_cells(&self, out: &mut String, cells: &[String], widths: &[usize], aligns: &[Align]) {
        let mut line = String::new();
        for (i, ((cell, &w), align)) in cells.iter().zip(widths).zip(aligns).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    fn write_rule(&self, out: &mut String, widths: &[usize]) {
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::event::{Counter, ErrorKind, Event};

    fn info(id: StepId, scenario: &str, kind: &str, name: &str) -> StepInfo {
        StepInfo {
            id,
            scenario: scenario.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn program() -> Vec<StepInfo> {
        vec![
            info(0, "http", "GET", "/health"),
            info(1, "http", "GET", "/api/racing/track/simple"),
            info(2, "http", "POST", "/api/racing/track/generate"),
            info(3, "websocket", "WS", "/api/oscilloscope/stream"),
            info(4, "websocket", "receive", "frame"),
            info(5, "websocket", "group", "oscilloscope session"),
        ]
    }

    fn run_snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        for i in 0..1_000u64 {
            s.record(Event {
                bytes_in: 15,
                checks_passed: 1,
                ..Event::new(0, 800 + i * 3).with_status(200)
            });
        }
        for i in 0..400u64 {
            let mut ev = Event {
                bytes_in: 2_048,
                bytes_out: 0,
                checks_passed: u32::from(i % 40 != 0),
                checks_failed: u32::from(i % 40 == 0),
                ..Event::new(1, 12_000 + i * 250).with_status(200)
            };
            if i % 40 == 0 {
                ev = ev
                    .with_status(503)
                    .with_error(ErrorKind::Status, "expected status 200, got 503");
            }
            s.record(ev);
        }
        for i in 0..50u64 {
            let mut ev = Event::new(2, 150_000 + i * 10_000).with_status(201);
            if i == 49 {
                ev = Event::new(2, 5_000_000).with_error(ErrorKind::Timeout, "timed out after 5s");
            }
            s.record(ev);
        }
        for i in 0..20u64 {
            s.record(Event::new(3, 3_000 + i * 100).with_status(101));
            s.record(Event::new(4, 100_000 + i * 1_000));
            s.record(Event::new(5, 2_500_000 + i * 10_000));
        }
        s.record(Event::new(3, 1_000).with_error(ErrorKind::WsHandshake, "connection refused"));
        s.count(Counter::IterationStarted, 1_491);
        s.count(Counter::IterationCompleted, 1_488);
        s.count(Counter::IterationFailed, 3);
        s.set_users(50);
        s
    }

    #[test]
    fn summary_renders_steps_aggregated_failures_and_checks() {
        let text = render_summary(&program(), &run_snapshot(), Duration::from_secs(65));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn summary_of_an_open_model_run_shows_corrected_latency_and_lateness() {
        let mut s = Snapshot::default();
        for i in 0..100u64 {
            s.record(Event {
                corrected_us: Some(5_000 + i * 1_000),
                ..Event::new(0, 2_000 + i * 10)
            });
            s.record_lateness(i * 20);
        }
        s.count(Counter::IterationDropped, 4);
        s.count(Counter::IterationStarted, 100);
        s.count(Counter::IterationCompleted, 100);
        let steps = [info(0, "http", "GET", "/health")];
        insta::assert_snapshot!(render_summary(&steps, &s, Duration::from_millis(10_500)));
    }

    #[test]
    fn summary_of_an_empty_run_says_so() {
        let text = render_summary(&[], &Snapshot::default(), Duration::from_secs(3));
        assert_eq!(
            text,
            "Requests over 3.0 s (latency in ms, avg size in bytes)\nNo requests were recorded.\n"
        );
    }

    #[test]
    fn summary_lines_have_no_trailing_whitespace() {
        let text = render_summary(&program(), &run_snapshot(), Duration::from_secs(65));
        for line in text.lines() {
            assert_eq!(line, line.trim_end());
        }
    }

    #[test]
    fn aggregated_row_excludes_groups() {
        let text = render_summary(&program(), &run_snapshot(), Duration::from_secs(10));
        let aggregated = text
            .lines()
            .find(|l| l.contains("Aggregated"))
            .expect("aggregated row");
        // 1000 + 400 + 50 + 21 (WS) + 20 (receive); the 20 group events are not counted.
        assert!(aggregated.contains(" 1491 "), "{aggregated}");
    }

    #[test]
    fn unknown_steps_are_still_listed() {
        let mut s = Snapshot::default();
        s.record(Event::new(9, 1_000));
        let text = render_summary(&[], &s, Duration::from_secs(1));
        assert!(text.contains("step #9"), "{text}");
    }

    #[test]
    fn long_names_are_cut_to_keep_the_table_narrow() {
        let long = "/api/".to_owned() + &"x".repeat(100);
        assert_eq!(cut(&long).chars().count(), MAX_NAME);
        assert!(cut(&long).ends_with("..."));
    }

    #[test]
    fn milliseconds_keep_three_significant_digits() {
        assert_eq!(fmt_ms(0), "0.000");
        assert_eq!(fmt_ms(250), "0.250");
        assert_eq!(fmt_ms(1_234), "1.23");
        assert_eq!(fmt_ms(12_345), "12.3");
        assert_eq!(fmt_ms(123_456), "123");
        assert_eq!(fmt_ms(99_968), "100");
        assert_eq!(fmt_ms(9_999), "10.0");
        assert_eq!(fmt_ms(999), "0.999");
        assert_eq!(fmt_ms(3_600_000_000), "3600000");
    }

    #[test]
    fn progress_line_shows_users_rate_failures_and_p95() {
        let point = HistoryPoint {
            t_secs: 65.0,
            users: 50,
            requests: 120,
            failures: 1,
            rate: 123.44,
            failure_rate: 1.0,
            total_requests: 7_800,
            total_failures: 12,
            p50_us: Some(20_000),
            p95_us: Some(45_210),
            p99_us: Some(80_000),
        };
        assert_eq!(
            render_progress_line(
                &point,
                Duration::from_secs(65),
                Some(Duration::from_secs(300))
            ),
            "[00:01:05/00:05:00] users 50 | 123.4 req/s | 7800 reqs | 12 fails (0.15%) | p95 45.2 ms"
        );
        let idle = HistoryPoint {
            p95_us: None,
            total_requests: 0,
            total_failures: 0,
            ..point
        };
        assert_eq!(
            render_progress_line(&idle, Duration::from_secs(3_725), None),
            "[01:02:05] users 50 | 123.4 req/s | 0 reqs | 0 fails (0.00%) | p95 -"
        );
    }
}
