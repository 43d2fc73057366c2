//! Schema checks: every node against the language reference in [`schema`].
//!
//! Runs on the AST from either spelling and reports, all at once: unknown nodes and
//! fields (with "did you mean"), missing required fields, extra arguments, wrong
//! types, fields given twice, steps in the wrong place and malformed durations.
//! Semantic checks that need the whole plan (names, templates, variables, files)
//! happen while compiling ([`super::compile`]).

use super::ast::{Document, Node, PLACEHOLDER, Scalar, Value};
use super::schema::{self, ChildKind, Field, NodeSpec, StepSet, Ty};
use crate::diag::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::source::{Source, Span, Syntax};

/// Check a whole document; empty when it conforms to the schema.
pub fn check(source: &Source, doc: &Document) -> Diagnostics {
    let mut cx = Checker {
        source,
        diags: Diagnostics::new(),
    };
    cx.children(&schema::DOCUMENT, "the plan", &doc.nodes);
    cx.diags
}

/// The longest duration anything accepts (a run, a timeout, a pause): 366 days. Past
/// it, clock arithmetic (`Instant + Duration`) could overflow; no load test needs more.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

fn bounded(d: std::time::Duration, shown: &str) -> Result<std::time::Duration, String> {
    if d > MAX_DURATION {
        Err(format!(
            "`{shown}` is too long: a duration is at most 366 days (`366d`)"
        ))
    } else {
        Ok(d)
    }
}

/// Parse a duration: `250ms`, `2s`, `1m30s`, `1h`; a bare number means seconds.
pub fn parse_duration(v: &Value) -> Result<std::time::Duration, String> {
    match &v.scalar {
        Scalar::Int(i) if *i >= 0 => {
            bounded(std::time::Duration::from_secs(*i as u64), &i.to_string())
        }
        Scalar::Int(_) => Err("a duration cannot be negative".into()),
        Scalar::Float(f) => seconds(*f),
        Scalar::Str(s) => parse_duration_str(s),
        other => Err(format!("expected a duration, found {}", other.type_name())),
    }
}

/// Parse a byte size: `16MiB`, `512KiB`, `1GiB`, `10MB`, `1kB`, `100B`; a bare integer
/// means bytes. Units are exact: `KiB`/`MiB`/`GiB` are powers of 1024, `kB`/`KB`/`MB`/`GB`
/// powers of 1000.
pub fn parse_size(v: &Value) -> Result<u64, String> {
    match &v.scalar {
        Scalar::Int(i) => u64::try_from(*i).map_err(|_| "a size cannot be negative".to_string()),
        Scalar::Str(s) => parse_size_str(s),
        other => Err(format!("expected a size, found {}", other.type_name())),
    }
}

/// See [`parse_size`].
pub fn parse_size_str(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let factor: u64 = match unit {
        "" | "B" => 1,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "`{t}` is not a size: unknown unit `{unit}` (use B, KiB, MiB, GiB, kB, MB or GB)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a size: write a number and a unit, e.g. `16MiB`"))?;
    let bytes = (n * factor as f64).round();
    if !(0.0..=(u64::MAX / 2) as f64).contains(&bytes) {
        return Err(format!("`{t}` is too large"));
    }
    Ok(bytes as u64)
}

/// A number of seconds as a duration, refusing what `Duration` cannot hold (its
/// `from_secs_f64` panics on those).
pub fn seconds(secs: f64) -> Result<std::time::Duration, String> {
    if secs.is_nan() {
        return Err("NaN is not a duration".into());
    }
    if secs < 0.0 {
        return Err("a duration cannot be negative".into());
    }
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{secs:e} seconds is too long for a duration"))
        .and_then(|d| bounded(d, &format!("{secs}s")))
}

