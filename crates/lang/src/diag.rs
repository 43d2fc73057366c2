//! Diagnostics: what a person got wrong in a plan or profile, and where.
//!
//! Every check in the front end reports a [`Diagnostic`] with a stable [`Code`], a
//! message, a labelled [`Span`] in a named [`Source`], and usually a help line. Passes
//! collect all their diagnostics before failing ([`Diagnostics`]). Rendering goes
//! through miette so users see `file:line:col`, the source line and the label.
//!
//! Invariants of rendering ([`Excerpt`]): miette sees only the few lines around the span,
//! never the whole file; a line longer than [`MAX_SNIPPET_COLS`] characters is shown as a
//! window of that many characters around the span, marked with `…`; control characters
//! (C0, DEL, C1, a lone CR) in the snippet, message, label and help are shown as their
//! visible Unicode pictures (`␛`, `␀`, …) or `�`, so a binary or hostile file can neither
//! flood the terminal nor drive it. Messages are cut to [`MAX_MESSAGE_CHARS`] characters.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::source::{Source, Span};

/// Stable diagnostic codes, documented in `grammar/errors.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Syntax,
    UnknownNode,
    UnknownField,
    MissingField,
    ExtraArgument,
    WrongType,
    DuplicateField,
    DuplicateName,
    BadValue,
    BadWeight,
    BadDuration,
    BadUrl,
    BadTemplate,
    UndefinedVariable,
    CaptureBeforeDefined,
    MissingFile,
    BadFeeder,
    Conflict,
    BadRegex,
    BadJsonPath,
    BadJson,
    NoScenarios,
    EmptySteps,
    MisplacedStep,
    ProfileSyntax,
    ProfileUnknownField,
    ProfileMissingField,
    ProfileWrongType,
    ProfileUnknownScenario,
    ProfileBadValue,
    Io,
}

impl Code {
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::UnknownNode,
        Code::UnknownField,
        Code::MissingField,
        Code::ExtraArgument,
        Code::WrongType,
        Code::DuplicateField,
        Code::DuplicateName,
        Code::BadValue,
        Code::BadWeight,
        Code::BadDuration,
        Code::BadUrl,
        Code::BadTemplate,
        Code::UndefinedVariable,
        Code::CaptureBeforeDefined,
        Code::MissingFile,
        Code::BadFeeder,
        Code::Conflict,
        Code::BadRegex,
        Code::BadJsonPath,
        Code::BadJson,
        Code::NoScenarios,
        Code::EmptySteps,
        Code::MisplacedStep,
        Code::ProfileSyntax,
        Code::ProfileUnknownField,
        Code::ProfileMissingField,
        Code::ProfileWrongType,
        Code::ProfileUnknownScenario,
        Code::ProfileBadValue,
        Code::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "plan::syntax",
            Code::UnknownNode => "plan::unknown-node",
            Code::UnknownField => "plan::unknown-field",
            Code::MissingField => "plan::missing-field",
            Code::ExtraArgument => "plan::extra-argument",
            Code::WrongType => "plan::wrong-type",
            Code::DuplicateField => "plan::duplicate-field",
            Code::DuplicateName => "plan::duplicate-name",
            Code::BadValue => "plan::bad-value",
            Code::BadWeight => "plan::bad-weight",
            Code::BadDuration => "plan::bad-duration",
            Code::BadUrl => "plan::bad-url",
            Code::BadTemplate => "plan::bad-template",
            Code::UndefinedVariable => "plan::undefined-variable",
            Code::CaptureBeforeDefined => "plan::capture-before-defined",
            Code::MissingFile => "plan::missing-file",
            Code::BadFeeder => "plan::bad-feeder",
            Code::Conflict => "plan::conflict",
            Code::BadRegex => "plan::bad-regex",
            Code::BadJsonPath => "plan::bad-json-path",
            Code::BadJson => "plan::bad-json",
            Code::NoScenarios => "plan::no-scenarios",
            Code::EmptySteps => "plan::empty-steps",
            Code::MisplacedStep => "plan::misplaced-step",
            Code::ProfileSyntax => "profile::syntax",
            Code::ProfileUnknownField => "profile::unknown-field",
            Code::ProfileMissingField => "profile::missing-field",
            Code::ProfileWrongType => "profile::wrong-type",
            Code::ProfileUnknownScenario => "profile::unknown-scenario",
            Code::ProfileBadValue => "profile::bad-value",
            Code::Io => "io::read",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, located in one source.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub source: Source,
}

