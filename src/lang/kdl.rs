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
    match parse_partial(source) {
        (Some(doc), diags) if diags.is_empty() => Ok(doc),
        (_, diags) => Err(diags),
    }
}

/// Parse as far as it goes: the AST (absent when the text is not KDL) and the errors
/// found while converting it (bad map entries, integers out of range).
pub fn parse_partial(source: &Source) -> (Option<Document>, Diagnostics) {
    match parse_doc(source) {
        Ok((doc, diags)) => (Some(doc), diags),
        Err(diags) => (None, diags),
    }
}

fn parse_doc(source: &Source) -> Result<(Document, Diagnostics), Diagnostics> {
    if let Some(at) = too_deep(source.text()) {
        let mut diags = Diagnostics::new();
        diags.push(
            Diagnostic::new(
                Code::Syntax,
                source,
                Span::new(at, 1),
                format!("children are nested more than {MAX_DEPTH} levels deep"),
            )
            .label("too deep")
            .help("a plan never needs this much nesting; look for a missing `}`"),
        );
        return Err(diags);
    }
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
    Ok((Document { nodes }, diags))
}

/// Deepest `{ … }` nesting accepted. The `kdl` parser recurses per level (about
/// 25 KiB of stack each in a debug build), so a pathological file would overflow the
/// stack — an abort, not an error — before the parser could report it.
pub const MAX_DEPTH: usize = 32;

/// The offset of the first `{` nested deeper than [`MAX_DEPTH`], skipping strings,
/// raw strings and comments (a `{` inside them is text, not a child block).
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                // A quoted string (`"""` multi-line strings scan the same way).
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                // A raw string `#"…"#`, `##"…"##`, …; otherwise a keyword like `#true`.
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    let close: Vec<u8> = std::iter::once(b'"')
                        .chain(std::iter::repeat_n(b'#', hashes))
                        .collect();
                    let start = i + hashes + 1;
                    i = b[start..]
                        .windows(close.len())
                        .position(|w| w == close.as_slice())
                        .map_or(b.len(), |p| start + p + close.len() - 1);
                } else {
                    i += hashes - 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest in KDL.
                let mut level = 0usize;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        level += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        level -= 1;
                        i += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_depth_ignores_braces_in_strings_and_comments() {
        let deep = "{".repeat(MAX_DEPTH);
        let text = format!(
            "a \"{deep}\" b=#\"{deep}\"# // {deep}\n/* {deep} /* {deep} */ */ c {{ d {{ }} }}"
        );
        assert_eq!(too_deep(&text), None);
        let text = format!(
            "{}{}",
            "a {".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(too_deep(&text), Some(3 * MAX_DEPTH + 2));
    }

    #[test]
    fn too_deep_nesting_is_a_syntax_error() {
        let text = "a {".repeat(10_000);
        let err = parse(&Source::new("deep.kdl", text)).expect_err("too deep");
        let d = err.into_sorted();
        assert_eq!(d[0].code, Code::Syntax);
        assert_eq!(d[0].span, Span::new(3 * MAX_DEPTH + 2, 1));
    }
}
