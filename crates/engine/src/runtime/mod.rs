//! The runtime: turns an `ir::Program` and a `LoadProfile` into load.
//!
//! It knows nothing of KDL or YAML. The [`driver`] starts and stops virtual users
//! following the profile; each [`user`] runs its scenario through the [`interp`]reter,
//! which calls [`http`] and [`ws`]; every finished step becomes a metrics `Event` in
//! the user's own `Recorder`. Cancellation is by token: a soft stop lets a user
//! finish its iteration, a hard stop (after `stop_timeout`, or a second Ctrl-C)
//! abandons it.

pub mod arrival_timer;
pub mod decode;
pub mod driver;
pub mod fast;
pub mod http;
pub mod interp;
pub mod open;
pub mod schedule;
pub mod sse;
pub mod tls;
pub mod trace;
pub mod user;
pub mod ws;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{History, Snapshot};

/// Settings of one run besides the profile.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// Overrides the plan's host.
    pub host: Option<String>,
    /// Seed for every random choice (users derive theirs from it).
    pub seed: u64,
    /// Iterations per user; the run ends when every user has done them.
    pub iterations: Option<u64>,
    /// Accept invalid TLS certificates.
    pub insecure: bool,
    /// `--set var=value`: overrides plan variables.
    pub set: BTreeMap<String, String>,
    /// `--http-debug`: every user's requests and responses are written here.
    pub http_debug: Option<std::sync::Arc<trace::Trace>>,
}

/// What a run produced.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub total: Snapshot,
    pub history: History,
    pub elapsed: Duration,
    /// (seconds since start, live users) at every change in the number of users.
    pub users_timeline: Vec<(f64, u64)>,
    /// Users started, by scenario (deterministic: see `schedule`).
    pub users_by_scenario: BTreeMap<String, u64>,
    /// Most users live at once.
    pub peak_users: u64,
    /// Set when the run was stopped early (Ctrl-C, abort).
    pub interrupted: bool,
}

/// Errors that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Unsupported(String),
}