/// Parse a duration string (also the value parser of `--duration` flags). The error
/// is a whole sentence naming the fix: a comma for a decimal point, a capitalised or
/// unknown unit, a minus sign.
pub fn parse_duration_str(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: write e.g. `2s`".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return seconds(secs);
    }
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative: a duration cannot be"));
    }
    let parsed = humantime::parse_duration(t).map_err(|e| {
        if t.contains(',') && humantime::parse_duration(&t.replace(',', ".")).is_ok() {
            return format!(
                "`{t}` is not a duration: use a dot for decimals (`{}`)",
                t.replace(',', ".")
            );
        }
        let lower = t.to_ascii_lowercase();
        if lower != t && humantime::parse_duration(&lower).is_ok() {
            return format!("`{t}` is not a duration: units are lowercase (`{lower}`)");
        }
        match e {
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("`{t}` is not a duration: unknown unit `{unit}` (use ms, s, m, h or d)")
            }
            humantime::DurationError::NumberOverflow => format!("`{t}` is too long"),
            _ => format!(
                "`{t}` is not a duration: write a number with a unit, e.g. `500ms`, `2s`, `1m30s`"
            ),
        }
    })?;
    bounded(parsed, t)
}

struct Checker<'a> {
    source: &'a Source,
    diags: Diagnostics,
}

