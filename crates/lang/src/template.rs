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
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
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

/// Filters loadplan adds to minijinja's own (see [`FILTERS`]).
const OWN_FILTERS: &[&str] = &["b64encode", "b64decode", "sha256", "hmac", "date"];

/// Every filter a template may use: minijinja's built-ins (with its `json` and
/// `urlencode` features: `tojson`, `urlencode`) and loadplan's own. The names
/// "did you mean" suggests from.
pub const FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
    "b64encode",
    "b64decode",
    "sha256",
    "hmac",
    "date",
];

/// Every test (`x is defined`) a template may use: minijinja's built-ins.
pub const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

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
        // An undefined variable, attribute or feeder column is an error (a counted
        // `template` failure at run time), never an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("b64encode", b64encode);
        env.add_filter("b64decode", b64decode);
        env.add_filter("sha256", sha256);
        env.add_filter("hmac", hmac);
        env.add_filter("date", date);
        debug_assert!(OWN_FILTERS.iter().all(|f| FILTERS.contains(f)));
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

    /// The dotted names a compiled template reads (`users.name`, `token`), for
    /// checking attributes of known objects (feeder columns).
    pub fn nested_names(&self, tpl: &Tpl) -> HashSet<String> {
        match tpl.id {
            None => HashSet::new(),
            Some(id) => self
                .env
                .get_template(&id.to_string())
                .map(|t| t.undeclared_variables(true))
                .unwrap_or_default(),
        }
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

/// Check a rendered JSON text; the error names the problem and shows the text
/// around it (`… "a"b" …`).
pub fn check_json(text: &str) -> Result<(), String> {
    let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) else {
        return Ok(());
    };
    let at = crate::source::Source::new("", text)
        .offset_of(e.line(), e.column())
        .min(text.len());
    let mut from = at.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (at + 40).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let detail = e.to_string();
    let detail = detail.split(" at line ").next().unwrap_or(&detail);
    Err(format!(
        "rendered JSON body is not valid JSON: {detail} at byte {at}: {}{}{}",
        if from > 0 { "…" } else { "" },
        &text[from..to],
        if to < text.len() { "…" } else { "" }
    ))
}

/// Byte ranges of the template tags (`{{ … }}`, `{% … %}`) in a text.
pub fn template_tags(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find('{').map(|i| from + i) {
        let close = match text.get(i..i + 2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            _ => {
                from = i + 1;
                continue;
            }
        };
        let end = text[i + 2..]
            .find(close)
            .map_or(text.len(), |j| i + 2 + j + 2);
        out.push((i, end));
        from = end;
    }
    out
}

/// What a filter or test name in a template is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callee {
    Filter,
    Test,
}

/// The filters (`| name`) and tests (`is [not] name`) a template uses, with the byte
/// offset of each name in the text. A small scanner over the tags: string literals
/// are skipped, so `'a|b'` is not a filter.
pub fn callees(text: &str, whole_expression: bool) -> Vec<(Callee, String, usize)> {
    let tags = if whole_expression {
        vec![(0, text.len())]
    } else {
        template_tags(text)
    };
    let mut out = Vec::new();
    for (a, b) in tags {
        let bytes = &text.as_bytes()[..b];
        let mut i = a;
        // The previous word (to spot `is` and `is not`).
        let mut last_words: Vec<String> = Vec::new();
        while i < b {
            let c = bytes[i];
            if c == b'\'' || c == b'"' {
                i += 1;
                while i < b && bytes[i] != c {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                last_words.clear();
                continue;
            }
            let ident = |j: usize| bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_';
            if c == b'|' {
                let mut j = i + 1;
                while j < b && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let start = j;
                while j < b && ident(j) {
                    j += 1;
                }
                if j > start {
                    out.push((Callee::Filter, text[start..j].to_string(), start));
                }
                i = j.max(i + 1);
                last_words.clear();
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b && ident(i) {
                    i += 1;
                }
                let word = &text[start..i];
                let after_is = match last_words.as_slice() {
                    [.., w] if w == "is" => true,
                    [.., w1, w2] if w1 == "is" && w2 == "not" => word != "not",
                    _ => false,
                };
                if after_is && word != "not" {
                    out.push((Callee::Test, word.to_string(), start));
                    last_words.clear();
                } else {
                    last_words.push(word.to_string());
                }
                continue;
            }
            if !c.is_ascii_whitespace() && !c.is_ascii_digit() {
                last_words.clear();
            }
            i += 1;
        }
    }
    out
}

/// Per-user runtime state the built-in functions use: a seeded RNG and the run's
/// shared counter.
#[derive(Debug)]
pub struct UserRt {
    rng: Mutex<StdRng>,
    counter: Arc<AtomicU64>,
    /// `(offset, stride)` of this process's share of a distributed run: worker `i` of `n`
    /// hands out `counter()` values `i, i + n, i + 2n, …`, so they stay unique run-wide.
    /// `(0, 1)` in a single process.
    share: (u64, u64),
}

impl UserRt {
    pub fn new(seed: u64, counter: Arc<AtomicU64>) -> Self {
        Self::with_share(seed, counter, (0, 1))
    }

    /// A user's runtime in one share of a distributed run (see [`UserRt::share`]).
    pub fn with_share(seed: u64, counter: Arc<AtomicU64>, share: (u64, u64)) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counter,
            share: (share.0, share.1.max(1)),
        }
    }
}

impl Object for UserRt {}

