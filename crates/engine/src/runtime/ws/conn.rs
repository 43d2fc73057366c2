//! One WebSocket connection of one user: opening it (TCP, TLS, upgrade), reading
//! data frames, writing, closing, and the per-user table of named connections.
//!
//! Invariants: a [`Conn`] is owned by exactly one user task and never shared, so
//! nothing here locks. Control frames never reach the caller: tungstenite answers
//! pings while we read or write, and a close frame or a dropped socket becomes an
//! [`Ended`]. Buffers stay small for thousands of idle sessions: a 4 KiB read buffer
//! (grown only for larger frames), unbuffered writes, and at most [`PENDING_MAX`]
//! frames held between steps.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, error::ProtocolError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::metrics::ErrorKind;

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Read buffer per connection: one oscilloscope frame (~2 KB) fits; bigger frames grow it.
const READ_BUFFER: usize = 4 * 1024;
/// Largest frame or message accepted from a peer.
const MAX_MESSAGE: usize = 16 << 20;
/// Frames read during a `sleep` and kept for the next `receive`; past this the socket
/// is left unread (the kernel buffers, the peer is throttled by TCP).
pub(super) const PENDING_MAX: usize = 64;
/// How long closing waits for the peer when nobody measures it (session end, user end).
const QUIET_CLOSE: Duration = Duration::from_secs(1);

/// A data frame as it arrived.
#[derive(Debug, Clone)]
pub(super) struct Arrived {
    pub data: Bytes,
    pub text: bool,
    /// When it was read from the socket.
    pub at: Instant,
}

/// Why a connection can no longer be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// The peer sent a close frame.
    ServerClose { code: u16, reason: String },
    /// The socket ended without a close handshake (the peer sees 1006).
    Abnormal(&'static str),
    /// The peer broke the protocol (bad frame, invalid UTF-8, oversized message).
    Protocol(String),
}

impl Ended {
    fn from_error(e: WsError) -> Self {
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => {
                Ended::Abnormal("1006 abnormal closure (connection already closed)")
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                Ended::Abnormal("1006 abnormal closure")
            }
            WsError::Io(io) => Ended::Abnormal(match io.kind() {
                io::ErrorKind::ConnectionReset => "1006 abnormal closure (connection reset)",
                io::ErrorKind::BrokenPipe => "1006 abnormal closure (broken pipe)",
                io::ErrorKind::UnexpectedEof => "1006 abnormal closure",
                _ => "1006 abnormal closure (I/O error)",
            }),
            other => Ended::Protocol(other.to_string()),
        }
    }

    /// The error an event carries for it.
    pub(super) fn error(&self) -> (ErrorKind, String) {
        match self {
            Ended::ServerClose { code, reason } if reason.is_empty() => (
                ErrorKind::WsClosed,
                format!("server closed the connection: {code}"),
            ),
            Ended::ServerClose { code, reason } => (
                ErrorKind::WsClosed,
                format!("server closed the connection: {code} {reason}"),
            ),
            Ended::Abnormal(m) => (ErrorKind::WsClosed, (*m).to_string()),
            Ended::Protocol(m) => (ErrorKind::WsProtocol, m.clone()),
        }
    }
}

/// A failed connect: kind, message, and the HTTP status when one arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConnectFailure {
    pub kind: ErrorKind,
    pub message: String,
    pub status: Option<u16>,
}

impl ConnectFailure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// An open connection and the frames read ahead of the step that will consume them.
pub(super) struct Conn {
    ws: Stream,
    pending: VecDeque<Arrived>,
}