impl Diagnostic {
    pub fn new(code: Code, source: &Source, span: Span, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            span,
            label: String::from("here"),
            help: None,
            source: source.clone(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col` of the primary span.
    pub fn location(&self) -> String {
        let (line, col) = self.source.line_col(self.span.offset);
        format!("{}:{line}:{col}", self.source.name())
    }

    /// Render without colour at a fixed width (stable for snapshots and logs).
    pub fn render_plain(&self) -> String {
        self.render_with(GraphicalTheme::unicode_nocolor(), 100)
    }

    /// Render for a terminal (colour when `color`).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        self.render_with(theme, 100)
    }

    fn render_with(&self, theme: GraphicalTheme, width: usize) -> String {
        let excerpt = Excerpt::new(self.source.name(), self.source.text(), self.span);
        let report = Rendered {
            diag: self,
            span: excerpt.span,
            excerpt,
        };
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width)
            .with_links(false);
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("{}: {} [{}]", self.location(), self.message, self.code);
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]",
            visible(&self.location()),
            visible(&self.message),
            self.code
        )
    }
}

/// Longest snippet line shown, in characters (longer lines are windowed around the span).
pub const MAX_SNIPPET_COLS: usize = 160;
/// Longest message, label or help shown, in characters (cut with `…`).
pub const MAX_MESSAGE_CHARS: usize = 400;
/// Lines of a multi-line span shown at most (a longer span is labelled on its first line).
const MAX_SPAN_LINES: usize = 8;

/// `text` with control characters replaced by visible ones and cut to
/// [`MAX_MESSAGE_CHARS`] characters.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS * 4));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        out.push(if c == '\n' || c == '\t' {
            c
        } else {
            picture(c)
        });
    }
    out
}

/// A visible stand-in for a control character (the character itself otherwise).
fn picture(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        '\u{80}'..='\u{9f}' => '\u{fffd}',
        _ => c,
    }
}

fn needs_picture(c: char) -> bool {
    c != '\t' && picture(c) != c
}

/// The lines around a span, as miette is given them: a copy of those lines (windowed and
/// made visible when needed; see the module docs) that reports the original line numbers.
struct Excerpt {
    name: String,
    text: String,
    /// The span in `text`'s coordinates.
    span: Span,
    /// 0-based line of `text`'s first line in the original.
    first_line: usize,
    /// The original 0-based line and byte column of the span's start (the snippet header).
    start: (usize, usize),
}

impl Excerpt {
    /// Lines kept on each side of the span (miette shows one).
    const MARGIN: usize = 2;

    fn new(name: &str, text: &str, span: Span) -> Excerpt {
        let span = char_span(text, span);
        let line_start = |at: usize| text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = |at: usize| text[at..].find('\n').map_or(text.len(), |i| at + i);
        let start_ls = line_start(span.offset);
        let mut end = span.end();
        // A span over many lines is labelled on its first line only.
        if text[span.offset..end].matches('\n').count() >= MAX_SPAN_LINES {
            end = line_end(span.offset).max(span.offset);
        }
        let end_le = line_end(end);
        let mut from = start_ls;
        for _ in 0..Self::MARGIN {
            if from == 0 {
                break;
            }
            from = line_start(from - 1);
        }
        let mut to = end_le;
        for _ in 0..Self::MARGIN {
            if to >= text.len() {
                break;
            }
            to = line_end(to + 1);
        }
        let to = if to < text.len() { to + 1 } else { to };
        let region = &text[from..to];
        let first_line = text[..from].matches('\n').count();
        let start = (
            first_line + text[from..span.offset].matches('\n').count(),
            span.offset - start_ls,
        );
        let clean = region.split('\n').all(|l| {
            l.len() <= MAX_SNIPPET_COLS && !l.trim_end_matches('\r').chars().any(needs_picture)
        });
        if clean {
            return Excerpt {
                name: visible(name),
                text: region.to_string(),
                span: Span::new(span.offset - from, end - span.offset),
                first_line,
                start,
            };
        }
        // One column window for the long lines, placed so the span's start is visible.
        let col = text[start_ls..span.offset].chars().count();
        let w0 = if col + 40 <= MAX_SNIPPET_COLS {
            0
        } else {
            col - 40
        };
        let mut out = String::new();
        let (mut a, mut b) = (None, None);
        let mut at = from;
        for line in region.split_inclusive('\n') {
            let body = line.strip_suffix('\n').unwrap_or(line);
            let body = body.strip_suffix('\r').unwrap_or(body);
            // The window's byte range in `body`, found without collecting the line.
            // Short lines are shown whole; long ones from the window (moved left when the
            // line ends before the window would).
            let chars = body.chars().count();
            let lo = byte_at_in(body, w0.min(chars.saturating_sub(MAX_SNIPPET_COLS)));
            let hi = lo + byte_at_in(&body[lo..], MAX_SNIPPET_COLS);
            if lo > 0 {
                out.push('…');
            }
            let shown = &body[lo..hi];
            // Offsets inside the window map to their character; those before or after it
            // to the window's edges.
            let out_at = out.len();
            let map = |o: usize| -> usize {
                let mut n = out_at;
                for (i, c) in shown.char_indices() {
                    if at + lo + i >= o {
                        break;
                    }
                    n += picture(c).len_utf8();
                }
                n
            };
            let line_end_orig = at + line.len();
            if a.is_none() && span.offset < line_end_orig {
                a = Some(map(span.offset));
            }
            if b.is_none() && end <= line_end_orig {
                b = Some(map(end));
            }
            out.extend(shown.chars().map(picture));
            if hi < body.len() {
                out.push('…');
            }
            if line.ends_with('\n') {
                out.push('\n');
            }
            at = line_end_orig;
        }
        let a = a.unwrap_or(out.len());
        let b = b.unwrap_or(out.len()).max(a);
        Excerpt {
            name: visible(name),
            text: out,
            span: Span::new(a, b - a),
            first_line,
            start,
        }
    }
}

/// The byte offset of the `n`th character of `s` (its length when shorter).
fn byte_at_in(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let (line, column) = if span.offset() == self.span.offset && before == 0 && after == 0 {
            self.start
        } else {
            (inner.line() + self.first_line, inner.column())
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            line,
            column,
            inner.line_count(),
        )))
    }
}

/// Adapter giving miette what it needs: the file name in the snippet header and the
/// location in the message, so that `file:line:col` is visible even without a snippet.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    excerpt: Excerpt,
    /// The label's span in the excerpt.
    span: Span,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diag, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            visible(&self.diag.location()),
            visible(&self.diag.message)
        )
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diag.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(visible(h)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(visible(&self.diag.label)),
            self.span,
        ))))
    }
}

/// A span clamped to the text and widened to whole characters, whatever a parser
/// reported (the renderer slices the text with it).
fn char_span(text: &str, span: Span) -> Span {
    let mut start = span.offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end().clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Span::new(start, end - start)
}

/// Diagnostics collected across a pass.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Sorted by file and position, the order a reader expects.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by(|a, b| {
            (a.source.name(), a.span.offset, a.code).cmp(&(b.source.name(), b.span.offset, b.code))
        });
        // One report per place and code: a later pass may meet a mistake an earlier
        // one already explained (a YAML value of the wrong shape, then its type).
        self.0.dedup_by(|a, b| a.span == b.span && a.code == b.code);
        self.0
    }

    /// All diagnostics rendered plainly, one after another.
    pub fn render_plain(self) -> String {
        let all = self.into_sorted();
        let n = all.len();
        let mut out = String::new();
        for d in all {
            out.push_str(&d.render_plain());
        }
        out.push_str(&format!(
            "error: {n} problem{} found\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// "did you mean `x`?" for the closest candidate, when it is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_off_character_boundaries_still_render() {
        let source = Source::new("p.kdl", "a \"é\" b");
        for span in [
            Span::new(4, 1),
            Span::new(3, 1),
            Span::new(99, 5),
            Span::new(4, 99),
        ] {
            let d = Diagnostic::new(Code::Syntax, &source, span, "m").help("h");
            assert!(d.render_plain().contains("p.kdl:1:"), "{span:?}");
        }
        assert_eq!(char_span("aé", Span::new(2, 0)), Span::new(1, 2));
        assert_eq!(char_span("aéb", Span::new(1, 1)), Span::new(1, 2));
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let text = format!(
            "first\n{}HERE{}\nlast\n",
            "a".repeat(100_000),
            "b".repeat(100_000)
        );
        let at = text.find("HERE").expect("marker");
        let source = Source::new("p.kdl", text.as_str());
        let d = Diagnostic::new(Code::Syntax, &source, Span::new(at, 4), "m");
        let out = d.render_plain();
        assert!(out.len() < 2_000, "{} bytes", out.len());
        assert!(out.contains("HERE"), "{out}");
        assert!(out.contains("…"), "{out}");
        assert!(out.contains("[p.kdl:2:100001]"), "{out}");
        assert!(out.contains("first") && out.contains("last"), "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= MAX_SNIPPET_COLS + 20, "{line}");
        }
        // The label sits under the span.
        let shown = out.lines().find(|l| l.contains("HERE")).expect("line");
        let under = out
            .lines()
            .skip_while(|l| !l.contains("HERE"))
            .nth(1)
            .expect("label line");
        let col = shown.chars().position(|c| c == 'H').expect("H");
        assert_eq!(under.chars().nth(col), Some('─'), "{out}");
    }

    #[test]
    fn control_characters_are_shown_as_pictures() {
        let source = Source::new("p\u{1b}.kdl", "a \u{1b}[31mb\u{0}\r c\u{9b}d\n");
        let d = Diagnostic::new(Code::Syntax, &source, Span::new(2, 1), "bad \u{1b}[2J")
            .label("x\u{7}")
            .help("h\u{7f}");
        let out = d.render_plain();
        assert!(
            !out.chars()
                .any(|c| (c < ' ' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c)),
            "{out:?}"
        );
        assert!(
            out.contains('␛') && out.contains('␀') && out.contains('␇'),
            "{out}"
        );
        let one_line = d.to_string();
        assert!(!one_line.contains('\u{1b}'), "{one_line:?}");
    }

    #[test]
    fn short_lines_render_exactly_as_the_whole_file_would() {
        let text = "a\nb\nscenario \"s\" {\n    htp GET \"/\"\n}\nc\nd\n";
        let at = text.find("htp").expect("htp");
        let source = Source::new("p.kdl", text);
        let d = Diagnostic::new(Code::UnknownNode, &source, Span::new(at, 3), "m");
        let out = d.render_plain();
        assert!(out.contains("[p.kdl:4:5]"), "{out}");
        assert!(out.contains(" 4 │     htp GET"), "{out}");
        assert!(out.contains(" 3 │ scenario"), "{out}");
        assert!(out.contains(" 5 │ }"), "{out}");
    }
}
