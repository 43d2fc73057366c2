//! One virtual user: its variables, RNG, cookie jar (own HTTP client), recorder and
//! the loop of iterations of its scenario.
//!
//! A user owns everything it touches per request; the only shared things are the
//! immutable program, the feeders' cursors and the metrics aggregator it flushes to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use minijinja::value::Value as JValue;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::interp::{self, Flow};
use super::ws::Connections;
use std::borrow::Cow;

use crate::lang::ir::{Capture, Check, FeedMode, Pattern, Predicate, Program, Step, Think};
use crate::lang::template::UserRt;
use crate::metrics::{Counter, ErrorKind, Event, Recorder};

/// What all users of a run share.
pub struct Shared {
    pub program: Arc<Program>,
    pub host: Option<String>,
    pub http: reqwest::Client,
    pub cookies: bool,
    pub insecure: bool,
    /// Built once per run and shared by every user's client.
    pub tls: rustls::ClientConfig,
    pub seed: u64,
    pub counter: Arc<AtomicU64>,
    /// One cursor per feeder (sequential mode).
    pub feed_cursor: Vec<AtomicUsize>,
    /// The share of the users this process runs: sequential feeders hand out only the
    /// rows `offset, offset + stride, …` ([`sequential_row`]), so the shares of a
    /// distributed run never use a row twice.
    pub feed_share: super::driver::Share,
    pub set: BTreeMap<String, String>,
    /// `--http-debug`: every user traces into this.
    pub trace: Option<Arc<super::trace::Trace>>,
}

/// What a run sets in its [`Shared`] besides the program (see [`Shared::new`]).
pub struct SharedOpts {
    /// `--host`; the plan's host when `None`.
    pub host: Option<String>,
    pub insecure: bool,
    pub seed: u64,
    pub set: BTreeMap<String, String>,
    pub feed_share: super::driver::Share,
    pub trace: Option<Arc<super::trace::Trace>>,
}

impl Shared {
    /// The run's TLS config and client built once from the program; feeders' cursors at 0.
    pub fn new(program: &Arc<Program>, opts: SharedOpts) -> Result<Shared, String> {
        let tls = super::http::tls_config(program, opts.insecure)?;
        let http = super::http::client(program, opts.insecure, false, Some(&tls))
            .map_err(|e| e.to_string())?;
        Ok(Shared {
            host: opts.host.or_else(|| program.host.clone()),
            http,
            // A jar only matters to HTTP requests: WebSocket-only plans skip the per-user
            // client (thousands of streaming sessions would each hold one for nothing).
            cookies: program.http.cookies && program.scenarios.iter().any(has_http_step),
            insecure: opts.insecure,
            tls,
            seed: opts.seed,
            counter: Arc::new(AtomicU64::new(0)),
            feed_cursor: program
                .feeders
                .iter()
                .map(|_| AtomicUsize::new(0))
                .collect(),
            feed_share: opts.feed_share,
            set: opts.set,
            trace: opts.trace,
            program: program.clone(),
        })
    }
}

/// The row a sequential feeder hands out `n`-th in a process running `share`: the share's
/// own rows (`offset + k·stride`) in turn; when the file has fewer rows than shares, every
/// row in turn (rows are then shared).
pub fn sequential_row(n: usize, len: usize, share: super::driver::Share) -> usize {
    let (offset, stride) = (share.offset as usize, (share.stride as usize).max(1));
    if len == 0 {
        return 0;
    }
    if offset >= len {
        return n % len;
    }
    let own = (len - offset - 1) / stride + 1;
    offset + (n % own) * stride
}

/// Does the scenario send an HTTP request anywhere (hooks, groups, branches included)?
fn has_http_step(scenario: &crate::lang::ir::Scenario) -> bool {
    fn any(steps: &[Step]) -> bool {
        steps.iter().any(|s| match s {
            Step::Http(_) => true,
            Step::Ws(_) | Step::Sleep(_) | Step::Set { .. } | Step::Log(_) => false,
            Step::Group { steps, .. } | Step::Repeat { steps, .. } | Step::Pick { steps, .. } => {
                any(steps)
            }
            Step::If {
                then, otherwise, ..
            } => any(then) || any(otherwise),
        })
    }
    any(&scenario.on_start) || any(&scenario.steps) || any(&scenario.on_stop)
}

