//! WebSocket sessions: the runtime stage that executes an `ir::WsSession` for one
//! user over tokio-tungstenite and turns each protocol step into metrics events.
//!
//! A session connects (or reuses the user's named connection), runs its steps in
//! order on that one connection, then closes it (or keeps it, when named). Every
//! step records into the user's own `Recorder`; nothing shared is locked.
//!
//! What is recorded, per step row:
//! - connect (the session's row): one event, latency = TCP + TLS + upgrade, status 101;
//!   a refused upgrade is `ws_handshake` with the HTTP status, a refused TCP connect
//!   `connect`, an expired connect timeout `timeout`. A reused named connection records
//!   no connect event.
//! - `send`: one event, latency = time to write and flush the frame, `bytes_out`.
//! - `receive`: one event per frame that matches, latency = the wait for that frame: from
//!   the start of the `receive` (first frame) or the previous frame to the moment the frame
//!   was read (what Locust shows; 0 for a frame read ahead); beside it the time since the
//!   start of the session's latest `send` ("reply latency", `reply_us`) and, from the second
//!   frame of the receive on, the inter-arrival time (`gap_us`, for jitter); `bytes_in`,
//!   checks and captures on that frame. A frame
//!   that does **not** match is one event with error `unmatched` on the same row (so
//!   the row's count is matched + unmatched frames and its failures are the unmatched
//!   ones; the metrics have no other place for a separate count). Not enough matching
//!   frames in `timeout` adds one `ws_timeout` event saying how many arrived.
//! - `expect-silence`: one event, failed (`unmatched`) when a frame arrives in the
//!   window. Frames read ahead before the window (during a `sleep`) do not count, and
//!   when the step directly follows a `send` the first frame in the window is allowed:
//!   the target's `stop` may leave one frame in flight.
//! - `close`: one event, latency = time from sending the close frame to the peer's
//!   reply (at most [`CLOSE_WAIT`]; no reply in time is `ws_timeout`).
//! - A peer close or a dropped socket is one `ws_closed` event (`ws_protocol` for a
//!   protocol violation) on the step that saw it (the connect row during a `sleep`);
//!   the session ends there and the iteration fails. The next session reconnects.
//! - A step under way at a hard stop (the connect, `send`, `receive`, `expect-silence`,
//!   `close`) is one `aborted` event on its row, via `User::in_flight`; a `receive`'s
//!   latency is then the wait for the frame it was waiting for.
//!
//! Frames are read only while a step waits for them (`receive`, `expect-silence`,
//! `sleep`, `close`); tungstenite answers pings while reading. An idle named
//! connection between iterations is not read, so think times must stay below the
//! peer's ping timeout.

mod conn;
pub(crate) mod frame;
mod lazy;

use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{
    HeaderName, HeaderValue, SEC_WEBSOCKET_PROTOCOL,
};

pub use conn::Connections;
use conn::{Conn, Ended};

use super::http::{Subject, absolute, run_captures, run_checks, with_checks};
use super::interp::{Flow, pause_duration, set_var};
use super::user::User;
use crate::lang::ir::{Frame, StatId, WsSession, WsStep};
use crate::metrics::{ErrorKind, Event};

/// How long a `close` step waits for the peer's close frame.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Run one session; `Flow::Failed` when any of its events failed.
pub async fn session(user: &mut User, s: &WsSession) -> Flow {
    let reused = s
        .connection
        .as_deref()
        .and_then(|name| user.conns.take_live(name));
    let conn = match reused {
        Some(c) => c,
        None => {
            // Under way until it records its own event (see `User::abandon`).
            user.in_flight.push((s.stat, Instant::now()));
            // Boxed and freed once connected: the TLS and upgrade state is not carried
            // through the session.
            let conn = Box::pin(connect(user, s)).await;
            user.in_flight.pop();
            if let Some(t) = user.trace.clone() {
                let ok = conn.as_ref().map(|_| ()).ok_or("see the failure count");
                t.ws_connect(user, &s.url.source, ok);
            }
            match conn {
                Some(c) => c,
                None => return Flow::Failed,
            }
        }
    };
    let mut run = Run {
        session: s.stat,
        conn: Some(conn),
        last_send: None,
        after_send: false,
        flow: Flow::Ok,
    };
    for step in &s.steps {
        // A step that waits is under way until it records its own event: a hard stop in
        // between counts it as `aborted` on its row (`User::abandon`), as an HTTP request.
        let waits = step_stat(step);
        if let Some(stat) = waits {
            user.in_flight.push((stat, Instant::now()));
        }
        let go = run.step(user, step).await;
        if waits.is_some() {
            user.in_flight.pop();
        }
        if !go {
            break;
        }
        run.after_send = matches!(step, WsStep::Send { .. });
    }
    if let Some(conn) = run.conn.take() {
        match &s.connection {
            Some(name) => user.conns.put(name, conn),
            None => Box::pin(conn.close_quietly()).await,
        }
    }
    run.flow
}

