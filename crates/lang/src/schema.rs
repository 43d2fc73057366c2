//! The language reference as data: every node, its arguments, properties and children.
//!
//! One table drives the schema checks (unknown/missing/mistyped fields), the YAML
//! mapping rule (which keys are arguments, which are children), the generated JSON
//! Schema for YAML plans and the reference in `grammar/`. Adding a node here is what
//! makes it exist in both spellings at once.

/// The type a field accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Num,
    Bool,
    /// A duration string such as `500ms`, `2s`, `1m30s`.
    Duration,
    /// A byte size such as `16MiB`, `512KiB`, `1MB` (a bare integer means bytes).
    Size,
    /// Any scalar (string, number, boolean, null).
    Any,
}

impl Ty {
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "an integer",
            Ty::Num => "a number",
            Ty::Bool => "a boolean",
            Ty::Duration => "a duration string like \"500ms\" or \"2s\"",
            Ty::Size => "a size like \"16MiB\" or \"512KiB\"",
            Ty::Any => "a scalar",
        }
    }
}

/// An argument or property.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field {
        name,
        ty,
        required: false,
        doc,
    }
}

/// Which step kinds a step list accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepSet {
    /// Steps of an iteration: http, ws, sleep, group, repeat, pick, set, if.
    Main,
    /// Steps inside a `ws` session: send, receive, expect-silence, sleep, set, close.
    Ws,
}

impl StepSet {
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            StepSet::Main => &[
                "http", "ws", "sleep", "group", "repeat", "pick", "set", "if", "log",
            ],
            StepSet::Ws => &["send", "receive", "expect-silence", "sleep", "set", "close"],
        }
    }
}

/// How a child appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    /// At most once; YAML key = node name.
    One,
    /// Any number; YAML key holds a list of node bodies.
    Many(&'static str),
    /// A string-keyed map (headers, query, vars, form); KDL: properties or `key value`
    /// children; YAML: a mapping.
    Map,
    /// An ordered list of steps; YAML key `steps` holding one-key maps.
    Steps(StepSet),
}

#[derive(Clone, Copy, Debug)]
pub struct Child {
    pub node: &'static str,
    pub kind: ChildKind,
}

const fn one(node: &'static str) -> Child {
    Child {
        node,
        kind: ChildKind::One,
    }
}
const fn many(node: &'static str, key: &'static str) -> Child {
    Child {
        node,
        kind: ChildKind::Many(key),
    }
}
const fn map(node: &'static str) -> Child {
    Child {
        node,
        kind: ChildKind::Map,
    }
}
const fn steps(set: StepSet) -> Child {
    Child {
        node: "steps",
        kind: ChildKind::Steps(set),
    }
}

/// A node of the language.
#[derive(Clone, Copy, Debug)]
pub struct NodeSpec {
    pub name: &'static str,
    pub args: &'static [Field],
    pub props: &'static [Field],
    pub children: &'static [Child],
    /// Map nodes hold arbitrary keys (see [`ChildKind::Map`]).
    pub is_map: bool,
    pub doc: &'static str,
}

impl NodeSpec {
    pub fn steps(&self) -> Option<StepSet> {
        self.children.iter().find_map(|c| match c.kind {
            ChildKind::Steps(s) => Some(s),
            _ => None,
        })
    }

    pub fn child(&self, node: &str) -> Option<&'static Child> {
        self.children.iter().find(|c| c.node == node)
    }

    /// The YAML key under which a child is written.
    pub fn yaml_key(child: &Child) -> &'static str {
        match child.kind {
            ChildKind::Many(key) => key,
            ChildKind::Steps(_) => "steps",
            ChildKind::One | ChildKind::Map => child.node,
        }
    }
}

const fn node(
    name: &'static str,
    args: &'static [Field],
    props: &'static [Field],
    children: &'static [Child],
    doc: &'static str,
) -> NodeSpec {
    NodeSpec {
        name,
        args,
        props,
        children,
        is_map: false,
        doc,
    }
}