impl Conn {
    /// TCP connect, TLS for `wss://`, then the upgrade. The caller bounds it with the
    /// connect timeout. Returns the connection and the handshake's HTTP status.
    pub(super) async fn open(
        request: Request,
        insecure: bool,
    ) -> Result<(Conn, u16), ConnectFailure> {
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            other => {
                return Err(ConnectFailure::new(
                    ErrorKind::WsHandshake,
                    format!("unsupported URL scheme {:?}", other.unwrap_or("")),
                ));
            }
        };
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .ok_or_else(|| ConnectFailure::new(ErrorKind::WsHandshake, "the URL has no host"))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| classify_io(&e))?;
        // Small frames must not wait for Nagle's algorithm (nor for our own ACKs).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "ws: could not set TCP_NODELAY");
        }
        let connector = if tls {
            let config = crate::runtime::tls::ws_config(insecure)
                .map_err(|m| ConnectFailure::new(ErrorKind::Tls, m))?;
            Some(Connector::Rustls(config))
        } else {
            None
        };
        let (ws, response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            Some(ws_config()),
            connector,
        )
        .await
        .map_err(|e| classify_handshake(e, tls))?;
        let conn = Conn {
            ws,
            pending: VecDeque::new(),
        };
        Ok((conn, response.status().as_u16()))
    }

    /// The next data frame: one read ahead during a `sleep` first, else from the socket.
    /// Cancel-safe (a partly read frame stays in tungstenite's buffer).
    pub(super) async fn next(&mut self) -> Result<Arrived, Ended> {
        match self.pending.pop_front() {
            Some(a) => Ok(a),
            None => self.read().await,
        }
    }

    /// [`Conn::next`] unless `deadline` passes first (`None`). One timer serves a whole
    /// step: the caller pins a single `Sleep` for it instead of arming one per frame.
    pub(super) async fn next_before(
        &mut self,
        deadline: Pin<&mut tokio::time::Sleep>,
    ) -> Option<Result<Arrived, Ended>> {
        tokio::select! {
            biased;
            got = self.next() => Some(got),
            () = deadline => None,
        }
    }

    /// Reads one data frame from the socket (answering pings on the way).
    async fn read(&mut self) -> Result<Arrived, Ended> {
        loop {
            match self.ws.next().await {
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    let text = matches!(msg, Message::Text(_));
                    return Ok(Arrived {
                        data: msg.into_data(),
                        text,
                        at: Instant::now(),
                    });
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queued the close reply; send it on the way out.
                    self.finish_peer_close().await;
                    return Err(match frame {
                        Some(f) => Ended::ServerClose {
                            code: u16::from(f.code),
                            reason: f.reason.as_str().chars().take(60).collect(),
                        },
                        None => Ended::ServerClose {
                            code: 1005,
                            reason: String::new(),
                        },
                    });
                }
                Some(Ok(_)) => {} // ping (already answered), pong, raw frame
                Some(Err(e)) => return Err(Ended::from_error(e)),
                None => return Err(Ended::Abnormal("1006 abnormal closure")),
            }
        }
    }

    async fn finish_peer_close(&mut self) {
        if tokio::time::timeout(QUIET_CLOSE, self.ws.flush())
            .await
            .is_err()
        {
            tracing::debug!("ws: could not send the close reply in time");
        }
    }

    /// Reads frames for the next step until `until` (a `sleep`), keeping at most
    /// [`PENDING_MAX`]; then the socket is left to the kernel.
    pub(super) async fn read_ahead(&mut self, until: tokio::time::Instant) -> Result<(), Ended> {
        let sleep = tokio::time::sleep_until(until);
        tokio::pin!(sleep);
        while self.pending.len() < PENDING_MAX {
            tokio::select! {
                biased;
                got = self.read() => self.pending.push_back(got?),
                () = &mut sleep => return Ok(()),
            }
        }
        sleep.await;
        Ok(())
    }

    /// Frames read ahead and not consumed; they are dropped.
    pub(super) fn discard_pending(&mut self) -> usize {
        let n = self.pending.iter().map(|a| a.data.len()).sum();
        self.pending.clear();
        n
    }

    /// Writes one message and flushes it.
    pub(super) async fn send(&mut self, msg: Message) -> Result<(), Ended> {
        self.ws.send(msg).await.map_err(Ended::from_error)
    }

    /// Sends a close frame and waits up to `wait` for the peer's. Data frames that
    /// arrive meanwhile are dropped; their bytes are returned with the outcome:
    /// `Ok(true)` the peer answered, `Ok(false)` it did not in time.
    pub(super) async fn close(
        &mut self,
        code: u16,
        reason: &str,
        wait: Duration,
    ) -> (Result<bool, Ended>, u64) {
        let mut dropped = self.discard_pending() as u64;
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        if let Err(e) = self.ws.send(Message::Close(Some(frame))).await {
            return (Err(Ended::from_error(e)), dropped);
        }
        let answered = tokio::time::timeout(wait, async {
            loop {
                match self.ws.next().await {
                    // The reply, or the end of the stream after it.
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(m)) => dropped += m.len() as u64,
                    Some(Err(e)) => return Err(Ended::from_error(e)),
                }
            }
        })
        .await;
        match answered {
            Ok(Ok(())) => (Ok(true), dropped),
            Ok(Err(e)) => (Err(e), dropped),
            Err(_) => (Ok(false), dropped),
        }
    }

    /// Ends a connection nobody measures: close frame (1000), short wait, drop.
    pub(super) async fn close_quietly(mut self) {
        if let (Err(e), _) = self.close(1000, "", QUIET_CLOSE).await {
            tracing::debug!(error = ?e, "ws: connection ended while closing");
        }
    }

    /// For a connection kept between sessions: drops what arrived while nobody read,
    /// and tells whether it is still usable. Never waits.
    fn revive(&mut self) -> Result<(), Ended> {
        self.pending.clear();
        loop {
            match self.ws.next().now_or_never() {
                None => return Ok(()),
                Some(Some(Ok(Message::Close(frame)))) => {
                    return Err(Ended::ServerClose {
                        code: frame.map_or(1005, |f| u16::from(f.code)),
                        reason: String::new(),
                    });
                }
                Some(Some(Ok(_))) => {}
                Some(Some(Err(e))) => return Err(Ended::from_error(e)),
                Some(None) => return Err(Ended::Abnormal("1006 abnormal closure")),
            }
        }
    }
}