/// Render the URL and headers into an upgrade request.
fn request(user: &User, s: &WsSession) -> Result<Request, String> {
    let mut ctx = None;
    let url = user.render_in(&s.url, &mut ctx)?;
    let url = ws_scheme(absolute(user.shared.host.as_deref(), &url, ("ws", "wss"))?);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("invalid WebSocket URL `{url}`: {e}"))?;
    for (k, v) in user.shared.program.http.headers.iter().chain(&s.headers) {
        let value = user.render_in(v, &mut ctx)?;
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header name `{k}`: {e}"))?;
        let value =
            HeaderValue::from_str(&value).map_err(|e| format!("header `{k}` value: {e}"))?;
        req.headers_mut().insert(name, value);
    }
    req.headers_mut()
        .entry(tokio_tungstenite::tungstenite::http::header::USER_AGENT)
        .or_insert(HeaderValue::from_static(super::http::USER_AGENT));
    if let Some(p) = &s.subprotocol {
        let value = HeaderValue::from_str(p).map_err(|e| format!("subprotocol `{p}`: {e}"))?;
        req.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(req)
}

/// An absolute `http(s)://` URL means the same server's WebSocket.
fn ws_scheme(url: String) -> String {
    if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        url
    }
}

/// Connect and record the connect event.
async fn connect(user: &mut User, s: &WsSession) -> Option<Conn> {
    let req = match request(user, s) {
        Ok(r) => r,
        Err(m) => {
            user.rec
                .record(Event::untimed(s.stat).with_error(ErrorKind::Template, m));
            return None;
        }
    };
    let limit = s
        .timeout
        .unwrap_or(user.shared.program.http.connect_timeout);
    let start = Instant::now();
    let opened = tokio::time::timeout(limit, Conn::open(req, user.shared.insecure)).await;
    let ev = Event::new(s.stat, micros(start.elapsed()));
    match opened {
        Ok(Ok((conn, status))) => {
            user.rec.record(ev.with_status(status));
            Some(conn)
        }
        Ok(Err(f)) => {
            let mut ev = ev.with_error(f.kind, f.message);
            ev.status = f.status;
            user.rec.record(ev);
            None
        }
        Err(_) => {
            user.rec.record(ev.with_error(
                ErrorKind::Timeout,
                format!(
                    "connect timed out after {}",
                    humantime::format_duration(limit)
                ),
            ));
            None
        }
    }
}

/// The row of a step that waits on the connection (`sleep` and `set` have none).
fn step_stat(step: &WsStep) -> Option<StatId> {
    match step {
        WsStep::Send { stat, .. }
        | WsStep::Receive { stat, .. }
        | WsStep::ExpectSilence { stat, .. }
        | WsStep::Close { stat, .. } => Some(*stat),
        WsStep::Sleep(_) | WsStep::Set { .. } => None,
    }
}

