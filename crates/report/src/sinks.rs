//! [`Sinks`]: what `loadplan run` attaches to a run besides the terminal — the streamed CSV
//! history, the Prometheus exporter, the mid-run threshold watch — and the files written at the
//! end (`--csv`, `--json`, `--junit`, `--html`).
//!
//! Lifecycle: [`Sinks::start`] before the run (bad output paths are usage errors, exit 2; a
//! metrics port that cannot be bound is fatal, exit 3 — both before any load is sent), then
//! [`Sinks::tick`] from the driver's per-second callback, then [`Sinks::finish`] once the run
//! has ended, normally or after Ctrl-C, so an interrupted run still writes every file.
//!
//! Invariants: the sinks run on a collector task fed over a channel, never on the task that
//! generates load: [`Sinks::tick`] only clones the tick's snapshots and sends them. A tick does
//! bounded work there (one CSV block, one exposition rebuild, the threshold rules) and never
//! blocks on the network; the exporter's server runs on its own task and
//! stops in `finish`, after the files are written and, with `--metrics-linger`, after serving
//! the final values that much longer (the last tick put them in the exposition).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::csv::HistoryWriter;
use super::model::RunReport;
use super::thresholds::{Verdict, Watch};
use crate::lang::ir::Program;
use crate::metrics::StepInfo;
use crate::metrics::prom::{Exporter, ThresholdState};
use crate::profile::{LoadProfile, Threshold};
use crate::runtime::driver::{Control, Tick};

/// Output files asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// `--csv PREFIX`.
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// `--summary-md FILE`: the markdown summary.
    pub summary_md: Option<PathBuf>,
    /// `--baseline FILE`, read before the run: drawn beside it in `--html` and `--summary-md`
    /// (judged with `loadplan compare`'s default rules).
    pub baseline: Option<Arc<super::compare::Baseline>>,
}

/// Why the sinks could not start; maps to an exit code.
#[derive(Debug)]
pub enum StartError {
    /// A bad output path (exit 2).
    Usage(String),
    /// The metrics address cannot be served (exit 3).
    Fatal(String),
}

/// The run's sinks; see the module docs.
pub struct Sinks {
    outputs: Outputs,
    /// The collector task's inbox; `None` once the run is over.
    tx: Option<tokio::sync::mpsc::UnboundedSender<Owned>>,
    collector: Option<JoinHandle<Collector>>,
    /// The verdict that aborted the run, as the collector found it.
    aborted: Arc<std::sync::Mutex<Option<Verdict>>>,
    /// The same, once this side has seen it (reported by [`Sinks::tick`] once).
    seen_abort: Option<Verdict>,
    server: Option<(JoinHandle<std::io::Result<()>>, CancellationToken)>,
    metrics_addr: Option<SocketAddr>,
    /// `--metrics-linger`: how long the exporter keeps serving the final values.
    linger: Option<std::time::Duration>,
}

/// What one tick hands the collector: owned, so the work happens off the load path.
struct Owned {
    elapsed: std::time::Duration,
    /// When the statistics start (0, or the last reset), seconds.
    since_secs: f64,
    users: u64,
    total: crate::metrics::Snapshot,
    delta: crate::metrics::Snapshot,
    control: Control,
}

/// The collector task's state: every per-tick sink (CSV history, exporter, threshold watch).
struct Collector {
    program: Arc<Program>,
    steps: Vec<StepInfo>,
    thresholds: Vec<Threshold>,
    history: Option<HistoryWriter>,
    history_error: Option<String>,
    exporter: Option<Arc<Exporter>>,
    watch: Watch,
    aborted: Arc<std::sync::Mutex<Option<Verdict>>>,
}

impl Collector {
    fn tick(&mut self, t: &Owned) {
        if let Some(h) = &mut self.history {
            if let Err(e) = h.tick(&self.program, t.elapsed, t.users, &t.delta, &t.total) {
                self.history_error = Some(e.to_string());
                self.history = None;
            }
        }
        let already = self.watch.aborted.is_some();
        let states = self.watch.tick(
            &self.program,
            &self.thresholds,
            &t.total,
            (t.elapsed.as_secs_f64() - t.since_secs).max(0.0),
            self.exporter.is_some(),
        );
        if let Some(exporter) = &self.exporter {
            let states = self
                .thresholds
                .iter()
                .zip(states)
                .filter_map(|(rule, v)| {
                    v.map(|v| ThresholdState {
                        rule: rule.text.clone(),
                        metric: rule.metric.clone(),
                        passing: v.passed,
                    })
                })
                .collect();
            exporter.update(&self.steps, &t.total, t.users, states);
        }
        if let (Some(v), false) = (&self.watch.aborted, already) {
            // Published before the stop, so the runner sees it by its final tick.
            if let Ok(mut a) = self.aborted.lock() {
                *a = Some(v.clone());
            }
            t.control.stop.cancel();
        }
    }
}

