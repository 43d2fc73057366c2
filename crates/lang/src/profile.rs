//! Load profiles: how much load, in what shape, for how long, and what must hold.
//!
//! A profile is a YAML file (`profiles/*.yml`, also embedded so `--profile smoke`
//! works anywhere). [`ProfileFile`] is its serde shape (the JSON Schema is generated
//! from it); [`LoadProfile`] is the validated, resolved form the driver runs. Pure:
//! no async, no network — a worker can re-resolve a profile it was sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::parse_duration_str;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::ir::Program;
use crate::source::{Source, Span};

mod shape;

use shape::Locate;

/// Presets shipped inside the binary.
pub const PRESETS: &[(&str, &str)] = &[
    ("smoke", include_str!("../../../profiles/smoke.yml")),
    ("load", include_str!("../../../profiles/load.yml")),
    ("stress", include_str!("../../../profiles/stress.yml")),
    ("soak", include_str!("../../../profiles/soak.yml")),
];

/// The slowest rate (arrivals or users started per second) a run accepts: one per 1000 s.
pub const MIN_RATE: f64 = 0.001;
/// The fastest rate a run accepts (per second).
pub const MAX_RATE: f64 = 1_000_000.0;
/// The most users (closed model) or pool users (open model) a run accepts.
pub const MAX_USERS: u64 = 1_000_000;

/// Why a rate is refused (`what` names it: `arrival_rate`, `--spawn-rate`), or None.
pub fn rate_problem(what: &str, rate: f64) -> Option<String> {
    (!(MIN_RATE..=MAX_RATE).contains(&rate)).then(|| {
        format!("{what} must be between {MIN_RATE} and {MAX_RATE} per second, found {rate}")
    })
}

/// Why a number of users is refused, or None.
pub fn users_problem(what: &str, users: u64) -> Option<String> {
    (!(1..=MAX_USERS).contains(&users))
        .then(|| format!("{what} must be between 1 and {MAX_USERS}, found {users}"))
}

/// A number, or a string with a unit (`500ms`, `5%`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Amount {
    Number(f64),
    Text(String),
}

