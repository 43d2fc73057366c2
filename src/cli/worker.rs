//! `loadplan worker --master HOST:5557`: join a master's run, recompile the plan it
//! sends, run this worker's share of the users and stream the numbers back.
//!
//! Exit codes: 0 when the master ends the run, 2 when the master refuses this worker
//! (secret, protocol version) or the plan does not compile here, 3 when the master is
//! lost or unreachable.

use std::time::Duration;

use crate::dist::worker::{self, WorkerConfig};
use crate::lang::check::parse_duration_str;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The master's address, HOST:PORT (or a ws:// URL).
    #[arg(long, env = "LOADPLAN_MASTER", default_value = "127.0.0.1:5557")]
    pub master: String,
    /// The shared secret the master expects.
    #[arg(long, env = "LOADPLAN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// This worker's name in the master's output (default: `worker-N` in a Kubernetes
    /// Indexed Job, from JOB_COMPLETION_INDEX; else host name and process id).
    #[arg(long, env = "LOADPLAN_WORKER_NAME")]
    pub name: Option<String>,
    /// Keep trying to reach the master this long.
    #[arg(long, value_parser = parse_duration_str, default_value = "30s")]
    pub connect_timeout: Duration,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn default_name() -> String {
    // A Kubernetes Indexed Job gives each pod its index (examples/kubernetes/worker.yml).
    if let Some(index) = std::env::var("JOB_COMPLETION_INDEX")
        .ok()
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("worker-{index}");
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

pub fn run(args: Args) -> u8 {
    let cfg = WorkerConfig {
        master: args.master.clone(),
        secret: args.secret.clone().unwrap_or_default(),
        name: args.name.clone().unwrap_or_else(default_name),
        connect_timeout: args.connect_timeout,
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    if !args.quiet {
        eprintln!(
            "worker {} joining {}",
            cfg.name,
            worker::master_url(&cfg.master)
        );
    }
    let outcome = rt.block_on(async {
        tokio::select! {
            r = worker::run(&cfg) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(s)) => {
            if !args.quiet {
                eprintln!(
                    "worker {} done: {} shares, {} requests, {} failures",
                    s.index, s.assignments, s.requests, s.failures
                );
            }
            super::EXIT_OK
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
        None => {
            eprintln!("worker interrupted");
            super::EXIT_FATAL
        }
    }
}
