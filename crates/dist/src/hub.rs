//! The master's WebSocket endpoint: one session task per worker connection.
//!
//! A session checks the handshake (protocol version, then the shared secret) before the
//! coordinator ever hears of the worker, so a refused peer costs nothing but a
//! `refused` frame with the reason. Until the secret is checked only a `hello` is decoded
//! ([`protocol::decode_hello`]: two strings from a frame of at most
//! [`protocol::MAX_HELLO_BYTES`]); at most [`MAX_HANDSHAKES`] handshakes are pending at once;
//! every message is capped at [`protocol::MAX_MESSAGE_BYTES`] (a larger one ends that
//! connection with the reason logged, and the master keeps serving). After that it only relays: frames from the worker
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

use super::protocol::{self, HelloError, MAX_MESSAGE_BYTES, Message, VERSION};

/// Handshakes (connections before their `hello` is checked) served at once; more are
/// refused, so unauthenticated peers hold at most this many message buffers.
pub(super) const MAX_HANDSHAKES: usize = 8;

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
    /// Permits for pending handshakes ([`MAX_HANDSHAKES`]).
    pub handshakes: Arc<tokio::sync::Semaphore>,
}

impl Hub {
    pub fn new(secret: String, events: mpsc::Sender<Event>) -> Hub {
        Hub {
            secret,
            events,
            handshakes: Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES)),
        }
    }
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
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, hub, peer))
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

/// The first text frame, within the handshake's time limit; `Err` with the reason when
/// the connection failed (e.g. a message over the size limit).
async fn first_text(socket: &mut WebSocket) -> Result<Option<String>, String> {
    let wait = async {
        // Bounded by the timeout around it; control frames are skipped.
        loop {
            match socket.next().await {
                Some(Ok(Frame::Text(t))) => return Ok(Some(t.as_str().to_string())),
                Some(Ok(Frame::Binary(b))) => {
                    return Err(format!(
                        "a binary frame of {} bytes instead of `hello`",
                        b.len()
                    ));
                }
                Some(Ok(Frame::Close(_))) | None => return Ok(None),
                Some(Err(e)) => return Err(format!("the connection failed: {e}")),
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or(Ok(None))
}

/// Reads and checks the `hello`: the worker's name, or the reason it is refused.
async fn handshake(socket: &mut WebSocket, hub: &Hub) -> Result<Option<String>, String> {
    let Some(text) = first_text(socket).await? else {
        return Ok(None);
    };
    match protocol::decode_hello(&text) {
        Ok(hello) => {
            if protocol::secrets_match(&hub.secret, &hello.secret) {
                Ok(Some(hello.name))
            } else if hello.secret.is_empty() {
                Err("this master requires a secret (--secret or LOADPLAN_SECRET)".into())
            } else {
                Err("wrong secret".into())
            }
        }
        Err(HelloError::Version { theirs }) => Err(format!(
            "protocol version mismatch: the master speaks version {VERSION}, the worker {theirs}; run the same loadplan version on both sides"
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn session(mut socket: WebSocket, hub: Arc<Hub>, peer: SocketAddr) {
    let Ok(permit) = Arc::clone(&hub.handshakes).try_acquire_owned() else {
        let reason = format!("more than {MAX_HANDSHAKES} handshakes pending");
        return refuse(socket, &hub, peer, reason).await;
    };
    let name = match handshake(&mut socket, &hub).await {
        Ok(Some(name)) => name,
        Ok(None) => return,
        Err(reason) => return refuse(socket, &hub, peer, reason).await,
    };
    drop(permit);
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