/// A running user. Its state belongs to the runtime: the fields are visible to the runtime's
/// modules only (the interpreter and the protocol steps), and everything outside the runtime
/// sees a `User` only through the driver.
pub struct User {
    pub(super) id: u64,
    pub(super) scenario: usize,
    pub(super) shared: Arc<Shared>,
    pub(super) rng: StdRng,
    pub(super) vars: BTreeMap<String, JValue>,
    pub(super) rt: JValue,
    pub(super) client: reqwest::Client,
    pub(super) rec: Recorder,
    pub(super) iteration: u64,
    pub(super) hard: CancellationToken,
    pub(super) conns: Connections,
    /// This user's direct plain-HTTP connections and cookie jar (see `fast`).
    pub(super) fast: super::fast::FastClient,
    /// The timer of the total timeout of this user's direct requests.
    pub(super) deadline: super::fast::Deadline,
    /// Parsed absolute URLs of static HTTP steps, by step address (the program is
    /// immutable and outlives the user, so addresses are stable keys).
    pub(super) urls: std::collections::HashMap<usize, reqwest::Url>,
    /// Lateness of the current iteration's start (open model, pacing); steps record a
    /// coordinated-omission-corrected latency when set.
    pub(super) lateness: Option<Duration>,
    /// Steps under way (HTTP requests and the groups around them), innermost last, with
    /// their start: what a hard stop abandons is recorded from here as `aborted`.
    pub(super) in_flight: Vec<(crate::metrics::StepId, Instant)>,
    /// Per-user unique feeder rows (mode unique), fixed at start.
    unique_rows: BTreeMap<String, JValue>,
    /// `--trace`: every step's request, response, checks and decisions go here.
    pub(super) trace: Option<Arc<super::trace::Trace>>,
}

/// A variable's value from its text: a number or a boolean when the text is one
/// and renders back the same (`vars { max 5 }` compares as a number; `007` and
/// `1e3` stay text), else the text.
pub fn typed(text: String) -> JValue {
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)))
            if serde_json::to_string(&v).ok().as_deref() == Some(text.as_str()) =>
        {
            super::interp::jv(v)
        }
        _ => JValue::from(text),
    }
}

