//! The compiled program: an immutable step graph the runtime executes.
//!
//! Produced only by [`super::compile`] from a checked AST; shared behind an `Arc` by
//! every virtual user. It knows nothing of KDL or YAML: twins in both spellings
//! compile to equal programs (compare their [`super::dump`]). Statistics entries are
//! interned by (kind, name), so steps that share a name share one entry (Locust's
//! `name=`); [`StatId`] indexes [`Program::stats`].

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::template::{Templates, Tpl};

pub type StatId = u32;

#[derive(Debug, Serialize)]
pub struct Program {
    pub name: String,
    /// Default host for relative URLs (`--host` overrides).
    pub host: Option<String>,
    pub http: HttpDefaults,
    /// Plan variables, evaluated in order when a user starts.
    pub vars: Vec<(String, Tpl)>,
    /// Names of the variables declared under `secrets` (also in `vars`): never shown
    /// in a trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    pub feeders: Vec<Feeder>,
    pub scenarios: Vec<Scenario>,
    pub stats: Vec<StatEntry>,
    /// Pass/fail rules written in the plan (added to the profile's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<crate::profile::Threshold>,
    #[serde(skip)]
    pub templates: Templates,
}

impl Program {
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The statistics row `kind name` (e.g. `GET`, `/health`), by its id in events and snapshots.
    pub fn stat_id(&self, kind: &str, name: &str) -> Option<u32> {
        self.stats
            .iter()
            .position(|s| s.kind == kind && s.name == name)
            .map(|i| i as u32)
    }

    /// `--set NAME=…` overrides a plan variable: every name must be one of `vars`.
    pub fn check_set<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        for name in names {
            if self.vars.iter().any(|(v, _)| v == name) {
                continue;
            }
            let known: Vec<&str> = self.vars.iter().map(|(v, _)| v.as_str()).collect();
            let help =
                crate::diag::did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                    if known.is_empty() {
                        "the plan has no `vars`; --set overrides a variable declared there".into()
                    } else {
                        format!("the plan's variables are: {}", known.join(", "))
                    }
                });
            return Err(format!(
                "--set `{name}`: the plan has no variable `{name}`; {help}"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpDefaults {
    pub headers: Vec<(String, Tpl)>,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    pub redirects: u32,
    pub http2: bool,
    pub cookies: bool,
    /// Response bytes kept for checks, captures and `response` in templates; the rest of
    /// a longer body is read, counted and dropped (the step fails with `body`).
    pub max_body: u64,
    /// Content codings offered in `Accept-Encoding` and undone before checks and
    /// captures (`compression`); empty: none offered, nothing decoded.
    pub compression: Vec<Coding>,
}

/// A response content coding loadplan can undo (`compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    /// Every coding, in the order offered by default.
    pub const ALL: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd];

    /// The token in `Accept-Encoding` / `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The coding a token names (`x-gzip` is gzip, as RFC 9110 asks).
    pub fn parse(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

/// The default of `max-body`: 16 MiB.
pub const DEFAULT_MAX_BODY: u64 = 16 << 20;

impl Default for HttpDefaults {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            redirects: 10,
            http2: false,
            cookies: true,
            max_body: DEFAULT_MAX_BODY,
            compression: Coding::ALL.to_vec(),
        }
    }
}

/// One row of the statistics table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatEntry {
    /// `GET`, `POST`, … for HTTP; `WS`, `send`, `receive`, `silence`, `close`, `group`;
    /// `set`, `if` and `start` for steps that send nothing and can only fail (a template
    /// that does not render, a user that cannot start): in no protocol total.
    pub kind: String,
    pub name: String,
    /// Scenarios whose steps record into this entry.
    pub scenarios: Vec<String>,
    /// Groups (by name) whose steps record into this entry, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The entry's tags (`tags key="value"`): its own, else its enclosing groups' and its
    /// scenario's. Literal strings, so the set of labels is known when the plan is checked.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Most tag keys a plan may declare (every key becomes a Prometheus label value).
pub const MAX_TAG_KEYS: usize = 16;
/// Longest tag key or value, in bytes.
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    Sequential,
    Random,
    Unique,
}

