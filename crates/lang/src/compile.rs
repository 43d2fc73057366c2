//! Compile a schema-checked AST into the immutable [`ir::Program`].
//!
//! This pass does the semantic checks that need more than one node, reporting all of
//! them: duplicate names, weights, URLs, bodies, regexes and JSON paths, template
//! syntax, variables used but never defined, captures used before the step that
//! binds them, feeder files. Templates compile here, once; plain strings stay static.
//! Nodes the schema check already rejected are skipped quietly (no double reports).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::ast::{Document, Node, Scalar, Value};
use super::check::parse_duration;
use super::ir::*;
use super::template::{self as tmpl, Callee, Templates, Tpl, template_tags};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::source::{Source, Span, Syntax};

/// A pause as written: constant, uniform range, pacing period.
type PauseParts = (
    Option<Duration>,
    Option<(Duration, Duration)>,
    Option<Duration>,
);

mod feeder;
mod http;
mod ws;

pub use feeder::load_rows;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Compile a checked document. `base` is the folder feeder files are relative to.
pub fn compile(source: &Source, doc: &Document, base: &Path) -> Result<Program, Diagnostics> {
    let mut cx = Compiler {
        source,
        yaml: Syntax::from_path(source.name()) == Some(Syntax::Yaml),
        base,
        diags: Diagnostics::new(),
        templates: Templates::new(),
        stats: Vec::new(),
        stat_index: HashMap::new(),
        scenario: String::new(),
        known: HashSet::new(),
        later: HashMap::new(),
        columns: HashMap::new(),
        text_vars: HashMap::new(),
        thresholds: Vec::new(),
        numeric: Vec::new(),
        tags: std::collections::BTreeMap::new(),
        tag_span: None,
        tag_keys: Vec::new(),
        groups: Vec::new(),
        step_span: Span::new(0, 0),
    };
    let program = cx.program(doc);
    if cx.diags.is_empty() {
        Ok(program)
    } else {
        Err(cx.diags)
    }
}

/// Why a target base URL (a plan's `host`, `--host`, `LOADPLAN_HOST`) is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub message: String,
    pub label: &'static str,
    pub help: String,
}

/// Check a target base URL: an `http://` or `https://` URL with a host (and a valid
/// port). Returns it without trailing slashes. The one rule for a plan's `host` and
/// for `--host`/`LOADPLAN_HOST`, so both get the same diagnostic.
pub fn check_host(s: &str) -> Result<String, HostError> {
    if !s.contains("://") {
        // `:8000` means a port on this machine.
        let at = if s.starts_with(':') {
            format!("localhost{s}")
        } else {
            s.to_string()
        };
        return Err(HostError {
            message: format!("host `{s}` has no scheme"),
            label: "missing `http://`",
            help: format!("write `http://{at}` (or `https://{at}`)"),
        });
    }
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(s.trim_end_matches('/').to_string())
        }
        Ok(u) => Err(HostError {
            message: format!(
                "host must be an http:// or https:// URL, found scheme `{}`",
                u.scheme()
            ),
            label: "not an HTTP URL",
            help: "write e.g. `http://localhost:8000`".into(),
        }),
        Err(e) => Err(HostError {
            message: format!("bad host URL: {e}"),
            label: "not a URL",
            help: "write e.g. `http://localhost:8000`".into(),
        }),
    }
}

/// [`check_host`] as a diagnostic on a one-line source named after where the value
/// came from (`--host`, `LOADPLAN_HOST`), for the command line.
pub fn host_diagnostic(origin: &str, value: &str) -> Result<String, Diagnostics> {
    check_host(value).map_err(|e| {
        let source = Source::new(origin, value);
        let mut d = Diagnostics::new();
        d.push(
            Diagnostic::new(Code::BadUrl, &source, Span::new(0, value.len()), e.message)
                .label(e.label)
                .help(e.help),
        );
        d
    })
}

