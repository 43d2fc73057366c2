//! Distributed runs: a master drives many workers over WebSocket.
//!
//! The master ([`master`]) reads and compiles the plan, resolves the profile, waits for
//! the expected workers ([`hub`] checks each one's protocol version and secret), sends
//! them the plan and profile *sources* ([`protocol`]), and merges the snapshot deltas
//! they stream back. Workers ([`worker`]) recompile the sources with the same front end
//! and run their share of the user ids through the ordinary driver. Snapshots are
//! counters plus HDR buckets, so the merged numbers are exact, not averaged.

// The crates this one builds on, under the module names the code uses (`crate::lang::…`).
use loadplan_engine::{control, metrics, runtime};
use loadplan_lang::{self as lang, profile, source};
use loadplan_report as report;

mod hub;
pub mod master;
pub mod protocol;
pub mod worker;
