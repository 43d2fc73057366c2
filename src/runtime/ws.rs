//! WebSocket sessions (tokio-tungstenite). Being built for the WebSocket issue.

use super::interp::Flow;
use super::user::User;
use crate::lang::ir::WsSession;
use crate::metrics::{ErrorKind, Event};

/// Named connections kept open across iterations.
#[derive(Default)]
pub struct Connections {}

impl Connections {
    pub async fn close_all(&mut self) {}
}

pub async fn session(user: &mut User, s: &WsSession) -> Flow {
    user.rec.record(Event::new(s.stat, 0).with_error(
        ErrorKind::Other,
        "WebSocket sessions are not implemented yet",
    ));
    Flow::Failed
}