/// The YAML shape of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The profile's name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Closed model: number of concurrent users.
    pub users: Option<u64>,
    /// Closed model: users started per second (default: all at once).
    pub spawn_rate: Option<f64>,
    /// How long the run lasts (`30s`, `5m`); without it the run ends by stages or iterations.
    pub duration: Option<String>,
    /// Open model: iterations started per second, independent of responses.
    pub arrival_rate: Option<f64>,
    /// Open model: the pool of users serving arrivals (default 1000).
    pub max_users: Option<u64>,
    /// Open model: spacing of arrivals, `uniform` (default) or `poisson`.
    pub arrival: Option<String>,
    /// Ramp/plateau shapes: each stage moves linearly to `target` (users, or rate in
    /// the open model) over `duration`.
    #[serde(default)]
    pub stages: Vec<StageFile>,
    /// Override scenario weights by scenario name.
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// Pass/fail rules on the merged statistics.
    #[serde(default)]
    pub thresholds: Vec<ThresholdFile>,
    /// Grace for in-flight iterations when users stop (default 5s).
    pub stop_timeout: Option<String>,
    /// Let the run pass without data: a run in which no request completed, and a
    /// threshold with nothing to measure, then pass instead of failing (default false).
    #[serde(default)]
    pub allow_no_data: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageFile {
    pub duration: String,
    pub target: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFile {
    /// `p50`, `p90`, `p95`, `p99`, `p99.9`, `max`, `avg` (latency), `error_rate`,
    /// `check_rate` (share of checks passed) or `rate` (requests per second). A plain metric
    /// covers HTTP requests (`check_rate`: every check); prefix `ws_` for WebSocket messages
    /// or `http_` to say HTTP explicitly (`ws_error_rate`, `http_p95`); see docs/metrics.md.
    pub metric: String,
    /// A statistics entry such as `GET /health` (default: the metric's total, HTTP requests for
    /// a plain metric).
    pub step: Option<String>,
    /// Only steps carrying this tag, written `key=value` (`method=checkout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Only the steps of this scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Only the steps inside this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Upper limit (latency `500ms`, rate `5%` or a number).
    pub max: Option<Amount>,
    /// Lower limit.
    pub min: Option<Amount>,
    /// Stop the run as soon as the rule fails.
    #[serde(default)]
    pub abort_on_fail: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Model {
    Closed {
        users: u64,
        spawn_rate: f64,
    },
    Open {
        rate: f64,
        max_users: u64,
        poisson: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threshold {
    pub metric: String,
    pub step: Option<String>,
    /// Only the steps of this scenario (`scenario=`, or a `threshold` written in a plan's
    /// scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Only the steps inside this group (`group=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only the steps carrying this tag (`tag="key=value"`), as key and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<(String, String)>,
    /// Limits in base units: µs for latency, a fraction for rates, req/s for `rate`.
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub abort_on_fail: bool,
    /// The rule as written, for reports.
    pub text: String,
}

/// A validated profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadProfile {
    pub name: String,
    pub description: String,
    pub model: Model,
    pub duration: Option<Duration>,
    pub stages: Vec<Stage>,
    pub weights: BTreeMap<String, u32>,
    pub thresholds: Vec<Threshold>,
    pub stop_timeout: Duration,
    /// A run without completed requests, or a threshold without data, passes.
    pub allow_no_data: bool,
}

impl LoadProfile {
    /// A plain closed-model profile (used when no profile is given).
    pub fn closed(users: u64, spawn_rate: f64, duration: Option<Duration>) -> Self {
        Self {
            name: "default".into(),
            description: String::new(),
            model: Model::Closed { users, spawn_rate },
            duration,
            stages: Vec::new(),
            weights: BTreeMap::new(),
            thresholds: Vec::new(),
            stop_timeout: Duration::from_secs(5),
            allow_no_data: false,
        }
    }

    /// Total length of the stages, if any.
    pub fn stages_duration(&self) -> Option<Duration> {
        (!self.stages.is_empty()).then(|| self.stages.iter().map(|s| s.duration).sum())
    }
}

/// Find a profile by name or path: an existing file, `profiles/NAME.yml` next to the
/// plan, `./profiles/NAME.yml`, then the embedded presets.
pub fn locate(name: &str, plan_dir: Option<&Path>) -> Option<Source> {
    let direct = PathBuf::from(name);
    let mut candidates = vec![direct];
    if let Some(dir) = plan_dir {
        candidates.push(dir.join("profiles").join(format!("{name}.yml")));
        // The plan folder's parent, spelt without `..` so messages show a clean path.
        let parent = match (dir.file_name(), dir.parent()) {
            (Some(_), Some(p)) => p.to_path_buf(),
            _ => dir.join(".."),
        };
        candidates.push(parent.join("profiles").join(format!("{name}.yml")));
    }
    candidates.push(PathBuf::from("profiles").join(format!("{name}.yml")));
    for c in candidates {
        if c.is_file() {
            if let Ok(text) = std::fs::read_to_string(&c) {
                return Some(Source::new(c.display().to_string(), text));
            }
        }
    }
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Source::new(format!("<builtin>/profiles/{n}.yml"), *text))
}

/// A profile source that is one of the built-in presets (embedded, or the same text
/// in `profiles/`).
pub fn is_preset(source: &Source) -> bool {
    source.name().starts_with("<builtin>/") || PRESETS.iter().any(|(_, t)| *t == source.text())
}

/// The error for a profile name that [`locate`] does not find, with the closest
/// preset or `profiles/*.yml` name ("did you mean `smoke`?").
pub fn not_found(name: &str, plan_dir: Option<&Path>) -> String {
    let mut names: Vec<String> = PRESETS.iter().map(|(n, _)| (*n).to_string()).collect();
    let mut dirs = vec![PathBuf::from("profiles")];
    if let Some(dir) = plan_dir {
        dirs.push(dir.join("profiles"));
        if let Some(parent) = dir.parent() {
            dirs.push(parent.join("profiles"));
        }
    }
    for d in dirs {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                    if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                        if !names.iter().any(|n| n == stem) {
                            names.push(stem.to_string());
                        }
                    }
                }
            }
        }
    }
    let hint = crate::diag::did_you_mean(name, names.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    format!(
        "error: no profile `{name}` (not a file, not in profiles/, not a preset: smoke, load, stress, soak){hint}"
    )
}

