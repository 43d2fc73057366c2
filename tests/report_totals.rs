//! HTTP requests and WebSocket messages are separate totals (docs/metrics.md): a plan mixing
//! both, whose HTTP steps fail 1 in 16 (6.25 %), must fail `error_rate <= 5%` although many
//! successful WebSocket frames would dilute the overall rate to ~2 %. Runs the real driver
//! against the demo target on `127.0.0.1:0` for a fixed number of iterations (exact counts).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::compile_source;
use loadplan::lang::ir::Program;
use loadplan::profile::{self, LoadProfile};
use loadplan::report::RunReport;
use loadplan::report::model::Context;
use loadplan::report::thresholds::evaluate;
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

/// Per iteration: 15 good HTTP requests and 1 that 404s (6.25 % of HTTP), then a WebSocket
/// session of 1 connect + 2 sends + 30 frames + 1 close, all good.
const PLAN: &str = r##"
plan "mixed-totals" {
    host "http://localhost:1"
}
scenario "s" {
    repeat count=15 {
        http GET "/health"
    }
    http GET "/no/such/page" name="missing"
    ws "/api/oscilloscope/stream" name="connect" timeout="10s" {
        send "start" json=#"{"command": "start", "wave_type": "sine", "frequency": 10, "amplitude": 1, "offset": 0}"#
        receive "frame" count=30 timeout="5s" match="$.samples"
        send "stop" json=#"{"command": "stop"}"#
        close name="disconnect"
    }
}
"##;

const ITERATIONS: u64 = 2;

fn program() -> Program {
    match compile_source(&Source::new("t.kdl", PLAN), Syntax::Kdl, Path::new(".")) {
        Ok(p) => p,
        Err(d) => panic!("the test plan compiles: {d:?}"),
    }
}

fn profile(program: &Program, rules: &str) -> LoadProfile {
    let text = format!("name: gate\nusers: 1\nspawn_rate: 1\nthresholds:\n{rules}");
    match profile::parse(&Source::new("p.yml", text.as_str()), Some(program)) {
        Ok(p) => p,
        Err(d) => panic!("the profile parses: {d:?}\n{text}"),
    }
}

async fn run(program: &Arc<Program>) -> RunResult {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let server = DemoServer::start(
        addr,
        DemoConfig {
            frame_interval: Duration::from_millis(20),
            seed: Some(7),
            ..DemoConfig::default()
        },
    )
    .await
    .expect("demo target binds a free port");
    let cfg = RunConfig {
        host: Some(server.base_url()),
        seed: 1,
        iterations: Some(ITERATIONS),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_failures_are_not_diluted_by_websocket_frames() {
    let program = Arc::new(program());
    let r = run(&program).await;
    let rules = "  - metric: error_rate\n    max: 5%\n  - metric: http_error_rate\n    max: 5%\n  - metric: ws_error_rate\n    max: 1%\n  - metric: error_rate\n    step: missing\n    min: 99%\n";
    let prof = profile(&program, rules);
    let verdicts = evaluate(
        &program,
        &prof.thresholds,
        &r.total,
        r.elapsed.as_secs_f64(),
    );

    // Ground truth: 2 × 16 HTTP requests, 2 failed; 2 × 34 WebSocket messages, none failed.
    let cx = Context {
        program: &program,
        host: None,
        profile: &prof,
        plan_file: "t.kdl",
        seed: 1,
        verdicts: &verdicts,
        aborted_by: None,
        passed: false,
    };
    let report = RunReport::build(&cx, &r);
    // The target and the profile are in the result and the HTML report (no --host here:
    // the plan's host).
    assert_eq!(report.host.as_deref(), Some("http://localhost:1"));
    assert_eq!(report.profile.name, "gate");
    let html = loadplan::report::html::render(&report);
    assert!(
        html.contains("target http&#58;//localhost&#58;1 · profile gate"),
        "no target in the HTML header"
    );
    assert!(
        html.contains("<th>avg</th>"),
        "no average column in the HTML"
    );
    let (http, ws) = (&report.totals.http, &report.totals.ws);
    assert_eq!((http.count, http.failures), (32, 2), "{http:?}");
    assert_eq!((ws.count, ws.failures), (68, 0), "{ws:?}");
    // Locust's Aggregated row keeps both (2 / 100 = 2 %): the number that used to gate.
    assert_eq!(
        (report.aggregated.count, report.aggregated.failures),
        (100, 2)
    );

    let by_rule: Vec<(&str, bool, Option<f64>)> = verdicts
        .iter()
        .map(|v| (v.rule.as_str(), v.passed, v.actual))
        .collect();
    // Plain error_rate means HTTP requests (as k6's http_req_failed): 6.25 % > 5 % fails.
    assert_eq!(by_rule[0].0, "error_rate <= 5%");
    assert!(!by_rule[0].1, "{by_rule:?}");
    assert!(
        (by_rule[0].2.unwrap_or(0.0) - 0.0625).abs() < 1e-9,
        "{by_rule:?}"
    );
    assert!(!by_rule[1].1, "http_error_rate: {by_rule:?}");
    // WebSocket messages alone: nothing failed.
    assert!(by_rule[2].1, "ws_error_rate: {by_rule:?}");
    assert_eq!(by_rule[2].2, Some(0.0), "{by_rule:?}");
    // A step selector still covers that step.
    assert!(by_rule[3].1, "step selector: {by_rule:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_p95_covers_http_requests_only_and_ws_p95_the_frames() {
    let program = Arc::new(program());
    let r = run(&program).await;
    let prof = profile(
        &program,
        "  - metric: p95\n    max: 1h\n  - metric: ws_p95\n    max: 1h\n  - metric: rate\n    min: 0.001\n",
    );
    let verdicts = evaluate(
        &program,
        &prof.thresholds,
        &r.total,
        r.elapsed.as_secs_f64(),
    );
    let http_p95 = {
        let mut l = loadplan::metrics::Latency::new();
        for (id, s) in &r.total.steps {
            let kind = &program.stats[*id as usize].kind;
            if kind == "GET" {
                l.merge(&s.latency);
            }
        }
        l.value_at_quantile(0.95) as f64
    };
    assert_eq!(verdicts[0].actual, Some(http_p95), "{verdicts:?}");
    // `rate` is HTTP requests per second: 32 over the run.
    let secs = r.elapsed.as_secs_f64();
    let rate = verdicts[2].actual.expect("a rate");
    assert!(
        (rate - 32.0 / secs).abs() < 1e-6,
        "{rate} vs {}",
        32.0 / secs
    );
    assert!(verdicts[1].actual.is_some(), "{verdicts:?}");
}

#[test]
fn an_unknown_protocol_prefix_is_a_profile_error() {
    let program = program();
    let text = "name: bad\nusers: 1\nspawn_rate: 1\nthresholds:\n  - metric: grpc_error_rate\n    max: 1%\n";
    let err = profile::parse(&Source::new("p.yml", text), Some(&program))
        .expect_err("an unknown metric is refused");
    let shown = format!("{err:?}");
    assert!(shown.contains("grpc_error_rate"), "{shown}");
}