impl Checker<'_> {
    fn push(&mut self, code: Code, span: Span, message: String, label: &str, help: String) {
        self.diags.push(
            Diagnostic::new(code, self.source, span, message)
                .label(label)
                .help(help),
        );
    }

    /// `node` lacks its required `field` (an argument: "needs its", a property: "needs").
    fn missing(&mut self, node: &Node, field: &Field, needs: &str) {
        let (name, ty, doc) = (field.name, field.ty.describe(), field.doc);
        self.push(
            Code::MissingField,
            node.name_span,
            format!("`{}` {needs} `{name}`", node.name),
            &format!("missing `{name}`"),
            format!("add `{name}` ({ty}): {doc}"),
        );
    }

    /// `name=value` (KDL) or `name: value` (YAML), in the plan's own spelling.
    fn example(&self, name: &str, value: &str) -> String {
        if Syntax::from_path(self.source.name()) == Some(Syntax::Yaml) {
            format!("`{name}: {value}`")
        } else {
            format!("`{name}={value}`")
        }
    }

    fn node(&mut self, spec: &'static NodeSpec, node: &Node) {
        // Positional arguments.
        for (i, arg) in node.args.iter().enumerate() {
            let Some(arg) = arg else { continue };
            match spec.args.get(i) {
                Some(field) => self.value(field, arg, &node.name),
                None => {
                    let names: Vec<String> =
                        spec.args.iter().map(|a| format!("`{}`", a.name)).collect();
                    let help = if names.is_empty() {
                        format!("`{}` takes no arguments; use properties", node.name)
                    } else {
                        format!("`{}` takes: {}", node.name, names.join(", "))
                    };
                    self.push(
                        Code::ExtraArgument,
                        arg.span,
                        format!("too many arguments for `{}`", node.name),
                        "unexpected argument",
                        help,
                    );
                }
            }
        }
        if node.name == "http" && node.args.len() == 1 {
            // `http "/health"`: the URL is there, the method is not.
            if let Some(url) = node.arg(0).filter(|v| {
                v.as_str()
                    .is_some_and(|s| s.starts_with('/') || s.contains("://"))
            }) {
                let shown = url.as_str().unwrap_or_default();
                let example = if Syntax::from_path(self.source.name()) == Some(Syntax::Yaml) {
                    format!("`http: GET {shown}`")
                } else {
                    format!("`http GET \"{shown}\"`")
                };
                self.push(
                    Code::MissingField,
                    node.name_span,
                    "`http` needs a method before the URL".into(),
                    "missing `method`",
                    format!("write {example} (or POST, PUT, PATCH, DELETE, HEAD, OPTIONS)"),
                );
                return;
            }
        }
        // Fields written under another name (`capture name=…`) are reported once, as
        // that unknown name with its help, not also as missing.
        let aliased: Vec<&str> = node
            .props
            .iter()
            .filter(|p| !spec.props.iter().any(|f| f.name == p.name))
            .filter_map(|p| schema::alias(&node.name, &p.name).map(|(f, _)| f))
            .collect();
        for (i, field) in spec.args.iter().enumerate() {
            if field.required && node.arg(i).is_none() && !aliased.contains(&field.name) {
                self.missing(node, field, "needs its");
            }
        }
        // Properties.
        for (i, prop) in node.props.iter().enumerate() {
            // A form or query may repeat a key (`tag=a tag=b`): each is sent.
            let repeats = matches!(node.name.as_str(), "form" | "query");
            if !repeats && node.props[..i].iter().any(|p| p.name == prop.name) {
                self.push(
                    Code::DuplicateField,
                    prop.name_span,
                    format!("`{}` is given twice in `{}`", prop.name, node.name),
                    "second occurrence",
                    "remove one of them".into(),
                );
                continue;
            }
            if spec.is_map {
                continue;
            }
            match spec.props.iter().find(|f| f.name == prop.name) {
                Some(field) => self.value(field, &prop.value, &node.name),
                None => {
                    let help = did_you_mean(&prop.name, spec.props.iter().map(|f| f.name))
                        .or_else(|| {
                            schema::alias(&node.name, &prop.name).map(|(_, h)| h.to_string())
                        })
                        .unwrap_or_else(|| {
                            if spec.props.is_empty() {
                                format!("`{}` has no properties", node.name)
                            } else {
                                let all: Vec<&str> = spec.props.iter().map(|f| f.name).collect();
                                format!("`{}` accepts: {}", node.name, all.join(", "))
                            }
                        });
                    self.push(
                        Code::UnknownField,
                        prop.name_span,
                        format!("unknown property `{}` on `{}`", prop.name, node.name),
                        "not a property of this node",
                        help,
                    );
                }
            }
        }
        for field in spec.props.iter().filter(|f| f.required) {
            if node.prop(field.name).is_none() && !aliased.contains(&field.name) {
                self.missing(node, field, "needs");
            }
        }
        let what = format!("`{}`", node.name);
        self.children(spec, &what, &node.children);
    }

    fn children(&mut self, spec: &'static NodeSpec, what: &str, children: &[Node]) {
        let steps = spec.steps();
        for (i, child) in children.iter().enumerate() {
            if child.name == PLACEHOLDER {
                continue;
            }
            if let Some(c) = spec.child(&child.name) {
                if matches!(c.kind, ChildKind::One | ChildKind::Map)
                    && children[..i].iter().any(|p| p.name == child.name)
                {
                    self.push(
                        Code::DuplicateField,
                        child.name_span,
                        format!("`{}` is given twice in {what}", child.name),
                        "second occurrence",
                        "merge them into one".into(),
                    );
                    continue;
                }
                if let Some(cspec) = schema::spec(c.node) {
                    self.node(cspec, child);
                }
                continue;
            }
            if let Some(set) = steps {
                if let Some(cspec) = schema::step_spec(set, &child.name) {
                    self.node(cspec, child);
                    continue;
                }
                if schema::all_step_kinds().any(|k| k == child.name) {
                    let (message, help) = if set == StepSet::Main {
                        (
                            format!("`{}` only works inside a `ws` session", child.name),
                            format!(
                                "move it into a `ws \"/path\" {{ … }}` block; steps here are: {}",
                                StepSet::Main.kinds().join(", ")
                            ),
                        )
                    } else {
                        (
                            format!("`{}` cannot be used inside a `ws` session", child.name),
                            format!(
                                "a session's steps are: {}; put `{}` before or after the `ws` block",
                                StepSet::Ws.kinds().join(", "),
                                child.name
                            ),
                        )
                    };
                    self.push(
                        Code::MisplacedStep,
                        child.name_span,
                        message,
                        &format!("not allowed in {what}"),
                        help,
                    );
                    continue;
                }
            }
            let mut candidates: Vec<&str> = spec
                .children
                .iter()
                .map(|c| c.node)
                .filter(|n| *n != "steps")
                .collect();
            if let Some(set) = steps {
                candidates.extend(set.kinds());
            }
            let think = (child.name == "think" && steps.is_some()).then(|| {
                "did you mean `sleep`? (`think` is a scenario's pause between iterations)"
                    .to_string()
            });
            let help = think
                .or_else(|| did_you_mean(&child.name, candidates.iter().copied()))
                .unwrap_or_else(|| {
                    if candidates.is_empty() {
                        format!("{what} takes no children")
                    } else {
                        format!("{what} accepts: {}", candidates.join(", "))
                    }
                });
            self.push(
                Code::UnknownNode,
                child.name_span,
                format!("unknown node `{}` in {what}", child.name),
                "not known here",
                help,
            );
        }
    }

    fn value(&mut self, field: &Field, v: &Value, node: &str) {
        let ok = match (field.ty, &v.scalar) {
            (Ty::Any, _) => true,
            (Ty::Str, Scalar::Str(_)) => true,
            (Ty::Int, Scalar::Int(_)) => true,
            (Ty::Num, Scalar::Int(_) | Scalar::Float(_)) => true,
            (Ty::Bool, Scalar::Bool(_)) => true,
            (Ty::Duration, Scalar::Str(_) | Scalar::Int(_) | Scalar::Float(_)) => {
                if let Err(e) = parse_duration(v) {
                    self.push(
                        Code::BadDuration,
                        v.span,
                        e,
                        &format!("the `{}` of `{node}`", field.name),
                        "write a number with a unit: `250ms`, `2s`, `1m30s`, `1h` (a bare number means seconds)".into(),
                    );
                }
                true
            }
            (Ty::Size, Scalar::Str(_) | Scalar::Int(_)) => {
                if let Err(e) = parse_size(v) {
                    self.push(
                        Code::BadValue,
                        v.span,
                        e,
                        &format!("the `{}` of `{node}`", field.name),
                        "write a number with a unit: `512KiB`, `16MiB`, `1GiB` (a bare integer means bytes)".into(),
                    );
                }
                true
            }
            _ => false,
        };
        if !ok {
            let hint = match (field.ty, &v.scalar) {
                (Ty::Int | Ty::Num, Scalar::Str(s)) if s.trim().parse::<f64>().is_ok() => {
                    format!("remove the quotes: {}", s.trim())
                }
                (Ty::Int, _) => format!(
                    "write a whole number, e.g. {}",
                    self.example(field.name, "3")
                ),
                (Ty::Num, _) => format!("write a number, e.g. {}", self.example(field.name, "1.5")),
                (Ty::Str, _) => "put the value in double quotes".to_string(),
                (Ty::Bool, _) => "write #true or #false (KDL), true or false (YAML)".to_string(),
                _ => format!("`{}`: {}", field.name, field.doc),
            };
            self.push(
                Code::WrongType,
                v.span,
                format!(
                    "`{}` of `{node}` must be {}, found {}",
                    field.name,
                    field.ty.describe(),
                    v.scalar.type_name()
                ),
                "wrong type",
                hint,
            );
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size_str;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size_str("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size_str("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size_str("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size_str("10MB"), Ok(10_000_000));
        assert_eq!(parse_size_str("300"), Ok(300));
        assert_eq!(parse_size_str("300B"), Ok(300));
        assert!(matches!(parse_size_str("16mib"), Err(e) if e.contains("unknown unit")));
        assert!(parse_size_str("MiB").is_err());
        assert!(parse_size_str("-1MiB").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_so_clock_arithmetic_cannot_overflow() {
        assert_eq!(parse_duration_str("366d"), Ok(MAX_DURATION));
        for long in ["367d", "100000000h", "1e15", "1e300", "inf"] {
            let e = parse_duration_str(long).expect_err(long);
            assert!(e.contains("too long"), "{long}: {e}");
        }
        assert!(parse_duration_str("NaN").is_err());
        assert!(parse_duration_str("-1").is_err());
    }
}
