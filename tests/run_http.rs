//! Integration tests of `loadplan run` against real servers on 127.0.0.1:0.
//! Runs are bounded by iteration counts with fixed seeds; counts are exact.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use loadplan::demo::{DemoConfig, DemoServer};
use loadplan::lang::{self, ir::Program};
use loadplan::metrics::ErrorKind;
use loadplan::profile::LoadProfile;
use loadplan::runtime::driver::{self, Control};
use loadplan::runtime::{RunConfig, RunResult};
use loadplan::source::{Source, Syntax};

fn program(text: &str) -> Arc<Program> {
    let src = Source::new("test.kdl", text);
    match lang::compile_source(&src, Syntax::Kdl, Path::new(".")) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("plan does not compile:\n{}", d.render_plain()),
    }
}

async fn run(p: Arc<Program>, profile: LoadProfile, host: String, iterations: u64) -> RunResult {
    let cfg = RunConfig {
        host: Some(host),
        seed: 42,
        iterations: Some(iterations),
        ..RunConfig::default()
    };
    driver::run(p, &profile, &cfg, Control::default(), |_| {})
        .await
        .expect("run starts")
}

fn stat(p: &Program, kind: &str, name: &str) -> u32 {
    p.stat_id(kind, name)
        .unwrap_or_else(|| panic!("no stat {kind} {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_hit_counts_per_endpoint_against_the_demo_target() {
    let demo = DemoServer::start(
        ([127, 0, 0, 1], 0).into(),
        DemoConfig {
            fast_delays: true,
            ..DemoConfig::default()
        },
    )
    .await
    .expect("demo starts");
    let p = program(
        r#"
        scenario "s" {
            http GET "/health" { check status=200; }
            http GET "/api/racing/track/simple" { query width=800 height=600; check json="$.boundaries.inner" length=32; }
            http POST "/api/racing/track/generate" { json "{}"; }
            repeat count=2 { http GET "/api/oscilloscope/config"; }
        }
        "#,
    );
    let r = run(
        p.clone(),
        LoadProfile::closed(3, 100.0, None),
        demo.base_url(),
        4,
    )
    .await;
    let hits = demo.hits();
    assert_eq!(hits.get("GET /health"), Some(&12));
    assert_eq!(hits.get("GET /api/racing/track/simple"), Some(&12));
    assert_eq!(hits.get("POST /api/racing/track/generate"), Some(&12));
    assert_eq!(hits.get("GET /api/oscilloscope/config"), Some(&24));
    assert_eq!(r.total.requests(), 60);
    assert_eq!(r.total.failures(), 0);
    assert_eq!(
        r.total.steps[&stat(&p, "GET", "/api/oscilloscope/config")].count,
        24
    );
    assert_eq!(r.total.iterations.completed, 12);
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_200_users_exactly_120_80() {
    let demo = DemoServer::start(([127, 0, 0, 1], 0).into(), DemoConfig::default())
        .await
        .expect("demo");
    let p = program(
        r#"
        scenario "a" weight=60 { http GET "/health"; }
        scenario "b" weight=40 { http GET "/"; }
        "#,
    );
    let r = run(
        p,
        LoadProfile::closed(200, 2000.0, None),
        demo.base_url(),
        1,
    )
    .await;
    assert_eq!(r.users_by_scenario.get("a"), Some(&120));
    assert_eq!(r.users_by_scenario.get("b"), Some(&80));
    let hits = demo.hits();
    assert_eq!(hits.get("GET /health"), Some(&120));
    assert_eq!(hits.get("GET /"), Some(&80));
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_weights_override_plan_weights() {
    let demo = DemoServer::start(([127, 0, 0, 1], 0).into(), DemoConfig::default())
        .await
        .expect("demo");
    let p = program(
        r#"
        scenario "http" weight=1 { http GET "/health"; }
        scenario "websocket" weight=1 { http GET "/"; }
        "#,
    );
    let mut profile = LoadProfile::closed(10, 1000.0, None);
    profile.weights = BTreeMap::from([("http".to_string(), 80), ("websocket".to_string(), 20)]);
    let r = run(p, profile, demo.base_url(), 1).await;
    assert_eq!(r.users_by_scenario.get("http"), Some(&8));
    assert_eq!(r.users_by_scenario.get("websocket"), Some(&2));
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_users_follow_the_spawn_ramp() {
    let demo = DemoServer::start(([127, 0, 0, 1], 0).into(), DemoConfig::default())
        .await
        .expect("demo");
    let p = program(r#"scenario "s" { think "50ms"; http GET "/health"; }"#);
    let profile = LoadProfile::closed(10, 10.0, Some(Duration::from_millis(1500)));
    let cfg = RunConfig {
        host: Some(demo.base_url()),
        seed: 1,
        ..RunConfig::default()
    };
    let r = driver::run(p, &profile, &cfg, Control::default(), |_| {})
        .await
        .expect("run");
    // During the ramp (first 0.9 s) each recorded change must match 1 + ⌊10·t⌋ within one user.
    let during: Vec<_> = r
        .users_timeline
        .iter()
        .filter(|(t, _)| *t > 0.0 && *t < 0.9)
        .collect();
    assert!(
        during.len() >= 5,
        "too few timeline points: {:?}",
        r.users_timeline
    );
    for (t, n) in during {
        let expected = 1 + (t * 10.0).floor() as i64;
        assert!(
            (*n as i64 - expected).abs() <= 1,
            "at {t:.3}s {n} users, expected {expected}"
        );
    }
    let peak = r.users_timeline.iter().map(|(_, n)| *n).max();
    assert_eq!(peak, Some(10));
    assert_eq!(r.users_timeline.last().map(|(_, n)| *n), Some(0));
    demo.shutdown().await;
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_flow_into_later_requests() {
    let seen = Seen::default();
    let app = Router::new()
        .route("/token", get(|Query(q): Query<BTreeMap<String, String>>| async move {
            axum::Json(serde_json::json!({"token": format!("tok-{}", q.get("u").cloned().unwrap_or_default())}))
        }))
        .route("/use", get(|State(s): State<Seen>, Query(q): Query<BTreeMap<String, String>>| async move {
            if let Ok(mut v) = s.0.lock() {
                v.push((q.get("u").cloned().unwrap_or_default(), q.get("t").cloned().unwrap_or_default()));
            }
            "ok"
        }))
        .with_state(seen.clone());
    let host = serve(app).await;
    let p = program(
        r#"
        scenario "s" {
            http GET "/token" { query u="{{ user }}"; capture "tok" json="$.token"; }
            http GET "/use" { query u="{{ user }}" t="{{ tok }}"; }
        }
        "#,
    );
    let r = run(p, LoadProfile::closed(3, 100.0, None), host, 2).await;
    assert_eq!(r.total.failures(), 0);
    let v = seen.0.lock().expect("lock").clone();
    assert_eq!(v.len(), 6);
    for (u, t) in v {
        assert_eq!(t, format!("tok-{u}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_isolated_per_user() {
    let seen = Seen::default();
    let app =
        Router::new()
            .route(
                "/login",
                get(|Query(q): Query<BTreeMap<String, String>>| async move {
                    let u = q.get("u").cloned().unwrap_or_default();
                    ([("set-cookie", format!("sid=user{u}; Path=/"))], "in")
                }),
            )
            .route(
                "/whoami",
                get(
                    |State(s): State<Seen>,
                     h: HeaderMap,
                     Query(q): Query<BTreeMap<String, String>>| async move {
                        let cookie = h
                            .get("cookie")
                            .and_then(|c| c.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        if let Ok(mut v) = s.0.lock() {
                            v.push((q.get("u").cloned().unwrap_or_default(), cookie));
                        }
                        "me"
                    },
                ),
            )
            .with_state(seen.clone());
    let host = serve(app).await;
    let p = program(
        r#"
        scenario "s" {
            on-start { http GET "/login" { query u="{{ user }}"; } }
            http GET "/whoami" { query u="{{ user }}"; }
        }
        "#,
    );
    let r = run(p, LoadProfile::closed(4, 100.0, None), host, 3).await;
    assert_eq!(r.total.failures(), 0);
    let v = seen.0.lock().expect("lock").clone();
    assert_eq!(v.len(), 12);
    for (u, cookie) in v {
        assert_eq!(cookie, format!("sid=user{u}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_kind_is_counted_and_the_run_continues() {
    let app = Router::new()
        .route(
            "/ok",
            get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }),
        )
        .route(
            "/boom",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        );
    let host = serve(app).await;
    // A port with nothing listening: bind, read the port, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let p = program(&format!(
        r#"
        scenario "s" {{
            http GET "/ok" name="check" {{ check json="$.status" equals="sick"; }}
            http GET "/ok" name="capture" {{ capture "x" json="$.missing"; }}
            http GET "/boom" name="status"
            http GET "/slow" name="timeout" timeout="200ms"
            http GET "http://127.0.0.1:{closed}/" name="refused"
            http GET "/ok" name="fine" {{ check status=200; }}
        }}
        "#
    ));
    let r = run(p.clone(), LoadProfile::closed(2, 100.0, None), host, 2).await;
    let kinds: BTreeMap<String, ErrorKind> = r
        .total
        .errors
        .keys()
        .map(|k| (p.stats[k.step as usize].name.clone(), k.kind))
        .collect();
    assert_eq!(kinds.get("check"), Some(&ErrorKind::Check));
    assert_eq!(kinds.get("capture"), Some(&ErrorKind::Capture));
    assert_eq!(kinds.get("status"), Some(&ErrorKind::Status));
    assert_eq!(kinds.get("timeout"), Some(&ErrorKind::Timeout));
    assert_eq!(kinds.get("refused"), Some(&ErrorKind::Connect));
    for name in ["check", "capture", "status", "timeout", "refused"] {
        let s = &r.total.steps[&stat(&p, "GET", name)];
        assert_eq!((s.count, s.failures), (4, 4), "{name}");
    }
    let fine = &r.total.steps[&stat(&p, "GET", "fine")];
    assert_eq!((fine.count, fine.failures), (4, 0));
    assert_eq!(r.total.iterations.started, 4);
    assert_eq!(r.total.iterations.failed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_users_mid_run_changes_the_number_of_live_users() {
    use loadplan::control::Command;
    let demo = DemoServer::start(([127, 0, 0, 1], 0).into(), DemoConfig::default())
        .await
        .expect("demo");
    let p = program(r#"scenario "s" { think "20ms"; http GET "/health"; }"#);
    let profile = LoadProfile::closed(2, 100.0, Some(Duration::from_millis(2500)));
    let cfg = RunConfig {
        host: Some(demo.base_url()),
        seed: 1,
        ..RunConfig::default()
    };
    let control = Control::default();
    let c2 = control.clone();
    let mut sent = false;
    let r = driver::run(p, &profile, &cfg, control, move |t| {
        // On the first tick (1 s), raise the users from 2 to 6.
        if !sent {
            sent = true;
            assert_eq!(t.users, 2);
            c2.send(Command::SetUsers {
                users: 6,
                spawn_rate: Some(1000.0),
            });
        }
    })
    .await
    .expect("run");
    let before: Vec<u64> = r
        .users_timeline
        .iter()
        .filter(|(t, _)| *t < 0.9)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(before.iter().max(), Some(&2));
    assert_eq!(r.peak_users, 6);
    assert_eq!(r.users_by_scenario.get("s"), Some(&6));
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_post_becomes_get_after_303() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/old",
            get(|| async { (StatusCode::FOUND, [("location", "/new")], "moved") }),
        )
        .route(
            "/submit",
            axum::routing::post(|| async { (StatusCode::SEE_OTHER, [("location", "/new")], "") }),
        )
        .route(
            "/new",
            get(|State(s): State<Seen>| async move {
                if let Ok(mut v) = s.0.lock() {
                    v.push(("new".into(), String::new()));
                }
                "here"
            }),
        )
        .route(
            "/close",
            get(|| async { ([("connection", "close")], "bye") }),
        )
        .with_state(seen.clone());
    let host = serve(app).await;
    let p = program(
        r#"
        scenario "s" {
            http GET "/old" { check body-contains="here"; }
            http POST "/submit" { json "{}"; check status=200; }
            http GET "/close" { check status=200; }
            http GET "/close" name="again" { check status=200; }
        }
        "#,
    );
    let r = run(p, LoadProfile::closed(2, 100.0, None), host.clone(), 3).await;
    assert_eq!(r.total.failures(), 0, "{:?}", r.total.errors);
    assert_eq!(seen.0.lock().expect("lock").len(), 12);
    // With redirects off the 302 itself is the answer (and a failure without a check).
    let p = program(
        r#"
        plan "p" { redirects 0; }
        scenario "s" { http GET "/old" { check status=302; } }
        "#,
    );
    let r = run(p, LoadProfile::closed(1, 100.0, None), host, 2).await;
    assert_eq!(r.total.failures(), 0, "{:?}", r.total.errors);
    assert_eq!(r.total.steps[&0].statuses.get(&302), Some(&2));
}
