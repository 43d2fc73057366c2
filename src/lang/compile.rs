//! Compile a schema-checked AST into the immutable [`ir::Program`].
//!
//! This pass does the semantic checks that need more than one node, reporting all of
//! them: duplicate names, weights, URLs, bodies, regexes and JSON paths, template
//! syntax, variables used but never defined, captures used before the step that
//! binds them, feeder files. Templates compile here, once; plain strings stay static.
//! Nodes the schema check already rejected are skipped quietly (no double reports).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::ast::{Document, Node, Scalar, Value};
use super::check::parse_duration;
use super::ir::*;
use super::template::{Templates, Tpl};
use crate::diag::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::source::{Source, Span};

/// A pause as written: constant, uniform range, pacing period.
type PauseParts = (
    Option<Duration>,
    Option<(Duration, Duration)>,
    Option<Duration>,
);

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Compile a checked document. `base` is the folder feeder files are relative to.
pub fn compile(source: &Source, doc: &Document, base: &Path) -> Result<Program, Diagnostics> {
    let mut cx = Compiler {
        source,
        base,
        diags: Diagnostics::new(),
        templates: Templates::new(),
        stats: Vec::new(),
        stat_index: HashMap::new(),
        scenario: String::new(),
        known: HashSet::new(),
        later: HashMap::new(),
    };
    let program = cx.program(doc);
    if cx.diags.is_empty() {
        Ok(program)
    } else {
        Err(cx.diags)
    }
}

