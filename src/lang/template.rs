//! Templates: minijinja, compiled once when the plan compiles.
//!
//! A string without `{{` or `{%` is static and never rendered. Dynamic strings are
//! added to one shared [`Templates`] environment under a numeric name; the runtime
//! renders them with a per-user context. Built-in functions get their randomness
//! and counters from the per-user [`UserRt`] object in the context (key `__rt`), so
//! a run with a seed is reproducible and no global mutable state exists.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Object, Value as JValue};
use minijinja::{Environment, Error, ErrorKind, State};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// Names every template may use besides plan variables.
pub const BUILTIN_FUNCTIONS: &[&str] = &[
    "random_int",
    "random_choice",
    "uuid",
    "now",
    "counter",
    "env",
];
/// Context variables the runtime provides.
pub const CONTEXT_VARS: &[&str] = &["response", "user", "iteration", "scenario", "frame"];
/// minijinja's own global functions.
const MINIJINJA_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug"];

/// A string field: static text or a compiled template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tpl {
    pub source: String,
    #[serde(skip)]
    pub id: Option<u32>,
}

impl Tpl {
    pub fn fixed(s: impl Into<String>) -> Self {
        Self {
            source: s.into(),
            id: None,
        }
    }

    pub fn is_static(&self) -> bool {
        self.id.is_none()
    }
}

/// Does this text need rendering?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// The compiled templates of one program.
pub struct Templates {
    env: Environment<'static>,
    next: u32,
    /// Some template reads `response` (so the runtime keeps the last response).
    pub uses_response: bool,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Templates({})", self.next)
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.add_function("random_int", random_int);
        env.add_function("random_choice", random_choice);
        env.add_function("uuid", uuid);
        env.add_function("now", now);
        env.add_function("counter", counter);
        env.add_function("env", env_var);
        Self {
            env,
            next: 0,
            uses_response: false,
        }
    }

    /// Compile a string field; returns the names it uses that are not built in.
    pub fn add(&mut self, source: &str) -> Result<(Tpl, HashSet<String>), Error> {
        if !is_template(source) {
            return Ok((Tpl::fixed(source), HashSet::new()));
        }
        let id = self.next;
        self.env
            .add_template_owned(id.to_string(), source.to_string())?;
        self.next += 1;
        let tmpl = self.env.get_template(&id.to_string())?;
        let mut names = tmpl.undeclared_variables(false);
        self.uses_response |= names.contains("response");
        names.retain(|n| {
            !BUILTIN_FUNCTIONS.contains(&n.as_str())
                && !CONTEXT_VARS.contains(&n.as_str())
                && !MINIJINJA_GLOBALS.contains(&n.as_str())
        });
        Ok((
            Tpl {
                source: source.to_string(),
                id: Some(id),
            },
            names,
        ))
    }

    /// The expression of a condition, without the `{{ }}` it may be wrapped in.
    pub fn condition_body(expr: &str) -> &str {
        expr.trim()
            .strip_prefix("{{")
            .and_then(|e| e.strip_suffix("}}"))
            .unwrap_or(expr)
    }

    /// Compile a condition expression (the argument of `if`).
    pub fn add_condition(&mut self, expr: &str) -> Result<(Tpl, HashSet<String>), Error> {
        let inner = Self::condition_body(expr);
        let (mut tpl, names) = self.add(&format!("{{% if {inner} %}}1{{% endif %}}"))?;
        tpl.source = expr.to_string();
        Ok((tpl, names))
    }

    /// Render a field with a context value (see [`UserRt`] for `__rt`).
    pub fn render(&self, tpl: &Tpl, ctx: &JValue) -> Result<String, Error> {
        match tpl.id {
            None => Ok(tpl.source.clone()),
            Some(id) => self.env.get_template(&id.to_string())?.render(ctx),
        }
    }

    /// Evaluate a condition compiled by [`Templates::add_condition`].
    pub fn truthy(&self, tpl: &Tpl, ctx: &JValue) -> Result<bool, Error> {
        Ok(self.render(tpl, ctx)? == "1")
    }
}

