//! Runtime control: one command type shared by signals, the web UI and the master.
//!
//! A [`Control`] is cheap to clone and handed to whoever may steer a run. Stop and
//! kill are cancellation tokens (awaitable, idempotent); the other commands queue
//! and the driver applies them on its next pass (every few milliseconds). The queue
//! lock is never held across an `.await`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// What can be asked of a running load test.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Graceful stop: users finish their iteration (within `stop_timeout`).
    Stop,
    /// Immediate stop: in-flight iterations are abandoned.
    Kill,
    /// Closed model: move to this many users at `spawn_rate` per second (default: the
    /// profile's); stages end. Open model: the pool size (`max_users`).
    SetUsers { users: u64, spawn_rate: Option<f64> },
    /// Open model: the arrival rate (iterations per second); stages end.
    SetRate { rate: f64 },
    /// Start the statistics afresh (the run goes on).
    ResetStats,
}

#[derive(Clone, Default)]
pub struct Control {
    /// Cancelled by [`Command::Stop`].
    pub stop: CancellationToken,
    /// Cancelled by [`Command::Kill`].
    pub kill: CancellationToken,
    queue: Arc<Mutex<VecDeque<Command>>>,
}

impl Control {
    pub fn send(&self, command: Command) {
        match command {
            Command::Stop => self.stop.cancel(),
            Command::Kill => self.kill.cancel(),
            other => {
                if let Ok(mut q) = self.queue.lock() {
                    q.push_back(other);
                }
            }
        }
    }

    /// Commands queued since the last call (for the driver).
    pub fn drain(&self) -> Vec<Command> {
        self.queue
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_kill_cancel_tokens_others_queue() {
        let c = Control::default();
        c.send(Command::SetUsers {
            users: 3,
            spawn_rate: None,
        });
        c.send(Command::Stop);
        assert!(c.stop.is_cancelled());
        assert!(!c.kill.is_cancelled());
        assert_eq!(
            c.drain(),
            vec![Command::SetUsers {
                users: 3,
                spawn_rate: None
            }]
        );
        assert!(c.drain().is_empty());
    }

    #[test]
    fn commands_round_trip_as_json() {
        let json = r#"{"command":"set_users","users":10,"spawn_rate":2.0}"#;
        let c: Command = serde_json::from_str(json).expect("parses");
        assert_eq!(
            c,
            Command::SetUsers {
                users: 10,
                spawn_rate: Some(2.0)
            }
        );
    }
}
