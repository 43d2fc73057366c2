//! The spanned syntax tree both spellings lower into.
//!
//! A plan is a tree of [`Node`]s: a name, positional arguments, properties and
//! children — KDL's data model. The KDL front end maps KDL nodes one to one; the YAML
//! front end applies the mapping rule of `grammar/README.md` (one-key maps are nodes,
//! named keys are arguments, lists are children) with the help of [`super::schema`].
//! Everything downstream (schema checks, compile) sees only this tree, so the two
//! spellings cannot drift apart. Every value carries the span of its source text.

use crate::source::Span;

/// The name of a placeholder node: a piece of the source the parser could not read
/// and already reported. Later passes skip it, but it still counts as "something
/// there" (a scenario with one unreadable step is not also "empty").
pub const PLACEHOLDER: &str = "";

/// A scalar as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Int(_) => "an integer",
            Scalar::Float(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "null",
        }
    }

    /// The value as text, for places that accept any scalar (vars, `set`, `equals`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => String::from("null"),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Str(s) => serde_json::Value::String(s.clone()),
            Scalar::Int(i) => serde_json::Value::from(*i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Null => serde_json::Value::Null,
        }
    }
}

/// A scalar with the span of its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub scalar: Scalar,
    pub span: Span,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match &self.scalar {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.scalar {
            Scalar::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.scalar {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.scalar {
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// A `key=value` property (KDL) or a non-argument key (YAML).
#[derive(Clone, Debug, PartialEq)]
pub struct Prop {
    pub name: String,
    pub name_span: Span,
    pub value: Value,
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub name_span: Span,
    /// The whole node (for labels that cover it).
    pub span: Span,
    /// Positional arguments; `None` where YAML left out a named argument.
    pub args: Vec<Option<Value>>,
    pub props: Vec<Prop>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(name: impl Into<String>, name_span: Span, span: Span) -> Self {
        Self {
            name: name.into(),
            name_span,
            span,
            args: Vec::new(),
            props: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn arg(&self, i: usize) -> Option<&Value> {
        self.args.get(i).and_then(Option::as_ref)
    }

    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.props.iter().find(|p| p.name == name).map(|p| &p.value)
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn str_arg(&self, i: usize) -> Option<&str> {
        self.arg(i).and_then(Value::as_str)
    }

    pub fn str_prop(&self, name: &str) -> Option<&str> {
        self.prop(name).and_then(Value::as_str)
    }
}

/// A parsed document: the root's children.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Document {
    pub nodes: Vec<Node>,
}
