//! A one-pass reader for the common subset of KDL v2, straight to the [`ast`](super::super::ast).
//!
//! The `kdl` crate builds a document that keeps every node's formatting, through a
//! parser-combinator grammar: on a 5,000-step plan it was most of `loadplan check`'s time.
//! This reader handles what plans are made of — bare and quoted names, quoted and raw
//! single-line strings with the common escapes, decimal integers and floats, `#true`,
//! `#false`, `#null`, properties written `key=value`, children blocks, `;`, `//` and
//! `/* */` comments — and gives up (`None`) on anything else, valid or not: type
//! annotations, `/-`, multi-line strings, line continuations, other escapes, number
//! forms such as `0x1f` or `1_000`, spaces around `=`, non-ASCII outside strings and
//! comments, unusual whitespace, nesting past [`MAX_DEPTH`](super::MAX_DEPTH), map
//! entries that are not `key value`, and every syntax error. Those go through the `kdl`
//! crate as before, so every diagnostic is the one it always was.
//!
//! When it returns a document, it is the one the `kdl` path gives, spans included (a
//! node's span runs from its name to just before its terminator, trailing spaces and
//! block comments included, as the `kdl` crate reports it); `tests/lang_fuzz.rs`
//! checks this on fuzzed and generated input (see `grammar/FUZZING.md`).

use super::super::ast::{Document, Node, Prop, Scalar, Value};
use super::super::schema;
use super::MAX_DEPTH;
use crate::source::Span;

/// Parse `text` if it is in the subset (see the module docs).
pub fn parse(text: &str) -> Option<Document> {
    if !plain_text(text) {
        return None;
    }
    let mut p = Parser {
        b: text.as_bytes(),
        text,
        i: 0,
    };
    p.document()
}

/// No code point the reader does not handle the way KDL does: controls other than tab
/// and line feed, a carriage return outside CRLF, KDL's other newlines and its
/// disallowed code points (direction marks, BOM).
fn plain_text(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            let ok = match c {
                b'\t' | b'\n' => true,
                b'\r' => b.get(i + 1) == Some(&b'\n'),
                0..=0x1f | 0x7f => false,
                _ => true,
            };
            if !ok {
                return false;
            }
            i += 1;
            continue;
        }
        let Some(ch) = text[i..].chars().next() else {
            return false;
        };
        if matches!(ch,
            '\u{80}'..='\u{9f}'
            | '\u{200e}'..='\u{200f}'
            | '\u{2028}'..='\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}')
        {
            return false;
        }
        i += ch.len_utf8();
    }
    true
}

/// ASCII characters of a bare identifier (KDL v2 excludes `\/(){};[]"#=` and spaces).
fn ident_byte(c: u8) -> bool {
    c.is_ascii_graphic() && !b"\\/(){};[]\"#=".contains(&c)
}