/// Runs `f` on the rendering user's runtime (`__rt` in the context).
fn with_rt<T>(state: &State, f: impl FnOnce(&UserRt) -> Result<T, Error>) -> Result<T, Error> {
    let rt = state
        .lookup("__rt")
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no user runtime in context"))?;
    let rt = rt
        .downcast_object_ref::<UserRt>()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "bad user runtime in context"))?;
    f(rt)
}

fn with_rng<T>(state: &State, f: impl FnOnce(&mut StdRng) -> T) -> Result<T, Error> {
    with_rt(state, |rt| {
        let mut rng = rt
            .rng
            .lock()
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "user RNG poisoned"))?;
        Ok(f(&mut rng))
    })
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
    with_rt(state, |rt| {
        let n = rt.counter.fetch_add(1, Ordering::Relaxed);
        let (offset, stride) = rt.share;
        Ok(offset.saturating_add(n.saturating_mul(stride)))
    })
}

/// Standard base64 with padding (RFC 4648).
fn b64encode(v: JValue) -> String {
    match v.as_bytes() {
        Some(b) => base64(b),
        None => base64(v.to_string().as_bytes()),
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode standard or URL-safe base64 (padding optional, surrounding blanks ignored) to text.
fn b64decode(s: String) -> Result<String, Error> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    // The URL-safe alphabet differs in two characters only: map them to the standard ones.
    let standard: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = LENIENT
        .decode(standard)
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode: not base64 text"))?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the bytes are not UTF-8 text",
        )
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 digest of a text, in lowercase hex.
fn sha256(s: String) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

/// An HMAC of a text with a key, in lowercase hex: `{{ body | hmac(secret) }}`
/// (SHA-256), or `hmac(secret, "sha512")`.
fn hmac(s: String, key: String, algorithm: Option<String>) -> Result<String, Error> {
    let alg = match algorithm.as_deref().unwrap_or("sha256") {
        "sha256" => ring::hmac::HMAC_SHA256,
        "sha384" => ring::hmac::HMAC_SHA384,
        "sha512" => ring::hmac::HMAC_SHA512,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("hmac: unknown algorithm `{other}` (sha256, sha384 or sha512)"),
            ));
        }
    };
    let key = ring::hmac::Key::new(alg, key.as_bytes());
    Ok(hex(ring::hmac::sign(&key, s.as_bytes()).as_ref()))
}

/// A Unix time in seconds as a UTC date: `{{ now() | date }}` is RFC 3339
/// (`2026-11-30T06:38:46Z`); a format takes `%Y %m %d %H %M %S %s %%`.
fn date(v: JValue, format: Option<String>) -> Result<String, Error> {
    let secs = f64::try_from(v.clone())
        .ok()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "date: expects Unix seconds (a number), e.g. `now() | date`",
            )
        })?;
    if !secs.is_finite() || secs.abs() > 253_402_300_799.0 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "date: time out of range",
        ));
    }
    let t = secs.floor() as i64;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let format = format.unwrap_or_else(|| "%Y-%m-%dT%H:%M:%SZ".into());
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('s') => out.push_str(&t.to_string()),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "date: unknown format `%{}` (use %Y %m %d %H %M %S %s)",
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(out)
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
    fn callees_are_found_outside_strings() {
        let found = callees(
            "{{ a | upper }}{{ 'x|y' ~ b|tojson }}{% if c is not defined %}{% endif %}",
            false,
        );
        let names: Vec<(Callee, &str)> = found.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
        assert_eq!(
            names,
            vec![
                (Callee::Filter, "upper"),
                (Callee::Filter, "tojson"),
                (Callee::Test, "defined")
            ]
        );
        assert!(callees("a is even and b | length > 2", true).len() == 2);
    }

    #[test]
    fn base64_and_dates_round_trip() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "é"] {
            let enc = base64(text.as_bytes());
            assert_eq!(b64decode(enc).expect("decodes"), text);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            date(JValue::from(951_782_400), None).expect("date"),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            date(JValue::from(-1), Some("%Y-%m-%d %H:%M:%S".into())).expect("date"),
            "1969-12-31 23:59:59"
        );
        assert!(date(JValue::from("soon"), None).is_err());
    }

    #[test]
    fn strict_templates_refuse_undefined_attributes() {
        let mut t = Templates::new();
        let (tpl, _) = t.add("/x{{ row.ulr }}").expect("compiles");
        let row: std::collections::BTreeMap<&str, &str> = [("url", "/a")].into_iter().collect();
        let err = t
            .render(
                &tpl,
                &ctx(&[("row", JValue::from(minijinja::value::Serde(row)))]),
            )
            .expect_err("undefined attribute");
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }

    #[test]
    fn syntax_errors_are_reported() {
        let mut t = Templates::new();
        assert!(t.add("{{ oops(").is_err());
    }

    #[test]
    fn counter_values_of_distributed_shares_never_collide() {
        let mut seen = std::collections::BTreeSet::new();
        for worker in 0..3u64 {
            let shared = Arc::new(AtomicU64::new(0));
            let mut env = minijinja::Environment::new();
            env.add_function("counter", counter);
            let t = env.template_from_str("{{ counter() }}").expect("template");
            for _ in 0..5 {
                let rt = UserRt::with_share(1, shared.clone(), (worker, 3));
                let out = t
                    .render(minijinja::context! { __rt => JValue::from_object(rt) })
                    .expect("renders");
                assert!(seen.insert(out.clone()), "counter value {out} repeated");
            }
        }
        assert_eq!(seen.len(), 15);
    }
}
