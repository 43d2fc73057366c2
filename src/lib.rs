//! loadplan: declarative load testing. The `loadplan` binary is [`cli`]; the pipeline
//! lives in the workspace's crates (ARCHITECTURE.md):
//!
//! - `loadplan-lang` — plan source → checked `ir::Program` (pure: no async, no network),
//!   with diagnostics, sources and profiles;
//! - `loadplan-engine` — the runtime (virtual users), metrics and run control;
//! - `loadplan-report` — thresholds, result files, reports, compare;
//! - `loadplan-web` — the web UI; `loadplan-dist` — master and workers;
//! - `loadplan-demo` — the built-in demo target.
//!
//! They are re-exported here under the module names the CLI and the tests use.

pub mod cli;

pub use loadplan_demo as demo;
pub use loadplan_dist as dist;
pub use loadplan_engine::{control, metrics, runtime};
pub use loadplan_lang::{self as lang, diag, profile, source};
pub use loadplan_report as report;
pub use loadplan_web as web;
