//! `loadplan run --trace`: one user's whole conversation, step by step.
//!
//! A [`Trace`] is an optional hook on a [`User`]: the HTTP and WebSocket steps and
//! the interpreter call it (when set) with the rendered request, the response, the
//! checks, captures, branch decisions and frames. Secrets never reach the output:
//! the values of `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie`
//! headers, and every value of a variable declared under `secrets` (or named like a
//! secret: `password`, `token`, `secret`, `api_key`), are replaced by `***`.
//!
//! [`run`] is the trace runner: one user, one iteration (or `--iterations N`) of the
//! first scenario (or `--scenario NAME`), no load model, no metrics sinks.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;

use super::fast::Prepared;
use super::http::{Subject, run_checks};
use super::user::{Shared, SharedOpts, User};
use crate::lang::ir::{Capture, Check, Program};
use crate::metrics::Aggregator;

/// How much of a body a trace line shows.
const EXCERPT: usize = 600;

/// Headers whose values are always hidden.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Variable names that are treated as secret even outside `secrets`.
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "api_key", "apikey"];

/// Where a trace goes and how much it shows.
pub struct Trace {
    out: Mutex<Box<dyn Write + Send>>,
    /// Whole bodies instead of excerpts (`--http-debug=full`).
    full: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trace(full={})", self.full)
    }
}

impl Trace {
    /// `--http-debug[=full]`: a trace of every user into a file.
    pub fn to_file(path: &std::path::Path, full: bool) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        Ok(Self::new(Box::new(std::io::BufWriter::new(file)), full))
    }

    pub fn new(out: Box<dyn Write + Send>, full: bool) -> Self {
        Self {
            out: Mutex::new(out),
            full,
        }
    }

    /// Write lines, with secrets of this user replaced.
    fn emit(&self, user: &User, text: &str) {
        let text = redact(user, text);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
        }
    }

    fn excerpt(&self, body: &[u8]) -> String {
        if body.is_empty() {
            return "(empty)".into();
        }
        let text = String::from_utf8_lossy(body);
        if self.full || text.chars().count() <= EXCERPT {
            return text.into_owned();
        }
        let cut: String = text.chars().take(EXCERPT).collect();
        format!("{cut}… ({} bytes in all)", body.len())
    }

    fn headers(&self, h: &HeaderMap, pad: &str) -> String {
        let mut out = String::new();
        for (k, v) in h {
            let shown = if SECRET_HEADERS.contains(&k.as_str()) {
                "***".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            out.push_str(&format!("{pad}{k}: {shown}\n"));
        }
        out
    }

    /// The request as it is about to be sent.
    pub fn request(&self, user: &User, stat: &str, p: &Prepared) {
        let mut t = format!(
            "\n── {stat} (user {}, iteration {})\n→ {} {}\n",
            user.id,
            user.iteration,
            p.method,
            redact_url(&p.url)
        );
        t.push_str(&self.headers(&p.headers, "  "));
        if !p.body.is_empty() {
            t.push_str(&format!("  body: {}\n", self.excerpt(&p.body)));
        }
        self.emit(user, &t);
    }

    /// A request that could not be built or sent, or a failed step.
    pub fn failure(&self, user: &User, kind: &str, message: &str) {
        self.emit(user, &format!("✗ {kind}: {message}"));
    }

    /// The response, then each check and capture.
    #[allow(clippy::too_many_arguments)]
    pub fn response(
        &self,
        user: &User,
        status: u16,
        headers: Option<&HeaderMap>,
        body: &[u8],
        elapsed: Duration,
        checks: &[Check],
        captures: &[Capture],
    ) {
        let mut t = format!("← {status} in {:.1} ms\n", elapsed.as_secs_f64() * 1000.0);
        if let Some(h) = headers {
            t.push_str(&self.headers(h, "  "));
        }
        t.push_str(&format!("  body: {}\n", self.excerpt(body)));
        let subject = Subject::new(Some(status), headers, body, elapsed);
        t.push_str(&self.checks_text(checks, &subject));
        t.push_str(&self.captures_text(user, captures));
        self.emit(user, &t);
    }

    fn checks_text(&self, checks: &[Check], subject: &Subject) -> String {
        let mut t = String::new();
        for c in checks {
            let (_, failed, msg) = run_checks(std::slice::from_ref(c), subject);
            let what = check_label(c);
            if failed == 0 {
                t.push_str(&format!("  check {what}: pass\n"));
            } else {
                t.push_str(&format!(
                    "  check {what}: FAIL ({})\n",
                    msg.unwrap_or_default()
                ));
            }
        }
        t
    }

    fn captures_text(&self, user: &User, captures: &[Capture]) -> String {
        let mut t = String::new();
        for c in captures {
            match user.vars.get(&c.var) {
                Some(v) => t.push_str(&format!("  capture {} = {}\n", c.var, shown(v))),
                None => t.push_str(&format!("  capture {}: nothing found\n", c.var)),
            }
        }
        t
    }

    /// Checks and captures on a WebSocket frame.
    pub fn frame_checks(&self, user: &User, data: &[u8], checks: &[Check], captures: &[Capture]) {
        if checks.is_empty() && captures.is_empty() {
            return;
        }
        let subject = Subject::new(None, None, data, Duration::ZERO);
        let mut t = self.checks_text(checks, &subject);
        t.push_str(&self.captures_text(user, captures));
        self.emit(user, &t);
    }

    /// A WebSocket connect.
    pub fn ws_connect(&self, user: &User, url: &str, ok: Result<(), &str>) {
        let t = match ok {
            Ok(()) => format!("\n── WS {url}\n⇄ connected"),
            Err(e) => format!("\n── WS {url}\n✗ connect failed: {e}"),
        };
        self.emit(user, &t);
    }

    /// A frame sent.
    pub fn ws_sent(&self, user: &User, name: &str, data: &[u8]) {
        self.emit(user, &format!("⇢ send {name}: {}", self.excerpt(data)));
    }

    /// A frame received (matching or not).
    pub fn ws_received(&self, user: &User, name: &str, data: &[u8], matched: bool) {
        self.emit(
            user,
            &format!(
                "⇠ {name}: {}{}",
                self.excerpt(data),
                if matched { "" } else { "  (does not match)" }
            ),
        );
    }

    /// An `if` decision.
    pub fn branch(&self, user: &User, condition: &str, taken: Result<bool, &str>) {
        let t = match taken {
            Ok(true) => format!("◇ if {condition}: true → then"),
            Ok(false) => format!("◇ if {condition}: false → else"),
            Err(e) => format!("◇ if {condition}: error ({e})"),
        };
        self.emit(user, &t);
    }

    /// A `pick` decision.
    pub fn pick(&self, user: &User, index: usize, of: usize) {
        self.emit(user, &format!("◇ pick: branch {} of {of}", index + 1));
    }

    /// A `log` step's rendered text, or a `set`.
    pub fn note(&self, user: &User, text: &str) {
        self.emit(user, text);
    }
}