const fn map_node(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        args: &[],
        props: &[],
        children: &[],
        is_map: true,
        doc,
    }
}

/// Properties every step accepts.
const STEP_NAME: Field = opt(
    "name",
    Ty::Str,
    "statistics name (default derived from the step)",
);
const STEP_WEIGHT: Field = opt(
    "weight",
    Ty::Num,
    "relative weight when inside `pick` (default 1)",
);

const DURATION_ARG: &[Field] = &[opt("duration", Ty::Duration, "a constant pause")];
const BETWEEN: &[Field] = &[
    opt(
        "between",
        Ty::Duration,
        "lower bound of a uniform random pause",
    ),
    opt("and", Ty::Duration, "upper bound of a uniform random pause"),
    STEP_WEIGHT,
];

/// The root of a plan document.
pub const DOCUMENT: NodeSpec = node(
    "document",
    &[],
    &[],
    &[
        one("plan"),
        map("vars"),
        map("secrets"),
        many("feeder", "feeders"),
        many("threshold", "thresholds"),
        many("scenario", "scenarios"),
    ],
    "A plan file: metadata, variables, feeders, thresholds and scenarios.",
);

pub const SPECS: &[NodeSpec] = &[
    DOCUMENT,
    node(
        "plan",
        &[req("name", Ty::Str, "the plan's name")],
        &[],
        &[
            one("host"),
            map("headers"),
            one("timeout"),
            one("connect-timeout"),
            one("redirects"),
            one("http2"),
            one("cookies"),
            one("max-body"),
            one("compression"),
            one("auth"),
        ],
        "Plan metadata and HTTP defaults.",
    ),
    node(
        "host",
        &[req("url", Ty::Str, "base URL for relative step URLs")],
        &[],
        &[],
        "Default target, e.g. `http://localhost:8000` (overridden by `--host`).",
    ),
    node(
        "timeout",
        &[req("duration", Ty::Duration, "request timeout")],
        &[],
        &[],
        "Default request timeout (default 30s).",
    ),
    node(
        "connect-timeout",
        &[req("duration", Ty::Duration, "connect timeout")],
        &[],
        &[],
        "Default connect timeout for HTTP and WebSocket (default 10s).",
    ),
    node(
        "redirects",
        &[req("max", Ty::Int, "redirects to follow; 0 disables")],
        &[],
        &[],
        "How many redirects to follow (default 10).",
    ),
    node(
        "http2",
        &[req("enabled", Ty::Bool, "use HTTP/2 with prior knowledge")],
        &[],
        &[],
        "Speak HTTP/2 (prior knowledge) instead of HTTP/1.1 (default false).",
    ),
    node(
        "cookies",
        &[req("enabled", Ty::Bool, "keep a cookie jar per user")],
        &[],
        &[],
        "Keep a cookie jar per virtual user (default true).",
    ),
    node(
        "max-body",
        &[req(
            "size",
            Ty::Size,
            "response bytes kept for checks and captures",
        )],
        &[],
        &[],
        "Response bytes kept for checks and captures (default 16MiB); the rest is read, counted and dropped.",
    ),
    node(
        "compression",
        &[req(
            "codings",
            Ty::Any,
            "#true (gzip deflate br zstd), #false, or codings like \"gzip br\"",
        )],
        &[],
        &[],
        "Response compression: codings offered in Accept-Encoding and decoded before checks and captures (default #true).",
    ),
    map_node(
        "headers",
        "Request headers: name → value (templates allowed).",
    ),
    map_node("vars", "Plan variables: name → value (templates allowed)."),
    map_node(
        "secrets",
        "Plan variables that a trace never shows: name → value (templates allowed).",
    ),
    map_node(
        "tags",
        "Labels for the results: key → literal string (no templates), e.g. `tags method=\"checkout\"`; inherited from the scenario and enclosing groups, a step's own value wins.",
    ),
    map_node(
        "query",
        "Query parameters: name → value (templates allowed).",
    ),
    map_node(
        "form",
        "A form-encoded body: name → value (templates allowed).",
    ),
    node(
        "feeder",
        &[req(
            "name",
            Ty::Str,
            "the name templates use: `{{ NAME.column }}`",
        )],
        &[
            req(
                "file",
                Ty::Str,
                "CSV (with header row) or JSON (array of objects) file, relative to the plan",
            ),
            opt(
                "mode",
                Ty::Str,
                "`sequential` (default), `random` or `unique` (one row per user)",
            ),
            opt(
                "format",
                Ty::Str,
                "`csv` or `json` (default from the file extension)",
            ),
        ],
        &[],
        "A data feeder: rows from a file handed to users.",
    ),
    node(
        "scenario",
        &[req("name", Ty::Str, "the scenario's name")],
        &[opt("weight", Ty::Int, "share of users (default 1)")],
        &[
            one("think"),
            one("on-start"),
            one("on-stop"),
            map("tags"),
            many("threshold", "thresholds"),
            steps(StepSet::Main),
        ],
        "What one kind of virtual user does, iteration after iteration.",
    ),
    node(
        "think",
        DURATION_ARG,
        &[
            opt(
                "between",
                Ty::Duration,
                "lower bound of a uniform random think time",
            ),
            opt(
                "and",
                Ty::Duration,
                "upper bound of a uniform random think time",
            ),
            opt(
                "pacing",
                Ty::Duration,
                "fixed iteration period: wait until the period is over",
            ),
        ],
        &[],
        "Time between iterations: constant, uniform between two bounds, or pacing.",
    ),
    node(
        "on-start",
        &[],
        &[],
        &[steps(StepSet::Main)],
        "Steps each user runs once before its first iteration.",
    ),
    node(
        "on-stop",
        &[],
        &[],
        &[steps(StepSet::Main)],
        "Steps each user runs once when it stops.",
    ),
    node(
        "http",
        &[
            req(
                "method",
                Ty::Str,
                "GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
            ),
            req("url", Ty::Str, "absolute, or relative to the host"),
        ],
        &[
            STEP_NAME,
            STEP_WEIGHT,
            opt(
                "timeout",
                Ty::Duration,
                "request timeout (default from the plan)",
            ),
            opt(
                "max-body",
                Ty::Size,
                "response bytes kept for checks and captures (default from the plan)",
            ),
            opt(
                "redirects",
                Ty::Int,
                "redirects to follow for this request; 0 returns the redirect itself (default from the plan)",
            ),
            opt(
                "compression",
                Ty::Any,
                "#true, #false or codings like \"gzip br\" for this request (default from the plan)",
            ),
        ],
        &[
            map("query"),
            map("headers"),
            one("auth"),
            one("json"),
            map("form"),
            one("text"),
            one("body"),
            one("multipart"),
            many("check", "checks"),
            many("capture", "captures"),
            many("threshold", "thresholds"),
            one("events"),
            map("tags"),
        ],
        "An HTTP request.",
    ),
    node(
        "body",
        &[],
        &[
            req(
                "file",
                Ty::Str,
                "a file sent as the body, relative to the plan file's folder",
            ),
            opt(
                "content-type",
                Ty::Str,
                "the content type sent (default application/octet-stream)",
            ),
        ],
        &[],
        "A raw body from a file, read once when the plan is checked and shared by every request.",
    ),
    node(
        "multipart",
        &[],
        &[],
        &[many("field", "fields"), many("file", "files")],
        "A multipart/form-data body: text fields and files (files read once when the plan is checked).",
    ),
    node(
        "field",
        &[
            req("name", Ty::Str, "the field name"),
            req("value", Ty::Str, "the field value (templates allowed)"),
        ],
        &[],
        &[],
        "A text field of a multipart body.",
    ),
    node(
        "file",
        &[req("name", Ty::Str, "the field name")],
        &[
            req(
                "path",
                Ty::Str,
                "the file sent, relative to the plan file's folder",
            ),
            opt(
                "content-type",
                Ty::Str,
                "the part's content type (default application/octet-stream)",
            ),
            opt(
                "filename",
                Ty::Str,
                "the file name sent (default: the path's last component)",
            ),
        ],
        &[],
        "A file part of a multipart body.",
    ),
    node(
        "events",
        &[req("name", Ty::Str, "statistics name of the events")],
        &[
            opt(
                "count",
                Ty::Int,
                "how many matching events to wait for (default 1)",
            ),
            opt(
                "timeout",
                Ty::Duration,
                "how long to wait for all of them after the response head (default 5s)",
            ),
            opt(
                "type",
                Ty::Str,
                "only events of this `event:` type match (default any)",
            ),
            opt(
                "match",
                Ty::Str,
                "a JSON path that must exist in a matching event's data",
            ),
            opt("equals", Ty::Any, "the value at `match` must equal this"),
            opt(
                "regex",
                Ty::Str,
                "a regex a matching event's data must match",
            ),
        ],
        &[many("check", "checks"), many("capture", "captures")],
        "Read the response as server-sent events (text/event-stream); events that do not match are counted as unmatched.",
    ),
    node(
        "threshold",
        &[req(
            "metric",
            Ty::Str,
            "p50, p90, p95, p99, p99.9, max, avg, error_rate, check_rate or rate",
        )],
        &[
            opt(
                "step",
                Ty::Str,
                "a statistics entry such as `GET /health` (default: the enclosing step, scenario or plan)",
            ),
            opt(
                "tag",
                Ty::Str,
                "only steps carrying this tag, written `key=value` (e.g. `method=checkout`)",
            ),
            opt("scenario", Ty::Str, "only the steps of this scenario"),
            opt("group", Ty::Str, "only the steps inside this group"),
            opt(
                "max",
                Ty::Any,
                "upper limit: latency `500ms`, rate `5%` or a number",
            ),
            opt("min", Ty::Any, "lower limit"),
            opt(
                "abort-on-fail",
                Ty::Bool,
                "stop the run as soon as the rule fails",
            ),
        ],
        &[],
        "A pass/fail rule on the run's statistics, like a profile's thresholds.",
    ),
    node(
        "auth",
        &[],
        &[req(
            "basic",
            Ty::Str,
            "`user:password` for HTTP basic auth (templates allowed)",
        )],
        &[],
        "HTTP basic auth: sends `Authorization: Basic …` (under `plan`, with every request).",
    ),
    node(
        "json",
        &[req("body", Ty::Str, "JSON text (templates allowed)")],
        &[],
        &[],
        "A JSON body (sets `content-type: application/json`).",
    ),
    node(
        "text",
        &[req("body", Ty::Str, "the body (templates allowed)")],
        &[opt("content-type", Ty::Str, "default `text/plain`")],
        &[],
        "A raw text body.",
    ),
    node(
        "check",
        &[],
        &[
            opt(
                "status",
                Ty::Any,
                "the status code must equal this, or be in a list `\"200,201\"`, range `\"200-299\"` or class `\"2xx\"`",
            ),
            opt("header", Ty::Str, "subject: a response header"),
            opt("json", Ty::Str, "subject: a JSON path into the body"),
            opt("body-contains", Ty::Str, "the body must contain this text"),
            opt("body-regex", Ty::Str, "the body must match this regex"),
            opt(
                "max-duration",
                Ty::Duration,
                "the step must take at most this long",
            ),
            opt(
                "equals",
                Ty::Any,
                "predicate: the subject equals this value",
            ),
            opt(
                "contains",
                Ty::Str,
                "predicate: the subject contains this text",
            ),
            opt(
                "regex",
                Ty::Str,
                "predicate: the subject matches this regex",
            ),
            opt(
                "length",
                Ty::Int,
                "predicate: the subject (array/string) has this length",
            ),
            opt(
                "exists",
                Ty::Bool,
                "predicate: the subject exists (default for `json`/`header`)",
            ),
        ],
        &[],
        "A check on a response or frame: counted as passed/failed, the user carries on.",
    ),
    node(
        "capture",
        &[req("var", Ty::Str, "the variable to bind")],
        &[
            opt("json", Ty::Str, "a JSON path into the body"),
            opt(
                "regex",
                Ty::Str,
                "a regex on the body (group 1, or the whole match)",
            ),
            opt("header", Ty::Str, "a response header"),
            opt("body", Ty::Bool, "the whole body"),
            opt(
                "default",
                Ty::Any,
                "value when nothing matches (else the step fails)",
            ),
        ],
        &[],
        "Bind a value from a response or frame to a variable for later steps.",
    ),
    node(
        "ws",
        &[req(
            "url",
            Ty::Str,
            "ws://, wss://, or a path relative to the host",
        )],
        &[
            opt(
                "name",
                Ty::Str,
                "statistics name of the connect step (default the URL without its query)",
            ),
            STEP_WEIGHT,
            opt(
                "timeout",
                Ty::Duration,
                "connect timeout (default from the plan)",
            ),
            opt("subprotocol", Ty::Str, "Sec-WebSocket-Protocol to offer"),
            opt(
                "connection",
                Ty::Str,
                "a named connection kept open across iterations",
            ),
        ],
        &[
            map("headers"),
            map("tags"),
            many("threshold", "thresholds"),
            steps(StepSet::Ws),
        ],
        "A WebSocket session: connect, then its steps in order.",
    ),
    node(
        "send",
        &[req("name", Ty::Str, "statistics name")],
        &[
            opt("text", Ty::Str, "a text frame (templates allowed)"),
            opt(
                "json",
                Ty::Str,
                "a text frame holding JSON (templates allowed)",
            ),
            opt("binary", Ty::Str, "a binary frame, hex-encoded"),
        ],
        &[],
        "Send one frame.",
    ),
    node(
        "receive",
        &[req("name", Ty::Str, "statistics name")],
        &[
            opt(
                "count",
                Ty::Int,
                "how many matching frames to wait for (default 1)",
            ),
            opt(
                "timeout",
                Ty::Duration,
                "how long to wait in all (default 5s)",
            ),
            opt("type", Ty::Str, "`text`, `binary` or `any` (default `any`)"),
            opt(
                "match",
                Ty::Str,
                "a JSON path that must exist in a matching frame",
            ),
            opt("equals", Ty::Any, "the value at `match` must equal this"),
            opt("regex", Ty::Str, "a regex a matching text frame must match"),
        ],
        &[many("check", "checks"), many("capture", "captures")],
        "Wait for frames; frames that do not match are counted as unmatched.",
    ),
    node(
        "expect-silence",
        &[req("name", Ty::Str, "statistics name")],
        &[req("for", Ty::Duration, "how long no frame may arrive")],
        &[],
        "Fail if any frame arrives within the given time.",
    ),
    node(
        "close",
        &[],
        &[
            opt("name", Ty::Str, "statistics name (default `close`)"),
            opt("code", Ty::Int, "close code (default 1000)"),
            opt("reason", Ty::Str, "close reason"),
        ],
        &[],
        "Close the WebSocket session.",
    ),
    node(
        "sleep",
        DURATION_ARG,
        BETWEEN,
        &[],
        "Pause inside an iteration: constant or uniform between two bounds.",
    ),
    node(
        "group",
        &[req("name", Ty::Str, "statistics name of the transaction")],
        &[STEP_WEIGHT],
        &[map("tags"), steps(StepSet::Main)],
        "Steps timed together as one transaction.",
    ),
    node(
        "repeat",
        &[],
        &[
            STEP_NAME,
            STEP_WEIGHT,
            opt("count", Ty::Int, "how many times"),
            opt(
                "duration",
                Ty::Duration,
                "repeat until this much time has passed",
            ),
        ],
        &[steps(StepSet::Main)],
        "Run the child steps a number of times or for a duration.",
    ),
    node(
        "pick",
        &[],
        &[STEP_WEIGHT],
        &[steps(StepSet::Main)],
        "Run one child step per pass, chosen by weight.",
    ),
    node(
        "set",
        &[
            req("var", Ty::Str, "the variable"),
            req("value", Ty::Any, "its value (templates allowed)"),
        ],
        &[STEP_WEIGHT],
        &[],
        "Assign a variable.",
    ),
    node(
        "if",
        &[req(
            "condition",
            Ty::Str,
            "a template expression, e.g. `track_width > 100`",
        )],
        &[STEP_WEIGHT],
        &[steps(StepSet::Main), one("else")],
        "Run the steps when the condition is true (else the `else` steps).",
    ),
    node(
        "log",
        &[req(
            "message",
            Ty::Str,
            "the text to print (templates allowed)",
        )],
        &[STEP_WEIGHT],
        &[],
        "Print a rendered text in a trace (`run --trace`, `--http-debug`).",
    ),
    node(
        "else",
        &[],
        &[],
        &[steps(StepSet::Main)],
        "Steps of an `if` when its condition is false.",
    ),
];