/// Parse and validate a profile source (against a program when given, for weights).
///
/// Every problem is reported at once: the shape of the file first (unknown keys,
/// missing fields, wrong types), then the values (durations, metrics, weights).
pub fn parse(source: &Source, program: Option<&Program>) -> Result<LoadProfile, Diagnostics> {
    let tree = crate::yaml::parse_value(source, Code::ProfileSyntax)?;
    let diags = shape::check(source, &tree);
    if !diags.is_empty() {
        return Err(diags);
    }
    let file: ProfileFile = crate::yaml::from_str(source, Code::ProfileSyntax)?;
    resolve(source, &Locate::new(&tree), file, program)
}

/// Scenario names the profile weights that the plan does not have: ignored, so one
/// profile serves plans with a subset of its scenarios (`check` prints a note).
pub fn unknown_weights(profile: &LoadProfile, program: &Program) -> Vec<String> {
    profile
        .weights
        .keys()
        .filter(|n| program.scenario(n).is_none())
        .cloned()
        .collect()
}

/// Parse `5%` / `0.05` as a fraction, `500ms` as µs, numbers as is.
pub fn amount(a: &Amount, metric: &str) -> Result<f64, String> {
    let latency = matches!(
        base_metric(metric),
        "p50" | "p90" | "p95" | "p99" | "p99.9" | "max" | "avg"
    );
    match a {
        Amount::Number(n) if latency => Ok(n * 1000.0),
        Amount::Number(n) => Ok(*n),
        Amount::Text(t) => {
            let t = t.trim();
            if let Some(p) = t.strip_suffix('%') {
                return p
                    .trim()
                    .parse::<f64>()
                    .map(|v| v / 100.0)
                    .map_err(|_| format!("`{t}` is not a percentage"));
            }
            if latency {
                return parse_duration_str(t).map(|d| d.as_secs_f64() * 1e6);
            }
            t.parse::<f64>()
                .map_err(|_| format!("`{t}` is not a number"))
        }
    }
}

/// The metrics a threshold may name.
pub const METRICS: &[&str] = &[
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "max",
    "avg",
    "error_rate",
    "check_rate",
    "rate",
];

/// The metrics a threshold can name, without a protocol prefix.
pub const BASE_METRICS: &[&str] = METRICS;

/// What a threshold's numbers cover (docs/metrics.md, "Totals").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// HTTP requests only: a plain metric (`error_rate`, `p95`, `rate`) and `http_*`.
    Http,
    /// WebSocket messages only (connects, sends, receives, silences, closes): `ws_*`.
    Ws,
    /// Every step but groups: plain `check_rate`, and any metric with a `step`.
    All,
}

/// Splits a threshold metric into what it covers and its base metric: `ws_error_rate` →
/// `(Ws, "error_rate")`, `p95` → `(Http, "p95")`. `None` for an unknown metric.
pub fn parse_metric(metric: &str) -> Option<(Scope, &str)> {
    let (scope, base) = if let Some(b) = metric.strip_prefix("http_") {
        (Scope::Http, b)
    } else if let Some(b) = metric.strip_prefix("ws_") {
        (Scope::Ws, b)
    } else if metric == "check_rate" {
        (Scope::All, metric)
    } else {
        (Scope::Http, metric)
    };
    BASE_METRICS.contains(&base).then_some((scope, base))
}

/// The base metric of a threshold metric (`ws_p95` → `p95`); unknown metrics unchanged.
pub fn base_metric(metric: &str) -> &str {
    parse_metric(metric).map_or(metric, |(_, b)| b)
}

/// Every metric name a threshold accepts (for "did you mean" help).
pub fn known_metrics() -> Vec<String> {
    let mut all: Vec<String> = BASE_METRICS.iter().map(|m| (*m).to_owned()).collect();
    for prefix in ["http_", "ws_"] {
        all.extend(BASE_METRICS.iter().map(|m| format!("{prefix}{m}")));
    }
    all
}