/// A threshold's `scenario=`, `group=` and `tag=` as written, resolved once every statistics
/// entry is known: (which, value, span).
type Selected = Vec<(&'static str, String, Span)>;

/// What [`Compiler::one_of`] looks for, and what it says when none or several are given.
struct OneOf {
    names: &'static [&'static str],
    /// The error and its label when none is given.
    missing: (String, &'static str),
    /// The error (`, found a and b` follows) and its label when several are.
    several: (String, &'static str),
    help: &'static str,
}

struct Compiler<'a> {
    source: &'a Source,
    /// Written in YAML (help lines show examples in the plan's own spelling).
    yaml: bool,
    base: &'a Path,
    diags: Diagnostics,
    templates: Templates,
    stats: Vec<StatEntry>,
    stat_index: HashMap<(String, String), StatId>,
    scenario: String,
    /// Names a template may use at this point.
    known: HashSet<String>,
    /// Names bound somewhere in the current scenario, with where (for "used before").
    later: HashMap<String, Span>,
    /// Feeder name → its columns and whether it is CSV (feeder attributes are checked).
    columns: HashMap<String, (Vec<String>, bool)>,
    /// Variables known to hold text at this point, with what made them text (a regex
    /// or header capture): comparing one with a number needs a cast.
    text_vars: HashMap<String, &'static str>,
    /// Thresholds written in the plan, with the span of a `step=` to resolve once
    /// every statistics entry is known.
    thresholds: Vec<(crate::profile::Threshold, Option<Span>, Selected)>,
    /// Names the last `if` condition compares with a number (see [`Step::If`]).
    numeric: Vec<String>,
    /// Tags in force: the scenario's, the enclosing groups' and the step's own.
    tags: std::collections::BTreeMap<String, String>,
    /// The innermost `tags` node in force (where a conflict is reported).
    tag_span: Option<Span>,
    /// Every tag key the plan declares (at most [`MAX_TAG_KEYS`]).
    tag_keys: Vec<String>,
    /// Enclosing groups, outermost first.
    groups: Vec<String>,
    /// The step being compiled (where a tag conflict without `tags` of its own is shown).
    step_span: Span,
}

impl Compiler<'_> {
    fn err(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: &str,
        help: impl Into<String>,
    ) {
        self.diags.push(
            Diagnostic::new(code, self.source, span, message)
                .label(label)
                .help(help),
        );
    }

    fn program(&mut self, doc: &Document) -> Program {
        let mut name = String::from("plan");
        let mut host = None;
        let mut http = HttpDefaults::default();
        let mut vars = Vec::new();
        let mut feeders: Vec<Feeder> = Vec::new();

        for n in doc.nodes.iter().filter(|n| n.name == "feeder") {
            // A feeder whose file is missing still defines its name: templates using
            // it are fine, the file is the one mistake.
            if let Some(name) = n.str_arg(0) {
                self.known.insert(name.to_string());
            }
            if let Some(f) = self.feeder(n, &feeders) {
                let mut cols: Vec<String> = Vec::new();
                for row in f.rows.iter() {
                    for k in row.keys() {
                        if !cols.contains(k) {
                            cols.push(k.clone());
                        }
                    }
                }
                let csv = !f.file.to_ascii_lowercase().ends_with(".json")
                    && n.str_prop("format") != Some("json");
                self.columns.insert(f.name.clone(), (cols, csv));
                feeders.push(f);
            }
        }
        let mut secrets = Vec::new();
        for n in doc
            .nodes
            .iter()
            .filter(|n| n.name == "vars" || n.name == "secrets")
        {
            for p in &n.props {
                if vars.iter().any(|(k, _): &(String, Tpl)| *k == p.name) {
                    self.err(
                        Code::DuplicateName,
                        p.name_span,
                        format!("variable `{}` is defined twice", p.name),
                        "second definition",
                        "rename or remove one",
                    );
                    continue;
                }
                if let Some(t) = self.tpl(&p.value) {
                    vars.push((p.name.clone(), t));
                }
                if n.name == "secrets" {
                    secrets.push(p.name.clone());
                }
                self.known.insert(p.name.clone());
            }
        }
        if let Some(p) = doc.nodes.iter().find(|n| n.name == "plan") {
            if let Some(n) = p.str_arg(0) {
                name = n.to_string();
            }
            for c in &p.children {
                match c.name.as_str() {
                    "host" => {
                        if let Some(v) = c.arg(0) {
                            host = self.host(v);
                        }
                    }
                    "headers" => http.headers = self.headers(c),
                    "timeout" => http.timeout = self.duration(c.arg(0)).unwrap_or(http.timeout),
                    "connect-timeout" => {
                        http.connect_timeout =
                            self.duration(c.arg(0)).unwrap_or(http.connect_timeout)
                    }
                    "redirects" => {
                        if let Some(v) = c.arg(0) {
                            match v.as_int().map(u32::try_from) {
                                Some(Ok(r)) => http.redirects = r,
                                _ => self.err(
                                    Code::BadValue,
                                    v.span,
                                    "redirects must be 0 or more",
                                    "out of range",
                                    "0 disables redirects",
                                ),
                            }
                        }
                    }
                    "http2" => http.http2 = c.arg(0).and_then(Value::as_bool).unwrap_or(false),
                    "auth" => {
                        if let Some(h) = c.prop("basic").and_then(|v| self.basic_auth(v)) {
                            http.headers.push(("Authorization".into(), h));
                        }
                    }
                    "cookies" => http.cookies = c.arg(0).and_then(Value::as_bool).unwrap_or(true),
                    "max-body" => {
                        if let Some(Ok(n)) = c.arg(0).map(crate::check::parse_size) {
                            http.max_body = n;
                        }
                    }
                    "compression" => {
                        if let Some(c) = c.arg(0).and_then(|v| self.compression(v)) {
                            http.compression = c;
                        }
                    }
                    _ => {}
                }
            }
        }

        for n in doc.nodes.iter().filter(|n| n.name == "threshold") {
            self.threshold(n, None);
        }
        let plan_known = self.known.clone();
        let mut scenarios: Vec<Scenario> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for n in doc.nodes.iter().filter(|n| n.name == "scenario") {
            let Some(sname) = n.arg(0).and_then(Value::as_str) else {
                continue;
            };
            let sspan = n.arg(0).map_or(n.name_span, |v| v.span);
            if let Some(first) = seen.get(sname) {
                let (line, _) = self.source.line_col(first.offset);
                self.err(
                    Code::DuplicateName,
                    sspan,
                    format!("scenario `{sname}` is defined twice"),
                    "second definition",
                    format!("the first is on line {line}; scenario names must be unique"),
                );
                continue;
            }
            seen.insert(sname.to_string(), sspan);
            self.known = plan_known.clone();
            self.text_vars = HashMap::new();
            self.later = HashMap::new();
            self.scenario = sname.to_string();
            collect_bindings(n, &mut self.later);
            scenarios.push(self.scenario_node(n, sname));
        }
        if scenarios.is_empty() && !doc.nodes.iter().any(|n| n.name == "scenario") {
            let span = doc.nodes.first().map_or(Span::new(0, 0), |n| n.name_span);
            self.err(
                Code::NoScenarios,
                span,
                "the plan has no scenario",
                "no scenario in this plan",
                if self.yaml {
                    "add a `scenarios:` list, e.g. `scenarios: [{ name: browse, steps: [http: GET /] }]`"
                } else {
                    "add a scenario, e.g. `scenario \"browse\" { http GET \"/\" }`"
                },
            );
        }
        let mut thresholds = Vec::new();
        'rules: for (t, span, selected) in std::mem::take(&mut self.thresholds) {
            if let (Some(step), Some(span)) = (&t.step, span) {
                if let Err(help) = crate::profile::resolve_step(&self.stats, step) {
                    self.err(
                        Code::BadValue,
                        span,
                        format!("no step `{step}` in the plan"),
                        "unknown step",
                        help,
                    );
                    continue;
                }
            }
            for (what, value, span) in selected {
                if let Err(help) = crate::profile::resolve_selector(&self.stats, what, &value) {
                    self.err(
                        Code::BadValue,
                        span,
                        format!("no {what} `{value}` in the plan"),
                        "unknown selector",
                        help,
                    );
                    continue 'rules;
                }
            }
            thresholds.push(t);
        }
        // A user's start can fail only on a unique feeder or a plan variable that renders at
        // run time: then each scenario gets its own `start` row to count that failure on.
        let may_fail_start = feeders.iter().any(|f| f.mode == FeedMode::Unique)
            || vars.iter().any(|(_, t): &(String, Tpl)| !t.is_static());
        self.tags.clear();
        if may_fail_start {
            for s in &mut scenarios {
                self.scenario = s.name.clone();
                s.start = Some(self.stat("start", &s.name));
            }
        }
        Program {
            name,
            host,
            http,
            vars,
            secrets,
            feeders,
            scenarios,
            thresholds,
            stats: std::mem::take(&mut self.stats),
            templates: std::mem::take(&mut self.templates),
        }
    }

    fn host(&mut self, v: &Value) -> Option<String> {
        let s = v.as_str()?;
        match check_host(s) {
            Ok(h) => Some(h),
            Err(e) => {
                self.err(Code::BadUrl, v.span, e.message, e.label, e.help);
                None
            }
        }
    }

    fn scenario_node(&mut self, n: &Node, name: &str) -> Scenario {
        let weight = match n.prop("weight") {
            None => 1,
            Some(v) => match v.as_int() {
                Some(w) if w > 0 && w <= u32::MAX as i64 => w as u32,
                Some(w) => {
                    self.err(
                        Code::BadWeight,
                        v.span,
                        format!("scenario weight must be at least 1, found {w}"),
                        "not a positive weight",
                        "weights are relative shares of users: 80 and 20 give 80 % and 20 %",
                    );
                    1
                }
                None => 1,
            },
        };
        let think = n.child("think").map_or(Think::None, |t| self.think(t));
        self.tags.clear();
        self.tag_span = None;
        if let Some(t) = n.child("tags") {
            self.tags_node(t);
        }
        for t in n.children_named("threshold") {
            self.threshold(t, None);
        }
        let on_start = n
            .child("on-start")
            .map(|c| self.steps(c))
            .unwrap_or_default();
        let steps = self.steps(n);
        let on_stop = n
            .child("on-stop")
            .map(|c| self.steps(c))
            .unwrap_or_default();
        let has_steps = n.children.iter().any(|c| {
            !matches!(
                c.name.as_str(),
                "think" | "on-start" | "on-stop" | "threshold" | "tags"
            )
        });
        if !has_steps {
            let span = n.arg(0).map_or(n.name_span, |v| v.span);
            self.err(
                Code::EmptySteps,
                span,
                format!("scenario `{name}` has no steps"),
                "nothing to do",
                if self.yaml {
                    "add at least one step under `steps:`, e.g. `- http: GET /health`"
                } else {
                    "add at least one step, e.g. `http GET \"/health\"`"
                },
            );
        }
        Scenario {
            name: name.to_string(),
            weight,
            think,
            start: None,
            on_start,
            steps,
            on_stop,
        }
    }

    /// A `threshold` node: in the plan (all steps), a scenario (its steps) or a step
    /// (`default_step`, that step's statistics entry). `step=` is resolved later.
    fn threshold(&mut self, n: &Node, default_step: Option<String>) {
        use crate::profile::{Amount, METRICS, amount, rule_text};
        let Some(mv) = n.arg(0) else { return };
        let Some(metric) = mv.as_str() else { return };
        // `http_` and `ws_` name the protocol a rule covers (docs/metrics.md).
        let base = metric
            .strip_prefix("http_")
            .or_else(|| metric.strip_prefix("ws_"))
            .unwrap_or(metric);
        if !METRICS.contains(&base) {
            let known: Vec<String> = ["", "http_", "ws_"]
                .iter()
                .flat_map(|p| METRICS.iter().map(move |m| format!("{p}{m}")))
                .collect();
            let help = did_you_mean(metric, known.iter().map(String::as_str))
                .unwrap_or_else(|| format!("one of: {}", METRICS.join(", ")));
            self.err(
                Code::BadValue,
                mv.span,
                format!("unknown threshold metric `{metric}`"),
                "unknown metric",
                help,
            );
            return;
        }
        let to_amount = |v: &Value| match &v.scalar {
            Scalar::Int(i) => Some(Amount::Number(*i as f64)),
            Scalar::Float(f) => Some(Amount::Number(*f)),
            Scalar::Str(s) => Some(Amount::Text(s.clone())),
            _ => None,
        };
        let (max_a, min_a) = (
            n.prop("max").and_then(to_amount),
            n.prop("min").and_then(to_amount),
        );
        if max_a.is_none() && min_a.is_none() {
            self.err(
                Code::MissingField,
                n.name_span,
                format!("the `{metric}` threshold needs `max` or `min`"),
                "no limit",
                if self.yaml {
                    "e.g. `{ metric: p95, max: 500ms }`"
                } else {
                    "e.g. `threshold \"p95\" max=\"500ms\"`"
                },
            );
            return;
        }
        let mut limits = [None, None];
        for (i, key) in ["max", "min"].into_iter().enumerate() {
            let (Some(v), Some(a)) = (n.prop(key), [&max_a, &min_a][i].as_ref()) else {
                continue;
            };
            match amount(a, metric) {
                Ok(x) => limits[i] = Some(x),
                Err(e) => {
                    self.err(
                        Code::BadValue,
                        v.span,
                        e,
                        "not a limit",
                        "latency limits take a duration (`500ms`), rates a percentage (`1%`)",
                    );
                    return;
                }
            }
        }
        let written = n.prop("step");
        let step = written
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(default_step);
        let mut selected: Selected = Vec::new();
        for what in ["scenario", "group", "tag"] {
            if let Some(v) = n.prop(what) {
                if let Some(text) = v.as_str() {
                    selected.push((what, text.to_string(), v.span));
                }
            }
        }
        let pick = |what: &str| {
            selected
                .iter()
                .find(|(w, _, _)| *w == what)
                .map(|(_, v, _)| v.clone())
        };
        let scenario = pick("scenario").or_else(|| {
            (step.is_none() && !self.scenario.is_empty()).then(|| self.scenario.clone())
        });
        let group = pick("group");
        let tag_text = pick("tag");
        let tag = match tag_text.as_deref().map(crate::profile::parse_tag) {
            Some(Err(help)) => {
                let span = n.prop("tag").map_or(n.name_span, |v| v.span);
                self.err(
                    Code::BadValue,
                    span,
                    "bad tag selector",
                    "not `key=value`",
                    help,
                );
                return;
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
        let text = rule_text(
            metric,
            crate::profile::Selectors {
                step: step.as_deref(),
                scenario: scenario.as_deref(),
                group: group.as_deref(),
                tag: tag_text.as_deref(),
            },
            &max_a,
            &min_a,
        );
        self.thresholds.push((
            crate::profile::Threshold {
                metric: metric.to_string(),
                step,
                scenario,
                group,
                tag,
                max: limits[0],
                min: limits[1],
                abort_on_fail: n
                    .prop("abort-on-fail")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                text,
            },
            written.map(|v| v.span),
            selected,
        ));
    }

    fn duration(&mut self, v: Option<&Value>) -> Option<Duration> {
        // Malformed durations were reported by the schema check.
        v.and_then(|v| parse_duration(v).ok())
    }

    fn pause_parts(&mut self, n: &Node, allow_pacing: bool) -> Option<PauseParts> {
        let constant = self.duration(n.arg(0));
        let between = n.prop("between");
        let and = n.prop("and");
        let pacing = if allow_pacing {
            self.duration(n.prop("pacing"))
        } else {
            None
        };
        let forms = usize::from(n.arg(0).is_some())
            + usize::from(between.is_some() || and.is_some())
            + usize::from(n.prop("pacing").is_some());
        if forms > 1 {
            self.err(
                Code::Conflict,
                n.name_span,
                format!(
                    "`{}` takes one form: a duration, `between`/`and`, or `pacing`",
                    n.name
                ),
                "several forms given",
                "keep only one of them",
            );
            return None;
        }
        if forms == 0 {
            self.err(
                Code::MissingField,
                n.name_span,
                format!("`{}` needs a duration", n.name),
                "no duration",
                format!(
                    "write `{} \"1s\"` or `{} between=\"1s\" and=\"3s\"`",
                    n.name, n.name
                ),
            );
            return None;
        }
        let range = match (between, and) {
            (Some(b), Some(a)) => {
                let (lo, hi) = (self.duration(Some(b))?, self.duration(Some(a))?);
                if lo > hi {
                    self.err(
                        Code::BadValue,
                        b.span,
                        "`between` is greater than `and`",
                        "lower bound above upper bound",
                        "swap the two values",
                    );
                    return None;
                }
                Some((lo, hi))
            }
            (Some(_), None) | (None, Some(_)) => {
                self.err(
                    Code::MissingField,
                    n.name_span,
                    format!("`{}` needs both `between` and `and`", n.name),
                    "one bound missing",
                    "give both bounds of the uniform range",
                );
                return None;
            }
            (None, None) => None,
        };
        Some((constant, range, pacing))
    }

    fn think(&mut self, n: &Node) -> Think {
        match self.pause_parts(n, true) {
            Some((Some(d), _, _)) => Think::Constant(d),
            Some((_, Some((lo, hi)), _)) => Think::Uniform(lo, hi),
            Some((_, _, Some(p))) => Think::Pacing(p),
            _ => Think::None,
        }
    }

    fn pause(&mut self, n: &Node) -> Option<Pause> {
        match self.pause_parts(n, false)? {
            (Some(d), _, _) => Some(Pause::Constant(d)),
            (_, Some((lo, hi)), _) => Some(Pause::Uniform(lo, hi)),
            _ => None,
        }
    }

    /// The one property of `n` among `want.names` (a frame kind, a capture source); none, or
    /// several, is an error.
    fn one_of(&mut self, n: &Node, want: OneOf) -> Option<&'static str> {
        let given: Vec<&'static str> = want
            .names
            .iter()
            .copied()
            .filter(|k| n.prop(k).is_some())
            .collect();
        match given[..] {
            [one] => Some(one),
            [] => {
                let (msg, label) = want.missing;
                self.err(Code::MissingField, n.name_span, msg, label, want.help);
                None
            }
            _ => {
                let (msg, label) = want.several;
                let msg = format!("{msg}, found {}", given.join(" and "));
                self.err(Code::Conflict, n.name_span, msg, label, want.help);
                None
            }
        }
    }

    /// What a step that waits for messages (`receive` frames, `events`) waits for: `count=`
    /// of them (at least 1; default 1) within `timeout=` (default 5 s).
    fn awaited(&mut self, n: &Node, what: &str) -> Option<(u32, std::time::Duration)> {
        let count = match n.prop("count") {
            None => 1,
            Some(v) => match v.as_int().map(u32::try_from) {
                Some(Ok(c)) if c >= 1 => c,
                _ => {
                    self.err(
                        Code::BadValue,
                        v.span,
                        "`count` must be at least 1",
                        "not positive",
                        format!("wait for at least one {what}"),
                    );
                    return None;
                }
            },
        };
        let timeout = self
            .duration(n.prop("timeout"))
            .unwrap_or(std::time::Duration::from_secs(5));
        Some((count, timeout))
    }

    /// A `set VAR VALUE` step (HTTP or WebSocket): its statistics row, the variable, the
    /// value's template; the variable is known from here on, as text no more.
    fn set(&mut self, n: &Node) -> Option<(StatId, String, Tpl)> {
        let var = n.str_arg(0)?.to_string();
        let value = self.tpl(n.arg(1)?)?;
        self.known.insert(var.clone());
        self.text_vars.remove(&var);
        let stat = self.stat("set", &var);
        Some((stat, var, value))
    }

    fn stat(&mut self, kind: &str, name: &str) -> StatId {
        let key = (kind.to_string(), name.to_string());
        if let Some(&id) = self.stat_index.get(&key) {
            let entry = &mut self.stats[id as usize];
            if !entry.scenarios.contains(&self.scenario) {
                entry.scenarios.push(self.scenario.clone());
            }
            for g in &self.groups {
                if !entry.groups.contains(g) {
                    entry.groups.push(g.clone());
                }
            }
            // One row has one set of tags: steps sharing a name must carry the same ones, or
            // a tag's row would count requests of steps without it.
            let entry_tags = entry.tags.clone();
            let mut keys: Vec<&String> = entry_tags.keys().chain(self.tags.keys()).collect();
            keys.sort();
            keys.dedup();
            let clash = keys.into_iter().find_map(|k| {
                let (old, new) = (entry_tags.get(k), self.tags.get(k));
                let show = |v: Option<&String>| match v {
                    Some(v) => format!("{k}=\"{v}\""),
                    None => format!("without `{k}`"),
                };
                (old != new).then(|| (show(old), show(new)))
            });
            // Groups and `set`/`if`/`start` rows are in no breakdown: their tags do not count.
            let counted = !matches!(kind, "group" | "set" | "if" | "start");
            if let (Some((old, new)), true) = (clash, counted) {
                self.err(
                    Code::Conflict,
                    self.tag_span.unwrap_or(self.step_span),
                    format!("`{kind} {name}` is tagged {old} at one step and {new} here"),
                    "conflicting tags",
                    "steps sharing a statistics name share one row and its tags: give them the same tags, or different `name=`s",
                );
            }
            return id;
        }
        let id = self.stats.len() as StatId;
        self.stats.push(StatEntry {
            kind: kind.to_string(),
            name: name.to_string(),
            scenarios: vec![self.scenario.clone()],
            groups: self.groups.clone(),
            tags: self.tags.clone(),
        });
        self.stat_index.insert(key, id);
        id
    }

    /// Compile a template field and check the names it uses.
    fn tpl(&mut self, v: &Value) -> Option<Tpl> {
        let text = match &v.scalar {
            Scalar::Str(s) => s.clone(),
            other => other.to_text(),
        };
        self.tpl_text(&text, v)
    }

    /// An `Authorization: Basic …` header value from `user:password` (templates
    /// allowed: the rendering is encoded).
    fn basic_auth(&mut self, v: &Value) -> Option<Tpl> {
        let text = v.as_str()?;
        if !tmpl::is_template(text) {
            return Some(Tpl::fixed(format!(
                "Basic {}",
                tmpl::base64(text.as_bytes())
            )));
        }
        let mut tpl = self.tpl_text(
            &format!("Basic {{% filter b64encode %}}{text}{{% endfilter %}}"),
            v,
        )?;
        tpl.source = format!("Basic base64({text})");
        Some(tpl)
    }

    /// Compile `text` as a template whose names are reported at `v`.
    fn tpl_text(&mut self, text: &str, v: &Value) -> Option<Tpl> {
        match self.templates.add(text) {
            Ok((tpl, names)) => {
                self.check_names(names, v);
                self.check_usage(&tpl, v, false);
                Some(tpl)
            }
            Err(e) => {
                let span = e
                    .range()
                    .map_or(v.span, |r| self.sub_span(v, r.start, r.len()));
                self.bad_template(span, &e);
                None
            }
        }
    }

    fn bad_template(&mut self, span: Span, e: &minijinja::Error) {
        let detail = e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string);
        self.err(
            Code::BadTemplate,
            span,
            format!("template error: {detail}"),
            "here",
            "templates use minijinja syntax: `{{ name }}`, `{{ random_int(1, 10) }}`, `{% if x %}…{% endif %}`",
        );
    }

    /// The span of bytes `start .. start + len` of a string value's text, when the
    /// text appears verbatim in the source (no escapes); else the whole value.
    fn sub_span(&self, v: &Value, start: usize, len: usize) -> Span {
        let (Some(text), raw) = (v.as_str(), self.source.slice(v.span)) else {
            return v.span;
        };
        match raw.find(text) {
            Some(i)
                if !text.is_empty()
                    && start + len <= text.len()
                    && text.is_char_boundary(start)
                    && text.is_char_boundary(start + len) =>
            {
                Span::new(v.span.offset + i + start, len)
            }
            _ => v.span,
        }
    }

    /// The span of a variable name used inside a template value (first whole-word
    /// occurrence), else the whole value.
    fn name_span(&self, v: &Value, name: &str) -> Span {
        let Some(text) = v.as_str() else {
            return v.span;
        };
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        // Only inside `{{ … }}` / `{% … %}` (an `if` condition is all expression).
        let tags = template_tags(text);
        text.match_indices(name)
            .find(|(i, _)| {
                !word(text[..*i].chars().next_back())
                    && !word(text[i + name.len()..].chars().next())
                    && (tags.is_empty() || tags.iter().any(|(a, b)| a <= i && i < b))
            })
            .map_or(v.span, |(i, _)| self.sub_span(v, i, name.len()))
    }

    /// Feeder columns the template reads, and the filters and tests it calls: each
    /// must exist (minijinja only finds out when rendering).
    fn check_usage(&mut self, tpl: &Tpl, v: &Value, condition: bool) {
        // Reading the nested names parses the template again: only when feeders exist.
        let mut nested: Vec<String> = if self.columns.is_empty() {
            Vec::new()
        } else {
            self.templates.nested_names(tpl).into_iter().collect()
        };
        nested.sort();
        for path in nested {
            let mut parts = path.split('.');
            let (Some(root), Some(attr)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some((cols, csv)) = self.columns.get(root).cloned() else {
                continue;
            };
            if cols.iter().any(|c| c == attr) {
                continue;
            }
            let full = self.name_span(v, &format!("{root}.{attr}"));
            let span = self.narrow(v, full, root.len() + 1, attr.len());
            let list = cols.join(", ");
            let help = did_you_mean(attr, cols.iter().map(String::as_str)).unwrap_or_else(|| {
                if csv {
                    format!(
                        "its columns are: {list} — a CSV feeder's first line is its header row; add one (e.g. `{attr},…`) if the file has none"
                    )
                } else {
                    format!("its rows have the keys: {list}")
                }
            });
            self.err(
                Code::UndefinedVariable,
                span,
                format!("feeder `{root}` has no column `{attr}`"),
                "no such column",
                help,
            );
        }
        let Some(text) = v.as_str() else { return };
        let inner = if condition {
            Templates::condition_body(text)
        } else {
            text
        };
        let at = text.find(inner).unwrap_or(0);
        for (kind, name, offset) in tmpl::callees(inner, condition) {
            let (list, what) = match kind {
                Callee::Filter => (tmpl::FILTERS, "filter"),
                Callee::Test => (tmpl::TESTS, "test"),
            };
            if list.contains(&name.as_str()) {
                continue;
            }
            let help = did_you_mean(&name, list.iter().copied())
                .unwrap_or_else(|| format!("the {what}s are: {}", list.join(", ")));
            let span = self.sub_span(v, at + offset, name.len());
            self.err(
                Code::BadTemplate,
                span,
                format!("unknown {what} `{name}`"),
                &format!("not a {what}"),
                help,
            );
        }
        if condition {
            self.check_comparisons(inner, v, at);
        }
    }

    /// `n > 5` where `n` holds text (a regex or header capture, a CSV column): text
    /// and numbers do not compare by value, so this needs a cast (`n | int > 5`).
    fn check_comparisons(&mut self, expr: &str, v: &Value, at: usize) {
        let re = comparison_regex();
        for c in re.captures_iter(expr) {
            let (name, number) = match (c.name("l"), c.name("r"), c.name("l2"), c.name("r2")) {
                (Some(l), Some(r), _, _) => (l, r),
                (_, _, Some(l), Some(r)) => (r, l),
                _ => continue,
            };
            let n = name.as_str();
            let why = match (self.text_vars.get(n), n.split_once('.')) {
                (Some(why), _) => (*why).to_string(),
                (None, Some((root, _))) if matches!(self.columns.get(root), Some((_, true))) => {
                    format!("a column of the CSV feeder `{root}`")
                }
                _ => {
                    // Not known here (a JSON capture may hold "7"): checked when run.
                    if self.known.contains(n.split('.').next().unwrap_or(n))
                        && !self.numeric.iter().any(|x| x == n)
                    {
                        self.numeric.push(n.to_string());
                    }
                    continue;
                }
            };
            let span = self.sub_span(v, at + name.start(), n.len());
            self.err(
                Code::BadValue,
                span,
                format!(
                    "`{n}` is text ({why}) compared with the number {}",
                    number.as_str()
                ),
                "text, not a number",
                format!(
                    "text and numbers do not compare by value; cast it: `{n} | int` (or `| float`)"
                ),
            );
        }
    }

    /// `span` narrowed to `len` bytes `skip` bytes in, when it covers at least that.
    fn narrow(&self, v: &Value, span: Span, skip: usize, len: usize) -> Span {
        if span != v.span && span.len >= skip + len {
            Span::new(span.offset + skip, len)
        } else {
            span
        }
    }

    fn check_names(&mut self, names: HashSet<String>, v: &Value) {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        for name in names {
            if self.known.contains(&name) {
                continue;
            }
            let span = self.name_span(v, &name);
            if let Some(def) = self.later.get(&name).copied() {
                let (line, col) = self.source.line_col(def.offset);
                self.err(
                    Code::CaptureBeforeDefined,
                    span,
                    format!("`{name}` is used before it is captured or set"),
                    &format!("`{name}` does not exist yet here"),
                    format!("it is bound at line {line}, column {col}, by a later step; move this use after it"),
                );
            } else {
                let mut known: Vec<String> = self.known.iter().cloned().collect();
                known.sort();
                let help = did_you_mean(
                    &name,
                    known
                        .iter()
                        .map(String::as_str)
                        .chain(tmpl::BUILTIN_FUNCTIONS.iter().copied())
                        .chain(tmpl::CONTEXT_VARS.iter().copied()),
                )
                .unwrap_or_else(|| {
                    format!(
                        "define `{name}` under `vars`, capture it in an earlier step, or `set` it"
                    )
                });
                self.err(
                    Code::UndefinedVariable,
                    span,
                    format!("undefined variable `{name}`"),
                    "not defined",
                    help,
                );
            }
        }
    }

    /// A `headers` map, its names checked: a name is an HTTP token (`X-Trace`), and
    /// `Accept: "…"` (a colon from HTTP or YAML habits) is a common slip in KDL.
    fn headers(&mut self, n: &Node) -> Vec<(String, Tpl)> {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        for p in &n.props {
            if p.name.is_empty() || !p.name.chars().all(token) {
                let bare = p.name.trim_end_matches(':');
                let help = if !bare.is_empty() && bare.chars().all(token) {
                    format!("remove the colon: `{bare}`")
                } else {
                    "header names are letters, digits and `-`, e.g. `X-Request-Id`".into()
                };
                self.err(
                    Code::BadValue,
                    p.name_span,
                    format!("`{}` is not a valid header name", p.name),
                    "not a header name",
                    help,
                );
            }
        }
        self.map(n)
    }

    fn map(&mut self, n: &Node) -> Vec<(String, Tpl)> {
        let mut out = Vec::new();
        for p in &n.props {
            if let Some(t) = self.tpl(&p.value) {
                out.push((p.name.clone(), t));
            }
        }
        out
    }

    /// The step children of a node, in order.
    fn steps(&mut self, n: &Node) -> Vec<Step> {
        let mut out = Vec::new();
        for c in &n.children {
            if let Some(s) = self.step(c) {
                out.push(s);
            }
        }
        out
    }

    fn step(&mut self, n: &Node) -> Option<Step> {
        self.step_span = n.name_span;
        let Some(t) = n.child("tags") else {
            // A conflict of a step without its own `tags` is shown at the step.
            let saved = self.tag_span.take();
            let step = self.step_inner(n);
            self.tag_span = saved;
            return step;
        };
        let saved = (self.tags.clone(), self.tag_span);
        self.tags_node(t);
        let step = self.step_inner(n);
        (self.tags, self.tag_span) = saved;
        step
    }

    /// A `tags` node: its entries override the tags in force (literal strings only, at most
    /// [`MAX_TAG_KEYS`] keys in a plan).
    fn tags_node(&mut self, t: &Node) {
        self.tag_span = Some(t.name_span);
        for p in &t.props {
            let key_ok = p.name.len() <= MAX_TAG_LEN
                && p.name
                    .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && p.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                self.err(
                    Code::BadValue,
                    p.name_span,
                    format!("`{}` is not a valid tag key", p.name),
                    "not a tag key",
                    "tag keys are letters, digits and `_`, starting with a letter, e.g. `method`",
                );
                continue;
            }
            let value = match &p.value.scalar {
                Scalar::Str(s) => s.clone(),
                Scalar::Int(_) | Scalar::Float(_) | Scalar::Bool(_) => p.value.scalar.to_text(),
                Scalar::Null => {
                    self.err(
                        Code::BadValue,
                        p.value.span,
                        format!("tag `{}` has no value", p.name),
                        "null",
                        "a tag value is a literal string, e.g. `method=\"checkout\"`",
                    );
                    continue;
                }
            };
            if value.contains("{{") || value.len() > MAX_TAG_LEN {
                self.err(
                    Code::BadValue,
                    p.value.span,
                    if value.contains("{{") {
                        format!("tag `{}` is a template", p.name)
                    } else {
                        format!("tag `{}` is longer than {MAX_TAG_LEN} bytes", p.name)
                    },
                    "not a literal tag value",
                    "tag values are literal strings known when the plan is checked, so the set of result rows and Prometheus labels stays bounded",
                );
                continue;
            }
            if !self.tag_keys.contains(&p.name) {
                if self.tag_keys.len() >= MAX_TAG_KEYS {
                    self.err(
                        Code::BadValue,
                        p.name_span,
                        format!("more than {MAX_TAG_KEYS} tag keys in the plan"),
                        "one key too many",
                        format!(
                            "the plan's tag keys are: {}; reuse one of them",
                            self.tag_keys.join(", ")
                        ),
                    );
                    continue;
                }
                self.tag_keys.push(p.name.clone());
            }
            self.tags.insert(p.name.clone(), value);
        }
    }

    fn step_inner(&mut self, n: &Node) -> Option<Step> {
        match n.name.as_str() {
            "http" => self.http(n).map(|h| Step::Http(Box::new(h))),
            "ws" => self.ws(n).map(|w| Step::Ws(Box::new(w))),
            "sleep" => self.pause(n).map(Step::Sleep),
            "group" => {
                let name = n.str_arg(0)?.to_string();
                let stat = self.stat("group", &name);
                self.groups.push(name);
                let steps = self.steps(n);
                self.groups.pop();
                Some(Step::Group { stat, steps })
            }
            "repeat" => {
                let count = n.prop("count").and_then(Value::as_int);
                let duration = self.duration(n.prop("duration"));
                match (n.prop("count"), n.prop("duration")) {
                    (Some(_), Some(_)) => {
                        self.err(
                            Code::Conflict,
                            n.name_span,
                            "`repeat` takes `count` or `duration`, not both",
                            "both given",
                            "keep one of them",
                        );
                        return None;
                    }
                    (None, None) => {
                        self.err(
                            Code::MissingField,
                            n.name_span,
                            "`repeat` needs `count` or `duration`",
                            "missing count",
                            "write `repeat count=3 { ... }`",
                        );
                        return None;
                    }
                    (Some(v), None) if count.is_some_and(|c| c < 1) => {
                        self.err(
                            Code::BadValue,
                            v.span,
                            "`count` must be at least 1",
                            "not positive",
                            "repeat at least once",
                        );
                        return None;
                    }
                    _ => {}
                }
                if n.children.is_empty() {
                    self.err(
                        Code::EmptySteps,
                        n.name_span,
                        "`repeat` has nothing to repeat",
                        "empty",
                        if self.yaml {
                            "add the steps to repeat under its `steps:`"
                        } else {
                            "add the steps to repeat inside its block"
                        },
                    );
                    return None;
                }
                // `index`, the pass number (0, 1, …), is known inside the block.
                let added = self.known.insert("index".to_string());
                let steps = self.steps(n);
                if added {
                    self.known.remove("index");
                }
                Some(Step::Repeat {
                    count: count.map(|c| c as u64),
                    duration,
                    steps,
                })
            }
            "pick" => {
                let mut weights = Vec::new();
                let mut steps = Vec::new();
                for c in &n.children {
                    let w = match c.prop("weight") {
                        None => 1.0,
                        Some(v) => match v.as_f64() {
                            Some(w) if w > 0.0 && w.is_finite() => w,
                            Some(w) => {
                                self.err(Code::BadWeight, v.span, format!("weight must be greater than 0, found {w}"), "not a positive weight", "weights are relative: 3 and 1 run the first three times as often");
                                continue;
                            }
                            None => continue,
                        },
                    };
                    if let Some(s) = self.step(c) {
                        weights.push(w);
                        steps.push(s);
                    }
                }
                if n.children.is_empty() {
                    self.err(
                        Code::EmptySteps,
                        n.name_span,
                        "`pick` has nothing to pick from",
                        "empty",
                        "add the steps to choose between",
                    );
                }
                Some(Step::Pick { weights, steps })
            }
            "set" => {
                let (stat, var, value) = self.set(n)?;
                Some(Step::Set { stat, var, value })
            }
            "if" => {
                let cond = n.arg(0)?;
                let text = cond.as_str()?;
                self.numeric.clear();
                let condition = match self.templates.add_condition(text) {
                    Ok((t, names)) => {
                        self.check_names(names, cond);
                        self.check_usage(&t, cond, true);
                        t
                    }
                    Err(e) => {
                        // The condition compiles as `{% if … %}`: map the error back.
                        let inner = Templates::condition_body(text);
                        let at = text.find(inner).unwrap_or(0);
                        let span = e
                            .range()
                            .filter(|r| r.start >= 6 && r.end - 6 <= inner.len())
                            .map_or(cond.span, |r| {
                                self.sub_span(cond, at + r.start - 6, r.len())
                            });
                        self.bad_template(span, &e);
                        return None;
                    }
                };
                let numeric = std::mem::take(&mut self.numeric);
                let stat = self.stat("if", text.trim());
                let then = self.steps(n);
                let otherwise = n.child("else").map(|e| self.steps(e)).unwrap_or_default();
                Some(Step::If {
                    stat,
                    condition,
                    numeric,
                    then,
                    otherwise,
                })
            }
            "log" => Some(Step::Log(self.tpl(n.arg(0)?)?)),
            // Children that are not steps (checks, headers, …) are handled by their parent.
            _ => None,
        }
    }
}