/// A field name people reach for that the language spells differently (Locust, k6
/// or Artillery habits), when "did you mean" finds nothing close: the field meant
/// (empty when there is no single one) and a help line.
pub fn alias(node: &str, key: &str) -> Option<(&'static str, &'static str)> {
    Some(match (node, key) {
        ("capture" | "set", "name" | "variable" | "as") => (
            "var",
            "the variable is `var`: KDL `capture \"track_width\" json=\"$.track_width\"`, YAML `{ var: track_width, json: ... }`",
        ),
        ("http" | "ws", "path" | "uri" | "endpoint") => (
            "url",
            "the address is `url`: KDL `http GET \"/health\"`, YAML `{ method: GET, url: /health }`",
        ),
        ("http", "body" | "data" | "payload") => (
            "",
            "a body is a child node: `json`, `form` or `text` (YAML keys `json:`, `form:`, `text:`)",
        ),
        ("http", "params" | "querystring") => ("", "query parameters are the `query` child"),
        ("http" | "receive", "expect" | "assert") => (
            "",
            "checks are `check` children: KDL `check status=200`, YAML `checks: [{ status: 200 }]`",
        ),
        ("feeder", "path" | "source" | "csv") => ("file", "the data file is `file`"),
        ("check", "code" | "status_code" | "status-code" | "statuscode") => {
            ("status", "the status code is `status`: `check status=200`")
        }
        ("think" | "sleep", "min" | "max") => ("", "a random pause is `between=\"1s\" and=\"3s\"`"),
        ("scenario", "ratio" | "percent" | "share") => {
            ("weight", "a scenario's share of users is `weight`")
        }
        _ => return None,
    })
}