/// What a rule selects besides its metric: a step, a scenario, a group, a tag (`key=value`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Selectors<'a> {
    pub step: Option<&'a str>,
    pub scenario: Option<&'a str>,
    pub group: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// A rule as written, for reports: `p95[GET /health] <= 500ms`, `p95[tag method=checkout]`.
pub fn rule_text(
    metric: &str,
    sel: Selectors<'_>,
    max: &Option<Amount>,
    min: &Option<Amount>,
) -> String {
    let show = |a: &Option<Amount>| match a {
        Some(Amount::Number(n)) => n.to_string(),
        Some(Amount::Text(s)) => s.clone(),
        None => String::new(),
    };
    let mut text = metric.to_string();
    let mut parts = Vec::new();
    match (sel.step, sel.scenario) {
        (Some(s), _) => parts.push(s.to_string()),
        (None, Some(sc)) => parts.push(format!("scenario {sc}")),
        (None, None) => {}
    }
    if let Some(g) = sel.group {
        parts.push(format!("group {g}"));
    }
    if let Some(t) = sel.tag {
        parts.push(format!("tag {t}"));
    }
    if !parts.is_empty() {
        text.push_str(&format!("[{}]", parts.join(", ")));
    }
    if max.is_some() {
        text.push_str(&format!(" <= {}", show(max)));
    }
    if min.is_some() {
        text.push_str(&format!(" >= {}", show(min)));
    }
    text
}

/// A tag selector `key=value` as key and value; the error is the help line.
pub fn parse_tag(tag: &str) -> Result<(String, String), String> {
    match tag.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "a tag selector is written `key=value`, e.g. `method=checkout`, not `{tag}`"
        )),
    }
}

