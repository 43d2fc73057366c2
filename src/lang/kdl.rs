//! KDL v2 spelling → [`ast`](super::ast), through the `kdl` crate.
//!
//! KDL's data model is the AST's, so this is a one-to-one copy that keeps spans.
//! The `kdl` crate reports parse errors with an unnamed source and a generic top
//! message; each of its sub-diagnostics is re-wrapped here as a [`Diagnostic`] in the
//! named file with the real message. Map nodes (`headers`, `vars`, …) may be written
//! with properties or with `key value` children; both become properties.

use kdl::{KdlDocument, KdlNode, KdlValue};

use super::ast::{Document, Node, Prop, Scalar, Value};
use super::schema;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::source::{Source, Span};

/// Parse a KDL plan into the AST, or every syntax error found.
pub fn parse(source: &Source) -> Result<Document, Diagnostics> {
    let doc = match KdlDocument::parse(source.text()) {
        Ok(doc) => doc,
        Err(err) => {
            let mut diags = Diagnostics::new();
            for d in &err.diagnostics {
                let span = Span::from(d.span);
                let message = d
                    .message
                    .clone()
                    .unwrap_or_else(|| String::from("invalid KDL"));
                let mut diag = Diagnostic::new(Code::Syntax, source, span, message)
                    .label(d.label.clone().unwrap_or_else(|| String::from("here")));
                diag = diag.help(d.help.clone().unwrap_or_else(|| {
                    String::from("see grammar/README.md for the KDL v2 syntax of plans")
                }));
                diags.push(diag);
            }
            if diags.is_empty() {
                diags.push(Diagnostic::new(
                    Code::Syntax,
                    source,
                    Span::new(0, 0),
                    "invalid KDL document",
                ));
            }
            return Err(diags);
        }
    };
    let mut diags = Diagnostics::new();
    let nodes = doc
        .nodes()
        .iter()
        .map(|n| convert(source, n, &mut diags))
        .collect();
    if diags.is_empty() {
        Ok(Document { nodes })
    } else {
        Err(diags)
    }
}

fn convert(source: &Source, n: &KdlNode, diags: &mut Diagnostics) -> Node {
    let name_span = Span::from(n.name().span());
    let mut node = Node::new(n.name().value(), name_span, Span::from(n.span()));
    for entry in n.entries() {
        let entry_span = Span::from(entry.span());
        match entry.name() {
            Some(key) => {
                let key_span = Span::from(key.span());
                // The value follows `key=`: from the end of the key to the end of the entry.
                let start = key_span.end() + 1;
                let value_span = if entry_span.end() > start {
                    Span::new(start, entry_span.end() - start)
                } else {
                    entry_span
                };
                node.props.push(Prop {
                    name: key.value().to_string(),
                    name_span: key_span,
                    value: value(source, entry.value(), value_span, diags),
                });
            }
            None => {
                let v = value(source, entry.value(), entry_span, diags);
                node.args.push(Some(v));
            }
        }
    }
    if let Some(children) = n.children() {
        let is_map = schema::spec(&node.name).is_some_and(|s| s.is_map);
        for c in children.nodes() {
            let child = convert(source, c, diags);
            if is_map {
                map_entry(source, &mut node, child, diags);
            } else {
                node.children.push(child);
            }
        }
    }
    node
}

/// `headers { Accept "application/json" }`: each child is one `key value` entry.
fn map_entry(source: &Source, node: &mut Node, child: Node, diags: &mut Diagnostics) {
    let value = match (
        child.args.as_slice(),
        child.props.is_empty(),
        child.children.is_empty(),
    ) {
        ([Some(v)], true, true) => v.clone(),
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::WrongType,
                    source,
                    child.span,
                    format!("`{}` entries are written `key value`", node.name),
                )
                .label("expected one value after the key")
                .help(format!(
                    "write e.g. `{} {{ {} \"value\" }}`",
                    node.name, child.name
                )),
            );
            return;
        }
    };
    node.props.push(Prop {
        name: child.name,
        name_span: child.name_span,
        value,
    });
}

fn value(source: &Source, v: &KdlValue, span: Span, diags: &mut Diagnostics) -> Value {
    let scalar = match v {
        KdlValue::String(s) => Scalar::Str(s.clone()),
        KdlValue::Integer(i) => match i64::try_from(*i) {
            Ok(i) => Scalar::Int(i),
            Err(_) => {
                diags.push(
                    Diagnostic::new(Code::BadValue, source, span, "integer out of range")
                        .label("does not fit in 64 bits")
                        .help("use a smaller number"),
                );
                Scalar::Int(0)
            }
        },
        KdlValue::Float(f) => Scalar::Float(*f),
        KdlValue::Bool(b) => Scalar::Bool(*b),
        KdlValue::Null => Scalar::Null,
    };
    Value { scalar, span }
}