/// The spec of a node by name.
pub fn spec(name: &str) -> Option<&'static NodeSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// The spec of a step node inside a given step list (a `sleep` inside `ws` is the same
/// node as a `sleep` in a scenario).
pub fn step_spec(set: StepSet, name: &str) -> Option<&'static NodeSpec> {
    set.kinds().contains(&name).then(|| spec(name)).flatten()
}

/// Every step kind in any list (for "did you mean" and misplaced-step messages).
pub fn all_step_kinds() -> impl Iterator<Item = &'static str> {
    StepSet::Main
        .kinds()
        .iter()
        .chain(StepSet::Ws.kinds().iter())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_child_and_step_kind_has_a_spec() {
        for s in SPECS {
            for c in s.children {
                if !matches!(c.kind, ChildKind::Steps(_)) {
                    assert!(spec(c.node).is_some(), "{} -> {}", s.name, c.node);
                }
            }
        }
        for k in all_step_kinds() {
            assert!(spec(k).is_some(), "{k}");
        }
    }

    #[test]
    fn yaml_keys_do_not_collide_within_a_node() {
        for s in SPECS {
            let mut keys: Vec<&str> = s.args.iter().chain(s.props).map(|f| f.name).collect();
            keys.extend(s.children.iter().map(NodeSpec::yaml_key));
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(n, keys.len(), "colliding keys in {}", s.name);
        }
    }
}