struct Parser<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, s: &[u8]) -> bool {
        self.b[self.i..].starts_with(s)
    }

    /// Spaces, tabs and block comments; `None` when a comment is not closed.
    fn node_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'/') if self.at(b"/*") => self.block_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// A `/* … */` comment (they nest).
    fn block_comment(&mut self) -> Option<()> {
        let mut level = 0usize;
        while self.i < self.b.len() {
            if self.at(b"/*") {
                level += 1;
                self.i += 2;
            } else if self.at(b"*/") {
                level -= 1;
                self.i += 2;
                if level == 0 {
                    return Some(());
                }
            } else {
                self.i += 1;
            }
        }
        None
    }

    /// A `//` comment up to (not including) the end of its line.
    fn line_comment(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' && !self.at(b"\r\n") {
            self.i += 1;
        }
    }

    /// A newline (`\n` or `\r\n`), if there is one here.
    fn newline(&mut self) -> bool {
        if self.peek() == Some(b'\n') {
            self.i += 1;
            true
        } else if self.at(b"\r\n") {
            self.i += 2;
            true
        } else {
            false
        }
    }

    /// Whitespace, newlines and comments between nodes.
    fn line_space(&mut self) -> Option<()> {
        loop {
            self.node_space()?;
            if self.at(b"//") {
                self.line_comment();
            } else if !self.newline() {
                return Some(());
            }
        }
    }

    fn document(&mut self) -> Option<Document> {
        // The nodes whose children block is open, innermost last.
        let mut stack: Vec<Node> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        loop {
            self.line_space()?;
            match self.peek() {
                None => {
                    return stack.is_empty().then_some(Document { nodes: top });
                }
                Some(b'}') => {
                    // The end of the innermost children block.
                    self.i += 1;
                    let open = stack.pop()?;
                    let node = self.finish_children(open)?;
                    let node = self.end_node(node)?;
                    push(&mut stack, &mut top, node);
                }
                Some(_) => {
                    let (node, children) = self.node_head()?;
                    if children {
                        if stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        stack.push(node);
                    } else {
                        push(&mut stack, &mut top, node);
                    }
                }
            }
        }
    }

    /// After a children block's `}`: trailing node space, then a terminator. Sets the
    /// node's span end.
    fn end_node(&mut self, mut node: Node) -> Option<Node> {
        self.node_space()?;
        node.span = Span::new(node.span.offset, self.i - node.span.offset);
        self.terminator()?;
        Some(node)
    }

    /// What may end a node: a newline, `;`, a `//` comment, a `}` or the end. A `;` is
    /// consumed; the others are left for the caller.
    fn terminator(&mut self) -> Option<()> {
        match self.peek() {
            None | Some(b'\n' | b'}') => Some(()),
            Some(b'\r') if self.at(b"\r\n") => Some(()),
            Some(b'/') if self.at(b"//") => Some(()),
            Some(b';') => {
                self.i += 1;
                // `;;` is not KDL.
                let save = self.i;
                self.node_space()?;
                if self.peek() == Some(b';') {
                    return None;
                }
                self.i = save;
                Some(())
            }
            _ => None,
        }
    }

    /// A map node's `key value` children become its properties (as `convert` does);
    /// anything else there is left to the `kdl` path, which reports it.
    fn finish_children(&mut self, mut node: Node) -> Option<Node> {
        if schema::spec(&node.name).is_some_and(|s| s.is_map) {
            for child in std::mem::take(&mut node.children) {
                let ([Some(v)], true, true) = (
                    child.args.as_slice(),
                    child.props.is_empty(),
                    child.children.is_empty(),
                ) else {
                    return None;
                };
                let value = v.clone();
                node.props.push(Prop {
                    name: child.name,
                    name_span: child.name_span,
                    value,
                });
            }
        }
        Some(node)
    }

    /// A node's name and entries. Returns the node and whether a children block opened
    /// (its `{` consumed); otherwise the node is complete and its terminator checked.
    fn node_head(&mut self) -> Option<(Node, bool)> {
        let start = self.i;
        let name = match self.peek()? {
            b'"' => self.quoted()?,
            c if ident_byte(c) => {
                let s = self.bare()?;
                if s.starts_with(|c: char| c.is_ascii_digit()) || is_number_like(s) {
                    return None;
                }
                s.to_string()
            }
            _ => return None,
        };
        let name_span = Span::new(start, self.i - start);
        let mut node = Node::new(name, name_span, name_span);
        // After the name: a children block may follow at once.
        loop {
            let before = self.i;
            self.node_space()?;
            let spaced = self.i > before;
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    if spaced || node.args.is_empty() && node.props.is_empty() {
                        return Some((node, true));
                    }
                    return None;
                }
                None | Some(b'\n' | b'}' | b';') => {}
                Some(b'\r') if self.at(b"\r\n") => {}
                Some(b'/') if self.at(b"//") => {
                    if !spaced {
                        return None;
                    }
                }
                Some(_) => {
                    if !spaced {
                        return None;
                    }
                    self.entry(&mut node)?;
                    continue;
                }
            }
            node.span = Span::new(start, self.i - start);
            self.terminator()?;
            return Some((node, false));
        }
    }

    /// One argument or `key=value` property.
    fn entry(&mut self, node: &mut Node) -> Option<()> {
        let start = self.i;
        let c = self.peek()?;
        // A key is a bare identifier or a quoted string directly followed by `=`.
        if c == b'"' || (ident_byte(c) && !c.is_ascii_digit()) {
            let save = self.i;
            let key = if c == b'"' {
                Some(self.quoted()?)
            } else {
                let s = self.bare()?;
                (!is_number_like(s)).then(|| s.to_string())
            };
            if let Some(key) = key {
                if self.peek() == Some(b'=') {
                    let key_span = Span::new(start, self.i - start);
                    self.i += 1;
                    let value = self.value()?;
                    node.props.push(Prop {
                        name: key,
                        name_span: key_span,
                        value,
                    });
                    return Some(());
                }
            }
            self.i = save;
        }
        let value = self.value()?;
        node.args.push(Some(value));
        Some(())
    }

    /// A value: a string (quoted, raw or bare), a number or a keyword. It must end at
    /// a space, a newline, `;`, `}` or the end of the text.
    fn value(&mut self) -> Option<Value> {
        let start = self.i;
        let scalar = match self.peek()? {
            b'"' => Scalar::Str(self.quoted()?),
            b'#' => {
                if self.at(b"#true") {
                    self.i += 5;
                    Scalar::Bool(true)
                } else if self.at(b"#false") {
                    self.i += 6;
                    Scalar::Bool(false)
                } else if self.at(b"#null") {
                    self.i += 5;
                    Scalar::Null
                } else {
                    Scalar::Str(self.raw()?)
                }
            }
            c if ident_byte(c) => {
                let s = self.bare()?;
                if is_number_like(s) {
                    number(s)?
                } else {
                    Scalar::Str(s.to_string())
                }
            }
            _ => return None,
        };
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b';' | b'}') => {}
            Some(b'\r') if self.at(b"\r\n") => {}
            _ => return None,
        }
        Some(Value {
            scalar,
            span: Span::new(start, self.i - start),
        })
    }

    /// A bare identifier (ASCII only), refusing KDL's reserved words.
    fn bare(&mut self) -> Option<&str> {
        let start = self.i;
        while self.peek().is_some_and(ident_byte) {
            self.i += 1;
        }
        // Non-ASCII (or anything else unusual) right after: not this reader's business.
        if self.peek().is_some_and(|c| c >= 0x80) {
            return None;
        }
        let s = self.text.get(start..self.i)?;
        if s.is_empty()
            || matches!(s, "true" | "false" | "null" | "inf" | "-inf" | "nan")
            || s.starts_with('.')
            || s.starts_with("-.")
            || s.starts_with("+.")
        {
            return None;
        }
        Some(s)
    }

    /// A single-line `"…"` string with the escapes `\" \\ \n \r \t \b \f \s \u{…}`.
    fn quoted(&mut self) -> Option<String> {
        if self.at(b"\"\"\"") {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        let mut from = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    out.push_str(self.text.get(from..self.i)?);
                    self.i += 1;
                    return Some(out);
                }
                b'\n' | b'\r' => return None,
                b'\\' => {
                    out.push_str(self.text.get(from..self.i)?);
                    self.i += 1;
                    let c = match self.peek()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b's' => ' ',
                        b'u' => {
                            let rest = self.text.get(self.i + 1..)?;
                            let body = rest.strip_prefix('{')?;
                            let end = body.find('}')?;
                            let hex = &body[..end];
                            if hex.is_empty()
                                || hex.len() > 6
                                || !hex.bytes().all(|c| c.is_ascii_hexdigit())
                            {
                                return None;
                            }
                            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            self.i += 2 + end;
                            c
                        }
                        _ => return None,
                    };
                    out.push(c);
                    self.i += 1;
                    from = self.i;
                }
                _ => self.i += 1,
            }
        }
    }

    /// A single-line raw string `#"…"#` (any number of `#`).
    fn raw(&mut self) -> Option<String> {
        let hashes = self.b[self.i..].iter().take_while(|&&c| c == b'#').count();
        self.i += hashes;
        if self.peek() != Some(b'"') || self.at(b"\"\"\"") {
            return None;
        }
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\n' | b'\r' => return None,
                b'"' if self.b[self.i + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == b'#')
                    .count()
                    == hashes =>
                {
                    let s = self.text.get(start..self.i)?.to_string();
                    self.i += 1 + hashes;
                    return Some(s);
                }
                _ => self.i += 1,
            }
        }
    }
}

/// Add a finished node to its parent (or the document).
fn push(stack: &mut [Node], top: &mut Vec<Node>, node: Node) {
    match stack.last_mut() {
        Some(open) => open.children.push(node),
        None => top.push(node),
    }
}

/// Starts like a number: a digit, or a sign then a digit.
fn is_number_like(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'+' | b'-') => b.get(1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// A decimal integer (fitting in 64 bits) or a decimal float with a finite value;
/// `None` for the other forms (`0x…`, `1_000`, …), left to the `kdl` crate.
fn number(s: &str) -> Option<Scalar> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<i64>().ok().map(Scalar::Int);
    }
    // digits [. digits] [(e|E) [sign] digits]
    let (mantissa, exp) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(int)
        || frac.is_some_and(|f| !all_digits(f))
        || exp.is_some_and(|e| !all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
        || (frac.is_none() && exp.is_none())
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(Scalar::Float(f))
}
