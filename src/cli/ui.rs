//! `loadplan ui PLAN`: serve the web UI and wait for runs started from the browser (the
//! profile, users or arrival rate, host and duration are chosen in the start form; the
//! command line gives the defaults). Ctrl-C stops a run in progress, then the server.

use std::path::PathBuf;
use std::sync::Arc;

use crate::lang;
use crate::web::{self, Hub, Launcher, Server, UiFlags};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The plan file (.kdl, .yaml or .yml).
    pub plan: PathBuf,
    /// Default load profile in the start form: smoke, load, stress, soak, a name in
    /// profiles/, or a file.
    #[arg(long, short = 'p', env = "LOADPLAN_PROFILE")]
    pub profile: Option<String>,
    /// Default target base URL (overrides the plan's host).
    #[arg(long, env = "LOADPLAN_HOST")]
    pub host: Option<String>,
    /// Start the built-in demo target on a free loopback port and make it the default host.
    #[arg(long)]
    pub demo: bool,
    /// Seed for every random choice (each run from the UI reuses it).
    #[arg(long, env = "LOADPLAN_SEED")]
    pub seed: Option<u64>,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub listen: UiFlags,
}

pub fn run(args: Args) -> u8 {
    let listen = match web::check_bind(
        args.listen.ui_bind.as_deref(),
        args.listen.ui_token.as_deref(),
    ) {
        Ok(l) => l,
        Err(m) => {
            eprintln!("error: {m}");
            return super::EXIT_USAGE;
        }
    };
    let program = match super::load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(name) = &args.profile {
        if crate::profile::locate(name, args.plan.parent()).is_none() {
            eprintln!("{}", crate::profile::not_found(name, args.plan.parent()));
            return super::EXIT_USAGE;
        }
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    rt.block_on(serve(args, listen, Arc::new(program)))
}

async fn serve(args: Args, listen: web::Listen, program: Arc<lang::ir::Program>) -> u8 {
    // The default host obeys the plan's `host` rule (exit 2 before serving anything).
    let mut host = match &args.host {
        Some(h) => match super::run::check_host_flag(h) {
            Ok(h) => Some(h),
            Err(code) => return code,
        },
        None => None,
    };
    let demo = if args.demo {
        match super::start_demo(args.seed, true).await {
            Ok(d) => {
                host = Some(d.base_url());
                Some(d)
            }
            Err(code) => return code,
        }
    } else {
        None
    };
    let hub = Hub::new(program, args.plan.display().to_string());
    let launcher = Launcher {
        plan_path: args.plan.clone(),
        profile: args.profile.clone(),
        host,
        seed: args.seed,
        insecure: args.insecure,
    };
    let server = match Server::start(&listen, Arc::clone(&hub), Some(launcher)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot serve the web ui on {}: {e} (is another loadplan using the port? choose another with --ui-bind ADDR)",
                listen.addr
            );
            return super::EXIT_FATAL;
        }
    };
    // SIGINT, SIGTERM (docker stop) and SIGHUP all stop the UI the same way.
    let mut signals = match super::run::Interrupts::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen for stop signals: {e}");
            return super::EXIT_FATAL;
        }
    };
    signals.next().await;
    // A run in progress gets a graceful stop; the server goes once it has ended.
    if hub.send(crate::control::Command::Stop).is_ok() {
        eprintln!("stopping the run in progress…");
        let mut events = hub.subscribe();
        while matches!(
            hub.state().get("status").and_then(|s| s.as_str()),
            Some("running" | "stopping")
        ) {
            tokio::select! {
                _ = events.recv() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                Some("SIGINT") = signals.next() => {
                    if hub.send(crate::control::Command::Kill).is_err() {
                        break;
                    }
                }
            }
        }
    }
    server.shutdown().await;
    if let Some(d) = demo {
        d.shutdown().await;
    }
    super::EXIT_OK
}
