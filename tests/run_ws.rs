//! WebSocket sessions end to end: plans compiled from KDL, run by the driver for a
//! fixed number of iterations with a fixed seed against the demo target's
//! oscilloscope on `127.0.0.1:0`, asserting exact per-step counts from the run's
//! snapshot and the demo's own counters. No test sleeps to synchronise: the driver
//! returns when every user has done its iterations.
//!
//! The last test is not a test but the demo half of `benches/ws_sessions.sh`
//! (ignored; run explicitly).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::compile_source;
use loadplan::lang::ir::Program;
use loadplan::metrics::{ErrorKind, StepStats};
use loadplan::profile::LoadProfile;
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

/// Frame period of the demo in these tests.
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

const START: &str = r##"send "start" json=#"{"command": "start", "wave_type": "sine", "frequency": 10, "amplitude": 1, "offset": 0}"#"##;
const CONFIGURE: &str = r##"send "configure" json=#"{"command": "configure", "wave_type": "sine", "frequency": 25, "amplitude": 2, "offset": 0}"#"##;
const STOP: &str = r##"send "stop" json=#"{"command": "stop"}"#"##;

/// The session of docs/demo-target.md, step names as in `plans/websocket.kdl`.
fn target_api_session() -> String {
    format!(
        r#"ws "/api/oscilloscope/stream" name="connect" timeout="10s" {{
        {START}
        receive "receive_frame" count=5 timeout="5s" match="$.samples" {{
            check json="$.samples" length=100
        }}
        {CONFIGURE}
        receive "receive_frame" count=3 timeout="5s" match="$.samples" {{
            check json="$.samples" length=100
        }}
        {STOP}
        close name="disconnect"
    }}"#
    )
}

fn plan(scenario_body: &str) -> Program {
    let text = format!(
        "plan \"ws-test\" {{\n    host \"http://localhost:1\"\n}}\n\nscenario \"ws\" {{\n{scenario_body}\n}}\n"
    );
    match compile_source(
        &Source::new("t.kdl", text.as_str()),
        Syntax::Kdl,
        Path::new("."),
    ) {
        Ok(p) => p,
        Err(d) => panic!("the test plan compiles: {d:?}\n{text}"),
    }
}

async fn demo() -> DemoServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    DemoServer::start(
        addr,
        DemoConfig {
            frame_interval: FRAME_INTERVAL,
            seed: Some(7),
            ..DemoConfig::default()
        },
    )
    .await
    .expect("demo target binds a free port")
}

async fn run_against(
    program: &Arc<Program>,
    host: String,
    users: u64,
    iterations: u64,
) -> RunResult {
    let cfg = RunConfig {
        host: Some(host),
        seed: 1,
        iterations: Some(iterations),
        ..RunConfig::default()
    };
    let profile = LoadProfile::closed(users, users as f64, None);
    driver::run(
        Arc::clone(program),
        &profile,
        &cfg,
        Control::default(),
        |_| {},
    )
    .await
    .expect("the run starts")
}

async fn run(
    program: &Arc<Program>,
    server: &DemoServer,
    users: u64,
    iterations: u64,
) -> RunResult {
    run_against(program, server.base_url(), users, iterations).await
}

/// The row of the step called `name` (all kinds), empty when it recorded nothing.
fn row(program: &Program, r: &RunResult, name: &str) -> StepStats {
    let id = program
        .stats
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step named {name}"));
    r.total.steps.get(&(id as u32)).cloned().unwrap_or_default()
}

