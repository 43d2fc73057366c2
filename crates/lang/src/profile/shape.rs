//! The shape of a profile file, checked on the spanned YAML tree before the typed
//! deserialization in [`super::parse`].
//!
//! serde stops at the first problem and knows no spans for missing fields; this pass
//! reports every unknown key (with "did you mean"), missing required field and
//! mistyped value at once, each at its exact place. [`Locate`] finds the span of any
//! field for the value checks that follow.

use serde_saphyr::Spanned;

use crate::diag::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::source::{Source, Span};
use crate::yaml::{Yaml, span_of};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Count,
    Number,
    Duration,
    Flag,
    Amount,
    Stages,
    Weights,
    Thresholds,
}

impl Kind {
    fn example(self) -> &'static str {
        match self {
            Kind::Text => "smoke",
            Kind::Count => "10",
            Kind::Number => "2.5",
            Kind::Duration => "30s",
            Kind::Flag => "true",
            Kind::Amount => "500ms",
            Kind::Stages => "[{ duration: 1m, target: 10 }]",
            Kind::Weights => "{ http: 80, websocket: 20 }",
            Kind::Thresholds => "[{ metric: p95, max: 500ms }]",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "a text",
            Kind::Count => "a whole number (0 or more)",
            Kind::Number => "a number",
            Kind::Duration => "a duration such as `30s` or `5m`",
            Kind::Flag => "true or false",
            Kind::Amount => "a number, a duration (`500ms`) or a percentage (`5%`)",
            Kind::Stages => "a list of `{ duration, target }` stages",
            Kind::Weights => "a mapping of scenario names to weights",
            Kind::Thresholds => "a list of `{ metric, max/min }` rules",
        }
    }
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn f(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

/// The top-level fields (the same as `ProfileFile`; a unit test keeps them in step).
const TOP: &[Field] = &[
    f("name", Kind::Text, true),
    f("description", Kind::Text, false),
    f("users", Kind::Count, false),
    f("spawn_rate", Kind::Number, false),
    f("duration", Kind::Duration, false),
    f("arrival_rate", Kind::Number, false),
    f("max_users", Kind::Count, false),
    f("arrival", Kind::Text, false),
    f("stages", Kind::Stages, false),
    f("weights", Kind::Weights, false),
    f("thresholds", Kind::Thresholds, false),
    f("stop_timeout", Kind::Duration, false),
    f("allow_no_data", Kind::Flag, false),
];
const STAGE: &[Field] = &[
    f("duration", Kind::Duration, true),
    f("target", Kind::Number, true),
];
const THRESHOLD: &[Field] = &[
    f("metric", Kind::Text, true),
    f("step", Kind::Text, false),
    f("max", Kind::Amount, false),
    f("min", Kind::Amount, false),
    f("abort_on_fail", Kind::Flag, false),
];

/// Top-level field names, for tests that compare them with `ProfileFile`.
#[cfg(test)]
pub fn top_level_names() -> Vec<&'static str> {
    TOP.iter().map(|f| f.name).collect()
}

fn kind_of(y: &Yaml) -> &'static str {
    match y {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Int(_) => "an integer",
        Yaml::Float(_) => "a number",
        Yaml::Str(_) => "a text",
        Yaml::Seq(_) => "a list",
        Yaml::Map(_) => "a mapping",
    }
}

struct Shape<'a> {
    source: &'a Source,
    diags: Diagnostics,
}

/// Check the tree of a profile; empty when its shape is right.
pub fn check(source: &Source, tree: &Spanned<Yaml>) -> Diagnostics {
    let mut cx = Shape {
        source,
        diags: Diagnostics::new(),
    };
    match &tree.value {
        Yaml::Map(entries) => cx.fields(TOP, entries, span_of(tree), "the profile"),
        other => cx.push(
            Code::ProfileWrongType,
            span_of(tree),
            format!("a profile is a mapping of fields, found {}", kind_of(other)),
            "not a mapping",
            "start with `name: my-profile` and `users: 10` on their own lines".into(),
        ),
    }
    cx.diags
}