struct Compiler<'a> {
    source: &'a Source,
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
            if let Some(f) = self.feeder(n, &feeders) {
                self.known.insert(f.name.clone());
                feeders.push(f);
            }
        }
        for n in doc.nodes.iter().filter(|n| n.name == "vars") {
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
                    "headers" => http.headers = self.map(c),
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
                    "cookies" => http.cookies = c.arg(0).and_then(Value::as_bool).unwrap_or(true),
                    _ => {}
                }
            }
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
                "add `scenario \"name\" { http GET \"/\" }` (KDL) or a `scenarios:` list (YAML)",
            );
        }
        Program {
            name,
            host,
            http,
            vars,
            feeders,
            scenarios,
            stats: std::mem::take(&mut self.stats),
            templates: std::mem::take(&mut self.templates),
        }
    }

    fn host(&mut self, v: &Value) -> Option<String> {
        let s = v.as_str()?;
        match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Some(s.trim_end_matches('/').to_string())
            }
            Ok(u) => {
                self.err(
                    Code::BadUrl,
                    v.span,
                    format!(
                        "host must be an http:// or https:// URL, found scheme `{}`",
                        u.scheme()
                    ),
                    "not an HTTP URL",
                    "write e.g. `http://localhost:8000`",
                );
                None
            }
            Err(e) => {
                self.err(
                    Code::BadUrl,
                    v.span,
                    format!("bad host URL: {e}"),
                    "not a URL",
                    "write e.g. `http://localhost:8000`",
                );
                None
            }
        }
    }

    fn feeder(&mut self, n: &Node, existing: &[Feeder]) -> Option<Feeder> {
        let name = n.str_arg(0)?.to_string();
        let file_v = n.prop("file")?;
        let file = file_v.as_str()?.to_string();
        if existing.iter().any(|f| f.name == name) {
            let span = n.arg(0).map_or(n.name_span, |v| v.span);
            self.err(
                Code::DuplicateName,
                span,
                format!("feeder `{name}` is defined twice"),
                "second definition",
                "feeder names must be unique",
            );
            return None;
        }
        let mode = match n.prop("mode") {
            None => FeedMode::Sequential,
            Some(v) => match v.as_str() {
                Some("sequential") => FeedMode::Sequential,
                Some("random") => FeedMode::Random,
                Some("unique") => FeedMode::Unique,
                Some(other) => {
                    let help = did_you_mean(other, ["sequential", "random", "unique"])
                        .unwrap_or_else(|| "one of: sequential, random, unique".into());
                    self.err(
                        Code::BadValue,
                        v.span,
                        format!("unknown feeder mode `{other}`"),
                        "unknown mode",
                        help,
                    );
                    FeedMode::Sequential
                }
                None => return None,
            },
        };
        let format = match n.str_prop("format") {
            Some(f) => f.to_string(),
            None if file.to_ascii_lowercase().ends_with(".json") => "json".into(),
            None => "csv".into(),
        };
        if format != "csv" && format != "json" {
            if let Some(v) = n.prop("format") {
                self.err(
                    Code::BadValue,
                    v.span,
                    format!("unknown feeder format `{format}`"),
                    "unknown format",
                    "one of: csv, json",
                );
            }
            return None;
        }
        let path = self.base.join(&file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                self.err(
                    Code::MissingFile,
                    file_v.span,
                    format!("cannot read feeder file `{}`: {e}", path.display()),
                    "file not readable",
                    "feeder paths are relative to the plan file",
                );
                return None;
            }
        };
        let rows = match load_rows(&text, &format) {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                self.err(
                    Code::BadFeeder,
                    file_v.span,
                    format!("feeder file `{file}` has no rows"),
                    "empty",
                    "a feeder needs at least one row",
                );
                return None;
            }
            Err(e) => {
                self.err(
                    Code::BadFeeder,
                    file_v.span,
                    format!("feeder file `{file}`: {e}"),
                    "malformed data",
                    "CSV needs a header row; JSON must be an array of objects",
                );
                return None;
            }
        };
        Some(Feeder {
            name,
            file,
            mode,
            rows: Arc::new(rows),
        })
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
        let on_start = n
            .child("on-start")
            .map(|c| self.steps(c))
            .unwrap_or_default();
        let steps = self.steps(n);
        let on_stop = n
            .child("on-stop")
            .map(|c| self.steps(c))
            .unwrap_or_default();
        let has_steps = n
            .children
            .iter()
            .any(|c| !matches!(c.name.as_str(), "think" | "on-start" | "on-stop"));
        if !has_steps {
            let span = n.arg(0).map_or(n.name_span, |v| v.span);
            self.err(
                Code::EmptySteps,
                span,
                format!("scenario `{name}` has no steps"),
                "nothing to do",
                "add at least one step, e.g. `http GET \"/health\"`",
            );
        }
        Scenario {
            name: name.to_string(),
            weight,
            think,
            on_start,
            steps,
            on_stop,
        }
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

    fn stat(&mut self, kind: &str, name: &str) -> StatId {
        let key = (kind.to_string(), name.to_string());
        if let Some(&id) = self.stat_index.get(&key) {
            let entry = &mut self.stats[id as usize];
            if !entry.scenarios.contains(&self.scenario) {
                entry.scenarios.push(self.scenario.clone());
            }
            return id;
        }
        let id = self.stats.len() as StatId;
        self.stats.push(StatEntry {
            kind: kind.to_string(),
            name: name.to_string(),
            scenarios: vec![self.scenario.clone()],
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
        match self.templates.add(&text) {
            Ok((tpl, names)) => {
                self.check_names(names, v.span);
                Some(tpl)
            }
            Err(e) => {
                self.bad_template(v.span, &e);
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
            "in this template",
            "templates use minijinja syntax: `{{ name }}`, `{{ random_int(1, 10) }}`",
        );
    }

    fn check_names(&mut self, names: HashSet<String>, span: Span) {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        for name in names {
            if self.known.contains(&name) {
                continue;
            }
            if let Some(def) = self.later.get(&name).copied() {
                let (line, col) = self.source.line_col(def.offset);
                self.err(Code::CaptureBeforeDefined, span, format!("`{name}` is used before it is captured or set"), &format!("`{name}` does not exist yet here"), format!("it is bound at line {line}, column {col}, by a later step; move this use after it"));
            } else {
                let known: Vec<String> = self.known.iter().cloned().collect();
                let help = did_you_mean(&name, known.iter().map(String::as_str)).unwrap_or_else(|| format!("define `{name}` under `vars`, capture it in an earlier step, or `set` it"));
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
        match n.name.as_str() {
            "http" => self.http(n).map(|h| Step::Http(Box::new(h))),
            "ws" => self.ws(n).map(|w| Step::Ws(Box::new(w))),
            "sleep" => self.pause(n).map(Step::Sleep),
            "group" => {
                let name = n.str_arg(0)?.to_string();
                let stat = self.stat("group", &name);
                Some(Step::Group {
                    stat,
                    steps: self.steps(n),
                })
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
                Some(Step::Repeat {
                    count: count.map(|c| c as u64),
                    duration,
                    steps: self.steps(n),
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
                let var = n.str_arg(0)?.to_string();
                let value = self.tpl(n.arg(1)?)?;
                self.known.insert(var.clone());
                Some(Step::Set { var, value })
            }
            "if" => {
                let cond = n.arg(0)?;
                let text = cond.as_str()?;
                let condition = match self.templates.add_condition(text) {
                    Ok((t, names)) => {
                        self.check_names(names, cond.span);
                        t
                    }
                    Err(e) => {
                        self.bad_template(cond.span, &e);
                        return None;
                    }
                };
                let then = self.steps(n);
                let otherwise = n.child("else").map(|e| self.steps(e)).unwrap_or_default();
                Some(Step::If {
                    condition,
                    then,
                    otherwise,
                })
            }
            // Children that are not steps (checks, headers, …) are handled by their parent.
            _ => None,
        }
    }

    fn url(&mut self, v: &Value, ws: bool) -> Option<Tpl> {
        let s = v.as_str()?;
        let schemes: &[&str] = if ws {
            &["ws", "wss"]
        } else {
            &["http", "https"]
        };
        if !super::template::is_template(s) {
            if s.contains("://") {
                match url::Url::parse(s) {
                    Ok(u) if schemes.contains(&u.scheme()) => {}
                    Ok(u) => {
                        self.err(
                            Code::BadUrl,
                            v.span,
                            format!("unsupported scheme `{}`", u.scheme()),
                            "wrong scheme",
                            format!(
                                "use {}:// or a path starting with `/`",
                                schemes.join("://, ")
                            ),
                        );
                        return None;
                    }
                    Err(e) => {
                        self.err(
                            Code::BadUrl,
                            v.span,
                            format!("bad URL: {e}"),
                            "not a URL",
                            "write an absolute URL or a path starting with `/`",
                        );
                        return None;
                    }
                }
            } else if !s.starts_with('/') {
                self.err(
                    Code::BadUrl,
                    v.span,
                    format!("relative URL `{s}` must start with `/`"),
                    "missing leading slash",
                    format!("write `/{s}`"),
                );
                return None;
            }
        }
        self.tpl(v)
    }

    fn http(&mut self, n: &Node) -> Option<HttpStep> {
        let mv = n.arg(0)?;
        let method = mv.as_str()?.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            let help = did_you_mean(&method, METHODS.iter().copied())
                .unwrap_or_else(|| format!("one of: {}", METHODS.join(", ")));
            self.err(
                Code::BadValue,
                mv.span,
                format!("unknown HTTP method `{}`", mv.as_str().unwrap_or_default()),
                "unknown method",
                help,
            );
        }
        let uv = n.arg(1)?;
        let url = self.url(uv, false);
        let name = match n.str_prop("name") {
            Some(s) => s.to_string(),
            None => {
                let raw = uv.as_str().unwrap_or_default();
                raw.split('?').next().unwrap_or(raw).to_string()
            }
        };
        let stat = self.stat(&method, &name);
        let query = n.child("query").map(|q| self.map(q)).unwrap_or_default();
        let headers = n.child("headers").map(|h| self.map(h)).unwrap_or_default();
        let bodies: Vec<&Node> = n
            .children
            .iter()
            .filter(|c| matches!(c.name.as_str(), "json" | "form" | "text"))
            .collect();
        if bodies.len() > 1 {
            self.err(
                Code::Conflict,
                bodies[1].name_span,
                "a request has one body",
                "second body",
                "keep one of `json`, `form` or `text`",
            );
        }
        let body = match bodies.first() {
            None => Body::None,
            Some(b) if b.name == "json" => {
                let v = b.arg(0)?;
                if let Some(s) = v.as_str() {
                    if !super::template::is_template(s) {
                        if let Err(e) = serde_json::from_str::<serde_json::Value>(s) {
                            self.err(
                                Code::BadJson,
                                v.span,
                                format!("the JSON body is not valid JSON: {e}"),
                                "invalid JSON",
                                "KDL raw strings help: #\"{\"a\": 1}\"#",
                            );
                        }
                    }
                }
                Body::Json(self.tpl(v)?)
            }
            Some(b) if b.name == "form" => Body::Form(self.map(b)),
            Some(b) => Body::Text {
                body: self.tpl(b.arg(0)?)?,
                content_type: b
                    .str_prop("content-type")
                    .unwrap_or("text/plain")
                    .to_string(),
            },
        };
        let timeout = self.duration(n.prop("timeout"));
        let checks = n
            .children_named("check")
            .filter_map(|c| self.check(c, true))
            .collect();
        let captures = self.captures(n);
        Some(HttpStep {
            stat,
            method,
            url: url?,
            query,
            headers,
            body,
            timeout,
            checks,
            captures,
        })
    }

    fn captures(&mut self, n: &Node) -> Vec<Capture> {
        let mut out = Vec::new();
        for c in n.children_named("capture") {
            if let Some(cap) = self.capture(c) {
                out.push(cap);
            }
        }
        for cap in &out {
            self.known.insert(cap.var.clone());
        }
        out
    }

    fn regex(&mut self, v: &Value) -> Option<Pattern> {
        match regex::Regex::new(v.as_str()?) {
            Ok(r) => Some(Pattern(r)),
            Err(e) => {
                let msg = e.to_string();
                let last = msg.lines().last().unwrap_or("invalid regex").to_string();
                self.err(Code::BadRegex, v.span, format!("bad regex: {last}"), "invalid regex", "regexes use Rust `regex` syntax; escape `\\` twice in KDL quoted strings or use a raw string");
                None
            }
        }
    }

    fn json_path(&mut self, v: &Value) -> Option<JsonPath> {
        let s = v.as_str()?;
        match serde_json_path::JsonPath::parse(s) {
            Ok(path) => Some(JsonPath {
                source: s.to_string(),
                path,
            }),
            Err(e) => {
                self.err(
                    Code::BadJsonPath,
                    v.span,
                    format!("bad JSON path: {e}"),
                    "invalid JSON path",
                    "JSON paths start with `$`, e.g. `$.track_width` or `$.samples[0]`",
                );
                None
            }
        }
    }

    fn check(&mut self, n: &Node, http: bool) -> Option<Check> {
        const SUBJECTS: &[&str] = &[
            "status",
            "header",
            "json",
            "body-contains",
            "body-regex",
            "max-duration",
        ];
        const PREDICATES: &[&str] = &["equals", "contains", "regex", "length", "exists"];
        let subjects: Vec<&str> = SUBJECTS
            .iter()
            .copied()
            .filter(|s| n.prop(s).is_some())
            .collect();
        let preds: Vec<&str> = PREDICATES
            .iter()
            .copied()
            .filter(|s| n.prop(s).is_some())
            .collect();
        if subjects.len() != 1 {
            let msg = if subjects.is_empty() {
                "a check needs a subject".to_string()
            } else {
                format!("a check has one subject, found {}", subjects.join(" and "))
            };
            self.err(if subjects.is_empty() { Code::MissingField } else { Code::Conflict }, n.name_span, msg, "check", "write e.g. `check status=200` or `check json=\"$.status\" equals=\"healthy\"`; one check per line");
            return None;
        }
        if preds.len() > 1 {
            self.err(
                Code::Conflict,
                n.name_span,
                format!("a check has one predicate, found {}", preds.join(" and ")),
                "several predicates",
                "split it into several checks",
            );
            return None;
        }
        let subject = subjects[0];
        let sv = n.prop(subject)?;
        if !preds.is_empty() && !matches!(subject, "header" | "json") {
            self.err(
                Code::Conflict,
                sv.span,
                format!("`{}` takes no predicate", subject),
                "no predicate here",
                "predicates (`equals`, `contains`, …) go with `header` or `json`",
            );
            return None;
        }
        if !http && matches!(subject, "status" | "header") {
            self.err(
                Code::Conflict,
                sv.span,
                format!("`{subject}` cannot be checked on a WebSocket frame"),
                "not available on frames",
                "check frames with `json`, `body-contains` or `body-regex`",
            );
            return None;
        }
        let predicate = match preds.first().copied() {
            None | Some("exists") => {
                if n.prop("exists").and_then(Value::as_bool) == Some(false) {
                    self.err(
                        Code::BadValue,
                        n.prop("exists").map_or(sv.span, |v| v.span),
                        "`exists=false` is not supported",
                        "unsupported",
                        "check for presence only",
                    );
                    return None;
                }
                Predicate::Exists
            }
            Some("equals") => Predicate::Equals(n.prop("equals")?.scalar.to_json()),
            Some("contains") => Predicate::Contains(n.str_prop("contains")?.to_string()),
            Some("regex") => Predicate::Regex(self.regex(n.prop("regex")?)?),
            Some("length") => {
                let v = n.prop("length")?;
                match v.as_int() {
                    Some(l) if l >= 0 => Predicate::Length(l as u64),
                    _ => {
                        self.err(
                            Code::BadValue,
                            v.span,
                            "length must be 0 or more",
                            "negative",
                            "use a non-negative length",
                        );
                        return None;
                    }
                }
            }
            Some(_) => return None,
        };
        Some(match subject {
            "status" => {
                let s = sv.as_int()?;
                if !(100..=599).contains(&s) {
                    self.err(
                        Code::BadValue,
                        sv.span,
                        format!("{s} is not an HTTP status"),
                        "out of range",
                        "statuses are 100 to 599",
                    );
                    return None;
                }
                Check::Status(s as u16)
            }
            "max-duration" => Check::MaxDuration(self.duration(Some(sv))?),
            "body-contains" => Check::BodyContains(sv.as_str()?.to_string()),
            "body-regex" => Check::BodyRegex(self.regex(sv)?),
            "header" => Check::Header {
                name: sv.as_str()?.to_ascii_lowercase(),
                predicate,
            },
            _ => Check::Json {
                path: self.json_path(sv)?,
                predicate,
            },
        })
    }

    fn capture(&mut self, n: &Node) -> Option<Capture> {
        let var = n.str_arg(0)?.to_string();
        let sources: Vec<&str> = ["json", "regex", "header", "body"]
            .into_iter()
            .filter(|s| n.prop(s).is_some())
            .collect();
        if sources.len() != 1 {
            let msg = if sources.is_empty() {
                format!("capture `{var}` needs a source")
            } else {
                format!(
                    "capture `{var}` has one source, found {}",
                    sources.join(" and ")
                )
            };
            self.err(
                if sources.is_empty() {
                    Code::MissingField
                } else {
                    Code::Conflict
                },
                n.name_span,
                msg,
                "capture",
                "use one of `json=`, `regex=`, `header=` or `body=#true`",
            );
            return None;
        }
        let from = match sources[0] {
            "json" => CaptureFrom::Json(self.json_path(n.prop("json")?)?),
            "regex" => CaptureFrom::Regex(self.regex(n.prop("regex")?)?),
            "header" => CaptureFrom::Header(n.str_prop("header")?.to_ascii_lowercase()),
            _ => CaptureFrom::Body,
        };
        Some(Capture {
            var,
            from,
            default: n.prop("default").map(|v| v.scalar.to_json()),
        })
    }

    fn ws(&mut self, n: &Node) -> Option<WsSession> {
        let uv = n.arg(0)?;
        let url = self.url(uv, true);
        let name = n.str_prop("name").map_or_else(
            || format!("WS {}", uv.as_str().unwrap_or_default()),
            str::to_string,
        );
        let stat = self.stat("WS", &name);
        let headers = n.child("headers").map(|h| self.map(h)).unwrap_or_default();
        let mut steps = Vec::new();
        for c in &n.children {
            if let Some(s) = self.ws_step(c) {
                steps.push(s);
            }
        }
        Some(WsSession {
            stat,
            url: url?,
            headers,
            subprotocol: n.str_prop("subprotocol").map(str::to_string),
            timeout: self.duration(n.prop("timeout")),
            connection: n.str_prop("connection").map(str::to_string),
            steps,
        })
    }

    fn ws_step(&mut self, n: &Node) -> Option<WsStep> {
        match n.name.as_str() {
            "send" => {
                let name = n.str_arg(0)?.to_string();
                let kinds: Vec<&str> = ["text", "json", "binary"]
                    .into_iter()
                    .filter(|k| n.prop(k).is_some())
                    .collect();
                if kinds.len() != 1 {
                    let msg = if kinds.is_empty() {
                        "`send` needs a frame".to_string()
                    } else {
                        format!("`send` sends one frame, found {}", kinds.join(" and "))
                    };
                    self.err(
                        if kinds.is_empty() {
                            Code::MissingField
                        } else {
                            Code::Conflict
                        },
                        n.name_span,
                        msg,
                        "send",
                        "use one of `text=`, `json=` or `binary=` (hex)",
                    );
                    return None;
                }
                let v = n.prop(kinds[0])?;
                let frame = match kinds[0] {
                    "text" => Frame::Text(self.tpl(v)?),
                    "json" => {
                        if let Some(s) = v.as_str() {
                            if !super::template::is_template(s) {
                                if let Err(e) = serde_json::from_str::<serde_json::Value>(s) {
                                    self.err(
                                        Code::BadJson,
                                        v.span,
                                        format!("the JSON frame is not valid JSON: {e}"),
                                        "invalid JSON",
                                        "KDL raw strings help: #\"{\"command\": \"start\"}\"#",
                                    );
                                }
                            }
                        }
                        Frame::Json(self.tpl(v)?)
                    }
                    _ => match decode_hex(v.as_str()?) {
                        Some(bytes) => Frame::Binary(bytes),
                        None => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                "binary frames are written in hex",
                                "not hex",
                                "write bytes as hex digits, e.g. \"00ff10\"",
                            );
                            return None;
                        }
                    },
                };
                let stat = self.stat("send", &name);
                Some(WsStep::Send { stat, frame })
            }
            "receive" => {
                let name = n.str_arg(0)?.to_string();
                let count = match n.prop("count") {
                    None => 1,
                    Some(v) => match v.as_int() {
                        Some(c) if c >= 1 && c <= u32::MAX as i64 => c as u32,
                        _ => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                "`count` must be at least 1",
                                "not positive",
                                "wait for at least one frame",
                            );
                            return None;
                        }
                    },
                };
                let timeout = self
                    .duration(n.prop("timeout"))
                    .unwrap_or(Duration::from_secs(5));
                let frame_type = match n.prop("type") {
                    None => FrameType::Any,
                    Some(v) => match v.as_str() {
                        Some("text") => FrameType::Text,
                        Some("binary") => FrameType::Binary,
                        Some("any") => FrameType::Any,
                        Some(other) => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                format!("unknown frame type `{other}`"),
                                "unknown type",
                                "one of: text, binary, any",
                            );
                            return None;
                        }
                        None => return None,
                    },
                };
                let json = match n.prop("match") {
                    Some(v) => Some(self.json_path(v)?),
                    None => None,
                };
                if let (Some(v), None) = (n.prop("equals"), &json) {
                    self.err(
                        Code::Conflict,
                        v.span,
                        "`equals` needs `match`",
                        "nothing to compare",
                        "write `match=\"$.type\" equals=\"data\"`",
                    );
                    return None;
                }
                let regex = match n.prop("regex") {
                    Some(v) => Some(self.regex(v)?),
                    None => None,
                };
                let matcher = Matcher {
                    frame_type,
                    json,
                    equals: n.prop("equals").map(|v| v.scalar.to_json()),
                    regex,
                };
                let checks = n
                    .children_named("check")
                    .filter_map(|c| self.check(c, false))
                    .collect();
                let captures = self.captures(n);
                let stat = self.stat("receive", &name);
                Some(WsStep::Receive {
                    stat,
                    count,
                    timeout,
                    matcher,
                    checks,
                    captures,
                })
            }
            "expect-silence" => {
                let name = n.str_arg(0)?.to_string();
                let duration = self.duration(n.prop("for"))?;
                let stat = self.stat("silence", &name);
                Some(WsStep::ExpectSilence { stat, duration })
            }
            "sleep" => self.pause(n).map(WsStep::Sleep),
            "set" => {
                let var = n.str_arg(0)?.to_string();
                let value = self.tpl(n.arg(1)?)?;
                self.known.insert(var.clone());
                Some(WsStep::Set { var, value })
            }
            "close" => {
                let name = n.str_prop("name").unwrap_or("close").to_string();
                let code = match n.prop("code") {
                    None => 1000,
                    Some(v) => match v.as_int() {
                        Some(c) if (1000..=4999).contains(&c) => c as u16,
                        _ => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                "close codes are 1000 to 4999",
                                "out of range",
                                "1000 is a normal closure",
                            );
                            return None;
                        }
                    },
                };
                let stat = self.stat("close", &name);
                Some(WsStep::Close {
                    stat,
                    code,
                    reason: n.str_prop("reason").unwrap_or_default().to_string(),
                })
            }
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

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Rows of a feeder file as JSON objects.
pub fn load_rows(
    text: &str,
    format: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    if format == "json" {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let arr = v.as_array().ok_or("expected a JSON array of objects")?;
        arr.iter()
            .map(|row| {
                row.as_object()
                    .cloned()
                    .ok_or_else(|| "every row must be a JSON object".to_string())
            })
            .collect()
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| e.to_string())?;
            let mut m = serde_json::Map::new();
            for (h, v) in headers.iter().zip(rec.iter()) {
                m.insert(h.to_string(), serde_json::Value::String(v.to_string()));
            }
            rows.push(m);
        }
        Ok(rows)
    }
}
