//! "Reset stats" mid-run: rates, iterations and the history restart at the reset, and the
//! result says when it happened. Ground truth is the wall clock of the test itself: the reset
//! is sent on the first tick and the run's end is timed here, so the requests counted after
//! the reset divided by that window must be the rate the report states (the old report divided
//! by the whole run's elapsed time). Runs the real driver against the demo target on
//! `127.0.0.1:0` for a fixed duration.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::compile_source;
use loadplan::profile::LoadProfile;
use loadplan::report::RunReport;
use loadplan::report::model::Context;
use loadplan::runtime::RunConfig;
use loadplan::runtime::driver::{self, Command, Control};
use loadplan::source::{Source, Syntax};

const PLAN: &str = r#"
plan "reset" {
    host "http://localhost:1"
}
scenario "s" {
    think between="5ms" and="10ms"
    http GET "/health"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_after_a_reset_cover_the_time_since_it() {
    let program = match compile_source(&Source::new("t.kdl", PLAN), Syntax::Kdl, Path::new(".")) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("the plan compiles: {d:?}"),
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let server = DemoServer::start(addr, DemoConfig::default())
        .await
        .expect("demo target binds a free port");
    let cfg = RunConfig {
        host: Some(server.base_url()),
        seed: 3,
        ..RunConfig::default()
    };
    let profile = LoadProfile::closed(2, 100.0, Some(Duration::from_secs(4)));
    let control = Control::default();
    let reset_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (c, sent) = (control.clone(), reset_sent.clone());
    let on_tick = move |_: &driver::Tick| {
        if let Ok(mut s) = sent.lock() {
            if s.is_none() {
                c.send(Command::ResetStats);
                *s = Some(Instant::now());
            }
        }
    };
    let r = driver::run(Arc::clone(&program), &profile, &cfg, control, on_tick)
        .await
        .expect("the run starts");
    let ended = Instant::now();
    server.shutdown().await;
    let reset = reset_sent
        .lock()
        .ok()
        .and_then(|s| *s)
        .expect("a tick sent the reset");
    let window = ended.duration_since(reset).as_secs_f64();

    let cx = Context {
        program: &program,
        host: None,
        profile: &profile,
        plan_file: "t.kdl",
        seed: 3,
        verdicts: &[],
        aborted_by: None,
        passed: true,
    };
    let report = RunReport::build(&cx, &r);
    let at = report
        .stats_reset_at_secs
        .expect("the report says when the reset was");
    assert!((0.9..2.0).contains(&at), "reset at {at} s");
    assert!(
        (report.stats_secs - window).abs() < 0.15,
        "the counts cover {} s, the test measured {window} s after the reset",
        report.stats_secs
    );
    assert!(
        report.elapsed_secs - report.stats_secs > 0.9,
        "the time before the reset is not in the window"
    );
    let http = &report.totals.http;
    assert!(http.count > 20, "{http:?}");
    let expected = http.count as f64 / window;
    assert!(
        (http.rate - expected).abs() / expected < 0.05,
        "rate {} req/s, but {} requests in the {window:.2} s after the reset are {expected:.2}/s",
        http.rate,
        http.count
    );
    // Iterations restart too: in-flight ones count as started after the reset.
    let it = &report.iterations;
    assert!(it.completed + it.failed <= it.started, "{it:?}");
    // The history starts at the reset; its first rate covers the time since the reset.
    let first = report.history.first().expect("a point after the reset");
    assert!(first.t_secs >= at, "{first:?}");
    let points = r.history.points();
    let p = &points[0];
    let secs = p.t_secs - at;
    assert!(
        (p.rate - p.requests as f64 / secs).abs() < 1e-6,
        "first rate {} from {} requests over {secs} s",
        p.rate,
        p.requests
    );
    assert_eq!(
        points.last().map(|p| p.total_requests),
        Some(report.aggregated.count)
    );
}
