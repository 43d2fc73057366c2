//! KDL v2 spelling → [`ast`](super::ast), through the `kdl` crate.
//!
//! KDL's data model is the AST's, so this is a one-to-one copy that keeps spans.
//! The `kdl` crate reports parse errors with an unnamed source and a generic top
//! message; each of its sub-diagnostics is re-wrapped here as a [`Diagnostic`] in the
//! named file with the real message. Map nodes (`headers`, `vars`, …) may be written
//! with properties or with `key value` children; both become properties.

use kdl::{KdlDocument, KdlNode, KdlValue};

pub mod fast;

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
    // The common subset in one pass; anything else (errors included) through the crate.
    if let Some(doc) = fast::parse(source.text()) {
        return Ok((doc, Diagnostics::new()));
    }
    parse_with_crate(source)
}

/// Parse through the `kdl` crate only, never [`fast`]: the reference the fast reader is
/// checked against (`tests/lang_fuzz.rs`).
pub fn parse_with_crate(source: &Source) -> Result<(Document, Diagnostics), Diagnostics> {
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
            // A runaway string swallows the lines after it: its own error says more.
            let runaway = err.diagnostics.iter().any(|d| {
                d.message
                    .as_deref()
                    .is_some_and(|m| m.contains("quoted string"))
            });
            if let Some(diags) = line_errors(source).filter(|_| !runaway) {
                return Err(diags);
            }
            let mut diags = Diagnostics::new();
            let found: Vec<(Span, String, Option<String>, Option<String>)> = err
                .diagnostics
                .iter()
                .map(|d| {
                    let message = d.message.clone().unwrap_or_else(|| "invalid KDL".into());
                    (Span::from(d.span), message, d.label.clone(), d.help.clone())
                })
                .collect();
            let unclosed = found
                .iter()
                .any(|(_, m, _, _)| m.starts_with("No closing '}'"));
            for (span, message, label, help) in &found {
                // Echoes of another error: an unclosed block is also reported as a
                // block "not closed after nodes", and everything after a runaway
                // string as "expected end of document".
                if (unclosed && message.starts_with("Closing '}' was not found"))
                    || (found.len() > 1 && message == "Expected end of document")
                {
                    continue;
                }
                diags.push(syntax_error(source, *span, message, label, help));
            }
            // The parser's own errors are consequences of these habits, and
            // misleading ones: report the habit alone.
            if let Some((span, message, help)) = habit(source.text()) {
                diags = Diagnostics::new();
                diags.push(
                    Diagnostic::new(Code::Syntax, source, span, message)
                        .label("here")
                        .help(help),
                );
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
    // Converted node by node, each KDL node dropped once converted, so the parser's
    // document (≈ 1.5 KB per step with its formatting) and the AST are not both whole in
    // memory at the peak.
    let mut doc = doc;
    let nodes = doc
        .nodes_mut()
        .drain(..)
        .map(|n| convert(source, n, &mut diags))
        .collect();
    Ok((Document { nodes }, diags))
}

/// One error of the `kdl` parser, in the named file and in words for plan authors.
fn syntax_error(
    source: &Source,
    span: Span,
    message: &str,
    label: &Option<String>,
    help: &Option<String>,
) -> Diagnostic {
    let word = source.slice(span);
    if matches!(word, "true" | "false" | "null") {
        return Diagnostic::new(
            Code::Syntax,
            source,
            span,
            format!("`{word}` needs a `#` in KDL v2: `#{word}`"),
        )
        .label("KDL v1 keyword")
        .help("KDL v2 writes #true, #false and #null; a bare word is a string");
    }
    let text = source.text();
    let line_start = text
        .get(..span.offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .and_then(|t| t.lines().next())
        .unwrap_or_default();
    let help = if line.trim_start().starts_with("json ") || line.contains(" json={") {
        "write JSON as a raw string, which keeps its quotes: json #\"{\"a\": 1}\"#".to_string()
    } else if message.starts_with("No closing '}'") {
        "add the `}` that closes this block: every `{` needs one".to_string()
    } else if message.contains("newline in single-line quoted string") {
        "close the string with `\"` on the same line (a text over several lines is written \"\"\"…\"\"\")"
            .to_string()
    } else {
        help.clone()
            .unwrap_or_else(|| "see grammar/README.md for the KDL v2 syntax of plans".into())
    };
    // The parser's labels read "not <thing it expected>"; say where instead.
    let label = match label.as_deref() {
        Some("not closed") => "not closed",
        _ => "here",
    };
    Diagnostic::new(Code::Syntax, source, span, message)
        .label(label)
        .help(help)
}

/// Deepest `{ … }` nesting accepted. The `kdl` parser recurses per level (about
/// 25 KiB of stack each in a debug build), so a pathological file would overflow the
/// stack — an abort, not an error — before the parser could report it.
pub const MAX_DEPTH: usize = 32;

/// Call `f` with the offset and byte of every byte of `text` that is KDL code, not
/// inside a string, a raw string or a comment; stop when `f` returns `true`.
fn scan_code(text: &str, mut f: impl FnMut(usize, u8) -> bool) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A quoted string (`"""` multi-line strings scan the same way).
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' if b[i..].iter().find(|&&c| c != b'#') == Some(&b'"') => {
                // A raw string `#"…"#`, `##"…"##`, …
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let start = i + hashes + 1;
                i = b[start..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |p| start + p + close.len() - 1);
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
            c => {
                if f(i, c) {
                    return;
                }
            }
        }
        i += 1;
    }
}