/// Per-user runtime state the built-in functions use: a seeded RNG and the run's
/// shared counter.
#[derive(Debug)]
pub struct UserRt {
    rng: Mutex<StdRng>,
    counter: Arc<AtomicU64>,
}

impl UserRt {
    pub fn new(seed: u64, counter: Arc<AtomicU64>) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counter,
        }
    }
}

impl Object for UserRt {}

fn with_rng<T>(state: &State, f: impl FnOnce(&mut StdRng) -> T) -> Result<T, Error> {
    let rt = state
        .lookup("__rt")
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no user runtime in context"))?;
    let rt = rt
        .downcast_object_ref::<UserRt>()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "bad user runtime in context"))?;
    let mut rng = rt
        .rng
        .lock()
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "user RNG poisoned"))?;
    Ok(f(&mut rng))
}

fn random_int(state: &State, lo: i64, hi: i64) -> Result<i64, Error> {
    if lo > hi {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("random_int({lo}, {hi}): low is above high"),
        ));
    }
    with_rng(state, |r| r.random_range(lo..=hi))
}

fn random_choice(state: &State, items: JValue) -> Result<JValue, Error> {
    let len = items.len().unwrap_or(0);
    if len == 0 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "random_choice of an empty list",
        ));
    }
    let i = with_rng(state, |r| r.random_range(0..len))?;
    items.get_item(&JValue::from(i))
}

fn uuid(state: &State) -> Result<String, Error> {
    let (a, b): (u64, u64) = with_rng(state, |r| (r.random(), r.random()))?;
    // RFC 4122 version 4 layout from 128 random bits.
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    Ok(format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    ))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn counter(state: &State) -> Result<u64, Error> {
    let rt = state
        .lookup("__rt")
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no user runtime in context"))?;
    let rt = rt
        .downcast_object_ref::<UserRt>()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "bad user runtime in context"))?;
    Ok(rt.counter.fetch_add(1, Ordering::Relaxed))
}

fn env_var(name: String, default: Option<String>) -> Result<String, Error> {
    match std::env::var(&name) {
        Ok(v) => Ok(v),
        Err(_) => default.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("environment variable {name} is not set and no default was given"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(extra: &[(&str, JValue)]) -> JValue {
        let mut m: std::collections::BTreeMap<String, JValue> = extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        m.insert(
            "__rt".into(),
            JValue::from_object(UserRt::new(7, Arc::new(AtomicU64::new(0)))),
        );
        JValue::from(m)
    }

    #[test]
    fn plain_strings_are_static() {
        let mut t = Templates::new();
        let (tpl, names) = t.add("/health").expect("static");
        assert!(tpl.is_static());
        assert!(names.is_empty());
    }

    #[test]
    fn undeclared_names_exclude_builtins() {
        let mut t = Templates::new();
        let (_, names) = t
            .add("{{ random_int(1, 2) }}-{{ token }}-{{ response.status }}")
            .expect("compiles");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["token".to_string()]
        );
    }

    #[test]
    fn same_seed_same_random_values() {
        let mut t = Templates::new();
        let (tpl, _) = t
            .add("{{ random_int(0, 1000000) }} {{ uuid() }}")
            .expect("ok");
        let a = t.render(&tpl, &ctx(&[])).expect("renders");
        let b = t.render(&tpl, &ctx(&[])).expect("renders");
        assert_eq!(a, b);
    }

    #[test]
    fn conditions_evaluate() {
        let mut t = Templates::new();
        let (c, names) = t.add_condition("width > 100").expect("ok");
        assert!(names.contains("width"));
        assert!(
            t.truthy(&c, &ctx(&[("width", JValue::from(120))]))
                .expect("ok")
        );
        assert!(
            !t.truthy(&c, &ctx(&[("width", JValue::from(80))]))
                .expect("ok")
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let mut t = Templates::new();
        assert!(t.add("{{ oops(").is_err());
    }
}
