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

use super::ast::{Document, Node, Prop, Scalar, Value};
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

fn span_of<T>(s: &Spanned<T>) -> Span {
    let sp = s.referenced.span();
    match (sp.byte_offset(), sp.byte_len()) {
        (Some(o), Some(l)) => Span::new(o as usize, l as usize),
        _ => Span::new(0, 0),
    }
}

/// Parse YAML text into spanned values, mapping a syntax error to a diagnostic.
pub fn parse_value(source: &Source, code: Code) -> Result<Spanned<Yaml>, Diagnostics> {
    serde_saphyr::from_str::<Spanned<Yaml>>(source.text()).map_err(|e| {
        let span = e
            .location()
            .map(|l| {
                let sp = l.span();
                Span::new(
                    sp.byte_offset().unwrap_or(0) as usize,
                    sp.byte_len().unwrap_or(0) as usize,
                )
            })
            .unwrap_or_default();
        let message = first_line(&e.to_string());
        let mut diags = Diagnostics::new();
        diags.push(
            Diagnostic::new(code, source, span, format!("invalid YAML: {message}"))
                .label("here")
                .help("check indentation, colons and quoting around this point"),
        );
        diags
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

/// Deserialize a typed value (profiles) with located errors.
pub fn from_str<T: serde::de::DeserializeOwned>(
    source: &Source,
    code: Code,
) -> Result<T, Diagnostics> {
    serde_saphyr::from_str::<T>(source.text()).map_err(|e| {
        let span = e
            .location()
            .map(|l| {
                let sp = l.span();
                Span::new(
                    sp.byte_offset().unwrap_or(0) as usize,
                    sp.byte_len().unwrap_or(0) as usize,
                )
            })
            .unwrap_or_default();
        let mut diags = Diagnostics::new();
        diags.push(
            Diagnostic::new(code, source, span, first_line(&e.to_string()))
                .help("see grammar/profiles.md for the profile fields"),
        );
        diags
    })
}

/// Parse a YAML plan into the AST, or every structural error found.
pub fn parse(source: &Source) -> Result<Document, Diagnostics> {
    let root = parse_value(source, Code::Syntax)?;
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
    if cx.diags.is_empty() {
        Ok(Document {
            nodes: doc.children,
        })
    } else {
        Err(cx.diags)
    }
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
                "write e.g. `headers: { Accept: application/json }`",
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
                for part in s.split_whitespace() {
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
            if let Some(value) = self.scalar(v) {
                node.props.push(Prop {
                    name: key,
                    name_span: span_of(k),
                    value,
                });
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
                node.args[i] = self.scalar(v);
                continue;
            }
            if spec.props.iter().any(|p| p.name == key) {
                if node.props.iter().any(|p| p.name == key) {
                    self.dup(&key, key_span);
                }
                if let Some(value) = self.scalar(v) {
                    node.props.push(Prop {
                        name: key,
                        name_span: key_span,
                        value,
                    });
                }
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
                    other => self.err(
                        Code::WrongType,
                        span_of(v),
                        format!("`steps` is a list, found {}", kind(other)),
                        "write `steps:` followed by `- http: ...` items",
                    ),
                },
                None => {
                    let mut keys: Vec<&str> =
                        spec.args.iter().chain(spec.props).map(|f| f.name).collect();
                    keys.extend(spec.children.iter().map(NodeSpec::yaml_key));
                    let help = did_you_mean(&key, keys.iter().copied())
                        .unwrap_or_else(|| format!("`{}` accepts: {}", spec.name, keys.join(", ")));
                    self.diags.push(
                        Diagnostic::new(
                            Code::UnknownField,
                            self.source,
                            key_span,
                            format!("unknown key `{key}` in `{}`", spec.name),
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
            let (k, v) = match &item.value {
                Yaml::Map(entries) if entries.len() == 1 => (&entries[0].0, &entries[0].1),
                Yaml::Str(s) if schema::step_spec(set, s).is_some() => {
                    // A bare step with no body, e.g. `- close`.
                    let n = Node::new(s.clone(), span, span);
                    node.children.push(n);
                    continue;
                }
                _ => {
                    self.err(
                        Code::WrongType,
                        span,
                        "a step is a one-key mapping such as `- http: GET /health`".into(),
                        "start each step with its kind: http, ws, sleep, group, repeat, pick, set, if",
                    );
                    continue;
                }
            };
            let Some(name) = self.key(k) else { continue };
            let key_span = span_of(k);
            match schema::spec(&name) {
                Some(spec) if schema::all_step_kinds().any(|s| s == name) => {
                    // Placement is checked on the AST so both spellings agree.
                    let n = self.node(spec, &name, key_span, v);
                    node.children.push(n);
                }
                _ => {
                    // Keep it: the schema check reports unknown steps for both spellings.
                    let n = Node::new(name, key_span, key_span.join(span_of(v)));
                    node.children.push(n);
                }
            }
        }
    }
}
