//! Issue 12: WebSocket steps still waiting at a hard stop are counted, as HTTP requests
//! are: a `receive` on a connection the target never sends on (the demo oscilloscope
//! streams only after `start`) is under way when `stop_timeout` runs out, and must appear
//! on its own row as a failure of kind `aborted`, with the time it waited (a lower bound)
//! as its latency. The demo target listens on 127.0.0.1:0; the run is bounded by its
//! 1 s duration and a 300 ms stop_timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::compile_source;
use loadplan::metrics::ErrorKind;
use loadplan::profile::LoadProfile;
use loadplan::runtime::RunConfig;
use loadplan::runtime::driver::{self, Control};
use loadplan::source::{Source, Syntax};

const PLAN: &str = r#"
scenario "ws" {
    ws "/api/oscilloscope/stream" name="connect" timeout="10s" {
        receive "never" count=1 timeout="1h"
        close name="disconnect"
    }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_waiting_at_the_hard_stop_is_counted_as_aborted() {
    let program = match compile_source(&Source::new("t.kdl", PLAN), Syntax::Kdl, Path::new(".")) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("the test plan compiles: {d:?}"),
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let server = DemoServer::start(addr, DemoConfig::default())
        .await
        .expect("demo target binds a free port");
    let mut profile = LoadProfile::closed(2, 100.0, Some(Duration::from_secs(1)));
    profile.stop_timeout = Duration::from_millis(300);
    let cfg = RunConfig {
        host: Some(server.base_url()),
        seed: 1,
        ..RunConfig::default()
    };
    let r = driver::run(program.clone(), &profile, &cfg, Control::default(), |_| {})
        .await
        .expect("the run starts");
    server.shutdown().await;

    let id = |kind: &str, name: &str| {
        program
            .stat_id(kind, name)
            .unwrap_or_else(|| panic!("no row `{kind} {name}`"))
    };
    let stats = |id: u32| r.total.steps.get(&id).cloned().unwrap_or_default();
    let (connect, never, close) = (
        id("WS", "connect"),
        id("receive", "never"),
        id("close", "disconnect"),
    );
    // Ground truth: two users, each connected and then waited for a frame that never came.
    assert_eq!((stats(connect).count, stats(connect).failures), (2, 0));
    let receive = stats(never);
    assert_eq!(
        (receive.count, receive.failures),
        (2, 2),
        "{:?}",
        r.total.errors
    );
    // The wait began before the 1 s soft stop and ended at the hard stop after it.
    assert!(
        receive.latency.max() >= 1_000_000,
        "latency {} µs",
        receive.latency.max()
    );
    let kinds: Vec<(u32, ErrorKind, u64)> = r
        .total
        .errors
        .iter()
        .map(|(k, n)| (k.step, k.kind, *n))
        .collect();
    assert_eq!(kinds, vec![(never, ErrorKind::Aborted, 2)]);
    // The close never ran: nothing on its row.
    assert_eq!(stats(close).count, 0);
    assert_eq!(r.total.iterations.failed, 2);
}
