//! The oscilloscope WebSocket at `/api/oscilloscope/stream`: the socket, the frame clock and the
//! keepalive around the pure protocol of `protocol.rs`.
//!
//! One task per session multiplexes, with `select!`: client messages, the frame tick (polled
//! only while streaming), the ping tick and server shutdown. The server sends nothing before
//! `start`, never closes on its own in normal operation, answers the client's close, drops the
//! TCP connection without a close frame on a binary message, and drops a peer that leaves a
//! ping unanswered for a whole ping period. Per-IP admission limits are enforced before the
//! upgrade (see `pipeline.rs`).
//!
//! Known difference: the real server accepts permessage-deflate; axum's WebSocket does not
//! negotiate extensions, so a client offering it gets uncompressed frames (the handshake
//! succeeds, frames are ~2 KB on the wire instead of compressed).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::pipeline::not_found;
use super::protocol::Session;
use super::state::{Shared, WsCounters};

/// Close code sent when the server itself shuts down (RFC 6455 "going away").
const GOING_AWAY: u16 = 1001;
/// How long to wait for the client to finish a close handshake it started.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// `GET /api/oscilloscope/stream`: a WebSocket handshake, or 404 like the real server's
/// WebSocket-only route answers plain HTTP.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| session(socket, shared)),
        Err(_) => not_found().await,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn session(mut socket: WebSocket, shared: Arc<Shared>) {
    WsCounters::bump(&shared.ws.sessions);
    let mut protocol = Session::default();
    let mut rng = shared.session_dice.rng();
    let frame_period = shared.config.frame_interval.max(Duration::from_millis(1));
    let ping_period = shared.config.ping_interval.max(Duration::from_millis(1));
    // The frame clock runs from the handshake, so the first frame follows `start` by
    // 0..frame_period, as measured on the real server. It is only polled while streaming;
    // after a pause, `Delay` makes its first tick immediate and re-bases the schedule.
    let mut frames = interval_at(Instant::now() + frame_period, frame_period);
    frames.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pings = interval_at(Instant::now() + ping_period, ping_period);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut awaiting_pong = false;

    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => {
                let close = CloseFrame { code: GOING_AWAY, reason: "server shutting down".into() };
                if let Err(e) = socket.send(Message::Close(Some(close))).await {
                    tracing::debug!(error = %e, "demo: close on shutdown failed");
                }
                return;
            }
            incoming = socket.recv() => match incoming {
                None => return,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "demo: oscilloscope socket error");
                    return;
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(error) = protocol.handle_text(text.as_str()) {
                        if socket.send(Message::Text(error.into())).await.is_err() {
                            return;
                        }
                        WsCounters::bump(&shared.ws.errors_sent);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if protocol.phase() != super::protocol::Phase::Halted {
                        // Like the real server: no close frame, the TCP connection just ends
                        // (the client sees 1006). Returning drops the socket.
                        WsCounters::bump(&shared.ws.dropped);
                        return;
                    }
                }
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(_))) => {
                    finish_close(&mut socket).await;
                    return;
                }
            },
            _ = frames.tick(), if protocol.streaming() => {
                let frame = protocol.generator.frame(&mut rng, unix_now());
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
                WsCounters::bump(&shared.ws.frames_sent);
            }
            _ = pings.tick() => {
                if awaiting_pong {
                    tracing::debug!("demo: oscilloscope peer missed a pong; dropping it");
                    return;
                }
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                awaiting_pong = true;
            }
        }
    }
}

/// After the client's close frame: keep reading so the queued close reply is flushed and the
/// handshake completes, then let the socket go.
async fn finish_close(socket: &mut WebSocket) {
    let drained = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("demo: client did not finish the close handshake");
    }
}
