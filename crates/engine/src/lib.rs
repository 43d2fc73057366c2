//! The engine: runs a checked [`loadplan_lang::ir::Program`]. The [`runtime`] drives virtual
//! users (closed and open model) through HTTP, WebSocket and SSE steps; each finished step
//! becomes a [`metrics::Event`], folded into mergeable snapshots; [`control`] carries commands
//! (stop, change users) from the terminal, the web UI or a master into a running driver.
//!
//! Invariants: the engine never renders a file or a verdict (that is `loadplan-report`), and
//! everything it measures is exact to merge (counters and HDR buckets).

pub mod control;
pub mod metrics;
pub mod runtime;

// The crate this one builds on, under the module names the code uses (`crate::lang::…`).
use loadplan_lang::{self as lang, diag, profile};