#[derive(Debug, Clone, Serialize)]
pub struct Feeder {
    pub name: String,
    pub file: String,
    pub mode: FeedMode,
    /// Rows as JSON objects (CSV columns become string fields).
    #[serde(serialize_with = "ser_rows")]
    pub rows: Arc<Vec<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub weight: u32,
    pub think: Think,
    /// The row a user's failed start is counted on (`start <scenario>`: a unique feeder
    /// with no row left, a plan variable that does not render); only when one can fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<StatId>,
    pub on_start: Vec<Step>,
    pub steps: Vec<Step>,
    pub on_stop: Vec<Step>,
}

/// Time between iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Think {
    None,
    Constant(#[serde(serialize_with = "ser_duration")] Duration),
    Uniform(
        #[serde(serialize_with = "ser_duration")] Duration,
        #[serde(serialize_with = "ser_duration")] Duration,
    ),
    /// Start iterations every period (wait for the rest of it after each one).
    Pacing(#[serde(serialize_with = "ser_duration")] Duration),
}

/// A pause inside an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pause {
    Constant(#[serde(serialize_with = "ser_duration")] Duration),
    Uniform(
        #[serde(serialize_with = "ser_duration")] Duration,
        #[serde(serialize_with = "ser_duration")] Duration,
    ),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Http(Box<HttpStep>),
    Ws(Box<WsSession>),
    Sleep(Pause),
    Group {
        stat: StatId,
        steps: Vec<Step>,
    },
    Repeat {
        count: Option<u64>,
        #[serde(serialize_with = "ser_opt_duration")]
        duration: Option<Duration>,
        steps: Vec<Step>,
    },
    Pick {
        /// Relative weights, one per step.
        weights: Vec<f64>,
        steps: Vec<Step>,
    },
    Set {
        /// The row a failure to render is counted on (`set <var>`).
        stat: StatId,
        var: String,
        value: Tpl,
    },
    If {
        /// The row a condition that cannot be evaluated is counted on (`if <condition>`).
        stat: StatId,
        condition: Tpl,
        /// Variables (`n`, `row.count`) the condition compares with a number whose
        /// type only the run knows: text there is a `template` failure, not a
        /// comparison by type.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        numeric: Vec<String>,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
    /// Print a rendered text in a trace (`--trace`, `--http-debug`); nothing otherwise.
    Log(Tpl),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpStep {
    pub stat: StatId,
    pub method: String,
    pub url: Tpl,
    pub query: Vec<(String, Tpl)>,
    pub headers: Vec<(String, Tpl)>,
    pub body: Body,
    #[serde(serialize_with = "ser_opt_duration")]
    pub timeout: Option<Duration>,
    /// This step's `max-body` (else the plan's).
    pub max_body: Option<u64>,
    /// `events`: the response is a `text/event-stream` read event by event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Box<EventStream>>,
    /// This step's `compression` (else the plan's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Vec<Coding>>,
    /// Redirects to follow for this request (default: the plan's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects: Option<u32>,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
}

/// Server-sent events read from an `http` step's response (`events` child), like
/// `receive` reads WebSocket frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventStream {
    pub stat: StatId,
    /// The `first-event` row: the time from the request's start to the first event.
    pub first_stat: StatId,
    /// Matching events to wait for.
    pub count: u32,
    /// How long to wait for all of them, from the response head.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Only events of this `event:` type match (default: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Applied to each event's data (`frame_type` is always `any`).
    pub matcher: Matcher,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    None,
    Json(Tpl),
    Form(Vec<(String, Tpl)>),
    Text {
        body: Tpl,
        content_type: String,
    },
    /// `multipart { field …; file … }`: `multipart/form-data`, files shared like `File`.
    Multipart {
        fields: Vec<(String, Tpl)>,
        files: Vec<MultipartFile>,
    },
    /// `body file="…"`: a file's bytes, read once when the plan is compiled and shared by
    /// every user and request (no copy per request).
    File {
        file: String,
        content_type: String,
        #[serde(skip)]
        data: bytes::Bytes,
    },
}

/// One `file` part of a `multipart` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultipartFile {
    /// The form field name.
    pub name: String,
    /// The path as written (relative to the plan's folder).
    pub file: String,
    /// The file name sent (default: the path's last component).
    pub filename: String,
    pub content_type: String,
    /// Read once when the plan is compiled, shared by every request.
    #[serde(skip)]
    pub data: bytes::Bytes,
}

/// A compiled regex that dumps as its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// A compiled JSON path that dumps as its source.
#[derive(Debug, Clone)]
pub struct JsonPath {
    pub source: String,
    pub path: serde_json_path::JsonPath,
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Predicate {
    Exists,
    Equals(serde_json::Value),
    Contains(String),
    Regex(Pattern),
    Length(u64),
    /// `equals="{{ sid }}"`: rendered per response, then compared like `Equals` (a
    /// rendering that is JSON — a number, `true` — compares as that value).
    EqualsTpl(Tpl),
    ContainsTpl(Tpl),
    /// A templated regex, compiled after rendering.
    RegexTpl(Tpl),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Status(u16),
    /// `status="200,201"`, `"200-299"`, `"2xx"`: inclusive ranges.
    StatusIn(Vec<(u16, u16)>),
    MaxDuration(#[serde(serialize_with = "ser_duration")] Duration),
    BodyContains(String),
    BodyRegex(Pattern),
    BodyContainsTpl(Tpl),
    BodyRegexTpl(Tpl),
    /// Run time only: a templated check whose value could not be rendered; it fails
    /// with this message.
    Unrenderable(String),
    Header {
        name: String,
        predicate: Predicate,
    },
    Json {
        path: JsonPath,
        predicate: Predicate,
    },
    /// A JSON path with a template (`$.users[{{ index }}].name`), parsed after
    /// rendering.
    JsonTpl {
        path: Tpl,
        predicate: Predicate,
    },
}

impl Check {
    /// Holds a template to render per response.
    pub fn is_templated(&self) -> bool {
        match self {
            Check::BodyContainsTpl(_) | Check::BodyRegexTpl(_) | Check::JsonTpl { .. } => true,
            Check::Header { predicate, .. } | Check::Json { predicate, .. } => matches!(
                predicate,
                Predicate::EqualsTpl(_) | Predicate::ContainsTpl(_) | Predicate::RegexTpl(_)
            ),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFrom {
    Json(JsonPath),
    Regex(Pattern),
    /// A templated JSON path or regex, parsed after rendering.
    JsonTpl(Tpl),
    RegexTpl(Tpl),
    Header(String),
    Body,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capture {
    pub var: String,
    pub from: CaptureFrom,
    pub default: Option<serde_json::Value>,
    /// A templated default, rendered when nothing matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tpl: Option<Tpl>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WsSession {
    pub stat: StatId,
    pub url: Tpl,
    pub headers: Vec<(String, Tpl)>,
    pub subprotocol: Option<String>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub timeout: Option<Duration>,
    pub connection: Option<String>,
    pub steps: Vec<WsStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Frame {
    Text(Tpl),
    Json(Tpl),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameType {
    Text,
    Binary,
    Any,
}

/// What makes a received frame count for a `receive`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matcher {
    pub frame_type: FrameType,
    pub json: Option<JsonPath>,
    pub equals: Option<serde_json::Value>,
    pub regex: Option<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WsStep {
    Send {
        stat: StatId,
        frame: Frame,
    },
    Receive {
        stat: StatId,
        count: u32,
        #[serde(serialize_with = "ser_duration")]
        timeout: Duration,
        matcher: Matcher,
        checks: Vec<Check>,
        captures: Vec<Capture>,
    },
    ExpectSilence {
        stat: StatId,
        #[serde(serialize_with = "ser_duration")]
        duration: Duration,
    },
    Sleep(Pause),
    Set {
        /// The row a failure to render is counted on (`set <var>`).
        stat: StatId,
        var: String,
        value: Tpl,
    },
    Close {
        stat: StatId,
        code: u16,
        reason: String,
    },
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

type Rows = Arc<Vec<serde_json::Map<String, serde_json::Value>>>;

fn ser_rows<S: Serializer>(rows: &Rows, s: S) -> Result<S::Ok, S::Error> {
    rows.as_slice().serialize(s)
}
