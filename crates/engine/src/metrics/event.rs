//! What a virtual user reports: one [`Event`] per finished step and one [`Counter`] per iteration
//! transition. This is the first stage of the metrics pipeline (events → per-task
//! [`Recorder`](super::Recorder) → [`Aggregator`](super::Aggregator) → 1 s tick →
//! [`Snapshot`](super::Snapshot)). Everything here is plain data: no clocks, no locks.
//!
//! Invariants: [`ErrorKind`] is a closed, small set, so it can label a Prometheus series without
//! unbounded cardinality; the free-text message travels beside it and is bounded later, when the
//! aggregator folds messages per `(step, kind)`.

use std::fmt;

/// Index of a step in the program's statistics table (the runtime assigns it at compile time).
pub type StepId = u32;

/// Why a step failed. Bounded on purpose: it is used as a metric label.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection was refused (or could not be opened, for a reason on the target's side).
    Connect,
    /// The request or response did not finish in time.
    Timeout,
    /// Still in flight when the run stopped (hard stop after `stop_timeout`, a second
    /// Ctrl-C): counted, with the time it had waited as its latency — a lower bound.
    Aborted,
    /// The connection was reset or closed at any point of the exchange: before the response,
    /// in its head or in its body.
    Reset,
    /// Name resolution failed.
    Dns,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// HTTP status ≥ 400 (the status itself is kept in [`Event::status`]).
    Status,
    /// A check on the response failed.
    Check,
    /// A capture found nothing to bind.
    Capture,
    /// Reading or decoding the body failed.
    Body,
    /// Rendering a template failed at run time.
    Template,
    /// The WebSocket upgrade was refused or failed.
    WsHandshake,
    /// The server closed the WebSocket (including abnormal closure 1006).
    WsClosed,
    /// The peer violated the WebSocket protocol.
    WsProtocol,
    /// A `receive` did not get its frames in time.
    WsTimeout,
    /// A WebSocket frame matched no `receive`.
    Unmatched,
    /// The load generator's own machine ran out of something: file descriptors (`ulimit -n`),
    /// local ports, socket buffers, memory. Not the target's fault.
    Local,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order (useful to pre-register metric series).
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Aborted,
        ErrorKind::Reset,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Status,
        ErrorKind::Check,
        ErrorKind::Capture,
        ErrorKind::Body,
        ErrorKind::Template,
        ErrorKind::WsHandshake,
        ErrorKind::WsClosed,
        ErrorKind::WsProtocol,
        ErrorKind::WsTimeout,
        ErrorKind::Unmatched,
        ErrorKind::Local,
        ErrorKind::Other,
    ];

    /// Stable snake_case name, used as the `error_kind` label and in reports. Matches the serde
    /// spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Reset => "reset",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Status => "status",
            ErrorKind::Check => "check",
            ErrorKind::Capture => "capture",
            ErrorKind::Body => "body",
            ErrorKind::Template => "template",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsClosed => "ws_closed",
            ErrorKind::WsProtocol => "ws_protocol",
            ErrorKind::WsTimeout => "ws_timeout",
            ErrorKind::Unmatched => "unmatched",
            ErrorKind::Local => "local",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished step (an HTTP request, a WebSocket send/receive, a timed group).
///
/// The step counts as a *failure* exactly when `error` is `Some`. Failed checks are always
/// counted in `checks_failed`; whether they also fail the request (Locust semantics) is the
/// runtime's decision, expressed by setting `error` to [`ErrorKind::Check`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Event {
    pub step: StepId,
    /// Service time in µs: from the actual send to the end of the step (for a received
    /// WebSocket frame: the wait for that frame, see docs/metrics.md).
    pub latency_us: u64,
    /// Nothing was sent or waited for (a request whose template failed): the event counts
    /// (and fails) but adds no latency sample.
    pub untimed: bool,
    /// A received WebSocket frame: µs since the start of the session's latest `send` (the
    /// "reply latency"); `None` when nothing was sent before.
    pub reply_us: Option<u64>,
    /// A received WebSocket frame after the first of its `receive`: µs since the previous
    /// frame (inter-arrival time, for jitter).
    pub gap_us: Option<u64>,
    /// Open model only: latency in µs measured from the *intended* start, so time spent waiting
    /// for a free user is included (coordinated-omission correction). `None` in the closed model.
    pub corrected_us: Option<u64>,
    /// Bytes received: an HTTP response body as it came over the wire (still encoded), a
    /// frame's or event's payload.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// An HTTP response body's bytes after content decoding (docs/metrics.md, "bytes"):
    /// equal to `bytes_in` for a body that was not encoded or not decoded.
    pub bytes_decoded: u64,
    /// An HTTP request with a whole response: where its time went.
    pub phases: Option<Phases>,
    /// HTTP status, if a response arrived (also for WebSocket handshakes).
    pub status: Option<u16>,
    /// Kind and human message, e.g. `(Status, "expected status 200, got 503")`.
    pub error: Option<(ErrorKind, String)>,
    pub checks_passed: u32,
    pub checks_failed: u32,
}

