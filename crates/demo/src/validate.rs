//! Input validation with the error shapes of the real backend (FastAPI + pydantic v2): REST
//! inputs answer 422 `{"detail": [{type, loc, msg, input, ctx?}, ...]}` listing every bad field,
//! and the oscilloscope renders the same errors as pydantic's one-string summary.
//!
//! Coercion follows pydantic's lax mode where it is cheap (integral floats and numeric strings
//! are accepted as integers, numeric strings as floats); booleans are refused as numbers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// One pydantic-style validation error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub kind: &'static str,
    /// Where the value came from (`"query"`, `"body"`) and its name; empty name for the whole.
    pub source: &'static str,
    pub field: &'static str,
    pub msg: String,
    pub input: Value,
    /// Boxed: keeps the error (the `Err` of every validator) small.
    pub ctx: Option<Box<Value>>,
}

impl FieldError {
    pub(crate) fn new(
        kind: &'static str,
        (source, field): (&'static str, &'static str),
        msg: impl Into<String>,
        input: Value,
    ) -> Self {
        FieldError {
            kind,
            source,
            field,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub(crate) fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(Box::new(ctx));
        self
    }

    fn to_json(&self) -> Value {
        let loc = if self.field.is_empty() {
            json!([self.source])
        } else {
            json!([self.source, self.field])
        };
        let mut entry =
            json!({"type": self.kind, "loc": loc, "msg": self.msg, "input": self.input});
        if let (Some(ctx), Value::Object(map)) = (&self.ctx, &mut entry) {
            map.insert("ctx".to_owned(), Value::clone(ctx));
        }
        entry
    }
}

/// 422 `{"detail": [...]}`.
pub(crate) fn unprocessable(errors: &[FieldError]) -> Response {
    let detail: Vec<Value> = errors.iter().map(FieldError::to_json).collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

/// pydantic's text summary, e.g. `1 validation error for Model\nfield\n  msg [type=..., ...]`.
pub(crate) fn summary(model: &str, errors: &[FieldError]) -> String {
    let plural = if errors.len() == 1 { "" } else { "s" };
    let mut text = format!("{} validation error{plural} for {model}", errors.len());
    for e in errors {
        text.push_str(&format!(
            "\n{}\n  {} [type={}, input_value={}, input_type={}]",
            e.field,
            e.msg,
            e.kind,
            py_repr(&e.input),
            py_type(&e.input)
        ));
    }
    text
}

/// Python's name for the type a JSON value decodes to.
pub(crate) fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// An inclusive numeric range, as declared with pydantic's `ge`/`le`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub ge: f64,
    pub le: f64,
}

fn bound_json(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

impl Range {
    fn check(
        self,
        at: (&'static str, &'static str),
        value: f64,
        input: &Value,
    ) -> Result<(), FieldError> {
        if value < self.ge {
            return Err(FieldError::new(
                "greater_than_equal",
                at,
                format!("Input should be greater than or equal to {}", self.ge),
                input.clone(),
            )
            .with_ctx(json!({ "ge": bound_json(self.ge) })));
        }
        if value > self.le {
            return Err(FieldError::new(
                "less_than_equal",
                at,
                format!("Input should be less than or equal to {}", self.le),
                input.clone(),
            )
            .with_ctx(json!({ "le": bound_json(self.le) })));
        }
        Ok(())
    }
}

/// An integer in `range`; `input` is the raw value as received.
pub(crate) fn int_in(
    at: (&'static str, &'static str),
    input: &Value,
    range: Range,
) -> Result<i64, FieldError> {
    let value = match input {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "int_from_float",
                    at,
                    "Input should be a valid integer, got a number with a fractional part",
                    input.clone(),
                ));
            }
            (None, None) => return Err(int_type(at, input)),
        },
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            FieldError::new(
                "int_parsing",
                at,
                "Input should be a valid integer, unable to parse string as an integer",
                input.clone(),
            )
        })?,
        _ => return Err(int_type(at, input)),
    };
    range.check(at, value as f64, input)?;
    Ok(value)
}

fn int_type(at: (&'static str, &'static str), input: &Value) -> FieldError {
    FieldError::new(
        "int_type",
        at,
        "Input should be a valid integer",
        input.clone(),
    )
}

/// A finite number in `range`.
pub(crate) fn float_in(
    at: (&'static str, &'static str),
    input: &Value,
    range: Range,
) -> Result<f64, FieldError> {
    let value = match input {
        Value::Number(n) => n.as_f64().ok_or_else(|| float_type(at, input))?,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| {
                FieldError::new(
                    "float_parsing",
                    at,
                    "Input should be a valid number, unable to parse string as a number",
                    input.clone(),
                )
            })?,
        _ => return Err(float_type(at, input)),
    };
    range.check(at, value, input)?;
    Ok(value)
}

