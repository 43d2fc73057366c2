//! Diagnostics: what a person got wrong in a plan or profile, and where.
//!
//! Every check in the front end reports a [`Diagnostic`] with a stable [`Code`], a
//! message, a labelled [`Span`] in a named [`Source`], and usually a help line. Passes
//! collect all their diagnostics before failing ([`Diagnostics`]). Rendering goes
//! through miette so users see `file:line:col`, the source line and the label.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

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
        let report = Rendered {
            diag: self,
            named: NamedSource::new(self.source.name(), self.source.text().to_string()),
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
        write!(f, "{}: {} [{}]", self.location(), self.message, self.code)
    }
}

/// Adapter giving miette what it needs: the file name in the snippet header and the
/// location in the message, so that `file:line:col` is visible even without a snippet.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    named: NamedSource<String>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diag, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.diag.location(), self.diag.message)
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
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = char_span(self.diag.source.text(), self.diag.span);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.diag.label.clone()),
            span,
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
}
