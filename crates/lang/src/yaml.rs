//! YAML spelling → [`ast`](super::ast), through serde-saphyr.
//!
//! serde_yaml is archived and deprecated; serde-saphyr is maintained, panic-free and
//! gives byte spans for every value, so errors point into the file. It is confined to
//! this module. The mapping rule (grammar/README.md): a node in a step list is a
//! one-key map `{kind: body}`; a body is a mapping whose keys are the node's argument
//! names, property names and child keys (from [`schema`]); a scalar body is the
//! node's arguments (a string is split on whitespace when the node takes several);
//! a node whose only content is a step list may be written as that list.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::ast::{Document, Node, PLACEHOLDER, Prop, Scalar, Value};
use super::schema::{self, ChildKind, NodeSpec, StepSet};
use crate::diag::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::source::{Source, Span};

/// A YAML value with spans, as serde-saphyr hands it over.
#[derive(Debug, Clone)]
pub enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Yaml>>),
    Map(Vec<(Spanned<Yaml>, Spanned<Yaml>)>),
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        i64::try_from(v)
            .map(Yaml::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Yaml>>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Spanned<Yaml>, Spanned<Yaml>>()? {
            entries.push((k, v));
        }
        Ok(Yaml::Map(entries))
    }
}

/// The byte span of a spanned YAML value.
pub fn span_of<T>(s: &Spanned<T>) -> Span {
    let sp = s.referenced.span();
    match (sp.byte_offset(), sp.byte_len()) {
        (Some(o), Some(l)) => Span::new(o as usize, l as usize),
        _ => Span::new(0, 0),
    }
}

/// Where a serde-saphyr error points: its byte span, else its line and column.
fn error_span(source: &Source, e: &serde_saphyr::Error) -> Span {
    let Some(l) = e.location() else {
        return Span::default();
    };
    let sp = l.span();
    match (sp.byte_offset(), sp.byte_len()) {
        (Some(o), len) => Span::new(o as usize, len.unwrap_or(0) as usize),
        _ => Span::new(source.offset_of(l.line() as usize, l.column() as usize), 0),
    }
}

/// The first line of a serde-saphyr message without its `error: line N column M:`
/// prefix (the diagnostic shows the location itself).
fn error_text(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or(&full).trim();
    let rest = first.strip_prefix("error:").unwrap_or(first).trim_start();
    match rest.strip_prefix("line ") {
        Some(after) => match after.find(": ") {
            Some(i) if after[..i].contains("column") => after[i + 2..].trim().to_string(),
            _ => rest.to_string(),
        },
        None => rest.to_string(),
    }
}

/// The parser's limits. serde-saphyr's defaults count nodes and events (250k / 1M), which
/// refuses flat plans past ~18k steps; here the count limits follow the input size limit
/// ([`MAX_SOURCE_BYTES`](crate::source::MAX_SOURCE_BYTES): every node takes at least two
/// bytes) and only the nesting depth stays a fixed limit.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(crate::source::MAX_SOURCE_BYTES / 2);
    budget.max_events = budget.max_events.max(crate::source::MAX_SOURCE_BYTES);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parse YAML text into spanned values, mapping a syntax error to a diagnostic in
/// plain words (a tab, a duplicate key, a bracket left open, …).
pub fn parse_value(source: &Source, code: Code) -> Result<Spanned<Yaml>, Diagnostics> {
    serde_saphyr::from_str_with_options::<Spanned<Yaml>>(source.text(), options()).map_err(|e| {
        let mut span = error_span(source, &e);
        let text = error_text(&e);
        if text.contains("tab") {
            // The scanner reports where it was, not where the tab is: point at the tab.
            if let Some(i) = source.text().get(span.offset..).and_then(|t| t.find('\t')) {
                span = Span::new(span.offset + i, 1);
            }
        }
        let (code, message, label, help) = explain(code, &text);
        let mut diags = Diagnostics::new();
        diags.push(
            Diagnostic::new(code, source, span, message)
                .label(label)
                .help(help),
        );
        diags
    })
}