fn float_type(at: (&'static str, &'static str), input: &Value) -> FieldError {
    FieldError::new(
        "float_type",
        at,
        "Input should be a valid number",
        input.clone(),
    )
}

/// A string matching the anchored alternation `^(a|b|c)$` of `allowed`.
pub(crate) fn one_of(
    at: (&'static str, &'static str),
    input: &Value,
    allowed: &[&'static str],
) -> Result<&'static str, FieldError> {
    let Value::String(s) = input else {
        return Err(FieldError::new(
            "string_type",
            at,
            "Input should be a valid string",
            input.clone(),
        ));
    };
    allowed.iter().copied().find(|a| a == s).ok_or_else(|| {
        let pattern = format!("^({})$", allowed.join("|"));
        FieldError::new(
            "string_pattern_mismatch",
            at,
            format!("String should match pattern '{pattern}'"),
            input.clone(),
        )
        .with_ctx(json!({ "pattern": pattern }))
    })
}

/// Decodes a query string; a repeated name keeps its last value (Starlette's behaviour).
pub(crate) fn query_map(raw: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    if let Some(raw) = raw {
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: (&str, &str) = ("body", "num_points");
    const POINTS: Range = Range { ge: 6.0, le: 24.0 };

    #[test]
    fn integers_accept_integral_floats_and_numeric_strings() {
        assert_eq!(int_in(AT, &json!(12), POINTS), Ok(12));
        assert_eq!(int_in(AT, &json!(12.0), POINTS), Ok(12));
        assert_eq!(int_in(AT, &json!("12"), POINTS), Ok(12));
    }

    #[test]
    fn integer_errors_carry_pydantic_types() {
        let kind = |v: Value| int_in(AT, &v, POINTS).map_err(|e| e.kind);
        assert_eq!(kind(json!(12.5)), Err("int_from_float"));
        assert_eq!(kind(json!("twelve")), Err("int_parsing"));
        assert_eq!(kind(json!(true)), Err("int_type"));
        assert_eq!(kind(json!(5)), Err("greater_than_equal"));
        assert_eq!(kind(json!(25)), Err("less_than_equal"));
    }

    #[test]
    fn range_error_renders_fastapi_detail() {
        let e = int_in(AT, &json!(3), POINTS).expect_err("3 is below 6");
        assert_eq!(
            e.to_json(),
            json!({"type": "greater_than_equal", "loc": ["body", "num_points"],
                   "msg": "Input should be greater than or equal to 6", "input": 3,
                   "ctx": {"ge": 6}})
        );
    }

    #[test]
    fn floats_keep_fractional_bounds_in_messages() {
        let range = Range { ge: 0.05, le: 0.5 };
        let e = float_in(("body", "variation_amount"), &json!(0.7), range).expect_err("too big");
        assert_eq!(e.msg, "Input should be less than or equal to 0.5");
        assert_eq!(e.ctx.as_deref(), Some(&json!({"le": 0.5})));
        assert_eq!(float_in(AT, &json!("0.25"), range), Ok(0.25));
        assert_eq!(
            float_in(AT, &json!(null), range).map_err(|e| e.kind),
            Err("float_type")
        );
    }

    #[test]
    fn enumerations_report_the_pattern() {
        let at = ("body", "difficulty");
        assert_eq!(
            one_of(at, &json!("hard"), &["easy", "medium", "hard"]),
            Ok("hard")
        );
        let e = one_of(at, &json!("extreme"), &["easy", "medium", "hard"]).expect_err("unknown");
        assert_eq!(e.msg, "String should match pattern '^(easy|medium|hard)$'");
        assert_eq!(
            one_of(at, &json!(1), &["easy"]).map_err(|e| e.kind),
            Err("string_type")
        );
    }

    #[test]
    fn summary_matches_pydantic_layout() {
        let e = float_in(
            ("body", "frequency"),
            &json!(150),
            Range { ge: 0.1, le: 100.0 },
        )
        .expect_err("too high");
        assert_eq!(
            summary("OscilloscopeCommand", &[e]),
            "1 validation error for OscilloscopeCommand\nfrequency\n  Input should be less than or \
             equal to 100 [type=less_than_equal, input_value=150, input_type=int]"
        );
    }

    #[test]
    fn query_keeps_the_last_repeated_value() {
        let q = query_map(Some("width=500&height=x%20y&width=600"));
        assert_eq!(q.get("width"), Some(&json!("600")));
        assert_eq!(q.get("height"), Some(&json!("x y")));
    }
}
