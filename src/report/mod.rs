//! Sinks that turn a finished run into verdicts and files.

pub mod thresholds;