/// Mix the run seed with a user id (splitmix64), so users' streams differ.
pub fn mix_seed(seed: u64, id: u64) -> u64 {
    let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl User {
    pub fn new(
        id: u64,
        scenario: usize,
        shared: Arc<Shared>,
        rec: Recorder,
        hard: CancellationToken,
    ) -> Self {
        // One cookie jar per user, shared by both HTTP paths.
        let jar = shared
            .cookies
            .then(|| Arc::new(reqwest::cookie::Jar::default()));
        let client = match &jar {
            Some(jar) => super::http::client_with_jar(
                &shared.program,
                shared.insecure,
                jar.clone(),
                Some(&shared.tls),
            )
            .unwrap_or_else(|_| shared.http.clone()),
            None => shared.http.clone(),
        };
        let seed = mix_seed(shared.seed, id);
        let shared_trace = shared.trace.clone();
        let rt = JValue::from_object(UserRt::with_share(
            mix_seed(seed, 1),
            shared.counter.clone(),
            (shared.feed_share.offset, shared.feed_share.stride),
        ));
        Self {
            id,
            scenario,
            rng: StdRng::seed_from_u64(seed),
            vars: BTreeMap::new(),
            rt,
            client,
            rec,
            iteration: 0,
            hard,
            conns: Connections::default(),
            shared,
            unique_rows: BTreeMap::new(),
            urls: std::collections::HashMap::new(),
            lateness: None,
            fast: super::fast::FastClient::with_jar(jar),
            deadline: super::fast::Deadline::default(),
            in_flight: Vec::new(),
            trace: shared_trace,
        }
    }

    /// The hard stop dropped the steps under way: count each as a failure of kind
    /// `aborted`, with the time it had been running as its latency. That latency is a
    /// lower bound (the answer never came), but leaving these out would drop exactly the
    /// slowest requests and bias every percentile low.
    pub fn abandon(&mut self) {
        for (stat, since) in std::mem::take(&mut self.in_flight) {
            let waited = since.elapsed();
            let mut ev = Event::new(stat, waited.as_micros() as u64).with_error(
                ErrorKind::Aborted,
                "in flight when the run stopped (latency is a lower bound)",
            );
            ev.corrected_us = self.lateness.map(|l| (waited + l).as_micros() as u64);
            self.rec.record(ev);
        }
    }

    /// The template context: variables plus runtime values.
    pub fn ctx(&self) -> JValue {
        let mut m = self.vars.clone();
        m.insert("__rt".into(), self.rt.clone());
        m.insert("user".into(), JValue::from(self.id));
        m.insert("iteration".into(), JValue::from(self.iteration));
        let sc = &self.shared.program.scenarios[self.scenario].name;
        m.insert("scenario".into(), JValue::from(sc.as_str()));
        JValue::from(m)
    }

    /// Render a template with this user's context.
    pub fn render(&self, tpl: &crate::lang::template::Tpl) -> Result<String, String> {
        self.render_in(tpl, &mut None)
    }

    /// Render a template, building this user's context at most once for all the templates of
    /// one step: `ctx` starts as `None` and is kept between the step's calls (the context
    /// clones the user's variables).
    pub fn render_in(
        &self,
        tpl: &crate::lang::template::Tpl,
        ctx: &mut Option<JValue>,
    ) -> Result<String, String> {
        if tpl.is_static() {
            return Ok(tpl.source.clone());
        }
        let c = ctx.get_or_insert_with(|| self.ctx());
        self.shared
            .program
            .templates
            .render(tpl, c)
            .map_err(|e| format!("template {:?}: {e}", tpl.source))
    }

    /// The checks with their templated values rendered for this response (static
    /// checks are borrowed as they are). A value that cannot be rendered becomes a
    /// check that fails with the template's error.
    pub fn checks<'a>(&self, checks: &'a [Check]) -> Cow<'a, [Check]> {
        if !checks.iter().any(Check::is_templated) {
            return Cow::Borrowed(checks);
        }
        Cow::Owned(
            checks
                .iter()
                .map(|c| {
                    if !c.is_templated() {
                        return c.clone();
                    }
                    self.render_check(c).unwrap_or_else(Check::Unrenderable)
                })
                .collect(),
        )
    }

    fn render_check(&self, c: &Check) -> Result<Check, String> {
        let regex = |t: &crate::lang::template::Tpl| -> Result<Pattern, String> {
            let text = self.render(t)?;
            regex::Regex::new(&text)
                .map(Pattern)
                .map_err(|e| format!("rendered regex {text:?}: {e}"))
        };
        let pred = |p: &Predicate| -> Result<Predicate, String> {
            Ok(match p {
                Predicate::EqualsTpl(t) => {
                    let text = self.render(t)?;
                    // `{{ n }}` with n = 7 renders "7": compare as the number.
                    Predicate::Equals(
                        serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .filter(|v| !v.is_object() && !v.is_array())
                            .unwrap_or(serde_json::Value::String(text)),
                    )
                }
                Predicate::ContainsTpl(t) => Predicate::Contains(self.render(t)?),
                Predicate::RegexTpl(t) => Predicate::Regex(regex(t)?),
                other => other.clone(),
            })
        };
        Ok(match c {
            Check::BodyContainsTpl(t) => Check::BodyContains(self.render(t)?),
            Check::BodyRegexTpl(t) => Check::BodyRegex(regex(t)?),
            Check::Header { name, predicate } => Check::Header {
                name: name.clone(),
                predicate: pred(predicate)?,
            },
            Check::Json { path, predicate } => Check::Json {
                path: path.clone(),
                predicate: pred(predicate)?,
            },
            Check::JsonTpl { path, predicate } => {
                let source = self.render(path)?;
                let parsed = serde_json_path::JsonPath::parse(&source)
                    .map_err(|e| format!("rendered JSON path {source:?}: {e}"))?;
                Check::Json {
                    path: crate::lang::ir::JsonPath {
                        source,
                        path: parsed,
                    },
                    predicate: pred(predicate)?,
                }
            }
            other => other.clone(),
        })
    }

    /// The first of `names` (compared with a number by an `if`) that holds text, as
    /// the failure's message: `"7" > 5` would compare by type, not by value.
    pub fn text_compared(&self, names: &[String]) -> Option<String> {
        for n in names {
            let mut parts = n.split('.');
            let mut v = parts.next().and_then(|root| self.vars.get(root)).cloned();
            for attr in parts {
                v = v.and_then(|x| x.get_attr(attr).ok());
            }
            if let Some(v) = v.filter(|v| v.kind() == minijinja::value::ValueKind::String) {
                return Some(format!(
                    "`{n}` is text ({v:?}) compared with a number: cast it, `{n} | int` (or `| float`)"
                ));
            }
        }
        None
    }

    /// A capture's templated JSON path or regex, rendered and parsed for this
    /// response (None: the source is static). The error names the rendering.
    pub fn capture_source(
        &self,
        c: &Capture,
    ) -> Result<Option<crate::lang::ir::CaptureFrom>, String> {
        use crate::lang::ir::{CaptureFrom, JsonPath};
        Ok(Some(match &c.from {
            CaptureFrom::JsonTpl(t) => {
                let source = self.render(t)?;
                let path = serde_json_path::JsonPath::parse(&source).map_err(|e| {
                    format!("capture `{}`: rendered JSON path {source:?}: {e}", c.var)
                })?;
                CaptureFrom::Json(JsonPath { source, path })
            }
            CaptureFrom::RegexTpl(t) => {
                let text = self.render(t)?;
                let r = regex::Regex::new(&text)
                    .map_err(|e| format!("capture `{}`: rendered regex {text:?}: {e}", c.var))?;
                CaptureFrom::Regex(Pattern(r))
            }
            _ => return Ok(None),
        }))
    }

    /// The value of a capture that found nothing: its default, rendered if templated.
    pub fn capture_default(&self, c: &Capture) -> Option<JValue> {
        if let Some(t) = &c.default_tpl {
            return self.render(t).ok().map(JValue::from);
        }
        c.default.as_ref().map(super::interp::jv)
    }

    /// Evaluate plan variables and fix unique feeder rows. False when the user cannot
    /// start (a unique feeder ran out of rows).
    fn init(&mut self) -> bool {
        let program = self.shared.program.clone();
        // Failures here are counted on the scenario's `start` row (the compiler makes one
        // whenever a start can fail), never on another step's; no latency sample.
        let start = program.scenarios[self.scenario].start.unwrap_or(0);
        for f in &program.feeders {
            if f.mode == FeedMode::Unique {
                match f.rows.get(self.id as usize) {
                    Some(row) => {
                        self.unique_rows
                            .insert(f.name.clone(), super::interp::jv(row));
                    }
                    None => {
                        self.rec.record(Event::untimed(start).with_error(
                            ErrorKind::Other,
                            format!("feeder `{}` has no row left for user {}", f.name, self.id),
                        ));
                        return false;
                    }
                }
            }
        }
        self.feed();
        for (name, tpl) in &program.vars {
            let text = match self.shared.set.get(name) {
                Some(v) => v.clone(),
                None => match self.render(tpl) {
                    Ok(s) => s,
                    Err(e) => {
                        // Counted; later uses of the variable fail as undefined.
                        self.rec.record(
                            Event::untimed(start)
                                .with_error(ErrorKind::Template, format!("vars {name}: {e}")),
                        );
                        continue;
                    }
                },
            };
            self.vars.insert(name.clone(), typed(text));
        }
        for (k, v) in &self.shared.set {
            self.vars
                .entry(k.clone())
                .or_insert_with(|| typed(v.clone()));
        }
        true
    }

    /// Hand out feeder rows for the next iteration.
    fn feed(&mut self) {
        let program = self.shared.program.clone();
        for (i, f) in program.feeders.iter().enumerate() {
            let row = match f.mode {
                FeedMode::Unique => self.unique_rows.get(&f.name).cloned(),
                FeedMode::Sequential => {
                    let n = self.shared.feed_cursor[i].fetch_add(1, Ordering::Relaxed);
                    f.rows
                        .get(sequential_row(n, f.rows.len(), self.shared.feed_share))
                        .map(super::interp::jv)
                }
                FeedMode::Random => {
                    let n = self.rng.random_range(0..f.rows.len());
                    f.rows.get(n).map(super::interp::jv)
                }
            };
            if let Some(row) = row {
                self.vars.insert(f.name.clone(), row);
            }
        }
    }

    /// Evaluate variables and run `on-start`. False when the user cannot run.
    pub async fn start(&mut self) -> bool {
        if !self.init() {
            self.rec.flush();
            return false;
        }
        let program = self.shared.program.clone();
        let scenario = &program.scenarios[self.scenario];
        if !scenario.on_start.is_empty() {
            let hard = self.hard.clone();
            let done = tokio::select! {
                _ = hard.cancelled() => false,
                _ = interp::run_steps(self, &scenario.on_start) => true,
            };
            if !done {
                self.abandon();
                self.rec.flush();
                return false;
            }
        }
        true
    }

    /// One iteration of the scenario. `lateness` is how far behind its intended start
    /// the iteration began (open model, pacing): step latencies are then also recorded
    /// corrected by it (coordinated omission). None when the hard stop fired.
    pub async fn iteration(&mut self, lateness: Option<Duration>) -> Option<Flow> {
        let program = self.shared.program.clone();
        let scenario = &program.scenarios[self.scenario];
        if self.iteration > 0 {
            self.feed();
        }
        self.lateness = lateness;
        self.rec.count(Counter::IterationStarted);
        let hard = self.hard.clone();
        let flow = tokio::select! {
            _ = hard.cancelled() => None,
            f = interp::run_steps(self, &scenario.steps) => Some(f),
        };
        if flow.is_none() {
            self.abandon();
        }
        match flow {
            None => self.rec.count(Counter::IterationFailed),
            Some(Flow::Failed) => self.rec.count(Counter::IterationFailed),
            Some(Flow::Ok) => self.rec.count(Counter::IterationCompleted),
        }
        self.iteration += 1;
        flow
    }

    /// Run `on-stop` (unless hard-stopped), close connections, flush.
    pub async fn stop(&mut self) {
        let program = self.shared.program.clone();
        let scenario = &program.scenarios[self.scenario];
        if !scenario.on_stop.is_empty() && !self.hard.is_cancelled() {
            let hard = self.hard.clone();
            let done = tokio::select! {
                _ = hard.cancelled() => false,
                _ = interp::run_steps(self, &scenario.on_stop) => true,
            };
            if !done {
                self.abandon();
            }
        }
        self.conns.close_all().await;
        self.rec.flush();
    }

    /// The closed loop: iterate until `soft` is cancelled or the iteration budget is
    /// spent, with think time or pacing between iterations.
    pub async fn run(mut self, soft: CancellationToken, iterations: Option<u64>) {
        if !self.start().await {
            return;
        }
        let program = self.shared.program.clone();
        let think = program.scenarios[self.scenario].think;
        let first = Instant::now();
        loop {
            if soft.is_cancelled() || iterations.is_some_and(|n| self.iteration >= n) {
                break;
            }
            // Pacing: iteration k is due at first + k·period; starting later is lateness.
            let lateness = match think {
                Think::Pacing(p) => {
                    let due = first + p.mul_f64(self.iteration as f64);
                    Some(Instant::now().saturating_duration_since(due))
                }
                _ => None,
            };
            if self.iteration(lateness).await.is_none() {
                self.rec.flush();
                self.conns.close_all().await;
                return;
            }
            if iterations.is_some_and(|n| self.iteration >= n) {
                break;
            }
            let wait = match think {
                Think::None => None,
                Think::Constant(d) => Some(d),
                Think::Uniform(lo, hi) => Some(interp::uniform(&mut self.rng, lo, hi)),
                Think::Pacing(p) => {
                    let due = first + p.mul_f64(self.iteration as f64);
                    Some(due.saturating_duration_since(Instant::now()))
                }
            };
            if let Some(w) = wait.filter(|w| !w.is_zero()) {
                // An idle user must not sit on buffered events (they flush on record otherwise).
                self.rec.flush();
                tokio::select! {
                    _ = soft.cancelled() => break,
                    _ = tokio::time::sleep(w) => {}
                }
            }
        }
        self.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::sequential_row;
    use crate::runtime::driver::Share;

    #[test]
    fn shares_of_a_sequential_feeder_never_use_a_row_twice() {
        let len = 10;
        let mut seen = std::collections::BTreeMap::new();
        for offset in 0..3 {
            let share = Share { offset, stride: 3 };
            let own: std::collections::BTreeSet<usize> =
                (0..20).map(|n| sequential_row(n, len, share)).collect();
            for row in own {
                assert!(seen.insert(row, offset).is_none(), "row {row} used twice");
            }
        }
        assert_eq!(seen.len(), len);
        // One process: every row in turn.
        let all = Share {
            offset: 0,
            stride: 1,
        };
        assert_eq!(
            (0..12)
                .map(|n| sequential_row(n, 5, all))
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
        );
        // Fewer rows than shares: rows are shared rather than none.
        assert_eq!(
            sequential_row(
                3,
                2,
                Share {
                    offset: 5,
                    stride: 6
                }
            ),
            1
        );
        assert_eq!(
            sequential_row(
                0,
                0,
                Share {
                    offset: 0,
                    stride: 1
                }
            ),
            0
        );
    }
}