/// A step's statistics name (for a trace).
fn stat_name(user: &User, stat: StatId) -> String {
    user.shared
        .program
        .stats
        .get(stat as usize)
        .map_or_else(String::new, |s| s.name.clone())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One session in progress.
struct Run {
    /// The session's (connect) row.
    session: StatId,
    /// `None` after a `close` step or once the connection ended.
    conn: Option<Conn>,
    /// Start of the latest `send`: the reference for receive latencies.
    last_send: Option<Instant>,
    /// The previous step was a `send` (see `expect-silence`).
    after_send: bool,
    flow: Flow,
}

/// Records an event; a failed one fails the session.
fn record(flow: &mut Flow, user: &mut User, ev: Event) {
    if ev.is_failure() {
        *flow = Flow::Failed;
    }
    user.rec.record(ev);
}

impl Run {
    fn record(&mut self, user: &mut User, ev: Event) {
        record(&mut self.flow, user, ev);
    }

    /// The connection ended under a step: record it there and stop the session.
    fn lost(&mut self, user: &mut User, ev: Event, ended: &Ended) -> bool {
        let (kind, message) = ended.error();
        self.conn = None;
        self.record(user, ev.with_error(kind, message));
        false
    }

    /// A step that needs the connection after a `close` step.
    fn no_connection(&mut self, user: &mut User, stat: StatId) -> bool {
        self.record(
            user,
            Event::untimed(stat).with_error(
                ErrorKind::WsClosed,
                "the connection was already closed by `close`",
            ),
        );
        false
    }

    /// Runs one step; false when the session cannot go on.
    async fn step(&mut self, user: &mut User, step: &WsStep) -> bool {
        match step {
            WsStep::Send { stat, frame } => self.send(user, *stat, frame).await,
            WsStep::Receive {
                stat,
                count,
                timeout,
                matcher,
                checks,
                captures,
            } => {
                let Some(conn) = self.conn.as_mut() else {
                    return self.no_connection(user, *stat);
                };
                let wait_start = Instant::now();
                // The wait for each frame starts at the receive, then at the previous frame.
                let mut since = wait_start;
                let mut previous: Option<Instant> = None;
                let deadline = tokio::time::sleep(*timeout);
                tokio::pin!(deadline);
                let mut got = 0u32;
                while got < *count {
                    let arrived = match conn.next_before(deadline.as_mut()).await {
                        Some(Ok(a)) => a,
                        Some(Err(ended)) => {
                            let ev = Event::new(*stat, micros(wait_start.elapsed()));
                            return self.lost(user, ev, &ended);
                        }
                        None => {
                            let ev = Event::new(*stat, micros(wait_start.elapsed())).with_error(
                                ErrorKind::WsTimeout,
                                format!(
                                    "received {got} of {count} matching frames within {}",
                                    humantime::format_duration(*timeout)
                                ),
                            );
                            self.record(user, ev);
                            return true;
                        }
                    };
                    let elapsed = arrived.at.saturating_duration_since(since);
                    let subject = Subject::new(None, None, &arrived.data, elapsed);
                    let mut ev = Event::new(*stat, micros(elapsed));
                    ev.reply_us = self
                        .last_send
                        .map(|s| micros(arrived.at.saturating_duration_since(s)));
                    ev.gap_us = previous.map(|p| micros(arrived.at.saturating_duration_since(p)));
                    previous = Some(arrived.at);
                    since = since.max(arrived.at);
                    // An abandoned wait is for the next frame: from this one on.
                    if let Some(waiting) = user.in_flight.last_mut() {
                        waiting.1 = since;
                    }
                    ev.bytes_in = arrived.data.len() as u64;
                    let matched = frame::matches(matcher, arrived.text, &subject);
                    if let Some(t) = user.trace.clone() {
                        t.ws_received(user, &stat_name(user, *stat), &arrived.data, matched);
                    }
                    if !matched {
                        let message = format!(
                            "frame does not match {}: {}",
                            frame::describe(matcher),
                            frame::preview(&arrived.data, arrived.text)
                        );
                        record(
                            &mut self.flow,
                            user,
                            ev.with_error(ErrorKind::Unmatched, message),
                        );
                        continue;
                    }
                    got += 1;
                    let checked = run_checks(&user.checks(checks), &subject);
                    let capture_msg = run_captures(user, captures, &subject);
                    if let Some(t) = user.trace.clone() {
                        let checks = user.checks(checks).into_owned();
                        t.frame_checks(user, &arrived.data, &checks, captures);
                    }
                    ev = with_checks(ev, checked, capture_msg);
                    record(&mut self.flow, user, ev);
                }
                true
            }
            WsStep::ExpectSilence { stat, duration } => {
                if let Some(t) = user.trace.clone() {
                    t.note(
                        user,
                        &format!(
                            "… expect silence {} for {}",
                            stat_name(user, *stat),
                            humantime::format_duration(*duration)
                        ),
                    );
                }
                let Some(conn) = self.conn.as_mut() else {
                    return self.no_connection(user, *stat);
                };
                // Frames read ahead (during a sleep) arrived before the window.
                let mut bytes = conn.discard_pending() as u64;
                let mut allowance = self.after_send;
                let mut offending = 0u32;
                let start = Instant::now();
                let deadline = tokio::time::sleep(*duration);
                tokio::pin!(deadline);
                let ended = loop {
                    match conn.next_before(deadline.as_mut()).await {
                        None => break None,
                        Some(Err(e)) => break Some(e),
                        Some(Ok(a)) => {
                            bytes += a.data.len() as u64;
                            if allowance {
                                allowance = false;
                            } else {
                                offending += 1;
                            }
                        }
                    }
                };
                let mut ev = Event::new(*stat, micros(start.elapsed()));
                ev.bytes_in = bytes;
                if let Some(e) = ended {
                    return self.lost(user, ev, &e);
                }
                if offending > 0 {
                    ev = ev.with_error(
                        ErrorKind::Unmatched,
                        "a frame arrived during the expected silence",
                    );
                }
                self.record(user, ev);
                true
            }
            WsStep::Sleep(p) => {
                let d = pause_duration(&mut user.rng, p);
                user.rec.flush();
                let until = tokio::time::Instant::now() + d;
                match self.conn.as_mut() {
                    // Keep reading meanwhile: pings get answered, a closure is noticed.
                    Some(conn) => match conn.read_ahead(until).await {
                        Ok(()) => true,
                        Err(e) => {
                            let ev = Event::new(self.session, micros(d));
                            self.lost(user, ev, &e)
                        }
                    },
                    None => {
                        tokio::time::sleep_until(until).await;
                        true
                    }
                }
            }
            WsStep::Set { stat, var, value } => {
                if set_var(user, *stat, var, value) == Flow::Failed {
                    self.flow = Flow::Failed;
                }
                true
            }
            WsStep::Close { stat, code, reason } => {
                if let Some(t) = user.trace.clone() {
                    t.note(
                        user,
                        &format!("⇥ close {}: code {code}", stat_name(user, *stat)),
                    );
                }
                let Some(mut conn) = self.conn.take() else {
                    return self.no_connection(user, *stat);
                };
                let start = Instant::now();
                let (outcome, dropped) = Box::pin(conn.close(*code, reason, CLOSE_WAIT)).await;
                let mut ev = Event::new(*stat, micros(start.elapsed()));
                ev.bytes_out = 2 + reason.len() as u64;
                ev.bytes_in = dropped;
                match outcome {
                    Ok(true) => self.record(user, ev),
                    Ok(false) => self.record(
                        user,
                        ev.with_error(
                            ErrorKind::WsTimeout,
                            format!(
                                "no close reply within {}",
                                humantime::format_duration(CLOSE_WAIT)
                            ),
                        ),
                    ),
                    Err(e) => return self.lost(user, ev, &e),
                }
                true
            }
        }
    }

    async fn send(&mut self, user: &mut User, stat: StatId, frame: &Frame) -> bool {
        let msg = match frame {
            Frame::Text(t) | Frame::Json(t) => match user.render(t) {
                Ok(s) => Message::text(s),
                Err(m) => {
                    self.record(
                        user,
                        Event::untimed(stat).with_error(ErrorKind::Template, m),
                    );
                    return true;
                }
            },
            Frame::Binary(b) => Message::binary(b.clone()),
        };
        let Some(conn) = self.conn.as_mut() else {
            return self.no_connection(user, stat);
        };
        if let Some(t) = user.trace.clone() {
            t.ws_sent(user, &stat_name(user, stat), &msg.clone().into_data());
        }
        let len = msg.len() as u64;
        let start = Instant::now();
        let sent = conn.send(msg).await;
        let mut ev = Event::new(stat, micros(start.elapsed()));
        ev.bytes_out = len;
        match sent {
            Ok(()) => {
                self.last_send = Some(start);
                self.record(user, ev);
                true
            }
            Err(e) => self.lost(user, ev, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_become_websocket_urls() {
        assert_eq!(ws_scheme("http://h:1/x".into()), "ws://h:1/x");
        assert_eq!(ws_scheme("https://h/x".into()), "wss://h/x");
        assert_eq!(ws_scheme("wss://h/x".into()), "wss://h/x");
    }
}