fn check_label(c: &Check) -> String {
    let text = serde_json::to_string(c).unwrap_or_default();
    text.chars().take(120).collect()
}

fn shown(v: &minijinja::value::Value) -> String {
    let s = if v.as_str().is_some() {
        format!("{:?}", v.to_string())
    } else {
        v.to_string()
    };
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// A URL with its password replaced.
fn redact_url(u: &reqwest::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// Is this variable a secret?
pub fn is_secret(program: &Program, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    program.secrets.iter().any(|s| s == name) || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The text with the value of every secret variable of the user replaced by `***`.
fn redact(user: &User, text: &str) -> String {
    let program = &user.shared.program;
    let mut out = text.to_string();
    for (name, v) in &user.vars {
        if !is_secret(program, name) {
            continue;
        }
        let value = v.to_string();
        // Very short values would blank out unrelated text.
        if value.len() >= 3 {
            out = out.replace(&value, "***");
        }
    }
    out
}

/// What a trace run needs besides the program.
pub struct TraceRun {
    pub host: Option<String>,
    pub seed: u64,
    pub set: std::collections::BTreeMap<String, String>,
    /// One scenario by name; default: one user for each scenario, in order.
    pub scenario: Option<String>,
    pub iterations: u64,
    pub insecure: bool,
}

/// Run one user per scenario (or of one scenario) for `iterations` iterations with a
/// trace on stdout. True when every step passed.
pub async fn run(program: Arc<Program>, opts: TraceRun) -> Result<bool, String> {
    let indices: Vec<usize> = match &opts.scenario {
        None => (0..program.scenarios.len()).collect(),
        Some(name) => vec![
            program
                .scenarios
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        program.scenarios.iter().map(|s| s.name.as_str()).collect();
                    let hint = crate::diag::did_you_mean(name, names.iter().copied())
                        .unwrap_or_else(|| format!("the scenarios are: {}", names.join(", ")));
                    format!("no scenario `{name}`; {hint}")
                })?,
        ],
    };
    let shared = Arc::new(Shared::new(
        &program,
        SharedOpts {
            host: opts.host.clone(),
            insecure: opts.insecure,
            seed: opts.seed,
            set: opts.set.clone(),
            feed_share: super::driver::Share::default(),
            trace: None,
        },
    )?);
    let agg = Arc::new(Aggregator::new());
    let trace = Arc::new(Trace::new(Box::new(std::io::stdout()), false));
    let n = opts.iterations;
    println!(
        "trace: plan `{}`, one user per scenario ({}), {n} iteration{} each, seed {}",
        program.name,
        indices
            .iter()
            .map(|i| program.scenarios[*i].name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if n == 1 { "" } else { "s" },
        opts.seed
    );
    let mut ok = true;
    for (id, index) in indices.into_iter().enumerate() {
        let mut user = User::new(
            id as u64,
            index,
            shared.clone(),
            agg.recorder(),
            CancellationToken::new(),
        );
        user.trace = Some(trace.clone());
        trace.note(
            &user,
            &format!(
                "\n═══ scenario `{}`, user {id}",
                program.scenarios[index].name
            ),
        );
        if !user.start().await {
            trace.note(&user, "✗ the user could not start (see the failures above)");
            ok = false;
            continue;
        }
        for i in 0..n {
            trace.note(&user, &format!("\n═══ iteration {i}"));
            if user.iteration(None).await != Some(super::interp::Flow::Ok) {
                ok = false;
            }
        }
        user.stop().await;
    }
    let snap = agg.take_delta();
    let count: u64 = snap.steps.values().map(|s| s.count).sum();
    let failures: u64 = snap.steps.values().map(|s| s.failures).sum();
    let ok = ok && failures == 0;
    println!(
        "\ntrace: {} — {count} events recorded, {failures} failed",
        if ok {
            "every step passed"
        } else {
            "some steps failed"
        },
    );
    Ok(ok)
}
