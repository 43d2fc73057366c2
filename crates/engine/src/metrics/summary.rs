//! Plain-text rendering of metrics for the terminal: the end-of-run summary (per-step table,
//! failures, checks) and the one-line periodic status printed when stdout is not a TTY. This is a
//! sink at the end of the pipeline: it reads a [`Snapshot`] (or a [`HistoryPoint`]) and the
//! program's step names, and never touches live state.
//!
//! Invariants: output is deterministic for given inputs (rows in the order of `steps`, failures
//! by count then key), uses no colour, and has no trailing whitespace, so it can be
//! snapshot-tested and pasted into CI logs. The width is an input ([`SummaryOptions::width`]):
//! below the full table's width, the least-read columns are dropped in a fixed order
//! ([`DROP_ORDER`]) and then names are cut, and the summary says which columns it hid (the
//! files keep them all). [`terminal_width`] is the only place that looks at the terminal.
//! HTTP requests and WebSocket messages have separate total rows (docs/metrics.md); groups are
//! in neither. Latencies are shown in ms
//! with three significant digits, the precision the histograms keep.

use super::event::{Protocol, StepId};
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
    /// Whether the step's events count in a protocol total. Groups time a transaction made
    /// of other steps; adding them would count those requests twice. `set`/`if`/`start`
    /// rows send nothing (their failures are counted there and in the iterations).
    pub fn counts_in_total(&self) -> bool {
        matches!(Protocol::of_kind(&self.kind), Protocol::Http | Protocol::Ws)
    }
}

/// What the summary states besides the numbers, and how wide it may be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummaryOptions {
    /// Columns available (`None`: no limit, every column shown).
    pub width: Option<usize>,
    /// The target base URL.
    pub host: Option<String>,
    /// The load profile's name.
    pub profile: Option<String>,
    /// When the statistics were reset, seconds since the start: counts and req/s cover the
    /// time after it.
    pub reset_at: Option<f64>,
    /// When the load phase ended, seconds since the start; the rest of the run is the drain.
    pub load_secs: Option<f64>,
}

/// Columns dropped, in this order, until the requests table fits the width.
pub const DROP_ORDER: [&str; 5] = ["p99.9", "min", "p90", "avg size", "Scenario"];

/// Dropped, in this order, only when cutting names to [`MIN_NAME`] was not enough.
const LAST_RESORT: [&str; 3] = ["req/s", "p99", "max"];

/// Narrowest the name column gets when cutting names to fit.
const MIN_NAME: usize = 16;