/// Where one HTTP request's time went, in µs (docs/metrics.md, "phases"). `dns` and
/// `connect` are set only when the request opened a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Phases {
    /// Name resolution (none for an IP literal).
    pub dns_us: Option<u64>,
    /// TCP connect, and the TLS handshake on `https://` (not separable on the reqwest path).
    pub connect_us: Option<u64>,
    /// From sending the request to the response head (time to first byte).
    pub wait_us: u64,
    /// Reading the body.
    pub receive_us: u64,
}

impl Event {
    /// A successful event with only the step and its latency set; fill the rest with struct
    /// update syntax or the `with_*` helpers.
    pub fn new(step: StepId, latency_us: u64) -> Self {
        Event {
            step,
            latency_us,
            ..Event::default()
        }
    }

    /// A failed-before-sending event: counted, no latency sample (see [`Event::untimed`]).
    pub fn untimed(step: StepId) -> Self {
        Event {
            step,
            untimed: true,
            ..Event::default()
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Marks the event failed.
    pub fn with_error(mut self, kind: ErrorKind, message: impl Into<String>) -> Self {
        self.error = Some((kind, message.into()));
        self
    }

    /// Whether the step counts as failed.
    pub fn is_failure(&self) -> bool {
        self.error.is_some()
    }
}

/// What a statistics row measures, from its step kind. HTTP requests and WebSocket messages
/// are separate totals everywhere (docs/metrics.md): a frame wait is not a request, and
/// mixing them hides an HTTP failure rate behind many successful frames. Groups time other
/// steps and belong to no total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// An HTTP request (`GET`, `POST`, …).
    Http,
    /// A WebSocket step: the connect (`WS`), `send`, `receive`, `silence`, `close`.
    Ws,
    /// A timed group (a transaction made of other steps).
    Group,
    /// A step that sends nothing and has a row only to count its failures: `set`, `if`
    /// (a template that does not render) and a scenario's `start` (a user that cannot start).
    /// In no total, like groups.
    Control,
}

impl Protocol {
    /// The protocol of a statistics row of kind `kind` (as the compiler names kinds).
    pub fn of_kind(kind: &str) -> Protocol {
        match kind {
            "group" => Protocol::Group,
            "set" | "if" | "start" => Protocol::Control,
            // Server-sent `event`s are messages of a stream, like WebSocket frames.
            "WS" | "send" | "receive" | "silence" | "close" | "event" | "first-event" => {
                Protocol::Ws
            }
            _ => Protocol::Http,
        }
    }

    /// `http`, `ws` or `group` (the Prometheus `protocol` label, threshold prefixes).
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Ws => "ws",
            Protocol::Group => "group",
            Protocol::Control => "control",
        }
    }
}

/// Iteration lifecycle counters, recorded with [`Recorder::count`](super::Recorder::count).
///
/// `IterationDropped` is recorded by the open-model generator when an arrival could not start
/// because every user was busy (or `max_users` was reached).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    IterationStarted,
    IterationCompleted,
    IterationFailed,
    IterationDropped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_names_are_snake_case_and_match_serde() {
        for kind in ErrorKind::ALL {
            let name = kind.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            let json = serde_json::to_string(&kind).expect("serialize kind");
            assert_eq!(json, format!("\"{name}\""));
            let back: ErrorKind = serde_json::from_str(&json).expect("deserialize kind");
            assert_eq!(back, kind);
        }
        assert_eq!(ErrorKind::WsHandshake.as_str(), "ws_handshake");
        assert_eq!(ErrorKind::Status.to_string(), "status");
    }

    #[test]
    fn event_fails_only_when_error_is_set() {
        let ok = Event {
            checks_failed: 2,
            ..Event::new(3, 1_000)
        };
        assert!(!ok.is_failure());
        let failed = Event::new(3, 1_000)
            .with_status(503)
            .with_error(ErrorKind::Status, "expected status 200, got 503");
        assert!(failed.is_failure());
        assert_eq!(failed.status, Some(503));
    }
}
