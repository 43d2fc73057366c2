//! loadplan: declarative load testing.
//!
//! The pipeline, stage by stage: `lang` (plan source → checked `ir::Program`),
//! `profile` (load shapes), `runtime` (virtual users executing the program),
//! `metrics` (events → mergeable snapshots), sinks (`report`, terminal), and the
//! built-in `demo` target. `cli` wires them to the command line.

pub mod cli;
pub mod control;
pub mod demo;
pub mod diag;
pub mod dist;
pub mod lang;
pub mod metrics;
pub mod profile;
pub mod report;
pub mod runtime;
pub mod source;
pub mod web;