/// Errors of the step called `name`: (kind, message, count).
fn errors(program: &Program, r: &RunResult, name: &str) -> Vec<(ErrorKind, String, u64)> {
    let id = program
        .stats
        .iter()
        .position(|s| s.name == name)
        .expect("step exists") as u32;
    r.total
        .errors
        .iter()
        .filter(|(k, _)| k.step == id)
        .map(|(k, n)| (k.kind, k.message.clone(), *n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_api_session_counts_every_step_exactly() {
    let server = demo().await;
    let program = Arc::new(plan(&target_api_session()));
    let (users, iterations) = (3, 2);
    let r = run(&program, &server, users, iterations).await;
    let n = users * iterations;

    let connect = row(&program, &r, "connect");
    assert_eq!(connect.count, n);
    assert_eq!(connect.statuses.get(&101), Some(&n));
    for (name, per_iteration) in [
        ("start", 1),
        ("receive_frame", 8),
        ("configure", 1),
        ("stop", 1),
        ("disconnect", 1),
    ] {
        let stats = row(&program, &r, name);
        assert_eq!(stats.count, n * per_iteration, "{name}");
        assert_eq!(stats.failures, 0, "{name}: {:?}", r.total.errors);
    }
    let frames = row(&program, &r, "receive_frame");
    assert_eq!(frames.checks_passed, n * 8);
    assert!(frames.bytes_in >= n * 8 * 1_000, "data frames are ~2 KB");
    assert!(row(&program, &r, "start").bytes_out > 0);
    assert_eq!(r.total.failures(), 0, "{:?}", r.total.errors);
    assert_eq!(r.total.iterations.completed, n);
    assert_eq!(server.ws_stats().sessions, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_frame_arrives_within_one_frame_interval_of_start() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r#"ws "/api/oscilloscope/stream" name="connect" {{
        {START}
        receive "first_frame" timeout="5s" match="$.samples"
        receive "later_frames" count=3 timeout="5s" match="$.samples"
        {STOP}
        close
    }}"#
    )));
    let r = run(&program, &server, 2, 3).await;
    let first = row(&program, &r, "first_frame");
    assert_eq!(first.count, 6);
    assert_eq!(first.failures, 0);
    // The demo's frame clock runs from the handshake: the first frame follows `start`
    // by 0..FRAME_INTERVAL. The slack covers scheduling of debug builds on 2 cores.
    let slack = Duration::from_millis(100);
    let max = Duration::from_micros(first.latency.max());
    assert!(max <= FRAME_INTERVAL + slack, "first frame after {max:?}");
    // Later frames are each waited for from the previous frame (docs/metrics.md): about
    // one frame interval each, not the time since `start` (which grows with every frame).
    // (This compared them with the first frame's wait: a coin flip once both are ~1 interval.)
    let later = row(&program, &r, "later_frames");
    assert_eq!(later.count, 6 * 3);
    let mean = Duration::from_micros(later.latency.mean() as u64);
    assert!(
        mean >= FRAME_INTERVAL / 2 && mean <= FRAME_INTERVAL + slack,
        "later frames waited {mean:?} on average"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_objects_are_counted_as_unmatched() {
    let server = demo().await;
    // The bad configure is answered before `start`, so its error object is the first
    // frame the receive sees, ahead of every data frame.
    let program = Arc::new(plan(&format!(
        r##"ws "/api/oscilloscope/stream" name="connect" {{
        send "bad_configure" json=#"{{"command": "configure", "wave_type": "sine", "frequency": 500, "amplitude": 1, "offset": 0}}"#
        {START}
        receive "frame" count=2 timeout="5s" match="$.samples"
        {STOP}
        close
    }}"##
    )));
    let (users, iterations) = (2, 2);
    let r = run(&program, &server, users, iterations).await;
    let n = users * iterations;
    let frame = row(&program, &r, "frame");
    assert_eq!(frame.count, n * 3, "2 matched + 1 unmatched per session");
    assert_eq!(frame.failures, n);
    let errs = errors(&program, &r, "frame");
    assert_eq!(errs.iter().map(|e| e.2).sum::<u64>(), n);
    assert!(
        errs.iter()
            .all(|(kind, message, _)| *kind == ErrorKind::Unmatched
                && message.starts_with("frame does not match $.samples: {\"error\""))
    );
    assert_eq!(server.ws_stats().errors_sent, n);
    assert_eq!(row(&program, &r, "connect").failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_is_counted_and_the_next_iteration_reconnects() {
    let server = demo().await;
    // Iteration 0 sends a binary frame, which the target answers by dropping TCP
    // (nothing is streaming, so the receive can only see the drop).
    let program = Arc::new(plan(&format!(
        r#"if "iteration == 0" {{
        ws "/api/oscilloscope/stream" name="connect" {{
            send "binary" binary="00ff"
            receive "after_drop" timeout="5s"
            {STOP}
            close name="disconnect"
        }}
        else {{
            {}
        }}
    }}"#,
        target_api_session()
    )));
    let users = 2;
    let r = run(&program, &server, users, 2).await;

    let after = row(&program, &r, "after_drop");
    assert_eq!((after.count, after.failures), (users, users));
    let errs = errors(&program, &r, "after_drop");
    assert_eq!(errs.len(), 1, "{errs:?}");
    let (kind, message, count) = &errs[0];
    assert_eq!((*kind, *count), (ErrorKind::WsClosed, users));
    assert!(message.starts_with("1006 abnormal closure"), "{message}");
    // The session ended at the drop: its later steps did not run in iteration 0.
    assert_eq!(row(&program, &r, "stop").count, users);
    assert_eq!(row(&program, &r, "disconnect").count, users);
    // Iteration 1 reconnected and ran the whole session.
    assert_eq!(row(&program, &r, "connect").count, 2 * users);
    assert_eq!(row(&program, &r, "receive_frame").count, 8 * users);
    assert_eq!(row(&program, &r, "receive_frame").failures, 0);
    assert_eq!(r.total.iterations.failed, users);
    assert_eq!(r.total.iterations.completed, users);
    let stats = server.ws_stats();
    assert_eq!((stats.sessions, stats.dropped), (2 * users, users));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_reports_the_http_status() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r#"ws "/api/oscilloscope/ws" name="connect" {{
        {START}
        close
    }}"#
    )));
    let r = run(&program, &server, 2, 2).await;
    let connect = row(&program, &r, "connect");
    assert_eq!((connect.count, connect.failures), (4, 4));
    assert_eq!(connect.statuses.get(&403), Some(&4));
    assert_eq!(
        errors(&program, &r, "connect"),
        vec![(
            ErrorKind::WsHandshake,
            "handshake refused: HTTP 403".to_string(),
            4
        )]
    );
    assert_eq!(row(&program, &r, "start").count, 0);
    assert_eq!(r.total.iterations.failed, 4);
    assert_eq!(server.ws_stats().sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tcp_connect_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let program = Arc::new(plan(
        r#"ws "/api/oscilloscope/stream" name="connect" {
        close
    }"#,
    ));
    let r = run_against(&program, format!("http://{addr}"), 1, 2).await;
    assert_eq!(
        errors(&program, &r, "connect"),
        vec![(ErrorKind::Connect, "connection refused".to_string(), 2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plaintext_server_is_a_tls_error() {
    let server = demo().await;
    let program = Arc::new(plan(
        r#"ws "/api/oscilloscope/stream" name="connect" {
        close
    }"#,
    ));
    let host = server.base_url().replacen("http://", "https://", 1);
    let r = run_against(&program, host, 1, 1).await;
    let errs = errors(&program, &r, "connect");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, ErrorKind::Tls, "{errs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_without_frames_times_out_saying_how_many_arrived() {
    let server = demo().await;
    let program = Arc::new(plan(
        r#"ws "/api/oscilloscope/stream" name="connect" {
        receive "nothing" count=2 timeout="100ms"
        close
    }"#,
    ));
    let r = run(&program, &server, 1, 2).await;
    assert_eq!(
        errors(&program, &r, "nothing"),
        vec![(
            ErrorKind::WsTimeout,
            "received 0 of 2 matching frames within 100ms".to_string(),
            2
        )]
    );
    assert_eq!(row(&program, &r, "close").failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_after_stop_allows_the_frame_in_flight() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r#"ws "/api/oscilloscope/stream" name="connect" {{
        {START}
        receive "frame" count=2 timeout="5s" match="$.samples"
        {STOP}
        expect-silence "quiet" for="200ms"
        close
    }}"#
    )));
    let r = run(&program, &server, 2, 2).await;
    let quiet = row(&program, &r, "quiet");
    assert_eq!(
        (quiet.count, quiet.failures),
        (4, 0),
        "{:?}",
        r.total.errors
    );
    assert!(quiet.latency.min() >= 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_while_streaming_fails() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r#"ws "/api/oscilloscope/stream" name="connect" {{
        {START}
        expect-silence "quiet" for="200ms"
        {STOP}
        close
    }}"#
    )));
    let r = run(&program, &server, 1, 2).await;
    assert_eq!(
        errors(&program, &r, "quiet"),
        vec![(
            ErrorKind::Unmatched,
            "a frame arrived during the expected silence".to_string(),
            2
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_connections_are_kept_across_iterations() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r#"ws "/api/oscilloscope/stream" name="connect" connection="scope" {{
        {START}
        receive "frame" count=2 timeout="5s" match="$.samples"
        {STOP}
        sleep "50ms"
    }}"#
    )));
    let (users, iterations) = (2, 3);
    let r = run(&program, &server, users, iterations).await;
    assert_eq!(row(&program, &r, "connect").count, users);
    assert_eq!(row(&program, &r, "frame").count, 2 * users * iterations);
    assert_eq!(r.total.failures(), 0, "{:?}", r.total.errors);
    assert_eq!(server.ws_stats().sessions, users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_from_frames_feed_later_sends() {
    let server = demo().await;
    let program = Arc::new(plan(&format!(
        r##"ws "/api/oscilloscope/stream" name="connect" {{
        {START}
        receive "frame" timeout="5s" match="$.wave_type" equals="sine" {{
            check json="$.sample_rate" equals=1000
            capture "rate" json="$.sample_rate"
        }}
        send "echo" text="{{{{ rate }}}}"
        receive "echo_error" timeout="5s" match="$.error"
        {STOP}
        close
    }}"##
    )));
    let r = run(&program, &server, 1, 2).await;
    // `1000` is valid JSON but not an object: the target answers with an error object.
    let echo = row(&program, &r, "echo");
    assert_eq!((echo.count, echo.failures, echo.bytes_out), (2, 0, 8));
    assert_eq!(row(&program, &r, "frame").checks_passed, 2);
    assert_eq!(
        row(&program, &r, "echo_error").failures,
        0,
        "{:?}",
        r.total.errors
    );
}

