//! `loadplan demo`: serve the built-in stand-in for the Durable Code backend.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::demo::{self, DemoConfig};
use crate::lang::check::parse_duration_str;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Extra latency on every REST response, e.g. 20ms.
    #[arg(long, value_parser = parse_duration_str, default_value = "0s")]
    pub latency: Duration,
    /// Fraction of REST requests answered 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Enforce the real server's per-IP rate limits (429 / WebSocket 403).
    #[arg(long)]
    pub rate_limit: bool,
    /// Oscilloscope frame period.
    #[arg(long, value_parser = parse_duration_str, default_value = "110ms")]
    pub frame_interval: Duration,
    /// Seed for random choices.
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(args: Args) -> u8 {
    if !(0.0..=1.0).contains(&args.error_rate) {
        eprintln!("error: --error-rate must be between 0 and 1");
        return super::EXIT_USAGE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return super::EXIT_FATAL;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.bind);
                return super::EXIT_FATAL;
            }
        };
        let addr = listener.local_addr().map_or(args.bind, |a| a);
        eprintln!("demo target (Durable Code stand-in) on http://{addr} — Ctrl-C to stop");
        let cfg = DemoConfig {
            latency: args.latency,
            error_rate: args.error_rate,
            rate_limit: args.rate_limit,
            frame_interval: args.frame_interval,
            seed: args.seed,
            ..DemoConfig::default()
        };
        let token = CancellationToken::new();
        let t2 = token.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                t2.cancel();
            }
        });
        match demo::serve(listener, cfg, token).await {
            Ok(()) => super::EXIT_OK,
            Err(e) => {
                eprintln!("error: {e}");
                super::EXIT_FATAL
            }
        }
    })
}