/// A threshold's `scenario`, `group` or `tag` (`what`) must name one the plan's steps carry;
/// the error is the help line.
pub fn resolve_selector(
    stats: &[crate::ir::StatEntry],
    what: &str,
    value: &str,
) -> Result<(), String> {
    let mut known: Vec<String> = Vec::new();
    for s in stats {
        let names: Vec<String> = match what {
            "scenario" => s.scenarios.clone(),
            "group" => s.groups.clone(),
            _ => s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        };
        for n in names {
            if !known.contains(&n) {
                known.push(n);
            }
        }
    }
    if what == "tag" {
        parse_tag(value)?;
    }
    let norm = |v: &str| {
        v.split_once('=')
            .map_or(v.to_string(), |(k, v)| format!("{}={}", k.trim(), v.trim()))
    };
    if known
        .iter()
        .any(|n| *n == norm(value) || (what != "tag" && n == value))
    {
        return Ok(());
    }
    Err(
        crate::diag::did_you_mean(value, known.iter().map(String::as_str)).unwrap_or_else(|| {
            if known.is_empty() {
                format!("the plan declares no {what}s")
            } else {
                format!(
                    "the plan's {what}s are: {}",
                    known
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }),
    )
}

/// A threshold's `step` must name a statistics entry of the plan, by its name
/// (`/health`) or its kind and name (`GET /health`); the error is the help line.
pub fn resolve_step(stats: &[crate::ir::StatEntry], step: &str) -> Result<(), String> {
    if stats
        .iter()
        .any(|s| s.name == step || format!("{} {}", s.kind, s.name) == step)
    {
        return Ok(());
    }
    let names: Vec<String> = stats
        .iter()
        .map(|s| format!("{} {}", s.kind, s.name))
        .collect();
    Err(
        crate::diag::did_you_mean(step, names.iter().map(String::as_str)).unwrap_or_else(|| {
            format!(
                "the plan's steps are: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    )
}

/// Value checks, with spans from the tree.
struct Resolver<'a> {
    source: &'a Source,
    at: &'a Locate<'a>,
    diags: Diagnostics,
    /// The plan, when checked together: threshold steps are resolved against it.
    program: Option<&'a Program>,
}

impl Resolver<'_> {
    fn bad(&mut self, span: Span, message: String, label: &str, help: &str) {
        self.diags.push(
            Diagnostic::new(Code::ProfileBadValue, self.source, span, message)
                .label(label)
                .help(help),
        );
    }

    fn duration(&mut self, text: &Option<String>, path: &[&str]) -> Option<Duration> {
        let s = text.as_ref()?;
        match parse_duration_str(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.bad(
                    self.at.value(path),
                    e,
                    "not a duration",
                    "write a number with a unit: `30s`, `5m`, `1h30m`",
                );
                None
            }
        }
    }

    fn model(&mut self, f: &ProfileFile) -> Model {
        match (f.arrival_rate, f.users) {
            (Some(_), Some(_)) => {
                self.bad(
                    self.at.key(&["arrival_rate"]),
                    "a profile is closed (`users`) or open (`arrival_rate`), not both".into(),
                    "second model",
                    "remove `users` or `arrival_rate`",
                );
                Model::Closed {
                    users: 1,
                    spawn_rate: 1.0,
                }
            }
            (Some(rate), None) => {
                if let Some(m) = rate_problem("arrival_rate", rate) {
                    self.bad(
                        self.at.value(&["arrival_rate"]),
                        m,
                        "out of range",
                        "iterations started per second, e.g. 50",
                    );
                }
                if let Some(m) = f.max_users.and_then(|n| users_problem("max_users", n)) {
                    self.bad(
                        self.at.value(&["max_users"]),
                        m,
                        "out of range",
                        "the pool of users serving arrivals, e.g. 100",
                    );
                }
                if f.spawn_rate.is_some() {
                    self.bad(
                        self.at.key(&["spawn_rate"]),
                        "`spawn_rate` belongs to the closed model".into(),
                        "closed-model field",
                        "the open model starts iterations at `arrival_rate`; remove `spawn_rate`",
                    );
                }
                let poisson = match f.arrival.as_deref() {
                    None | Some("uniform") => false,
                    Some("poisson") => true,
                    Some(other) => {
                        let help = crate::diag::did_you_mean(other, ["uniform", "poisson"])
                            .unwrap_or_else(|| "one of: uniform, poisson".into());
                        self.bad(
                            self.at.value(&["arrival"]),
                            format!("unknown arrival spacing `{other}`"),
                            "unknown spacing",
                            &help,
                        );
                        false
                    }
                };
                Model::Open {
                    rate,
                    max_users: f.max_users.unwrap_or(1000),
                    poisson,
                }
            }
            (None, users) => {
                let users = users.unwrap_or(1);
                if let Some(m) = users_problem("users", users) {
                    self.bad(
                        self.at.value(&["users"]),
                        m,
                        "out of range",
                        "concurrent users, e.g. 10 (a run without users sends nothing)",
                    );
                }
                let spawn_rate = f.spawn_rate.unwrap_or(users.clamp(1, MAX_USERS) as f64);
                if let Some(m) = rate_problem("spawn_rate", spawn_rate) {
                    self.bad(
                        self.at.value(&["spawn_rate"]),
                        m,
                        "out of range",
                        "users started per second, e.g. 5",
                    );
                }
                for (key, help) in [
                    ("max_users", "use it with `arrival_rate` (open model)"),
                    ("arrival", "use it with `arrival_rate` (open model)"),
                ] {
                    if self.at.value(&[key]) != Span::default() {
                        self.bad(
                            self.at.key(&[key]),
                            format!("`{key}` belongs to the open model"),
                            "open-model field",
                            help,
                        );
                    }
                }
                Model::Closed { users, spawn_rate }
            }
        }
    }

    fn stages(&mut self, f: &ProfileFile) -> Vec<Stage> {
        let mut stages = Vec::new();
        for (i, s) in f.stages.iter().enumerate() {
            let i = i.to_string();
            let d = self.duration(&Some(s.duration.clone()), &["stages", &i, "duration"]);
            if !(0.0..=MAX_RATE).contains(&s.target) {
                self.bad(
                    self.at.value(&["stages", &i, "target"]),
                    format!(
                        "stage target must be between 0 and {MAX_RATE}, found {}",
                        s.target
                    ),
                    "out of range",
                    "users (or rate) to reach by the end of the stage",
                );
            }
            if let Some(duration) = d {
                stages.push(Stage {
                    duration,
                    target: s.target,
                });
            }
        }
        stages
    }

    fn thresholds(&mut self, f: &ProfileFile) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (i, t) in f.thresholds.iter().enumerate() {
            let i = i.to_string();
            if parse_metric(&t.metric).is_none() {
                let known = known_metrics();
                let help = crate::diag::did_you_mean(&t.metric, known.iter().map(String::as_str))
                    .unwrap_or_else(|| {
                        format!(
                            "one of: {} (prefix http_ or ws_ to choose the protocol)",
                            BASE_METRICS.join(", ")
                        )
                    });
                self.bad(
                    self.at.value(&["thresholds", &i, "metric"]),
                    format!("unknown threshold metric `{}`", t.metric),
                    "unknown metric",
                    &help,
                );
                continue;
            }
            if t.max.is_none() && t.min.is_none() {
                self.bad(
                    self.at.value(&["thresholds", &i, "metric"]),
                    format!("the `{}` threshold needs `max` or `min`", t.metric),
                    "no limit",
                    "e.g. `{ metric: p95, max: 500ms }`",
                );
                continue;
            }
            let mut conv = |a: &Option<Amount>, key: &str| -> Option<f64> {
                let a = a.as_ref()?;
                match amount(a, &t.metric) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.bad(
                            self.at.value(&["thresholds", &i, key]),
                            e,
                            "not a limit",
                            "latency limits take a duration (`500ms`), rates a percentage (`1%`)",
                        );
                        None
                    }
                }
            };
            let max = conv(&t.max, "max");
            let min = conv(&t.min, "min");
            if let (Some(step), Some(p)) = (&t.step, self.program) {
                if let Err(help) = resolve_step(&p.stats, step) {
                    self.bad(
                        self.at.value(&["thresholds", &i, "step"]),
                        format!("no step `{step}` in the plan"),
                        "unknown step",
                        &help,
                    );
                    continue;
                }
            }
            let mut unresolved = false;
            for (what, value) in [
                ("scenario", &t.scenario),
                ("group", &t.group),
                ("tag", &t.tag),
            ] {
                let Some(value) = value else { continue };
                let checked = match self.program {
                    Some(p) => resolve_selector(&p.stats, what, value),
                    None if what == "tag" => parse_tag(value).map(|_| ()),
                    None => Ok(()),
                };
                if let Err(help) = checked {
                    self.bad(
                        self.at.value(&["thresholds", &i, what]),
                        format!("no {what} `{value}` in the plan"),
                        &format!("unknown {what}"),
                        &help,
                    );
                    unresolved = true;
                }
            }
            if unresolved {
                continue;
            }
            out.push(Threshold {
                metric: t.metric.clone(),
                step: t.step.clone(),
                scenario: t.scenario.clone(),
                group: t.group.clone(),
                tag: t.tag.as_deref().and_then(|t| parse_tag(t).ok()),
                max,
                min,
                abort_on_fail: t.abort_on_fail,
                text: rule_text(
                    &t.metric,
                    Selectors {
                        step: t.step.as_deref(),
                        scenario: t.scenario.as_deref(),
                        group: t.group.as_deref(),
                        tag: t.tag.as_deref(),
                    },
                    &t.max,
                    &t.min,
                ),
            });
        }
        out
    }

    /// A weight for a scenario the plan lacks is an error only when it looks like a
    /// typo of one it has, or when no weight names any of its scenarios; otherwise it
    /// is ignored (a preset weighting `http` and `websocket` serves an HTTP-only plan).
    /// The built-in presets never refuse a plan for its scenario names: their
    /// weights are defaults for the scenarios that exist.
    fn weights(&mut self, f: &ProfileFile, p: &Program) {
        let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
        let none_match = f.weights.keys().all(|n| p.scenario(n).is_none());
        let preset = is_preset(self.source);
        for (name, w) in &f.weights {
            if p.scenario(name).is_none() {
                if preset {
                    continue;
                }
                let typo = crate::diag::did_you_mean(name, names.iter().copied());
                if typo.is_none() && !none_match {
                    continue;
                }
                let help = typo.unwrap_or_else(|| {
                    format!(
                        "none of the profile's weights names a scenario of this plan; its scenarios are: {}",
                        names.join(", ")
                    )
                });
                self.diags.push(
                    Diagnostic::new(
                        Code::ProfileUnknownScenario,
                        self.source,
                        self.at.key(&["weights", name]),
                        format!("profile weight for unknown scenario `{name}`"),
                    )
                    .label("no such scenario in the plan")
                    .help(help),
                );
            } else if *w == 0 {
                self.bad(
                    self.at.value(&["weights", name]),
                    format!("weight of `{name}` is 0"),
                    "zero weight",
                    "remove the scenario's weight to keep the plan's, or give it at least 1",
                );
            }
        }
    }
}

