//! WebSocket receive timing against a target that streams a frame every 100 ms (the demo's
//! oscilloscope on `127.0.0.1:0`): the `receive` row's latency is the wait for each frame
//! (≈100 ms, what Locust shows), the time since the triggering `send` is kept apart as the
//! reply latency (100, 200, … 1000 ms), and the inter-arrival time gives the jitter.
//! A template that fails before anything is sent counts on its own row with no latency sample.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::compile_source;
use loadplan::lang::ir::Program;
use loadplan::metrics::{ErrorKind, StepStats};
use loadplan::profile::LoadProfile;
use loadplan::report::RunReport;
use loadplan::report::model::Context;
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

const PERIOD_MS: f64 = 100.0;
const FRAMES: u64 = 10;

fn compile(body: &str) -> Program {
    let text = format!(
        "plan \"ws-timing\" {{\n    host \"http://localhost:1\"\n}}\nscenario \"ws\" {{\n{body}\n}}\n"
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

async fn run(program: &Arc<Program>, iterations: u64) -> RunResult {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let server = DemoServer::start(
        addr,
        DemoConfig {
            frame_interval: Duration::from_millis(PERIOD_MS as u64),
            seed: Some(7),
            ..DemoConfig::default()
        },
    )
    .await
    .expect("demo target binds a free port");
    let cfg = RunConfig {
        host: Some(server.base_url()),
        seed: 1,
        iterations: Some(iterations),
        ..RunConfig::default()
    };
    let r = driver::run(
        Arc::clone(program),
        &LoadProfile::closed(1, 1.0, None),
        &cfg,
        Control::default(),
        |_| {},
    )
    .await
    .expect("the run starts");
    server.shutdown().await;
    r
}

fn row(program: &Program, r: &RunResult, name: &str) -> StepStats {
    let id = program
        .stats
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step named {name}"));
    r.total.steps.get(&(id as u32)).cloned().unwrap_or_default()
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_latency_is_the_wait_for_each_frame_and_reply_latency_is_kept_apart() {
    let program = Arc::new(compile(&format!(
        r##"ws "/api/oscilloscope/stream" name="connect" timeout="10s" {{
            send "start" json=#"{{"command": "start", "wave_type": "sine", "frequency": 10, "amplitude": 1, "offset": 0}}"#
            receive "frame" count={FRAMES} timeout="5s" match="$.samples"
            send "stop" json=#"{{"command": "stop"}}"#
            close name="disconnect"
        }}"##
    )));
    let iterations = 2;
    let r = run(&program, iterations).await;
    let frames = row(&program, &r, "frame");
    assert_eq!(frames.count, FRAMES * iterations, "{:?}", r.total.errors);
    assert_eq!(frames.failures, 0, "{:?}", r.total.errors);

    // The wait for each frame: one period (the first frame comes one period after `start`).
    let p50 = ms(frames.latency.value_at_quantile(0.5));
    assert!((p50 - PERIOD_MS).abs() <= 5.0, "receive p50 {p50} ms");
    // The reply latency: k periods after the send for the k-th frame, plus the same start-up
    // offset for every frame (the target's handling of `start`, the send itself): measured
    // from the first frame's, the median is 5 periods and the largest 10 periods after it
    // (the offset differs a little between the two sessions: a looser bound than the wait's).
    assert_eq!(frames.reply.len(), FRAMES * iterations);
    let offset = ms(frames.reply.min()) - PERIOD_MS;
    assert!(
        (0.0..60.0).contains(&(offset + 5.0)),
        "start-up offset {offset} ms"
    );
    let reply_p50 = ms(frames.reply.value_at_quantile(0.5)) - offset;
    assert!(
        (reply_p50 - 5.0 * PERIOD_MS).abs() <= 25.0,
        "reply p50 {reply_p50} ms after the offset"
    );
    // The last frame of a receive is about FRAMES periods after the send (cumulative).
    let reply_max = ms(frames.reply.max()) - offset;
    assert!(
        reply_max >= (FRAMES as f64 - 0.5) * PERIOD_MS,
        "reply max {reply_max} ms after the offset"
    );
    // Inter-arrival: every frame after the first of its receive, one period apart.
    assert_eq!(frames.gaps.len(), (FRAMES - 1) * iterations);
    let gap_p50 = ms(frames.gaps.value_at_quantile(0.5));
    assert!((gap_p50 - PERIOD_MS).abs() <= 5.0, "gap p50 {gap_p50} ms");

    // The same figures in the result file.
    let profile = LoadProfile::closed(1, 1.0, None);
    let cx = Context {
        program: &program,
        host: None,
        profile: &profile,
        plan_file: "t.kdl",
        seed: 1,
        verdicts: &[],
        aborted_by: None,
        passed: true,
    };
    let report = RunReport::build(&cx, &r);
    let step = report.step("receive", "frame").expect("receive row");
    let json_p50 = step.latency_ms.as_ref().map(|p| p.p50).unwrap_or_default();
    let json_reply = step.reply_ms.as_ref().map(|p| p.p50).unwrap_or_default();
    assert!((json_p50 - PERIOD_MS).abs() <= 5.0, "{json_p50}");
    assert!(
        (json_reply - offset - 5.0 * PERIOD_MS).abs() <= 25.0,
        "{json_reply}"
    );
    assert!(
        step.jitter_ms.is_some_and(|j| j < 20.0),
        "{:?}",
        step.jitter_ms
    );
    // A send has no reply latency.
    assert!(
        report
            .step("send", "start")
            .is_some_and(|s| s.reply_ms.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_template_fails_counts_on_its_own_row_without_a_sample() {
    let program = Arc::new(compile(
        r##"http GET "/health"
        http GET "/health?n={{ random_int(5, 1) }}" name="bad_http"
        ws "/api/oscilloscope/stream" name="connect" timeout="10s" {
            send "bad" text="{{ random_int(5, 1) }}"
            close name="disconnect"
        }"##,
    ));
    let r = run(&program, 2).await;
    for name in ["bad", "bad_http"] {
        let bad = row(&program, &r, name);
        assert_eq!(
            (bad.count, bad.failures),
            (2, 2),
            "{name}: {:?}",
            r.total.errors
        );
        assert!(
            bad.latency.is_empty(),
            "{name}: no request was sent, so no latency sample"
        );
    }
    let ids: Vec<u32> = ["bad", "bad_http"]
        .iter()
        .map(|n| {
            program
                .stats
                .iter()
                .position(|s| s.name == *n)
                .expect("row") as u32
        })
        .collect();
    assert!(
        r.total
            .errors
            .keys()
            .all(|k| ids.contains(&k.step) && k.kind == ErrorKind::Template),
        "{:?}",
        r.total.errors
    );
    assert_eq!(row(&program, &r, "/health").failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_set_adds_no_latency_sample_to_any_row() {
    // `set` has a statistics row of its own (`set x`): its failure is counted there, with
    // no latency sample, never on the first row (it was, with a 0 µs sample pulling p50 down).
    let program = Arc::new(compile(
        r#"http GET "/health"
        set "x" "{{ random_int(5, 1) }}""#,
    ));
    let r = run(&program, 2).await;
    let health = row(&program, &r, "/health");
    assert_eq!(health.failures, 0, "{:?}", r.total.errors);
    assert_eq!(
        health.latency.len(),
        2,
        "two requests were sent, so two latency samples"
    );
    let set = row(&program, &r, "x");
    assert_eq!((set.count, set.failures), (2, 2), "{:?}", r.total.errors);
    assert!(set.latency.is_empty(), "nothing was sent: no sample");
    assert!(health.latency.min() > 0, "no 0 µs sample");
}