/// Socket errors before the upgrade.
fn classify_io(e: &io::Error) -> ConnectFailure {
    use io::ErrorKind as K;
    let text = e.to_string();
    if crate::runtime::fast::is_local(e) {
        return ConnectFailure::new(
            ErrorKind::Local,
            crate::runtime::fast::io_message(ErrorKind::Local, e, "connect"),
        );
    }
    match e.kind() {
        K::ConnectionRefused => ConnectFailure::new(ErrorKind::Connect, "connection refused"),
        K::TimedOut => ConnectFailure::new(ErrorKind::Timeout, "connect timed out"),
        K::ConnectionReset | K::ConnectionAborted => {
            ConnectFailure::new(ErrorKind::Reset, "connection reset during connect")
        }
        _ if text.contains("lookup")
            || text.contains("resolve")
            || text.contains("Name or service") =>
        {
            ConnectFailure::new(ErrorKind::Dns, format!("DNS: {text}"))
        }
        _ => ConnectFailure::new(ErrorKind::Connect, format!("connect: {text}")),
    }
}

/// Errors of the TLS handshake and the upgrade.
fn classify_handshake(e: WsError, tls: bool) -> ConnectFailure {
    match e {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            ConnectFailure {
                kind: ErrorKind::WsHandshake,
                message: format!("handshake refused: HTTP {status}"),
                status: Some(status),
            }
        }
        WsError::Tls(t) => ConnectFailure::new(ErrorKind::Tls, format!("TLS: {t}")),
        // tokio-rustls reports handshake failures as I/O errors wrapping a rustls error.
        WsError::Io(io) if tls && is_tls_failure(&io) => {
            ConnectFailure::new(ErrorKind::Tls, format!("TLS: {io}"))
        }
        WsError::Io(io) => ConnectFailure::new(
            ErrorKind::WsHandshake,
            format!("handshake failed: {}", io.kind()),
        ),
        WsError::Url(u) => ConnectFailure::new(ErrorKind::WsHandshake, format!("invalid URL: {u}")),
        other => ConnectFailure::new(ErrorKind::WsHandshake, format!("handshake failed: {other}")),
    }
}

fn is_tls_failure(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        || e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Named connections of one user (`ws … connection="name"`), kept open across
/// iterations. Few per user, so a small list.
#[derive(Default)]
pub struct Connections {
    open: Vec<(String, Conn)>,
}

impl Connections {
    /// Takes the named connection out if it is still usable; a dead one is dropped
    /// (the session reconnects).
    pub(super) fn take_live(&mut self, name: &str) -> Option<Conn> {
        let i = self.open.iter().position(|(n, _)| n == name)?;
        let (_, mut conn) = self.open.swap_remove(i);
        match conn.revive() {
            Ok(()) => Some(conn),
            Err(e) => {
                tracing::debug!(connection = name, error = ?e, "ws: kept connection was lost");
                None
            }
        }
    }

    /// Keeps `conn` under `name` for the next session that names it.
    pub(super) fn put(&mut self, name: &str, conn: Conn) {
        self.open.push((name.to_string(), conn));
    }

    /// Closes every named connection (close 1000, brief wait for the peer); called when
    /// the user ends. Nothing is recorded.
    pub async fn close_all(&mut self) {
        let open = std::mem::take(&mut self.open);
        futures_util::future::join_all(open.into_iter().map(|(_, c)| c.close_quietly())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abnormal_closures_name_code_1006() {
        let e = Ended::from_error(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!(
            e.error(),
            (ErrorKind::WsClosed, "1006 abnormal closure".to_string())
        );
        let reset = Ended::from_error(WsError::Io(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_eq!(reset.error().0, ErrorKind::WsClosed);
        assert!(reset.error().1.starts_with("1006 "));
    }

    #[test]
    fn server_close_messages_carry_the_code() {
        let e = Ended::ServerClose {
            code: 1001,
            reason: "server shutting down".into(),
        };
        assert_eq!(
            e.error(),
            (
                ErrorKind::WsClosed,
                "server closed the connection: 1001 server shutting down".to_string()
            )
        );
    }

    #[test]
    fn refused_tcp_is_a_connect_error_and_timeouts_are_timeouts() {
        let refused = classify_io(&io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.kind, ErrorKind::Connect);
        let timed_out = classify_io(&io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(timed_out.kind, ErrorKind::Timeout);
    }
}
