//! The master's WebSocket endpoint: one session task per worker connection.
//!
//! A session checks the handshake (protocol version, then the shared secret) before the
//! coordinator ever hears of the worker, so a refused peer costs nothing but a
//! `refused` frame with the reason. After that it only relays: frames from the worker
//! become [`Event::Message`]s, messages from the coordinator become frames, and the end
//! of the connection (closed, reset, undecodable) becomes one [`Event::Closed`]. When
//! the coordinator drops its sender the session closes the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{self, DecodeError, Message, VERSION};

/// What sessions tell the coordinator.
pub(super) enum Event {
    /// A worker passed the handshake; the coordinator answers with its index or a reason
    /// to refuse it.
    Joined {
        name: String,
        peer: SocketAddr,
        tx: mpsc::Sender<Message>,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    /// A peer was refused during the handshake.
    Refused {
        peer: SocketAddr,
        reason: String,
    },
    Message {
        worker: u32,
        message: Message,
    },
    Closed {
        worker: u32,
        reason: String,
    },
}

pub(super) struct Hub {
    pub secret: String,
    pub events: mpsc::Sender<Event>,
}

/// The router serving workers at `/dist` (and `/`).
pub(super) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/dist", get(upgrade))
        .route("/", get(upgrade))
        .with_state(hub)
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    ws.on_upgrade(move |socket| session(socket, hub, peer))
}

async fn send(socket: &mut WebSocket, m: &Message) -> bool {
    socket
        .send(Frame::Text(protocol::encode(m).into()))
        .await
        .is_ok()
}

async fn refuse(mut socket: WebSocket, hub: &Hub, peer: SocketAddr, reason: String) {
    // Best effort: the peer may already be gone; the coordinator still hears of it.
    if send(
        &mut socket,
        &Message::Refused {
            reason: reason.clone(),
        },
    )
    .await
    {
        socket.send(Frame::Close(None)).await.ok();
    }
    hub.events.send(Event::Refused { peer, reason }).await.ok();
}

/// The first text frame, within the handshake's time limit.
async fn first_text(socket: &mut WebSocket) -> Option<String> {
    let wait = async {
        // Bounded by the timeout around it; control frames are skipped.
        loop {
            match socket.next().await {
                Some(Ok(Frame::Text(t))) => return Some(t.as_str().to_string()),
                Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .ok()
        .flatten()
}

async fn session(mut socket: WebSocket, hub: Arc<Hub>, peer: SocketAddr) {
    let Some(text) = first_text(&mut socket).await else {
        return;
    };
    let name = match protocol::decode(&text) {
        Ok(Message::Hello { secret, name }) => {
            if !protocol::secrets_match(&hub.secret, &secret) {
                let reason = if secret.is_empty() {
                    "this master requires a secret (--secret or LOADPLAN_SECRET)".to_string()
                } else {
                    "wrong secret".to_string()
                };
                return refuse(socket, &hub, peer, reason).await;
            }
            name
        }
        Ok(other) => {
            let reason = format!("expected `hello`, got {other:?}");
            return refuse(socket, &hub, peer, reason).await;
        }
        Err(DecodeError::Version { theirs }) => {
            let reason = format!(
                "protocol version mismatch: the master speaks version {VERSION}, the worker {theirs}; run the same loadplan version on both sides"
            );
            return refuse(socket, &hub, peer, reason).await;
        }
        Err(e) => return refuse(socket, &hub, peer, e.to_string()).await,
    };
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let (reply, answer) = oneshot::channel();
    let joined = Event::Joined {
        name,
        peer,
        tx,
        reply,
    };
    if hub.events.send(joined).await.is_err() {
        return;
    }
    let worker = match answer.await {
        Ok(Ok(index)) => index,
        Ok(Err(reason)) => return refuse(socket, &hub, peer, reason).await,
        Err(_) => return,
    };
    if !send(&mut socket, &Message::Welcome { worker }).await {
        let reason = "closed during the handshake".to_string();
        hub.events.send(Event::Closed { worker, reason }).await.ok();
        return;
    }
    // Relay until either side ends; every pass handles one frame or one message.
    let reason = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(m) => {
                    if !send(&mut socket, &m).await {
                        break "the connection failed".to_string();
                    }
                }
                None => {
                    socket.send(Frame::Close(None)).await.ok();
                    break "closed by the master".to_string();
                }
            },
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(t))) => match protocol::decode(t.as_str()) {
                    Ok(message) => {
                        if hub.events.send(Event::Message { worker, message }).await.is_err() {
                            break "the master is ending".to_string();
                        }
                    }
                    Err(e) => break format!("undecodable frame: {e}"),
                },
                Some(Ok(Frame::Close(_))) | None => break "the connection closed".to_string(),
                Some(Err(e)) => break format!("the connection failed: {e}"),
                Some(Ok(_)) => {}
            },
        }
    };
    hub.events.send(Event::Closed { worker, reason }).await.ok();
}