/// The offset of the first `{` nested deeper than [`MAX_DEPTH`].
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut found = None;
    scan_code(text, |i, c| {
        match c {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            found = Some(i);
        }
        found.is_some()
    });
    found
}

/// When the document does not parse: every line that does not parse on its own, in
/// file order (an opening line without its block, closing braces skipped), so each
/// mistake is reported where it is and none hides another. None when a construct
/// spans lines (multi-line strings, block comments, line continuations) or no single
/// line is at fault (an unclosed block): the whole-document errors then stand.
fn line_errors(source: &Source) -> Option<Diagnostics> {
    let text = source.text();
    if text.contains("\"\"\"") || text.contains("/*") {
        return None;
    }
    let mut diags = Diagnostics::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        if body.trim_end().ends_with('\\') {
            return None;
        }
        let mut code = body.trim_start();
        while let Some(rest) = code.strip_prefix('}') {
            code = rest.trim_start();
        }
        let code = code.trim_end();
        if code.is_empty() || code.starts_with("//") {
            continue;
        }
        // `code` is a slice of `body`: its offset in the line.
        let at = start + (code.as_ptr() as usize - body.as_ptr() as usize);
        let candidate = if code.ends_with('{') {
            format!("{code} }}")
        } else {
            code.to_string()
        };
        let Err(err) = KdlDocument::parse(&candidate) else {
            continue;
        };
        if let Some((span, message, help)) = habit(code) {
            diags.push(
                Diagnostic::new(
                    Code::Syntax,
                    source,
                    Span::new(at + span.offset, span.len),
                    message,
                )
                .label("here")
                .help(help),
            );
            continue;
        }
        if let Some(d) = err.diagnostics.first() {
            let message = d.message.clone().unwrap_or_else(|| "invalid KDL".into());
            let s = Span::from(d.span);
            let from = s.offset.min(code.len());
            let span = Span::new(at + from, s.len.min(code.len() - from));
            diags.push(syntax_error(source, span, &message, &d.label, &d.help));
        }
    }
    (!diags.is_empty()).then_some(diags)
}

/// Habits from other languages that the `kdl` parser reports confusingly (a bare
/// `/health` reads to it as an unclosed block): the first one outside strings and
/// comments, as the span of the offending word and what to do instead. Only asked
/// when the parser failed.
fn habit(text: &str) -> Option<(Span, String, &'static str)> {
    let b = text.as_bytes();
    let word_end = |i: usize| {
        b[i..]
            .iter()
            .position(|c| c.is_ascii_whitespace() || matches!(c, b';' | b'{' | b'}'))
            .map_or(b.len(), |n| i + n)
    };
    let mut found = None;
    scan_code(text, |i, c| {
        let after = b.get(i + 1).copied();
        found = match c {
            b'/' if !matches!(after, Some(b'-')) => {
                let end = word_end(i);
                Some((
                    Span::new(i, end - i),
                    format!("a path must be quoted: \"{}\"", &text[i..end]),
                    "KDL strings are written in double quotes, so URLs and paths are too",
                ))
            }
            // Only where they start a word / end a value: `'` and `,` may occur
            // inside KDL v2 bare words.
            b'\'' if i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'=') => Some((
                Span::new(i, 1),
                "KDL strings use double quotes, not single quotes".into(),
                "write \"text\" (or #\"text\"# to keep quotes and backslashes as they are)",
            )),
            b',' if i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'"') => Some((
                Span::new(i, 1),
                "KDL separates values with spaces, not commas".into(),
                "remove the comma; put several nodes on one line with `;`",
            )),
            _ => None,
        };
        found.is_some()
    });
    found
}

fn convert(source: &Source, mut n: KdlNode, diags: &mut Diagnostics) -> Node {
    let name_span = Span::from(n.name().span());
    let mut node = Node::new(n.name().value(), name_span, Span::from(n.span()));
    for entry in n.entries() {
        let entry_span = Span::from(entry.span());
        match entry.name() {
            Some(key) => {
                let key_span = Span::from(key.span());
                // The value follows `key=` (KDL v2 allows spaces around `=`): from
                // after them to the end of the entry.
                let gap = source
                    .text()
                    .get(key_span.end()..entry_span.end())
                    .map_or(1, |t| {
                        t.len()
                            - t.trim_start_matches(|c: char| c == '=' || c.is_whitespace())
                                .len()
                    });
                let start = key_span.end() + gap;
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
    n.entries_mut().clear();
    if let Some(mut children) = n.children_mut().take() {
        let is_map = schema::spec(&node.name).is_some_and(|s| s.is_map);
        for c in children.nodes_mut().drain(..) {
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
