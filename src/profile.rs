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

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::lang::check::parse_duration_str;
use crate::lang::ir::Program;
use crate::source::{Source, Span};

/// Presets shipped inside the binary.
pub const PRESETS: &[(&str, &str)] = &[
    ("smoke", include_str!("../profiles/smoke.yml")),
    ("load", include_str!("../profiles/load.yml")),
    ("stress", include_str!("../profiles/stress.yml")),
    ("soak", include_str!("../profiles/soak.yml")),
];

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
    /// `check_rate` (share of checks passed) or `rate` (requests per second).
    pub metric: String,
    /// A statistics entry such as `GET /health` (default: all steps).
    pub step: Option<String>,
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
        candidates.push(dir.join("..").join("profiles").join(format!("{name}.yml")));
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

/// Parse and validate a profile source (against a program when given, for weights).
pub fn parse(source: &Source, program: Option<&Program>) -> Result<LoadProfile, Diagnostics> {
    let file: ProfileFile = crate::lang::yaml::from_str(source, Code::ProfileSyntax)?;
    resolve(source, file, program)
}

fn find(source: &Source, needle: &str) -> Span {
    source
        .text()
        .find(needle)
        .map_or(Span::new(0, 0), |o| Span::new(o, needle.len()))
}

/// Parse `5%` / `0.05` as a fraction, `500ms` as µs, numbers as is.
fn amount(a: &Amount, metric: &str) -> Result<f64, String> {
    let latency = matches!(
        metric,
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

fn resolve(
    source: &Source,
    f: ProfileFile,
    program: Option<&Program>,
) -> Result<LoadProfile, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut bad = |needle: &str, msg: String, help: &str| {
        diags.push(
            Diagnostic::new(Code::ProfileBadValue, source, find(source, needle), msg)
                .label("here")
                .help(help),
        );
    };
    let dur = |s: &Option<String>, bad: &mut dyn FnMut(&str, String, &str)| -> Option<Duration> {
        let s = s.as_ref()?;
        match parse_duration_str(s) {
            Ok(d) => Some(d),
            Err(e) => {
                bad(s, e, "write a duration such as `30s`, `5m`, `1h`");
                None
            }
        }
    };
    let duration = dur(&f.duration, &mut bad);
    let stop_timeout = dur(&f.stop_timeout, &mut bad).unwrap_or(Duration::from_secs(5));
    let model = match (f.arrival_rate, f.users) {
        (Some(_), Some(_)) => {
            bad(
                "arrival_rate",
                "a profile is closed (`users`) or open (`arrival_rate`), not both".into(),
                "remove `users` or `arrival_rate`",
            );
            Model::Closed {
                users: 1,
                spawn_rate: 1.0,
            }
        }
        (Some(rate), None) => {
            if !(rate > 0.0 && rate.is_finite()) {
                bad(
                    "arrival_rate",
                    format!("arrival_rate must be positive, found {rate}"),
                    "iterations per second, e.g. 50",
                );
            }
            let poisson = match f.arrival.as_deref() {
                None | Some("uniform") => false,
                Some("poisson") => true,
                Some(other) => {
                    bad(
                        other,
                        format!("unknown arrival spacing `{other}`"),
                        "one of: uniform, poisson",
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
            let spawn_rate = f.spawn_rate.unwrap_or(users as f64);
            if !(spawn_rate > 0.0 && spawn_rate.is_finite()) {
                bad(
                    "spawn_rate",
                    format!("spawn_rate must be positive, found {spawn_rate}"),
                    "users started per second, e.g. 5",
                );
            }
            if f.max_users.is_some() {
                bad(
                    "max_users",
                    "`max_users` belongs to the open model".into(),
                    "use it with `arrival_rate`",
                );
            }
            Model::Closed { users, spawn_rate }
        }
    };
    let mut stages = Vec::new();
    for s in &f.stages {
        if let Ok(d) = parse_duration_str(&s.duration) {
            if s.target < 0.0 || !s.target.is_finite() {
                bad(
                    "target",
                    format!("stage target must be 0 or more, found {}", s.target),
                    "users (or rate) to reach by the end of the stage",
                );
            }
            stages.push(Stage {
                duration: d,
                target: s.target,
            });
        } else {
            bad(
                &s.duration,
                format!("`{}` is not a duration", s.duration),
                "write a duration such as `30s`",
            );
        }
    }
    let mut thresholds = Vec::new();
    const METRICS: &[&str] = &[
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
    for t in &f.thresholds {
        if !METRICS.contains(&t.metric.as_str()) {
            let help = crate::diag::did_you_mean(&t.metric, METRICS.iter().copied())
                .unwrap_or_else(|| format!("one of: {}", METRICS.join(", ")));
            bad(
                &t.metric,
                format!("unknown threshold metric `{}`", t.metric),
                &help,
            );
            continue;
        }
        if t.max.is_none() && t.min.is_none() {
            bad(
                &t.metric,
                "a threshold needs `max` or `min`".into(),
                "e.g. `{ metric: p95, max: 500ms }`",
            );
            continue;
        }
        let mut conv = |a: &Option<Amount>| -> Option<f64> {
            let a = a.as_ref()?;
            match amount(a, &t.metric) {
                Ok(v) => Some(v),
                Err(e) => {
                    bad(
                        &t.metric,
                        e,
                        "latency limits take a duration (`500ms`), rates a percentage (`1%`)",
                    );
                    None
                }
            }
        };
        let max = conv(&t.max);
        let min = conv(&t.min);
        let show = |a: &Option<Amount>| match a {
            Some(Amount::Number(n)) => n.to_string(),
            Some(Amount::Text(s)) => s.clone(),
            None => String::new(),
        };
        let mut text = t.metric.clone();
        if let Some(s) = &t.step {
            text.push_str(&format!("[{s}]"));
        }
        if t.max.is_some() {
            text.push_str(&format!(" <= {}", show(&t.max)));
        }
        if t.min.is_some() {
            text.push_str(&format!(" >= {}", show(&t.min)));
        }
        thresholds.push(Threshold {
            metric: t.metric.clone(),
            step: t.step.clone(),
            max,
            min,
            abort_on_fail: t.abort_on_fail,
            text,
        });
    }
    if let Some(p) = program {
        for name in f.weights.keys() {
            if p.scenario(name).is_none() {
                let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
                let help = crate::diag::did_you_mean(name, names.iter().copied())
                    .unwrap_or_else(|| format!("the plan's scenarios are: {}", names.join(", ")));
                diags.push(
                    Diagnostic::new(
                        Code::ProfileUnknownScenario,
                        source,
                        find(source, &format!("{name}:")),
                        format!("profile weight for unknown scenario `{name}`"),
                    )
                    .label("no such scenario in the plan")
                    .help(help),
                );
            }
        }
        for (name, w) in &f.weights {
            if *w == 0 && p.scenario(name).is_some() {
                diags.push(
                    Diagnostic::new(
                        Code::ProfileBadValue,
                        source,
                        find(source, &format!("{name}:")),
                        format!("weight of `{name}` is 0"),
                    )
                    .label("zero weight")
                    .help("remove the scenario's weight to keep the plan's, or give it at least 1"),
                );
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
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
    fn unknown_fields_are_errors() {
        let src = Source::new("p.yml", "name: x\nusers: 3\nspawn_rat: 2\n");
        let err = parse(&src, None).expect_err("unknown field");
        let d = err.into_sorted();
        assert_eq!(d[0].code, Code::ProfileSyntax);
        assert!(d[0].message.contains("spawn_rat"), "{}", d[0].message);
    }
}
