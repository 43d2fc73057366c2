//! Server-sent events: an `http` step with an `events` child reads its response as a
//! `text/event-stream`, event by event, the way `receive` reads WebSocket frames.
//!
//! The request goes through the general (reqwest) client whatever its scheme. The
//! step's own row records the response head (status, header checks, the time to it);
//! the `event` row records one event per server-sent event: its wait (from the
//! request's start for the first, then from the previous event), `reply_ms` (from the
//! request's start) and `interarrival_ms`; the `first-event` row one event per stream,
//! the time from the request's start to its first event.

use std::time::{Duration, Instant};

use super::fast::Prepared;
use super::http::{REDIRECTS, Subject, classify, run_captures, run_checks, timed, with_checks};
use super::interp::Flow;
use super::user::User;
use super::ws::frame;
use crate::lang::ir::{Check, EventStream, HttpStep};
use crate::metrics::{ErrorKind, Event};

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when one was given.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: Vec<u8>,
}

/// An incremental `text/event-stream` parser (the WHATWG rules: `data`, `event`
/// fields, `:` comments, CR/LF/CRLF line ends, a blank line dispatches).
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    started: bool,
}

impl Parser {
    /// Add received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes held for events not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.data.len()
    }

    /// The next complete event, if the bytes pushed so far hold one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if !self.started {
                if self.buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                    return None;
                }
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.drain(..3);
                }
                self.started = true;
            }
            let end = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r')?;
            // A CR at the end of what arrived may be half of a CRLF: wait for the next byte.
            let width = match (self.buf[end], self.buf.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => return None,
                _ => 1,
            };
            let line: Vec<u8> = self.buf.drain(..end + width).take(end).collect();
            if line.is_empty() {
                let event = self.event.take();
                if !self.has_data {
                    continue;
                }
                self.has_data = false;
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the last line's `\n`
                return Some(SseEvent { event, data });
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match line.iter().position(|b| *b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (&line[..], &[][..]),
            };
            match field {
                b"data" => {
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                    self.has_data = true;
                }
                b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
                _ => {}
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Send `prepared`, check its head, then read `events.count` matching events.
pub(super) async fn execute(
    user: &mut User,
    step: &HttpStep,
    events: &EventStream,
    prepared: Prepared,
) -> Flow {
    let program = user.shared.program.clone();
    let timeout = step.timeout.unwrap_or(program.http.timeout);
    let limit = step.redirects.unwrap_or(program.http.redirects) as usize;
    let max_body = step.max_body.unwrap_or(program.http.max_body);
    let bytes_out = prepared.body.len() as u64;
    let Prepared {
        method,
        url,
        mut headers,
        body,
    } = prepared;
    headers
        .entry(http::header::ACCEPT)
        .or_insert(http::HeaderValue::from_static("text/event-stream"));
    let mut rb = user
        .client
        .request(method, url)
        .headers(headers)
        .timeout(timeout.saturating_add(events.timeout));
    if !body.is_empty() {
        rb = rb.body(body);
    }
    let start = Instant::now();
    let sent = tokio::time::timeout(timeout, REDIRECTS.scope(limit, rb.send())).await;
    let mut resp = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let (kind, msg) = classify(&e);
            let mut ev = timed(user, step.stat, start.elapsed()).with_error(kind, msg);
            ev.bytes_out = bytes_out;
            user.rec.record(ev);
            return Flow::Failed;
        }
        Err(_) => {
            let mut ev = timed(user, step.stat, start.elapsed())
                .with_error(ErrorKind::Timeout, "request timed out");
            ev.bytes_out = bytes_out;
            user.rec.record(ev);
            return Flow::Failed;
        }
    };
    // The request's own event: the response head.
    let head = start.elapsed();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let subject = Subject::new(Some(status), Some(&headers), &[], head);
    let (passed, failed, check_msg) = run_checks(&user.checks(&step.checks), &subject);
    let capture_msg = run_captures(user, &step.captures, &subject);
    let mut ev = timed(user, step.stat, head).with_status(status);
    ev.bytes_out = bytes_out;
    ev.checks_passed = passed;
    ev.checks_failed = failed;
    let expects_status = step
        .checks
        .iter()
        .any(|c| matches!(c, Check::Status(_) | Check::StatusIn(_)));
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status >= 400 && !expects_status {
        ev = ev.with_error(ErrorKind::Status, format!("HTTP {status}"));
    } else if let Some(m) = check_msg {
        ev = ev.with_error(ErrorKind::Check, m);
    } else if let Some(m) = capture_msg {
        ev = ev.with_error(ErrorKind::Capture, m);
    } else if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        ev = ev.with_error(
            ErrorKind::Body,
            format!(
                "expected an event stream (text/event-stream), got content-type {content_type:?}"
            ),
        );
    }
    if ev.is_failure() {
        user.rec.record(ev);
        return Flow::Failed;
    }
    user.rec.record(ev);

    let mut flow = Flow::Ok;
    let mut parser = Parser::default();
    let deadline = tokio::time::Instant::now() + events.timeout;
    let mut previous: Option<Instant> = None;
    let mut arrived = Instant::now();
    let mut got = 0u32;
    while got < events.count {
        let Some(sse) = parser.next_event() else {
            if parser.pending() as u64 > max_body {
                let ev = Event::new(events.stat, micros(start.elapsed())).with_error(
                    ErrorKind::Body,
                    format!("an event is over max-body ({max_body} bytes)"),
                );
                user.rec.record(ev);
                return Flow::Failed;
            }
            let failure = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    arrived = Instant::now();
                    parser.push(&chunk);
                    continue;
                }
                Ok(Ok(None)) => (
                    ErrorKind::Body,
                    format!(
                        "the stream ended after {got} of {} matching events",
                        events.count
                    ),
                ),
                Ok(Err(e)) => classify(&e),
                Err(_) => (
                    ErrorKind::Timeout,
                    format!(
                        "received {got} of {} matching events within {}",
                        events.count,
                        humantime::format_duration(events.timeout)
                    ),
                ),
            };
            let ev =
                Event::new(events.stat, micros(start.elapsed())).with_error(failure.0, failure.1);
            user.rec.record(ev);
            return Flow::Failed;
        };
        // The wait for this event: from the request's start for the first, then from
        // the previous event.
        if previous.is_none() {
            // Time to first event, matching or not: a row of its own.
            user.rec.record(Event::new(
                events.first_stat,
                micros(arrived.saturating_duration_since(start)),
            ));
        }
        let since = previous.unwrap_or(start);
        let waited = arrived.saturating_duration_since(since);
        let mut ev = Event::new(events.stat, micros(waited));
        ev.reply_us = Some(micros(arrived.saturating_duration_since(start)));
        ev.gap_us = previous.map(|p| micros(arrived.saturating_duration_since(p)));
        ev.bytes_in = sse.data.len() as u64;
        previous = Some(arrived);
        let subject = Subject::new(None, None, &sse.data, waited);
        let type_ok = events
            .event_type
            .as_deref()
            .is_none_or(|t| sse.event.as_deref().unwrap_or("message") == t);
        if !type_ok || !frame::matches(&events.matcher, true, &subject) {
            let what = match (&events.event_type, type_ok) {
                (Some(t), false) => format!(
                    "event of type {:?} is not {t:?}",
                    sse.event.as_deref().unwrap_or("message")
                ),
                _ => format!("event does not match {}", frame::describe(&events.matcher)),
            };
            let message = format!("{what}: {}", frame::preview(&sse.data, true));
            user.rec
                .record(ev.with_error(ErrorKind::Unmatched, message));
            flow = Flow::Failed;
            continue;
        }
        got += 1;
        let checked = run_checks(&user.checks(&events.checks), &subject);
        let capture_msg = run_captures(user, &events.captures, &subject);
        ev = with_checks(ev, checked, capture_msg);
        if ev.is_failure() {
            flow = Flow::Failed;
        }
        user.rec.record(ev);
    }
    // Dropping the response closes the stream.
    drop(resp);
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut Parser) -> Vec<SseEvent> {
        std::iter::from_fn(|| p.next_event()).collect()
    }

    #[test]
    fn events_split_on_blank_lines_whatever_the_line_ends_and_chunking() {
        let text = b"\xEF\xBB\xBF: comment\r\nevent: tick\r\ndata: {\"n\":1}\r\n\r\ndata:a\ndata: b\n\nid: 7\n\n\rdata: last\r\r\n";
        let want = vec![
            SseEvent {
                event: Some("tick".into()),
                data: b"{\"n\":1}".to_vec(),
            },
            SseEvent {
                event: None,
                data: b"a\nb".to_vec(),
            },
            SseEvent {
                event: None,
                data: b"last".to_vec(),
            },
        ];
        let mut whole = Parser::default();
        whole.push(text);
        assert_eq!(all(&mut whole), want);
        // Byte by byte: the same events, none early.
        let mut bytes = Parser::default();
        let mut got = Vec::new();
        for b in text {
            bytes.push(&[*b]);
            got.extend(all(&mut bytes));
        }
        assert_eq!(got, want);
        assert_eq!(bytes.pending(), 0);
    }
}
