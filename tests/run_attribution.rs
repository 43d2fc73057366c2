//! Issue 13: every failure on its own row. A template that does not render in a `set` or
//! an `if`, and a user that cannot start (a unique feeder with no row left), are counted on
//! rows of their own (`set <var>`, `if <condition>`, `start <scenario>`) with no latency
//! sample — never on statistics entry 0, which is another scenario's HTTP request here —
//! and stay out of the HTTP and WebSocket totals. Runs against a server on 127.0.0.1:0,
//! bounded by iteration counts.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use loadplan::lang::{self, ir::Program};
use loadplan::metrics::{ErrorKind, Protocol};
use loadplan::profile::LoadProfile;
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

fn program(text: &str, dir: &Path) -> Arc<Program> {
    let src = Source::new("test.kdl", text);
    match lang::compile_source(&src, Syntax::Kdl, dir) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("plan does not compile:\n{}", d.render_plain()),
    }
}

async fn serve() -> String {
    let app = Router::new().route(
        "/row",
        get(|| async { axum::Json(serde_json::json!({"row": {"url": "/x", "n": 1}})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn run(p: Arc<Program>, host: String, users: u64, iterations: u64) -> RunResult {
    let cfg = RunConfig {
        host: Some(host),
        seed: 42,
        iterations: Some(iterations),
        ..RunConfig::default()
    };
    driver::run(
        p,
        &LoadProfile::closed(users, 100.0, None),
        &cfg,
        Control::default(),
        |_| {},
    )
    .await
    .expect("run starts")
}

/// The id of row `(kind, name)`.
fn row(p: &Program, kind: &str, name: &str) -> u32 {
    p.stat_id(kind, name)
        .unwrap_or_else(|| panic!("no row `{kind} {name}` in {:?}", p.stats))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_failures_in_set_and_if_land_on_their_own_rows_without_a_sample() {
    let host = serve().await;
    // Statistics entry 0 is scenario "first"'s request; `row.ulr` (a typo) only fails at
    // run time, as the captured `row` has no such attribute.
    let p = program(
        r#"
        scenario "first" {
            http GET "/row" name="first request"
        }
        scenario "second" {
            http GET "/row" name="fetch" { capture "row" json="$.row"; }
            set "v" "{{ row.ulr.x }}"
            if "row.ulr.x == 1" { http GET "/row" name="never"; }
        }
        "#,
        Path::new("."),
    );
    let r = run(p.clone(), host, 2, 3).await;
    let first = row(&p, "GET", "first request");
    let set = row(&p, "set", "v");
    let cond = row(&p, "if", "row.ulr.x == 1");
    assert_eq!(first, 0);

    // Ground truth: the "second" user ran 3 iterations, each failing once in `set` and
    // once in `if`; the "first" user's 3 requests all succeeded.
    let stats = |id: u32| r.total.steps.get(&id).cloned().unwrap_or_default();
    assert_eq!((stats(first).count, stats(first).failures), (3, 0));
    assert_eq!((stats(set).count, stats(set).failures), (3, 3));
    assert_eq!((stats(cond).count, stats(cond).failures), (3, 3));
    // No latency sample: nothing was sent.
    assert_eq!(stats(set).latency.len(), 0);
    assert_eq!(stats(cond).latency.len(), 0);
    assert_eq!(stats(first).latency.len(), 3);
    let on = |id: u32| {
        r.total
            .errors
            .iter()
            .filter(|(k, _)| k.step == id)
            .map(|(k, n)| (k.kind, *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(on(set), vec![(ErrorKind::Template, 3)]);
    assert_eq!(on(cond), vec![(ErrorKind::Template, 3)]);
    assert!(on(first).is_empty(), "{:?}", r.total.errors);
    assert_eq!(r.total.iterations.failed, 3);

    // Out of both protocol totals: the HTTP requests are 3 + 3, all good.
    assert_eq!(Protocol::of_kind("set"), Protocol::Control);
    assert_eq!(Protocol::of_kind("if"), Protocol::Control);
    let http = loadplan::report::model::protocol_total(&p, &r.total, Protocol::Http);
    assert_eq!((http.count, http.failures), (6, 0));
    let agg = loadplan::report::model::aggregate(&p, &r.total);
    assert_eq!((agg.count, agg.failures), (6, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_that_cannot_start_is_counted_on_its_scenarios_start_row() {
    let host = serve().await;
    let dir = std::env::temp_dir().join(format!("loadplan-attribution-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("one.csv"), "name\nalice\n").expect("feeder file");
    // One row for two users: the second cannot start.
    let p = program(
        r#"
        feeder "who" file="one.csv" mode="unique"
        scenario "s" {
            http GET "/row" name="fetch"
        }
        "#,
        &dir,
    );
    let r = run(p.clone(), host, 2, 1).await;
    let _ = std::fs::remove_dir_all(&dir);
    let fetch = row(&p, "GET", "fetch");
    let start = row(&p, "start", "s");
    let stats = |id: u32| r.total.steps.get(&id).cloned().unwrap_or_default();
    assert_eq!((stats(fetch).count, stats(fetch).failures), (1, 0));
    assert_eq!((stats(start).count, stats(start).failures), (1, 1));
    assert_eq!(stats(start).latency.len(), 0);
    let kinds: Vec<(u32, ErrorKind)> = r.total.errors.keys().map(|k| (k.step, k.kind)).collect();
    assert_eq!(kinds, vec![(start, ErrorKind::Other)]);
    let http = loadplan::report::model::protocol_total(&p, &r.total, Protocol::Http);
    assert_eq!((http.count, http.failures), (1, 0));
}

#[test]
fn a_plan_whose_users_always_start_has_no_start_row() {
    let p = program(
        r#"
        vars { n "5" }
        scenario "s" { http GET "/row"; }
        "#,
        Path::new("."),
    );
    assert!(p.stats.iter().all(|s| s.kind != "start"), "{:?}", p.stats);
}
