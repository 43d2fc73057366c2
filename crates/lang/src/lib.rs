//! The front end: plan source → checked, compiled [`ir::Program`].
//!
//! Pure and synchronous: no async runtime, no network (`tests/crate_graph.rs` checks this
//! crate's dependency tree). Stages: [`kdl`] | [`yaml`] → [`ast`] → [`check`] (schema) → [`compile`]
//! (semantics, templates) → [`ir`]. Every stage collects all its diagnostics; a plan
//! that fails reports everything wrong with it at once.

pub mod ast;
pub mod check;
pub mod compile;
pub mod diag;
pub mod dump;
pub mod ir;
pub mod jsonschema;
pub mod kdl;
pub mod profile;
pub mod schema;
pub mod source;
pub mod template;
pub mod yaml;

use std::path::Path;

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::source::{Source, Span, Syntax};

/// Parse a source in its spelling into the AST.
pub fn parse(source: &Source, syntax: Syntax) -> Result<ast::Document, Diagnostics> {
    match syntax {
        Syntax::Kdl => kdl::parse(source),
        Syntax::Yaml => yaml::parse(source),
    }
}

/// Parse as far as possible: the AST (absent when the text is not KDL/YAML at all)
/// and the structural errors met on the way.
pub fn parse_partial(source: &Source, syntax: Syntax) -> (Option<ast::Document>, Diagnostics) {
    match syntax {
        Syntax::Kdl => kdl::parse_partial(source),
        Syntax::Yaml => yaml::parse_partial(source),
    }
}

/// Parse, check and compile a plan source. `base` resolves feeder files. Every pass
/// runs even when an earlier one found mistakes, so all of them are reported at once.
pub fn compile_source(
    source: &Source,
    syntax: Syntax,
    base: &Path,
) -> Result<ir::Program, Diagnostics> {
    let (doc, mut diags) = parse_partial(source, syntax);
    let Some(doc) = doc else {
        return Err(diags);
    };
    diags.extend(check::check(source, &doc));
    match compile::compile(source, &doc, base) {
        Ok(program) if diags.is_empty() => Ok(program),
        Ok(_) => Err(diags),
        Err(more) => {
            // "No scenario" is only an echo when the scenarios are there under a
            // misspelt name that was already reported with a suggestion.
            let misspelt = diags.iter().any(|d| {
                d.help
                    .as_deref()
                    .is_some_and(|h| h.contains("`scenario`?") || h.contains("`scenarios`?"))
            });
            for d in more {
                if !(misspelt && d.code == Code::NoScenarios) {
                    diags.push(d);
                }
            }
            Err(diags)
        }
    }
}

/// Read and compile a plan file (spelling from its extension).
pub fn load_plan(path: &Path) -> Result<(Source, ir::Program), Diagnostics> {
    let source = read_source(path)?;
    let Some(syntax) = Syntax::from_path(source.name()) else {
        let mut d = Diagnostics::new();
        d.push(
            Diagnostic::new(
                Code::Io,
                &source,
                Span::new(0, 0),
                "a plan file ends in .kdl, .yaml or .yml",
            )
            .help("rename the file or pass a .kdl/.yaml plan"),
        );
        return Err(d);
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let program = compile_source(&source, syntax, base)?;
    Ok((source, program))
}

/// Read a file into a [`Source`], as a diagnostic when it cannot be read. A file
/// that is not UTF-8 (saved as Latin-1, say) is shown with the first bad byte marked.
pub fn read_source(path: &Path) -> Result<Source, Diagnostics> {
    let name = path.display().to_string();
    let fail = |source: &Source, span: Span, message: String, label: &str, help: &str| {
        let mut d = Diagnostics::new();
        d.push(
            Diagnostic::new(Code::Io, source, span, message)
                .label(label)
                .help(help),
        );
        d
    };
    let cannot = |e: std::io::Error| {
        fail(
            &Source::new(name.clone(), ""),
            Span::new(0, 0),
            format!("cannot read {name}: {e}"),
            "here",
            "check the path",
        )
    };
    // Read at most one byte past the limit, whatever the file claims (a pipe, /dev/zero).
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(crate::source::MAX_SOURCE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(cannot)?;
    if bytes.len() > crate::source::MAX_SOURCE_BYTES {
        return Err(fail(
            &Source::new(name.clone(), ""),
            Span::new(0, 0),
            format!(
                "{name} is larger than the {} MiB limit for a plan or profile",
                crate::source::MAX_SOURCE_BYTES >> 20
            ),
            "too large",
            "split the plan, or move large data into a feeder file",
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = Source::new(name.clone(), text);
            let (line, col) = source.line_col(at);
            Err(fail(
                &source,
                Span::new(at, '\u{FFFD}'.len_utf8()),
                format!("{name} is not UTF-8 text (line {line}, column {col})"),
                "not UTF-8",
                "save the file as UTF-8 (most editors offer it under \"Save with encoding\")",
            ))
        }
    }
}
