//! The web UI: a sink like the terminal and the reports, served by axum on `127.0.0.1:8089`.
//! `loadplan ui PLAN` serves it and waits for a start from the browser; `loadplan run … --ui`
//! attaches it to a run that starts at once.
//!
//! Pieces: the [`hub`] holds the run as the UI sees it (fed by the driver's ticks), the
//! [`launch`]er starts runs from the browser, [`api`] is the JSON API (documented in
//! `crates/web/src/API.md`) and the embedded page (`assets/`, one self-contained document: no CDN,
//! no external URL, works offline).
//!
//! Invariants: control goes through [`crate::control::Control::send`] only; bound beyond
//! loopback the UI requires a token ([`check_bind`]); without a token it answers only to
//! loopback host names (no DNS rebinding) and, like every state-changing call, a `POST` must
//! carry `Content-Type: application/json` (so a cross-site form cannot post to it).

// The crates this one builds on, under the module names the code uses (`crate::lang::…`).
use loadplan_engine::{control, metrics, runtime};
use loadplan_lang::{self as lang, diag, profile, source};
use loadplan_report as report;

pub mod api;
pub mod hub;
pub mod launch;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use hub::{Hub, Start, Status};
pub use launch::{Launcher, StartRequest};

/// The default address of the UI.
pub const DEFAULT_BIND: &str = "127.0.0.1:8089";

/// The UI's listening flags, shared by `loadplan ui` and `loadplan run --ui`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UiFlags {
    /// Address of the web UI (default 127.0.0.1:8089; port 0 picks a free one). Beyond
    /// loopback a token is required.
    #[arg(long, value_name = "ADDR")]
    pub ui_bind: Option<String>,
    /// Require `Authorization: Bearer TOKEN` (or `?token=TOKEN` in the page URL) on every call.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LOADPLAN_UI_TOKEN",
        hide_env_values = true
    )]
    pub ui_token: Option<String>,
}

impl UiFlags {
    /// The checked configuration when the UI is wanted (`--ui`, or an explicit `--ui-bind`).
    pub fn check(&self, wanted: bool) -> Result<Option<Listen>, String> {
        if !wanted && self.ui_bind.is_none() {
            return Ok(None);
        }
        check_bind(self.ui_bind.as_deref(), self.ui_token.as_deref()).map(Some)
    }
}

/// A checked listening configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

/// Parses the bind address and refuses a non-loopback bind without a token (the message is
/// for people; the caller exits 2).
pub fn check_bind(bind: Option<&str>, token: Option<&str>) -> Result<Listen, String> {
    let text = bind.unwrap_or(DEFAULT_BIND).trim();
    let addr = match text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => text
            .to_socket_addrs()
            .map_err(|e| {
                format!("--ui-bind `{text}` is not an address (e.g. 127.0.0.1:8089): {e}")
            })?
            .next()
            .ok_or_else(|| format!("--ui-bind `{text}` resolves to no address"))?,
    };
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if !is_loopback(addr.ip()) && token.is_none() {
        return Err(format!(
            "--ui-bind {addr} is reachable beyond this machine: anyone who can reach it could \
             start and stop load. Set a token with --ui-token TOKEN or LOADPLAN_UI_TOKEN, or \
             bind to 127.0.0.1"
        ));
    }
    Ok(Listen { addr, token })
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// A running UI server.
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `listen.addr` and serves the UI for `hub` (with `launcher`, the browser may start
    /// runs). Prints `ui listening on http://ADDR` on stderr.
    pub async fn start(
        listen: &Listen,
        hub: Arc<Hub>,
        launcher: Option<Launcher>,
    ) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen.addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = api::App {
            hub,
            launcher,
            token: listen.token.clone(),
            stop: stop.clone(),
        };
        let router = api::router(Arc::new(app));
        let shutdown = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        eprintln!("ui listening on http://{addr}");
        Ok(Server { addr, stop, task })
    }

    /// The bound address (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (open event streams end) and waits for the server task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "web ui stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "web ui task failed"),
        }
    }
}

/// `loadplan run --ui`: the UI attached to a run started from the command line.
pub struct Attached {
    pub hub: Arc<Hub>,
    pub server: Server,
}

impl Attached {
    /// Serves the UI for a run about to start with `control` (which the UI then steers).
    pub async fn start(
        listen: &Listen,
        program: Arc<crate::lang::ir::Program>,
        plan_file: String,
        start: Start,
        control: crate::control::Control,
    ) -> Result<Attached, String> {
        let hub = Hub::new(program, plan_file);
        hub.begin(start, control)
            .map_err(|_| "the web ui could not take the run".to_owned())?;
        let server = Server::start(listen, Arc::clone(&hub), None)
            .await
            .map_err(|e| format!("cannot serve the web ui on {}: {e}", listen.addr))?;
        Ok(Attached { hub, server })
    }

    /// The run ended (`None`: it failed to run): show its result, then stop serving.
    pub async fn finish(
        self,
        result: Option<&crate::runtime::RunResult>,
        aborted_by: Option<String>,
    ) {
        self.show(result, aborted_by);
        self.server.shutdown().await;
    }

    /// The run ended (`None`: it failed to run): the page shows its result; the server goes
    /// on serving it (and its downloads).
    pub fn show(&self, result: Option<&crate::runtime::RunResult>, aborted_by: Option<String>) {
        match result {
            Some(r) => self.hub.finish(r.clone(), aborted_by),
            None => self.hub.fail("the run failed (see the terminal)".into()),
        }
    }

    /// Serves the finished run until `until` completes (Ctrl-C or SIGTERM), then stops.
    pub async fn linger(self, until: impl std::future::Future<Output = ()>) {
        until.await;
        self.server.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_need_no_token() {
        let l = check_bind(None, None).expect("default is loopback");
        assert_eq!(l.addr, "127.0.0.1:8089".parse().expect("addr"));
        assert!(check_bind(Some("[::1]:0"), None).is_ok());
        assert!(check_bind(Some("localhost:0"), None).is_ok());
    }

    #[test]
    fn a_public_bind_without_a_token_is_refused() {
        let e = check_bind(Some("0.0.0.0:8089"), None).expect_err("refused");
        assert!(e.contains("--ui-token"), "{e}");
        assert!(check_bind(Some("0.0.0.0:8089"), Some("  ")).is_err());
        let l = check_bind(Some("0.0.0.0:8089"), Some("s3cret")).expect("token given");
        assert_eq!(l.token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let e = check_bind(Some("nonsense"), None).expect_err("not an address");
        assert!(e.contains("not an address"), "{e}");
    }
}