/// Statistics rows labelled for tables and metrics.
pub fn step_infos(program: &Program) -> Vec<StepInfo> {
    program
        .stats
        .iter()
        .enumerate()
        .map(|(i, s)| StepInfo {
            id: i as u32,
            scenario: s.scenarios.join(","),
            kind: s.kind.clone(),
            name: s.name.clone(),
        })
        .collect()
}

fn check_parent(flag: &str, path: &Path) -> Result<(), StartError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(StartError::Usage(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        ))),
        _ if path.is_dir() => Err(StartError::Usage(format!(
            "{flag} {}: is a directory",
            path.display()
        ))),
        _ => Ok(()),
    }
}

impl Sinks {
    /// Checks output paths, opens the CSV history and binds and serves the metrics address.
    pub async fn start(
        program: Arc<Program>,
        profile: &LoadProfile,
        outputs: Outputs,
        metrics: Option<SocketAddr>,
    ) -> Result<Sinks, StartError> {
        for (flag, path) in [
            ("--json", &outputs.json),
            ("--junit", &outputs.junit),
            ("--html", &outputs.html),
            ("--summary-md", &outputs.summary_md),
        ] {
            if let Some(p) = path {
                check_parent(flag, p)?;
            }
        }
        let history =
            match &outputs.csv {
                Some(prefix) => {
                    check_parent("--csv", prefix)?;
                    Some(HistoryWriter::create(prefix).map_err(|e| {
                        StartError::Usage(format!("--csv {}: {e}", prefix.display()))
                    })?)
                }
                None => None,
            };
        let (exporter, server, metrics_addr) = match metrics {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    StartError::Fatal(format!(
                        "cannot serve metrics on {addr}: {e} (is another loadplan or exporter \
                         using the port? choose another with --metrics ADDR)"
                    ))
                })?;
                let bound = listener.local_addr().unwrap_or(addr);
                let exporter = Arc::new(
                    Exporter::new(&program.name, &profile.name)
                        .with_breakdown(super::model::breakdown_keys(&program)),
                );
                // Every step's counters at 0 from the first scrape, before the first tick.
                exporter.update(
                    &step_infos(&program),
                    &crate::metrics::Snapshot::default(),
                    0,
                    Vec::new(),
                );
                let stop = CancellationToken::new();
                let task = tokio::spawn(exporter.clone().serve(listener, stop.clone()));
                (Some(exporter), Some((task, stop)), Some(bound))
            }
            None => (None, None, None),
        };
        let aborted = Arc::new(std::sync::Mutex::new(None));
        let active = history.is_some() || exporter.is_some() || !profile.thresholds.is_empty();
        let mut collector = Collector {
            steps: step_infos(&program),
            program,
            thresholds: profile.thresholds.clone(),
            history,
            history_error: None,
            exporter,
            watch: Watch::default(),
            aborted: aborted.clone(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Owned>();
        let collector = tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                collector.tick(&t);
            }
            collector
        });
        Ok(Sinks {
            outputs,
            // Without a per-tick sink nothing is cloned or sent.
            tx: active.then_some(tx),
            collector: Some(collector),
            aborted,
            seen_abort: None,
            server,
            metrics_addr,
            linger: None,
        })
    }

    /// Keeps the exporter serving the final values for `linger` after the files are written
    /// (`--metrics-linger`), so a scraper gets one more scrape of the finished run.
    pub fn with_linger(mut self, linger: Option<std::time::Duration>) -> Self {
        self.linger = linger;
        self
    }

    /// The address `/metrics` is served on (with the real port when 0 was asked).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Hands one tick to the collector task, which feeds every sink (the CSV history, the
    /// exporter, the threshold watch) off the load path: the caller only clones the snapshots.
    /// Returns, once, the verdict that aborted the run when a rule with `abort_on_fail` failed
    /// (the collector stops the run through `control` as soon as it sees it).
    pub fn tick(&mut self, t: &Tick, control: &Control) -> Option<Verdict> {
        if let Some(tx) = &self.tx {
            let owned = Owned {
                elapsed: t.elapsed,
                since_secs: t.point.since_secs,
                users: t.users,
                total: t.total.clone(),
                delta: t.delta.clone(),
                control: control.clone(),
            };
            if tx.send(owned).is_err() {
                tracing::debug!("sinks: the collector has ended");
            }
        }
        if self.seen_abort.is_none() {
            let found = self.aborted.lock().ok().and_then(|a| a.clone());
            if found.is_some() {
                self.seen_abort = found.clone();
                return found;
            }
        }
        None
    }

    /// The rule that aborted the run, if one did.
    pub fn aborted_by(&self) -> Option<&Verdict> {
        self.seen_abort.as_ref()
    }

    /// Whether any end-of-run file was asked for (the report needs building).
    pub fn wants_report(&self) -> bool {
        let o = &self.outputs;
        o.csv.is_some()
            || o.json.is_some()
            || o.junit.is_some()
            || o.html.is_some()
            || o.summary_md.is_some()
    }

    /// Writes the end-of-run files (when a report is given: see [`Sinks::wants_report`]) and
    /// stops the metrics server. Returns the paths written, or every problem met (the other
    /// files are still written).
    pub async fn finish(mut self, report: Option<&RunReport>) -> Result<Vec<PathBuf>, Vec<String>> {
        let mut written = Vec::new();
        let mut problems = Vec::new();
        // Every tick handed over is processed before the files are written.
        self.tx = None;
        if let Some(task) = self.collector.take() {
            match task.await {
                Ok(mut c) => {
                    if let Some(e) = c.history_error.take() {
                        problems.push(format!("--csv history: {e}"));
                    }
                    if let Some(h) = c.history.take() {
                        if let Err(e) = h.finish() {
                            problems.push(format!("--csv history: {e}"));
                        }
                    }
                }
                Err(e) => problems.push(format!("sinks: {e}")),
            }
        }
        if let Some(report) = report {
            write_files(&self.outputs, report, &mut written, &mut problems);
        }
        if let Some((task, stop)) = self.server.take() {
            if let Some(linger) = self.linger.filter(|d| !d.is_zero()) {
                if let Some(addr) = self.metrics_addr {
                    eprintln!(
                        "metrics: serving the final values on http://{addr}/metrics for {} more",
                        humantime::format_duration(linger)
                    );
                }
                tokio::time::sleep(linger).await;
            }
            stop.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("metrics server: {e}")),
                Err(e) => problems.push(format!("metrics server: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(written)
        } else {
            Err(problems)
        }
    }
}

