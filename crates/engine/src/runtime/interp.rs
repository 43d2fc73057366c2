//! The interpreter: walks a step list for one user.
//!
//! Control steps (`group`, `repeat`, `pick`, `if`, `set`, `sleep`) are handled here;
//! `http` and `ws` steps go to their modules. A failed step never stops the user: the
//! iteration carries on and is counted as failed at the end ([`Flow::Failed`]).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use minijinja::value::Value as JValue;
use rand::RngExt;
use rand::rngs::StdRng;

use super::user::User;
use crate::lang::ir::{Pause, Step};
use crate::metrics::{ErrorKind, Event};

/// How an iteration (or part of it) went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Ok,
    Failed,
}

impl Flow {
    fn and(self, other: Flow) -> Flow {
        if self == Flow::Failed || other == Flow::Failed {
            Flow::Failed
        } else {
            Flow::Ok
        }
    }
}

pub fn uniform(rng: &mut StdRng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_micros() as u64;
    lo + Duration::from_micros(rng.random_range(0..=span))
}

pub fn pause_duration(rng: &mut StdRng, p: &Pause) -> Duration {
    match *p {
        Pause::Constant(d) => d,
        Pause::Uniform(lo, hi) => uniform(rng, lo, hi),
    }
}

/// Pick an index by relative weights.
pub fn pick_index(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if weights.len() <= 1 || total <= 0.0 {
        return 0;
    }
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Set a variable from a rendered template. A failure to render is counted on the
/// step's own row (`stat`, `set <var>`), with no latency sample: nothing was sent.
pub fn set_var(
    user: &mut User,
    stat: crate::lang::ir::StatId,
    var: &str,
    value: &crate::lang::template::Tpl,
) -> Flow {
    match user.shared.program.templates.render(value, &user.ctx()) {
        Ok(s) => {
            let v = serde_json::from_str::<serde_json::Value>(&s)
                .ok()
                .filter(|v| !v.is_string())
                .map_or_else(|| JValue::from(s), |v| jv(&v));
            user.vars.insert(var.to_string(), v);
            Flow::Ok
        }
        Err(e) => {
            user.rec.record(
                Event::untimed(stat).with_error(ErrorKind::Template, format!("set {var}: {e}")),
            );
            Flow::Failed
        }
    }
}

/// Run steps in order.
pub fn run_steps<'a>(
    user: &'a mut User,
    steps: &'a [Step],
) -> Pin<Box<dyn Future<Output = Flow> + Send + 'a>> {
    Box::pin(async move {
        let mut flow = Flow::Ok;
        for step in steps {
            flow = flow.and(run_step(user, step).await);
        }
        flow
    })
}

async fn run_step(user: &mut User, step: &Step) -> Flow {
    match step {
        Step::Http(h) => {
            // Under way until it records its own event; a hard stop in between makes it
            // `aborted` (see `User::abandon`).
            user.in_flight.push((h.stat, Instant::now()));
            let flow = super::http::execute(user, h).await;
            user.in_flight.pop();
            flow
        }
        // Boxed: a streaming session's state lives as long as the session and no longer
        // sizes every other step's future (thousands of sessions each hold one).
        Step::Ws(w) => Box::pin(super::ws::session(user, w)).await,
        Step::Sleep(p) => {
            let d = pause_duration(&mut user.rng, p);
            user.rec.flush();
            tokio::time::sleep(d).await;
            Flow::Ok
        }
        Step::Group { stat, steps } => {
            let start = Instant::now();
            user.in_flight.push((*stat, start));
            let flow = run_steps(user, steps).await;
            user.in_flight.pop();
            let mut ev = Event::new(*stat, start.elapsed().as_micros() as u64);
            if flow == Flow::Failed {
                ev = ev.with_error(ErrorKind::Other, "a step of the group failed");
            }
            user.rec.record(ev);
            flow
        }
        Step::Repeat {
            count,
            duration,
            steps,
        } => {
            // Every pass yields to the scheduler: a body that never awaits (only `set`,
            // say) would otherwise hold the thread, and on a current-thread runtime
            // freeze the ticks, the stop tokens and Ctrl-C with it.
            let mut flow = Flow::Ok;
            // `index` is the pass number inside the block (an outer one is restored).
            let outer = user.vars.get("index").cloned();
            let mut i: u64 = 0;
            if let Some(n) = count {
                for _ in 0..*n {
                    user.vars.insert("index".into(), JValue::from(i));
                    flow = flow.and(run_steps(user, steps).await);
                    i += 1;
                    tokio::task::yield_now().await;
                }
            } else if let Some(d) = duration {
                let until = Instant::now() + *d;
                while Instant::now() < until {
                    user.vars.insert("index".into(), JValue::from(i));
                    flow = flow.and(run_steps(user, steps).await);
                    i += 1;
                    tokio::task::yield_now().await;
                }
            }
            match outer {
                Some(v) => user.vars.insert("index".into(), v),
                None => user.vars.remove("index"),
            };
            flow
        }
        Step::Pick { weights, steps } => {
            let i = pick_index(&mut user.rng, weights);
            if let Some(t) = user.trace.clone() {
                t.pick(user, i, steps.len());
            }
            match steps.get(i) {
                Some(s) => run_steps(user, std::slice::from_ref(s)).await,
                None => Flow::Ok,
            }
        }
        Step::Set { stat, var, value } => {
            let flow = set_var(user, *stat, var, value);
            if let (Some(t), Some(v)) = (user.trace.clone(), user.vars.get(var)) {
                t.note(user, &format!("= set {var} = {v}"));
            }
            flow
        }
        Step::Log(text) => {
            if let Some(t) = user.trace.clone() {
                match user.render(text) {
                    Ok(s) => t.note(user, &format!("✎ {s}")),
                    Err(e) => t.failure(user, "template", &e),
                }
            }
            Flow::Ok
        }
        Step::If {
            stat,
            condition,
            numeric,
            then,
            otherwise,
        } => {
            let ctx = user.ctx();
            let taken = match user.text_compared(numeric) {
                Some(m) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    m,
                )),
                None => user.shared.program.templates.truthy(condition, &ctx),
            };
            if let Some(t) = user.trace.clone() {
                let shown = taken.as_ref().map(|b| *b).map_err(|e| e.to_string());
                t.branch(
                    user,
                    &condition.source,
                    shown.as_ref().map(|b| *b).map_err(String::as_str),
                );
            }
            match taken {
                Ok(true) => run_steps(user, then).await,
                Ok(false) => run_steps(user, otherwise).await,
                Err(e) => {
                    user.rec.record(
                        Event::untimed(*stat).with_error(
                            ErrorKind::Template,
                            format!("if {}: {e}", condition.source),
                        ),
                    );
                    Flow::Failed
                }
            }
        }
    }
}

/// A template value from anything serializable.
pub fn jv<T: serde::Serialize>(v: T) -> JValue {
    JValue::from(minijinja::value::Serde(v))
}