/// Reword the YAML parser's messages for people who do not read YAML specs.
fn explain(code: Code, text: &str) -> (Code, String, &'static str, String) {
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        let dup = if code == Code::Syntax {
            Code::DuplicateField
        } else {
            code
        };
        return (
            dup,
            format!("`{key}` is given twice in the same mapping"),
            "second occurrence",
            "remove one of them, or merge their contents".into(),
        );
    }
    let (label, help) = if text.contains("tab") {
        (
            "tab character",
            "YAML indents with spaces only: replace the tab with spaces",
        )
    } else if text.contains("unclosed quote") || text.contains("quoted scalar") {
        (
            "string starts here",
            "close the string with the same quote it opens with",
        )
    } else if text.contains("unclosed bracket") || text.contains("flow") {
        (
            "opened here",
            "close every `{` with `}` and every `[` with `]`",
        )
    } else if text.contains("budget breached: Depth") || text.contains("recursion limit") {
        return (
            code,
            "the document is nested too deeply".into(),
            "too deep",
            "a plan never needs this much nesting; look for a runaway bracket or indentation"
                .into(),
        );
    } else if let Some(what) = text.split_once("budget breached: ").map(|(_, w)| w) {
        return (
            code,
            format!("the document is too large for the YAML reader ({what})"),
            "limit reached here",
            "split the plan; see \"Limits\" in grammar/README.md".into(),
        );
    } else if text.contains("did not find expected key")
        || text.contains("mapping values are not allowed")
        || text.contains("did not find expected")
    {
        (
            "indentation does not line up",
            "items of one list or mapping start in the same column; a value containing `: ` needs quotes",
        )
    } else {
        (
            "here",
            "check indentation, colons and quoting around this point",
        )
    };
    (code, format!("invalid YAML: {text}"), label, help.into())
}

/// Deserialize a typed value (profiles) with located errors.
pub fn from_str<T: serde::de::DeserializeOwned>(
    source: &Source,
    code: Code,
) -> Result<T, Diagnostics> {
    serde_saphyr::from_str_with_options::<T>(source.text(), options()).map_err(|e| {
        let mut diags = Diagnostics::new();
        diags.push(
            Diagnostic::new(code, source, error_span(source, &e), error_text(&e))
                .help("see grammar/profiles.md for the profile fields"),
        );
        diags
    })
}

/// Parse a YAML plan into the AST, or every structural error found.
pub fn parse(source: &Source) -> Result<Document, Diagnostics> {
    match parse_partial(source) {
        (Some(doc), diags) if diags.is_empty() => Ok(doc),
        (_, diags) => Err(diags),
    }
}

/// Parse a YAML plan as far as it goes: the AST (absent only when the text is not
/// YAML at all) and the structural errors found. Pieces that could not be mapped are
/// left out or kept as a `null` placeholder with their span, so the later passes can
/// still report every other mistake without repeating these.
pub fn parse_partial(source: &Source) -> (Option<Document>, Diagnostics) {
    let root = match parse_value(source, Code::Syntax) {
        Ok(root) => root,
        Err(diags) => return (None, diags),
    };
    let mut cx = Cx {
        source,
        diags: Diagnostics::new(),
    };
    let span = span_of(&root);
    let mut doc = Node::new("document", Span::new(0, 0), span);
    match &root.value {
        Yaml::Map(_) => cx.body(&schema::DOCUMENT, &root, &mut doc),
        Yaml::Null => {}
        other => cx.err(
            Code::WrongType,
            span,
            format!("a plan is a mapping, found {}", kind(other)),
            "expected keys such as `plan`, `vars`, `scenarios`",
        ),
    }
    (
        Some(Document {
            nodes: doc.children,
        }),
        cx.diags,
    )
}

/// The words of a shorthand string, split on whitespace except inside template tags,
/// so `GET /search?q={{ term }}` is two words.
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut inside: Option<&str> = None;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(close) = inside {
            if rest.starts_with(close) {
                inside = None;
                i += close.len();
                continue;
            }
        } else if rest.starts_with("{{") || rest.starts_with("{%") {
            inside = Some(if rest.starts_with("{{") { "}}" } else { "%}" });
            start.get_or_insert(i);
            i += 2;
            continue;
        }
        let c = rest.chars().next().map_or(1, char::len_utf8);
        if inside.is_none() && rest.starts_with(char::is_whitespace) {
            if let Some(st) = start.take() {
                out.push(&s[st..i]);
            }
        } else {
            start.get_or_insert(i);
        }
        i += c;
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

fn kind(y: &Yaml) -> &'static str {
    match y {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Int(_) => "an integer",
        Yaml::Float(_) => "a number",
        Yaml::Str(_) => "a string",
        Yaml::Seq(_) => "a list",
        Yaml::Map(_) => "a mapping",
    }
}

struct Cx<'a> {
    source: &'a Source,
    diags: Diagnostics,
}