impl Shape<'_> {
    fn push(&mut self, code: Code, span: Span, message: String, label: &str, help: String) {
        self.diags.push(
            Diagnostic::new(code, self.source, span, message)
                .label(label)
                .help(help),
        );
    }

    fn fields(
        &mut self,
        fields: &[Field],
        entries: &[(Spanned<Yaml>, Spanned<Yaml>)],
        whole: Span,
        what: &str,
    ) {
        for (k, v) in entries {
            let key = match &k.value {
                Yaml::Str(s) => s.clone(),
                other => {
                    self.push(
                        Code::ProfileWrongType,
                        span_of(k),
                        format!("a field name must be a word, found {}", kind_of(other)),
                        "not a name",
                        "use a field name such as `users`".into(),
                    );
                    continue;
                }
            };
            match fields.iter().find(|f| f.name == key) {
                Some(field) => self.value(field, v),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    let help = did_you_mean(&key, names.iter().copied())
                        .unwrap_or_else(|| format!("{what} accepts: {}", names.join(", ")));
                    self.push(
                        Code::ProfileUnknownField,
                        span_of(k),
                        format!("unknown field `{key}` in {what}"),
                        "not a profile field",
                        help,
                    );
                }
            }
        }
        for field in fields.iter().filter(|f| f.required) {
            let present = entries.iter().any(|(k, v)| {
                matches!(&k.value, Yaml::Str(s) if s == field.name)
                    && !matches!(v.value, Yaml::Null)
            });
            if !present {
                // Point at the first key: the start of the mapping that lacks the field.
                let at = entries.first().map_or(whole, |(k, _)| span_of(k));
                self.push(
                    Code::ProfileMissingField,
                    at,
                    format!("{what} needs `{}`", field.name),
                    &format!("`{}` is missing in this mapping", field.name),
                    format!("add `{}:` ({})", field.name, field.kind.describe()),
                );
            }
        }
    }

    fn value(&mut self, field: &Field, v: &Spanned<Yaml>) {
        let ok = match (field.kind, &v.value) {
            (_, Yaml::Null) => !field.required,
            (Kind::Text, Yaml::Str(_) | Yaml::Int(_) | Yaml::Float(_) | Yaml::Bool(_)) => true,
            (Kind::Count, Yaml::Int(i)) => *i >= 0,
            (Kind::Number, Yaml::Int(_)) => true,
            (Kind::Number, Yaml::Float(x)) => x.is_finite(),
            (Kind::Duration | Kind::Amount, Yaml::Str(_) | Yaml::Int(_) | Yaml::Float(_)) => true,
            (Kind::Flag, Yaml::Bool(_)) => true,
            (Kind::Stages, Yaml::Seq(items)) => {
                self.list(items, STAGE, "a stage");
                true
            }
            (Kind::Thresholds, Yaml::Seq(items)) => {
                self.list(items, THRESHOLD, "a threshold");
                true
            }
            (Kind::Weights, Yaml::Map(entries)) => {
                for (_, w) in entries {
                    let count = Field {
                        name: "weight",
                        kind: Kind::Count,
                        required: true,
                    };
                    self.value(&count, w);
                }
                true
            }
            _ => false,
        };
        if !ok {
            let hint = match (&v.value, field.kind) {
                (Yaml::Str(s), Kind::Count | Kind::Number) if s.trim().parse::<f64>().is_ok() => {
                    format!("remove the quotes: `{}`", s.trim())
                }
                (Yaml::Int(i), Kind::Count) if *i < 0 => "use 0 or more".into(),
                (Yaml::Str(_), Kind::Flag) => "write true or false without quotes".into(),
                _ => format!("write e.g. `{}: {}`", field.name, field.kind.example()),
            };
            self.push(
                Code::ProfileWrongType,
                span_of(v),
                format!(
                    "`{}` must be {}, found {}",
                    field.name,
                    field.kind.describe(),
                    kind_of(&v.value)
                ),
                "wrong type",
                hint,
            );
        }
    }

    fn list(&mut self, items: &[Spanned<Yaml>], fields: &[Field], what: &str) {
        for item in items {
            match &item.value {
                Yaml::Map(entries) => self.fields(fields, entries, span_of(item), what),
                other => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    self.push(
                        Code::ProfileWrongType,
                        span_of(item),
                        format!("{what} is a mapping, found {}", kind_of(other)),
                        "not a mapping",
                        format!("write `- {{ {} }}`", names.join(": …, ")),
                    );
                }
            }
        }
    }
}

/// Spans of fields in a profile tree, by path (`["thresholds", "0", "max"]`).
pub struct Locate<'a> {
    tree: &'a Spanned<Yaml>,
}

impl<'a> Locate<'a> {
    pub fn new(tree: &'a Spanned<Yaml>) -> Self {
        Self { tree }
    }

    fn entry(&self, path: &[&str]) -> Option<(Span, &'a Spanned<Yaml>)> {
        let mut node = self.tree;
        let mut key_span = Span::default();
        for seg in path {
            match &node.value {
                Yaml::Map(entries) => {
                    let (k, v) = entries
                        .iter()
                        .find(|(k, _)| matches!(&k.value, Yaml::Str(s) if s == seg))?;
                    key_span = span_of(k);
                    node = v;
                }
                Yaml::Seq(items) => {
                    node = items.get(seg.parse::<usize>().ok()?)?;
                    key_span = span_of(node);
                }
                _ => return None,
            }
        }
        Some((key_span, node))
    }

    /// The span of the value at `path` (empty span at the start when absent).
    pub fn value(&self, path: &[&str]) -> Span {
        self.entry(path)
            .map_or_else(Span::default, |(_, v)| span_of(v))
    }

    /// The span of the key at `path`.
    pub fn key(&self, path: &[&str]) -> Span {
        self.entry(path).map_or_else(Span::default, |(k, _)| k)
    }
}
