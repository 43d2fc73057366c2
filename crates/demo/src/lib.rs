//! The built-in demo target: an in-process stand-in for the Durable Code backend that the
//! bundled plans exercise (`docs/demo-target.md`), served by `loadplan demo` and started on a free port
//! by `run --demo` and by tests.
//!
//! It reproduces the real API's routes, response shapes, validation errors, per-IP limits and
//! the oscilloscope WebSocket protocol, and adds knobs the real one lacks: extra latency,
//! injected 500s, shortened delays and a seed for every random choice. It counts what it
//! served (hits per route, WebSocket frames) so tests can assert exact numbers.
//!
//! Submodules: `state` (route table, counters, dice), `pipeline` (per-request layers), `limit`,
//! `rest`, `delay`, `racing` and `track_request`, `validate`, and `oscilloscope` over `protocol`
//! and `wave`.

mod delay;
mod limit;
mod oscilloscope;
mod pipeline;
mod protocol;
mod racing;
mod rest;
mod state;
mod track_request;
mod validate;
mod wave;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use state::{STREAM_PATH, Shared};

/// How the demo target behaves beyond the real API.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Extra latency added to every REST response.
    pub latency: Duration,
    /// Fraction (0.0..=1.0) of REST requests answered 500 `{"detail":"injected error"}`.
    pub error_rate: f64,
    /// Enforce the real server's per-IP, per-route limits (429 / WebSocket 403).
    pub rate_limit: bool,
    /// Period of oscilloscope data frames while streaming.
    pub frame_interval: Duration,
    /// Period of server pings on the oscilloscope WebSocket; a peer that leaves one unanswered
    /// for a whole period is dropped.
    pub ping_interval: Duration,
    /// `/api/delay/*` sleep a hundredth of the real ranges (for tests).
    pub fast_delays: bool,
    /// Seed of every random choice (delays, injected errors, unseeded tracks, noise).
    pub seed: Option<u64>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            latency: Duration::ZERO,
            error_rate: 0.0,
            rate_limit: false,
            frame_interval: Duration::from_millis(110),
            ping_interval: Duration::from_secs(20),
            fast_delays: false,
            seed: None,
        }
    }
}

/// Oscilloscope counters since the server started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WsStats {
    /// WebSocket sessions opened (handshakes accepted).
    pub sessions: u64,
    /// Data frames sent.
    pub frames_sent: u64,
    /// Error objects sent.
    pub errors_sent: u64,
    /// Connections dropped because the client sent a binary frame.
    pub dropped: u64,
}

/// A demo target serving in the background of the current tokio runtime.
///
/// Dropping it stops the server too, without waiting; [`DemoServer::shutdown`] waits.
#[derive(Debug)]
pub struct DemoServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl DemoServer {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves in the background on the current runtime.
    pub async fn start(addr: SocketAddr, config: DemoConfig) -> io::Result<DemoServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared::new(config, shutdown.clone()));
        let task = tokio::spawn(run(listener, Arc::clone(&shared)));
        Ok(DemoServer {
            addr,
            shared,
            shutdown,
            task: Some(task),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, with a loopback IP when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{addr}")
    }

    /// Hits per route so far, keyed `"METHOD /path"` (`"GET /health"`,
    /// `"POST /api/racing/track/generate"`, `"WS /api/oscilloscope/stream"`).
    ///
    /// Every request that reached a route counts, whatever its status (429, 422, injected 500,
    /// refused WebSocket admission); so do the calls of a `/api/delay/*?call=` chain, which the
    /// real server makes over HTTP to itself. Unknown paths, wrong methods and plain GETs on the
    /// WebSocket route are not counted. Routes never hit are absent.
    pub fn hits(&self) -> BTreeMap<String, u64> {
        self.shared.hits()
    }

    /// Oscilloscope counters so far.
    pub fn ws_stats(&self) -> WsStats {
        self.shared.ws_stats()
    }

    /// Stops accepting, ends open WebSocket sessions (close 1001) and cuts short in-flight
    /// sleeps (503), then waits for the server task.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "demo target stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "demo target task failed"),
            }
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// For `loadplan demo`: serves on `listener` until `shutdown` is cancelled (Ctrl-C is the
/// caller's business), then drains open connections.
pub async fn serve(
    listener: TcpListener,
    config: DemoConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    run(listener, Arc::new(Shared::new(config, shutdown))).await
}

async fn run(listener: TcpListener, shared: Arc<Shared>) -> io::Result<()> {
    let shutdown = shared.shutdown.clone();
    // Small WebSocket frames must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "demo: could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router(shared).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(rest::root))
        .route("/health", get(rest::health))
        .route("/api/oscilloscope/config", get(rest::oscilloscope_config))
        .route("/api/oscilloscope/stream/info", get(rest::stream_info))
        .route("/api/oscilloscope/health", get(rest::oscilloscope_health))
        .route(STREAM_PATH, get(oscilloscope::stream))
        .route("/api/racing/track/simple", get(rest::track_simple))
        .route("/api/racing/track/generate", post(rest::track_generate))
        .route("/api/racing/health", get(rest::racing_health))
        .route("/api/delay/fast", get(delay::fast))
        .route("/api/delay/med", get(delay::med))
        .route("/api/delay/slow", get(delay::slow))
        .route("/api/delay/health", get(rest::delay_health))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            pipeline::route_pipeline,
        ))
        .method_not_allowed_fallback(pipeline::method_not_allowed)
        .fallback(pipeline::not_found)
        .layer(middleware::from_fn(pipeline::refuse_stray_websockets))
        .with_state(shared)
}