impl Cx<'_> {
    fn err(&mut self, code: Code, span: Span, message: String, help: &str) {
        self.diags.push(
            Diagnostic::new(code, self.source, span, message)
                .label("here")
                .help(help),
        );
    }

    fn scalar(&mut self, y: &Spanned<Yaml>) -> Option<Value> {
        let span = span_of(y);
        let scalar = match &y.value {
            Yaml::Null => Scalar::Null,
            Yaml::Bool(b) => Scalar::Bool(*b),
            Yaml::Int(i) => Scalar::Int(*i),
            Yaml::Float(f) => Scalar::Float(*f),
            Yaml::Str(s) => Scalar::Str(s.clone()),
            other => {
                self.err(
                    Code::WrongType,
                    span,
                    format!("expected a single value, found {}", kind(other)),
                    "write a string, number or boolean here",
                );
                return None;
            }
        };
        Some(Value { scalar, span })
    }

    /// A scalar, or (after reporting why) a `null` placeholder with the span, so the
    /// schema check does not also call the field missing.
    fn scalar_or_null(&mut self, y: &Spanned<Yaml>) -> Value {
        self.scalar(y).unwrap_or(Value {
            scalar: Scalar::Null,
            span: span_of(y),
        })
    }

    /// Build node `name` (spec `spec`) from a YAML body.
    fn node(
        &mut self,
        spec: &'static NodeSpec,
        name: &str,
        name_span: Span,
        body: &Spanned<Yaml>,
    ) -> Node {
        let span = span_of(body);
        let mut node = Node::new(name, name_span, name_span.join(span));
        match &body.value {
            Yaml::Map(_) if spec.is_map => self.map_entries(&mut node, body),
            Yaml::Map(_) => self.body(spec, body, &mut node),
            Yaml::Seq(items) if spec.args.is_empty() && spec.steps().is_some() => {
                let set = spec.steps().unwrap_or(StepSet::Main);
                self.steps(set, items, &mut node);
            }
            Yaml::Null => {}
            _ if spec.is_map => self.err(
                Code::WrongType,
                span,
                format!(
                    "`{name}` is a mapping of names to values, found {}",
                    kind(&body.value)
                ),
                if name == "tags" {
                    "write e.g. `tags: { method: checkout, tier: api }`"
                } else {
                    "write e.g. `headers: { Accept: application/json }`"
                },
            ),
            Yaml::Seq(_) => self.err(
                Code::WrongType,
                span,
                format!("`{name}` cannot be a list"),
                "write a mapping of its fields",
            ),
            Yaml::Str(s) if spec.args.len() > 1 => {
                // Shorthand: `http: GET /health`; each word keeps its own span.
                let text = self.source.slice(span);
                let mut cursor = 0;
                for part in words(s) {
                    let vspan = match text.get(cursor..).and_then(|t| t.find(part)) {
                        Some(p) => {
                            let at = cursor + p;
                            cursor = at + part.len();
                            Span::new(span.offset + at, part.len())
                        }
                        None => span,
                    };
                    node.args.push(Some(Value {
                        scalar: Scalar::Str(part.to_string()),
                        span: vspan,
                    }));
                }
            }
            _ => {
                if let Some(v) = self.scalar(body) {
                    node.args.push(Some(v));
                }
            }
        }
        node
    }

    fn map_entries(&mut self, node: &mut Node, body: &Spanned<Yaml>) {
        let Yaml::Map(entries) = &body.value else {
            return;
        };
        for (k, v) in entries {
            let Some(key) = self.key(k) else { continue };
            // `form: { tag: [a, b] }`: a repeated key, as KDL writes `tag=a tag=b`.
            let values: Vec<&Spanned<Yaml>> = match &v.value {
                Yaml::Seq(items) if matches!(node.name.as_str(), "form" | "query") => {
                    items.iter().collect()
                }
                _ => vec![v],
            };
            for v in values {
                if let Some(value) = self.scalar(v) {
                    node.props.push(Prop {
                        name: key.clone(),
                        name_span: span_of(k),
                        value,
                    });
                }
            }
        }
    }

    fn key(&mut self, k: &Spanned<Yaml>) -> Option<String> {
        match &k.value {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(i) => Some(i.to_string()),
            Yaml::Bool(b) => Some(b.to_string()),
            other => {
                self.err(
                    Code::WrongType,
                    span_of(k),
                    format!("a key must be a name, found {}", kind(other)),
                    "use a plain word as the key",
                );
                None
            }
        }
    }

    /// A mapping body: keys are argument names, property names or child keys.
    fn body(&mut self, spec: &'static NodeSpec, body: &Spanned<Yaml>, node: &mut Node) {
        let Yaml::Map(entries) = &body.value else {
            return;
        };
        node.args = vec![None; spec.args.len()];
        for (k, v) in entries {
            let Some(key) = self.key(k) else { continue };
            let key_span = span_of(k);
            if let Some(i) = spec.args.iter().position(|a| a.name == key) {
                if node.args[i].is_some() {
                    self.dup(&key, key_span);
                }
                node.args[i] = Some(self.scalar_or_null(v));
                continue;
            }
            if spec.props.iter().any(|p| p.name == key) {
                if node.props.iter().any(|p| p.name == key) {
                    self.dup(&key, key_span);
                }
                let value = match &v.value {
                    // `status: [200, 201]`: the list spelt as KDL writes it, "200,201".
                    Yaml::Seq(items) if spec.name == "check" && key == "status" => {
                        let parts: Vec<String> = items
                            .iter()
                            .map(|i| match &i.value {
                                Yaml::Int(n) => n.to_string(),
                                Yaml::Str(t) => t.clone(),
                                _ => String::new(),
                            })
                            .collect();
                        Value {
                            scalar: Scalar::Str(parts.join(",")),
                            span: span_of(v),
                        }
                    }
                    _ => self.scalar_or_null(v),
                };
                node.props.push(Prop {
                    name: key,
                    name_span: key_span,
                    value,
                });
                continue;
            }
            let child = spec.children.iter().find(|c| NodeSpec::yaml_key(c) == key);
            match child.map(|c| c.kind) {
                Some(ChildKind::One) | Some(ChildKind::Map) => {
                    let Some(child) = child else { continue };
                    let Some(cspec) = schema::spec(child.node) else {
                        continue;
                    };
                    let n = self.node(cspec, child.node, key_span, v);
                    node.children.push(n);
                }
                Some(ChildKind::Many(_)) => {
                    let Some(child) = child else { continue };
                    let Some(cspec) = schema::spec(child.node) else {
                        continue;
                    };
                    match &v.value {
                        Yaml::Seq(items) => {
                            for item in items {
                                let n = self.node(cspec, child.node, span_of(item), item);
                                node.children.push(n);
                            }
                        }
                        Yaml::Null => {}
                        other => self.err(
                            Code::WrongType,
                            span_of(v),
                            format!("`{key}` is a list, found {}", kind(other)),
                            &format!("write `{key}:` followed by `- ...` items"),
                        ),
                    }
                }
                Some(ChildKind::Steps(set)) => match &v.value {
                    Yaml::Seq(items) => self.steps(set, items, node),
                    Yaml::Null => {}
                    other => {
                        self.err(
                            Code::WrongType,
                            span_of(v),
                            format!("`steps` is a list, found {}", kind(other)),
                            "write `steps:` followed by `- http: ...` items, one `- ` per step",
                        );
                        // Read a lone step anyway, so its own mistakes are reported too.
                        if matches!(other, Yaml::Map(_)) {
                            self.steps(set, std::slice::from_ref(v), node);
                        }
                    }
                },
                None => {
                    let mut keys: Vec<&str> =
                        spec.args.iter().chain(spec.props).map(|f| f.name).collect();
                    keys.extend(spec.children.iter().map(NodeSpec::yaml_key));
                    let alias = schema::alias(spec.name, &key);
                    // `{ name: w, json: … }` for a capture: read it as the field meant, so
                    // the unknown key is the one report (not also a missing `var`).
                    if let Some(i) =
                        alias.and_then(|(f, _)| spec.args.iter().position(|a| a.name == f))
                    {
                        if node.args[i].is_none() {
                            node.args[i] = Some(self.scalar_or_null(v));
                        }
                    }
                    let help = did_you_mean(&key, keys.iter().copied())
                        .or_else(|| alias.map(|(_, h)| h.to_string()))
                        .unwrap_or_else(|| format!("`{}` accepts: {}", spec.name, keys.join(", ")));
                    self.diags.push(
                        Diagnostic::new(
                            Code::UnknownField,
                            self.source,
                            key_span,
                            if spec.name == "document" {
                                format!("unknown key `{key}` in the plan")
                            } else {
                                format!("unknown key `{key}` in `{}`", spec.name)
                            },
                        )
                        .label("not a field of this node")
                        .help(help),
                    );
                }
            }
        }
        while node.args.last().is_some_and(Option::is_none) {
            node.args.pop();
        }
    }

    fn dup(&mut self, key: &str, span: Span) {
        self.err(
            Code::DuplicateField,
            span,
            format!("`{key}` is given twice"),
            "remove one of them",
        );
    }

    /// A step list: each item a one-key map `{kind: body}`.
    fn steps(&mut self, set: StepSet, items: &[Spanned<Yaml>], node: &mut Node) {
        for item in items {
            let span = span_of(item);
            match &item.value {
                Yaml::Map(entries) if !entries.is_empty() => self.step_map(entries, node),
                Yaml::Str(s) if schema::step_spec(set, s).is_some() => {
                    // A bare step with no body, e.g. `- close`.
                    node.children.push(Node::new(s.clone(), span, span));
                }
                Yaml::Str(s) => {
                    // `- http GET /health`: the colon after the kind is missing.
                    let first = s.split_whitespace().next().unwrap_or_default();
                    let help = if schema::all_step_kinds().any(|k| k == first) {
                        format!(
                            "put a colon after the kind: `{first}: {}`",
                            s[first.len()..].trim()
                        )
                    } else {
                        format!("start each step with its kind: {}", set.kinds().join(", "))
                    };
                    self.err(
                        Code::WrongType,
                        span,
                        "a step is a one-key mapping such as `- http: GET /health`".into(),
                        &help,
                    );
                    node.children.push(Node::new(PLACEHOLDER, span, span));
                }
                _ => {
                    self.err(
                        Code::WrongType,
                        span,
                        format!(
                            "a step is a one-key mapping such as `- http: GET /health`, found {}",
                            kind(&item.value)
                        ),
                        &format!("start each step with its kind: {}", set.kinds().join(", ")),
                    );
                    node.children.push(Node::new(PLACEHOLDER, span, span));
                }
            }
        }
    }

    /// One step item. More than one key is the classic indentation slip: the node's
    /// fields written beside it (`- http: GET /` then `checks:` at the same level).
    fn step_map(&mut self, entries: &[(Spanned<Yaml>, Spanned<Yaml>)], node: &mut Node) {
        let is_kind = |k: &Spanned<Yaml>| matches!(&k.value, Yaml::Str(s) if schema::all_step_kinds().any(|x| x == s));
        let main = entries.iter().position(|(k, _)| is_kind(k)).unwrap_or(0);
        let (k, v) = &entries[main];
        let Some(name) = self.key(k) else { return };
        for (other, _) in entries
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != main)
            .map(|(_, e)| e)
        {
            let Some(extra) = self.key(other) else {
                continue;
            };
            let belongs = schema::spec(&name).is_some_and(|sp| {
                sp.args.iter().chain(sp.props).any(|f| f.name == extra)
                    || sp.children.iter().any(|c| NodeSpec::yaml_key(c) == extra)
            });
            let (message, help) = if belongs {
                (
                    format!("`{extra}` belongs inside `{name}`, not beside it"),
                    format!(
                        "indent `{extra}:` under `{name}:` and write `{name}` as a mapping of its fields (e.g. `method: GET`, `url: /`)"
                    ),
                )
            } else {
                (
                    format!("a step has one kind, found `{name}` and `{extra}`"),
                    "start a new list item with `- ` for each step".to_string(),
                )
            };
            self.diags.push(
                Diagnostic::new(Code::WrongType, self.source, span_of(other), message)
                    .label("at the level of the step")
                    .help(help),
            );
        }
        let key_span = span_of(k);
        match schema::spec(&name) {
            Some(spec) if schema::all_step_kinds().any(|s| s == name) => {
                // Placement is checked on the AST so both spellings agree.
                let n = self.node(spec, &name, key_span, v);
                node.children.push(n);
            }
            Some(_) => {
                // A node that exists but is not a step (`- think: 1s` in a step list).
                let help = if name == "think" {
                    "did you mean `sleep`? (`think`, the pause between iterations, goes beside `steps:`)".to_string()
                } else {
                    format!("the steps are: {}", StepSet::Main.kinds().join(", "))
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownNode,
                        self.source,
                        key_span,
                        format!("`{name}` is not a step"),
                    )
                    .label("not a step")
                    .help(help),
                );
                node.children
                    .push(Node::new(PLACEHOLDER, key_span, key_span));
            }
            None => {
                // Keep it: the schema check reports unknown steps for both spellings.
                let n = Node::new(name, key_span, key_span.join(span_of(v)));
                node.children.push(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_words_keep_templates_whole() {
        assert_eq!(words("GET /health"), vec!["GET", "/health"]);
        assert_eq!(
            words("  GET  /x?q={{ a + 1 }}&r={% if b %}1{% endif %} "),
            vec!["GET", "/x?q={{ a + 1 }}&r={% if b %}1{% endif %}"]
        );
        assert_eq!(words("GET /a now"), vec!["GET", "/a", "now"]);
        assert_eq!(words("é {{ x"), vec!["é", "{{ x"]);
    }
}