/// The width of the terminal stdout writes to, or of `$COLUMNS` when stdout is not a terminal;
/// `None` when neither is known (a file or a pipe: every column is kept).
pub fn terminal_width() -> Option<usize> {
    let term = console::Term::stdout();
    if term.is_term() {
        if let Some((_, cols)) = term.size_checked() {
            return Some(usize::from(cols));
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
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

/// The end-of-run summary, every column shown. `elapsed` is the measured run time (for req/s).
pub fn render_summary(steps: &[StepInfo], total: &Snapshot, elapsed: Duration) -> String {
    render_summary_with(steps, total, elapsed, &SummaryOptions::default())
}

/// The end-of-run summary within `opts.width` columns, headed by the target and profile.
pub fn render_summary_with(
    steps: &[StepInfo],
    total: &Snapshot,
    elapsed: Duration,
    opts: &SummaryOptions,
) -> String {
    let rows = rows(steps, total);
    let mut out = String::new();
    let whole = elapsed.as_secs_f64();
    let secs = (whole - opts.reset_at.unwrap_or(0.0)).max(0.0);
    let mut about = Vec::new();
    if let Some(h) = &opts.host {
        about.push(format!("Target {h}"));
    }
    if let Some(p) = &opts.profile {
        about.push(format!("profile {p}"));
    }
    if !about.is_empty() {
        out.push_str(&about.join(", "));
        out.push('\n');
    }
    let window = Duration::try_from_secs_f64(secs).unwrap_or_default();
    match (opts.reset_at, opts.load_secs) {
        (Some(at), _) => out.push_str(&format!(
            "Requests over {} since the statistics reset at {}; req/s over those {} \
             (latency in ms, avg size in bytes)\n",
            fmt_duration(window),
            fmt_duration(Duration::try_from_secs_f64(at).unwrap_or_default()),
            fmt_duration(window),
        )),
        (None, Some(load)) if whole - load >= 0.05 => out.push_str(&format!(
            "Requests over {}: {} of load + {} of drain; req/s over the {} \
             (latency in ms, avg size in bytes)\n",
            fmt_duration(elapsed),
            fmt_duration(Duration::try_from_secs_f64(load).unwrap_or_default()),
            fmt_duration(Duration::try_from_secs_f64(whole - load).unwrap_or_default()),
            fmt_duration(elapsed),
        )),
        _ => out.push_str(&format!(
            "Requests over {} (latency in ms, avg size in bytes)\n",
            fmt_duration(elapsed)
        )),
    }
    if rows.is_empty() {
        out.push_str("No requests were recorded.\n");
    } else {
        let mut table = requests_table(&rows, secs);
        let hidden = table.fit(opts.width);
        table.render(&mut out);
        if !hidden.is_empty() {
            let width = opts.width.unwrap_or_default();
            let long = format!(
                "(hidden to fit {width} columns: {}; the files have every column)",
                hidden.join(", ")
            );
            let note = if long.chars().count() <= width {
                long
            } else {
                format!("(hidden: {})", hidden.join(", "))
            };
            out.push_str(&note);
            out.push('\n');
        }
        if rows.iter().any(|r| !r.stats.corrected.is_empty()) {
            out.push('\n');
            out.push_str("Latency from intended start, coordinated-omission corrected (ms)\n");
            let mut table = corrected_table(&rows);
            table.fit(opts.width);
            table.render(&mut out);
        }
        if let Some(line) = phases_line(&rows) {
            out.push('\n');
            out.push_str(&line);
        }
    }
    if !total.errors.is_empty() {
        out.push('\n');
        out.push_str("Failures\n");
        let mut table = failures_table(steps, total);
        table.fit(opts.width);
        table.render(&mut out);
    }
    let footer = footer_lines(total);
    if !footer.is_empty() {
        out.push('\n');
        out.push_str(&footer);
    }
    out
}

/// The "by scenario, group and tag" table printed after the summary: one row per
/// `(by, name, merged stats)` (`("tag", "method=checkout", …)`); empty when there are none.
pub fn render_breakdown(
    rows: &[(String, String, StepStats)],
    elapsed: Duration,
    opts: &SummaryOptions,
) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let secs = (elapsed.as_secs_f64() - opts.reset_at.unwrap_or(0.0)).max(0.0);
    let mut table = Table::stats(vec![("By", Align::Left)]);
    let mut last = "";
    for (by, name, stats) in rows {
        if !last.is_empty() && last != by {
            table.rule();
        }
        last = by;
        let mut cells = vec![by.clone(), cut(name)];
        cells.extend(stat_cells(stats, secs));
        table.row(cells);
    }
    let mut out =
        String::from("\nBy scenario, group and tag (HTTP requests and WebSocket messages)\n");
    table.fit(opts.width);
    table.render(&mut out);
    out
}

/// One status line for non-TTY output, e.g.
/// `[00:01:05/00:05:00] users 50 | last 10s: 123.4 req/s, p95 45.2 ms | total 7800 reqs, 12 fails (0.15%)`.
/// The rate and p95 cover the rolling window the point states (the last 10 s, shorter at the
/// start or after a reset); the counts cover the statistics so far. `point` is the latest tick;
/// `planned` the run's duration if known.
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
        .window_p95_us
        .map_or_else(|| "-".to_owned(), |us| format!("{} ms", fmt_ms(us)));
    format!(
        "[{clock}] users {} | last {:.0}s: {:.1} req/s, p95 {p95} | total {} reqs, {} fails ({})",
        point.users,
        point.window_secs,
        point.window_rate,
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
    let mut lead = Vec::new();
    if with_scenario {
        lead.push(("Scenario", Align::Left));
    }
    lead.push(("Type", Align::Left));
    let mut table = Table::stats(lead);

    let mut http = StepStats::default();
    let mut ws = StepStats::default();
    for row in rows {
        match Protocol::of_kind(row.kind) {
            Protocol::Http => http.merge(row.stats),
            Protocol::Ws => ws.merge(row.stats),
            Protocol::Group | Protocol::Control => {}
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
    for (name, stats) in [
        ("Aggregated HTTP requests", &http),
        ("Aggregated WebSocket messages", &ws),
    ] {
        if stats.count == 0 {
            continue;
        }
        let mut cells = Vec::new();
        if with_scenario {
            cells.push(String::new());
        }
        cells.extend([String::new(), name.to_owned()]);
        cells.extend(stat_cells(stats, secs));
        table.row(cells);
    }
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
    cells.push(if l.is_empty() {
        "-".to_owned()
    } else {
        fmt_ms(l.mean().round() as u64)
    });
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
/// Where the HTTP requests' time went and their bodies' bytes, over every row with phases
/// (docs/metrics.md, "phases" and "bytes"); `None` when no request recorded phases.
fn phases_line(rows: &[Row]) -> Option<String> {
    let mut phases = super::snapshot::PhaseStats::default();
    let (mut wire, mut decoded) = (0u64, 0u64);
    for r in rows.iter().filter(|r| !r.stats.phases.wait.is_empty()) {
        phases.merge(&r.stats.phases);
        wire = wire.saturating_add(r.stats.bytes_in);
        decoded = decoded.saturating_add(r.stats.bytes_decoded);
    }
    if phases.wait.is_empty() {
        return None;
    }
    let avg = |l: &super::Latency| {
        if l.is_empty() {
            "-".to_owned()
        } else {
            fmt_ms(l.mean().round() as u64)
        }
    };
    Some(format!(
        "HTTP phases, avg ms: dns {} and connect {} per new connection ({} opened), wait {}, receive {}\n\
         HTTP response bodies: {wire} bytes on the wire, {decoded} decoded\n",
        avg(&phases.dns),
        avg(&phases.connect),
        phases.connect.len(),
        avg(&phases.wait),
        avg(&phases.receive),
    ))
}

fn fmt_ms(us: u64) -> String {
    format_ms(us as f64 / 1_000.0)
}

/// Milliseconds with three significant digits (`0.250`, `1.23`, `12.3`, `123`), as the
/// terminal summary and the HTML report show them.
pub fn format_ms(ms: f64) -> String {
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
    cut_to(name, MAX_NAME)
}

/// `name` in at most `max` chars (at least 4), cut with "..." when longer.
fn cut_to(name: &str, max: usize) -> String {
    let max = max.max(4);
    if name.chars().count() <= max {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(max - 3).collect();
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
    /// A table of statistics rows: the `lead` columns, then the name and the figures every
    /// such table shows (counts, rate, latency quantiles, size).
    fn stats(mut lead: Vec<(&'static str, Align)>) -> Self {
        lead.extend([
            ("Name", Align::Left),
            ("# reqs", Align::Right),
            ("# fails", Align::Right),
            ("req/s", Align::Right),
            ("min", Align::Right),
        ]);
        lead.extend(QUANTILES.iter().map(|(h, _)| (*h, Align::Right)));
        lead.extend([
            ("max", Align::Right),
            ("avg", Align::Right),
            ("avg size", Align::Right),
        ]);
        Table::new(lead)
    }

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

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for line in &self.lines {
            if let Line::Cells(cells) = line {
                for (w, c) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        widths
    }

    /// Rendered width in columns (two spaces between columns).
    fn width(&self) -> usize {
        let w = self.widths();
        w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1)
    }

    fn drop_column(&mut self, name: &str) -> bool {
        let Some(i) = self.headers.iter().position(|(h, _)| *h == name) else {
            return false;
        };
        self.headers.remove(i);
        for line in &mut self.lines {
            if let Line::Cells(cells) = line {
                cells.remove(i);
            }
        }
        true
    }

    /// Makes the table fit `width` columns: drops columns in [`DROP_ORDER`], then cuts the
    /// longest left-aligned cells (names, messages). Returns the dropped columns' names.
    fn fit(&mut self, width: Option<usize>) -> Vec<&'static str> {
        let Some(width) = width else {
            return Vec::new();
        };
        let mut hidden = Vec::new();
        for name in DROP_ORDER {
            if self.width() <= width {
                break;
            }
            if self.drop_column(name) {
                hidden.push(name);
            }
        }
        // Then cut the widest left-aligned column, one char at a time, down to MIN_NAME.
        self.cut_to_fit(width);
        for name in LAST_RESORT {
            if self.width() <= width {
                break;
            }
            if self.drop_column(name) {
                hidden.push(name);
            }
        }
        hidden
    }

    fn cut_to_fit(&mut self, width: usize) {
        while self.width() > width {
            let widths = self.widths();
            let widest = self
                .headers
                .iter()
                .enumerate()
                .filter(|(i, (_, a))| matches!(a, Align::Left) && widths[*i] > MIN_NAME)
                .max_by_key(|(i, _)| widths[*i])
                .map(|(i, _)| i);
            let Some(i) = widest else { break };
            let target = widths[i] - 1;
            for line in &mut self.lines {
                if let Line::Cells(cells) = line {
                    if cells[i].chars().count() > target {
                        cells[i] = cut_to(&cells[i], target);
                    }
                }
            }
        }
    }

    fn render(&self, out: &mut String) {
        let widths = self.widths();
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
    fn summary_shows_http_phases_and_wire_and_decoded_bytes_when_recorded() {
        let mut s = Snapshot::default();
        for (i, connect) in [Some(2_000), None, None, None].into_iter().enumerate() {
            s.record(Event {
                bytes_in: 100,
                bytes_decoded: 400,
                phases: Some(crate::metrics::Phases {
                    dns_us: connect.map(|_| 1_000),
                    connect_us: connect,
                    wait_us: 10_000 + i as u64 * 1_000,
                    receive_us: 500,
                }),
                ..Event::new(0, 13_000).with_status(200)
            });
        }
        let text = render_summary(&program(), &s, Duration::from_secs(3));
        assert!(
            text.contains("HTTP phases, avg ms: dns 1.00 and connect 2.00 per new connection (1 opened), wait 11.5, receive 0.500\n"),
            "{text}"
        );
        assert!(
            text.contains("HTTP response bodies: 400 bytes on the wire, 1600 decoded\n"),
            "{text}"
        );
        // Without phases (the other tests' events), no such lines.
        let plain = render_summary(&program(), &run_snapshot(), Duration::from_secs(65));
        assert!(!plain.contains("HTTP phases"), "{plain}");
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
    fn http_and_websocket_have_separate_totals_without_groups() {
        let text = render_summary(&program(), &run_snapshot(), Duration::from_secs(10));
        let total = |name: &str| {
            text.lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("no {name} row:\n{text}"))
                .to_owned()
        };
        // 1000 + 400 + 50 HTTP requests, 11 of them failed.
        let http = total("Aggregated HTTP requests");
        assert!(
            http.contains(" 1450 ") && http.contains("11 (0.76%)"),
            "{http}"
        );
        // 21 connects + 20 frames; the 20 group events are in neither total.
        let ws = total("Aggregated WebSocket messages");
        assert!(ws.contains(" 41 ") && ws.contains("1 (2.44%)"), "{ws}");
        // No row merges both protocols (1491 events).
        assert!(
            !text
                .lines()
                .any(|l| l.contains("Aggregated") && l.contains(" 1491 ")),
            "{text}"
        );
    }

    #[test]
    fn the_header_states_the_load_window_and_the_drain() {
        let steps = [info(0, "http", "GET", "/health")];
        let mut s = Snapshot::default();
        for _ in 0..341 {
            s.record(Event::new(0, 1_000));
        }
        let opts = SummaryOptions {
            load_secs: Some(30.0),
            ..SummaryOptions::default()
        };
        let text = render_summary_with(&steps, &s, Duration::from_millis(34_100), &opts);
        assert!(
            text.starts_with(
                "Requests over 34.1 s: 30.0 s of load + 4.1 s of drain; req/s over the 34.1 s"
            ),
            "{text}"
        );
        assert!(text.contains(" 10.00 "), "341 / 34.1 s: {text}");
    }

    #[test]
    fn after_a_reset_rates_cover_the_time_since_it() {
        let steps = [info(0, "http", "GET", "/health")];
        let mut s = Snapshot::default();
        for _ in 0..1_033 {
            s.record(Event::new(0, 1_000));
        }
        let opts = SummaryOptions {
            reset_at: Some(81.5),
            ..SummaryOptions::default()
        };
        // 1033 requests in the 18.5 s after a reset at 81.5 s of a 100 s run: 55.84/s.
        let text = render_summary_with(&steps, &s, Duration::from_secs(100), &opts);
        assert!(
            text.starts_with("Requests over 18.5 s since the statistics reset at 1m 21s"),
            "{text}"
        );
        assert!(text.contains(" 55.84 "), "{text}");
    }

    #[test]
    fn a_plan_without_websocket_has_no_websocket_total() {
        let steps = [info(0, "http", "GET", "/health")];
        let mut s = Snapshot::default();
        s.record(Event::new(0, 1_000));
        let text = render_summary(&steps, &s, Duration::from_secs(1));
        assert!(text.contains("Aggregated HTTP requests"), "{text}");
        assert!(!text.contains("WebSocket"), "{text}");
    }

    #[test]
    fn summary_fits_a_100_column_terminal_and_says_what_it_hid() {
        let opts = SummaryOptions {
            width: Some(100),
            host: Some("http://127.0.0.1:8000".into()),
            profile: Some("smoke".into()),
            ..SummaryOptions::default()
        };
        let full = render_summary(&program(), &run_snapshot(), Duration::from_secs(65));
        assert!(
            full.lines().any(|l| l.chars().count() > 100),
            "the full table is wider than 100 columns:\n{full}"
        );
        let text = render_summary_with(&program(), &run_snapshot(), Duration::from_secs(65), &opts);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        assert!(
            text.starts_with("Target http://127.0.0.1:8000, profile smoke\n"),
            "{text}"
        );
        let header = text.lines().nth(2).expect("table header");
        for kept in [
            "Name", "# reqs", "# fails", "req/s", "p50", "p95", "p99", "max", "avg",
        ] {
            assert!(
                header.contains(&format!("  {kept}")) || header.starts_with(kept),
                "{kept}: {header}"
            );
        }
        assert!(text.contains("(hidden to fit 100 columns: p99.9"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_long_name_is_cut_to_fit_a_narrow_terminal() {
        let steps = [info(0, "s", "GET", &("/api/".to_owned() + &"x".repeat(55)))];
        let mut s = Snapshot::default();
        s.record(Event::new(0, 1_000));
        let opts = SummaryOptions {
            width: Some(80),
            ..SummaryOptions::default()
        };
        let text = render_summary_with(&steps, &s, Duration::from_secs(1), &opts);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
        assert!(text.contains("/api/xx"), "{text}");
    }

    #[test]
    fn the_average_column_is_the_mean_latency() {
        let steps = [info(0, "s", "GET", "/a")];
        let mut s = Snapshot::default();
        for us in [1_000, 2_000, 6_000] {
            s.record(Event::new(0, us));
        }
        let text = render_summary(&steps, &s, Duration::from_secs(1));
        let header: Vec<&str> = text
            .lines()
            .nth(1)
            .expect("header")
            .split_whitespace()
            .collect();
        let row = text.lines().nth(3).expect("row");
        let avg_col = header.iter().position(|h| *h == "avg").expect("avg column");
        // "# reqs"/"# fails"/"avg size" are two words in the header; cells of row 1 are
        // `GET /a 3 0 (0.00%) …`: compare from the right instead.
        let from_right = header.len() - avg_col;
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - from_right + 1], "3.00", "{text}");
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
    fn progress_line_shows_the_rolling_window_and_the_totals() {
        let point = HistoryPoint {
            t_secs: 65.0,
            users: 50,
            requests: 0,
            failures: 0,
            rate: 0.0,
            failure_rate: 0.0,
            total_requests: 7_800,
            total_failures: 12,
            p50_us: None,
            p95_us: None,
            p99_us: None,
            since_secs: 0.0,
            window_secs: 10.0,
            window_rate: 123.44,
            window_failure_rate: 1.0,
            window_p95_us: Some(45_210),
            steps: Vec::new(),
            span_secs: 1.0,
        };
        // The last tick alone had nothing: the line shows the window, labelled.
        assert_eq!(
            render_progress_line(
                &point,
                Duration::from_secs(65),
                Some(Duration::from_secs(300))
            ),
            "[00:01:05/00:05:00] users 50 | last 10s: 123.4 req/s, p95 45.2 ms | total 7800 reqs, 12 fails (0.15%)"
        );
        let idle = HistoryPoint {
            window_p95_us: None,
            steps: Vec::new(),
            window_secs: 3.0,
            total_requests: 0,
            total_failures: 0,
            ..point
        };
        assert_eq!(
            render_progress_line(&idle, Duration::from_secs(3_725), None),
            "[01:02:05] users 50 | last 3s: 123.4 req/s, p95 - | total 0 reqs, 0 fails (0.00%)"
        );
    }
}