/// The demo half of `benches/ws_sessions.sh`: serves the demo target in this process
/// on `WS_BENCH_ADDR` with frame period `WS_BENCH_FRAME_MS` until the file
/// `WS_BENCH_STOP` exists, then prints its WebSocket counters as one line.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark helper, run by benches/ws_sessions.sh"]
async fn bench_demo_target() {
    let addr: SocketAddr = std::env::var("WS_BENCH_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:18000".into())
        .parse()
        .expect("WS_BENCH_ADDR is an address");
    let frame_ms: u64 = std::env::var("WS_BENCH_FRAME_MS")
        .unwrap_or_else(|_| "110".into())
        .parse()
        .expect("WS_BENCH_FRAME_MS is a number");
    let stop = std::env::var("WS_BENCH_STOP").unwrap_or_else(|_| "/tmp/ws_bench.stop".into());
    let server = DemoServer::start(
        addr,
        DemoConfig {
            frame_interval: Duration::from_millis(frame_ms),
            seed: Some(1),
            ..DemoConfig::default()
        },
    )
    .await
    .expect("bench demo binds");
    eprintln!("bench demo on {}", server.base_url());
    while !Path::new(&stop).exists() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = server.ws_stats();
    println!(
        "demo_ws sessions={} frames_sent={} errors_sent={} dropped={}",
        s.sessions, s.frames_sent, s.errors_sent, s.dropped
    );
    server.shutdown().await;
}