fn write_files(
    o: &Outputs,
    report: &RunReport,
    written: &mut Vec<PathBuf>,
    problems: &mut Vec<String>,
) {
    if let Some(prefix) = &o.csv {
        match super::csv::write_final(prefix, report) {
            Ok(()) => {
                written.extend(super::csv::paths(prefix));
                written.push(super::csv::tags_path(prefix));
            }
            Err(e) => problems.push(format!("--csv {}: {e}", prefix.display())),
        }
    }
    let mut write = |flag: &str, path: &Option<PathBuf>, text: &dyn Fn() -> String| {
        if let Some(p) = path {
            match std::fs::write(p, text()) {
                Ok(()) => written.push(p.clone()),
                Err(e) => problems.push(format!("{flag} {}: {e}", p.display())),
            }
        }
    };
    write("--junit", &o.junit, &|| super::junit::render(report));
    let beside = o
        .baseline
        .as_deref()
        .map(|b| super::compare::Beside::new(b, report, super::compare::Options::default()));
    write("--html", &o.html, &|| {
        super::html::render_with(report, beside.as_ref())
    });
    write("--summary-md", &o.summary_md, &|| {
        super::markdown::render_with(report, beside.as_ref())
    });
    if let Some(p) = &o.json {
        match super::write_json(p, report) {
            Ok(()) => written.push(p.clone()),
            Err(e) => problems.push(format!("--json {}: {e}", p.display())),
        }
    }
}