fn resolve(
    source: &Source,
    at: &Locate,
    f: ProfileFile,
    program: Option<&Program>,
) -> Result<LoadProfile, Diagnostics> {
    let mut cx = Resolver {
        source,
        at,
        diags: Diagnostics::new(),
        program,
    };
    let duration = cx.duration(&f.duration, &["duration"]);
    if duration.is_some_and(|d| d.is_zero()) {
        cx.bad(
            at.value(&["duration"]),
            "a run of 0s sends nothing".into(),
            "zero",
            "give the run a length, e.g. `30s`, or remove `duration`",
        );
    }
    let stop_timeout = cx
        .duration(&f.stop_timeout, &["stop_timeout"])
        .unwrap_or(Duration::from_secs(5));
    let model = cx.model(&f);
    let stages = cx.stages(&f);
    let thresholds = cx.thresholds(&f);
    if let Some(p) = program {
        cx.weights(&f, p);
    }
    if !cx.diags.is_empty() {
        return Err(cx.diags);
    }
    Ok(LoadProfile {
        name: f.name,
        description: f.description,
        model,
        duration,
        stages,
        weights: f.weights,
        thresholds,
        stop_timeout,
        allow_no_data: f.allow_no_data,
    })
}

/// The JSON Schema of a profile file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ProfileFile)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_with_seed_values() {
        for (name, users, rate, secs, http) in [
            ("smoke", 5, 1.0, 30, 80),
            ("load", 50, 5.0, 300, 70),
            ("stress", 200, 20.0, 600, 60),
            ("soak", 30, 2.0, 1800, 70),
        ] {
            let src = locate(name, None).expect("preset");
            let p = parse(&src, None).expect("valid");
            assert_eq!(
                p.model,
                Model::Closed {
                    users,
                    spawn_rate: rate
                }
            );
            assert_eq!(p.duration, Some(Duration::from_secs(secs)));
            assert_eq!(p.weights.get("http"), Some(&http));
            assert_eq!(p.weights.get("websocket"), Some(&(100 - http)));
        }
    }

    #[test]
    fn unknown_fields_are_errors_with_a_suggestion() {
        let src = Source::new("p.yml", "name: x\nusers: 3\nspawn_rat: 2\n");
        let err = parse(&src, None).expect_err("unknown field");
        let d = err.into_sorted();
        assert_eq!(d[0].code, Code::ProfileUnknownField);
        assert_eq!(src.slice(d[0].span), "spawn_rat");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `spawn_rate`?"));
    }

    #[test]
    fn every_shape_problem_is_reported_at_once() {
        let src = Source::new(
            "p.yml",
            "users: -1\nspawn_rat: 2\nthresholds:\n  - max: 5%\n",
        );
        let d = parse(&src, None).expect_err("bad").into_sorted();
        let codes: Vec<Code> = d.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            vec![
                Code::ProfileMissingField,
                Code::ProfileWrongType,
                Code::ProfileUnknownField,
                Code::ProfileMissingField
            ]
        );
        assert_eq!(src.slice(d[1].span), "-1");
        assert_eq!(src.slice(d[3].span), "max");
    }

    #[test]
    fn shape_fields_match_the_profile_file_type() {
        let schema = json_schema();
        let mut props: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        props.sort_unstable();
        let mut names = shape::top_level_names();
        names.sort_unstable();
        assert_eq!(props, names);
    }

    fn program(scenarios: &[&str]) -> Program {
        let text: String = scenarios
            .iter()
            .map(|s| format!("scenario \"{s}\" {{ http GET \"/\" }}\n"))
            .collect();
        let src = Source::new("p.kdl", text);
        crate::compile_source(&src, crate::source::Syntax::Kdl, Path::new(".")).expect("compiles")
    }

    #[test]
    fn weights_for_scenarios_the_plan_lacks_are_ignored() {
        let src = locate("smoke", None).expect("preset");
        let plan = program(&["http"]);
        let p = parse(&src, Some(&plan)).expect("websocket weight ignored");
        assert_eq!(unknown_weights(&p, &plan), vec!["websocket".to_string()]);
    }

    #[test]
    fn a_weight_that_looks_like_a_typo_is_an_error() {
        let src = Source::new("p.yml", "name: x\nweights:\n  http: 80\n  websockt: 20\n");
        let d = parse(&src, Some(&program(&["http", "websocket"])))
            .expect_err("typo")
            .into_sorted();
        assert_eq!(d[0].code, Code::ProfileUnknownScenario);
        assert_eq!(src.slice(d[0].span), "websockt");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `websocket`?"));
    }

    #[test]
    fn weights_naming_no_scenario_at_all_are_errors() {
        let src = Source::new("p.yml", "name: x\nweights:\n  http: 80\n  websocket: 20\n");
        let d = parse(&src, Some(&program(&["browse", "buy"])))
            .expect_err("no match")
            .into_sorted();
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.code == Code::ProfileUnknownScenario));
    }

    #[test]
    fn numbers_that_send_nothing_or_overflow_are_bad_values_on_their_value() {
        for (text, value) in [
            ("name: x\nusers: 0\nduration: 5s\n", "0"),
            ("name: x\nusers: 2\nduration: 0s\n", "0s"),
            ("name: x\narrival_rate: 1e-300\n", "1e-300"),
            ("name: x\narrival_rate: 5\nmax_users: 0\n", "0"),
            ("name: x\nusers: 2\nspawn_rate: 1e-300\n", "1e-300"),
        ] {
            let src = Source::new("p.yml", text);
            let d = parse(&src, None).expect_err(text).into_sorted();
            assert_eq!(d[0].code, Code::ProfileBadValue, "{text}");
            assert_eq!(src.slice(d[0].span), value, "{text}");
        }
        let src = Source::new("p.yml", "name: x\nusers: 1\nallow_no_data: true\n");
        assert!(parse(&src, None).expect("valid").allow_no_data);
    }

    #[test]
    fn threshold_steps_are_resolved_against_the_plan() {
        let src = Source::new(
            "p.yml",
            "name: x\nthresholds:\n  - { metric: p99, step: GET /helth, max: 1s }\n",
        );
        let plan = crate::compile_source(
            &Source::new("p.kdl", "scenario \"s\" { http GET \"/health\"; }\n"),
            crate::source::Syntax::Kdl,
            Path::new("."),
        )
        .expect("compiles");
        let d = parse(&src, Some(&plan))
            .expect_err("unknown step")
            .into_sorted();
        assert_eq!(d[0].code, Code::ProfileBadValue);
        assert_eq!(src.slice(d[0].span), "GET /helth");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `GET /health`?"));
        parse(&src, None).expect("without a plan, steps are not known");
    }

    #[test]
    fn presets_apply_to_any_plan() {
        for name in ["smoke", "load", "stress", "soak"] {
            let src = locate(name, None).expect("preset");
            let plan = program(&["browse", "buy"]);
            let p = parse(&src, Some(&plan)).expect("a preset never refuses a plan");
            assert_eq!(unknown_weights(&p, &plan).len(), 2);
            // A near-miss name is not a typo for a preset either.
            parse(&src, Some(&program(&["https"]))).expect("no typo error from a preset");
        }
    }

    #[test]
    fn unknown_profile_names_get_a_suggestion() {
        let m = not_found("smok", None);
        assert!(m.ends_with("did you mean `smoke`?"), "{m}");
    }
}