/// Every variable a scenario binds (captures, `set`), with the span of the binding.
fn collect_bindings(n: &Node, out: &mut HashMap<String, Span>) {
    for c in &n.children {
        match c.name.as_str() {
            "capture" | "set" => {
                if let Some(v) = c.arg(0) {
                    if let Some(s) = v.as_str() {
                        out.entry(s.to_string()).or_insert(v.span);
                    }
                }
            }
            _ => {}
        }
        collect_bindings(c, out);
    }
}

/// `name OP number` or `number OP name` for the ordering operators.
fn comparison_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?:\b(?P<l>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*(?:<=|>=|<|>)\s*(?P<r>-?[0-9]+(?:\.[0-9]+)?)\b)|(?:(?P<l2>-?\b[0-9]+(?:\.[0-9]+)?)\s*(?:<=|>=|<|>)\s*(?P<r2>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\b)",
        )
        .expect("a fixed, tested regex")
    })
}

/// "did you mean" that also catches a swap of two letters in a short name
/// (`ulr` → `url`), which the similarity score alone misses.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<String> {
    crate::diag::did_you_mean(word, candidates.clone()).or_else(|| {
        candidates
            .into_iter()
            .find(|c| strsim::osa_distance(word, c) == 1 && word.len() >= 3)
            .map(|c| format!("did you mean `{c}`?"))
    })
}
