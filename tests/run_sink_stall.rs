//! Issue 13: sinks off the load path. In the open model the per-second tick (the sinks:
//! CSV, Prometheus, the web UI, thresholds, the progress line) must not run on the arrival
//! generator's task: a sink that stalls must not stall arrivals. The tick callback here
//! blocks its thread for 400 ms and counts the requests the target received meanwhile; at
//! 200 arrivals/s about 80 arrive during the stall when the generator runs elsewhere, and
//! none (but those already in flight) when the tick runs on the generator's task. The
//! target listens on 127.0.0.1:0; the run lasts 2.5 s.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use loadplan::lang::compile_source;
use loadplan::profile::{LoadProfile, Model};
use loadplan::runtime::RunConfig;
use loadplan::runtime::driver::{self, Control};
use loadplan::source::{Source, Syntax};

const STALL: Duration = Duration::from_millis(400);
const RATE: f64 = 200.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_does_not_stall_the_arrivals() {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let app = Router::new().route(
        "/health",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let program = match compile_source(
        &Source::new("t.kdl", "scenario \"s\" {\n    http GET \"/health\"\n}\n"),
        Syntax::Kdl,
        Path::new("."),
    ) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("the plan compiles: {d:?}"),
    };
    let mut profile = LoadProfile::closed(1, 1.0, Some(Duration::from_millis(2500)));
    profile.model = Model::Open {
        rate: RATE,
        max_users: 50,
        poisson: false,
    };
    let cfg = RunConfig {
        host: Some(format!("http://{addr}")),
        seed: 1,
        ..RunConfig::default()
    };
    // Requests received during each stall of a tick that came while the load ran.
    let mut during: Vec<u64> = Vec::new();
    let r = driver::run(program, &profile, &cfg, Control::default(), |t| {
        if t.elapsed < Duration::from_secs(2) {
            let before = seen.load(Ordering::SeqCst);
            // A sink that blocks its thread (a slow disk, a lock held by the UI).
            std::thread::sleep(STALL);
            during.push(seen.load(Ordering::SeqCst) - before);
        }
    })
    .await
    .expect("the run starts");
    assert!(!during.is_empty(), "no tick during the load");
    // Ground truth: RATE × STALL = 80 arrivals are due during each stall; at least a
    // quarter of them must have reached the target while the sink was blocked.
    let due = (RATE * STALL.as_secs_f64()) as u64;
    for n in &during {
        assert!(
            *n >= due / 4,
            "{n} requests during a {STALL:?} sink stall, {due} were due: {during:?}"
        );
    }
    assert!(r.total.aggregate(|_| true).count > 0);
}
