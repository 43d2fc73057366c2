//! Issue 14: plans that say what they mean. Runs against real servers on
//! 127.0.0.1:0, bounded by iteration counts with fixed seeds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
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

async fn run(p: Arc<Program>, host: String, iterations: u64) -> RunResult {
    let cfg = RunConfig {
        host: Some(host),
        seed: 42,
        iterations: Some(iterations),
        ..RunConfig::default()
    };
    driver::run(
        p,
        &LoadProfile::closed(1, 100.0, None),
        &cfg,
        Control::default(),
        |_| {},
    )
    .await
    .expect("run starts")
}

/// Every request the server saw: (path and query, body).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().expect("lock").clone()
    }
}

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

/// A server that records every request and answers `/session` with a JSON object.
async fn recording_server() -> (String, Seen) {
    let seen = Seen::default();
    async fn record(
        State(s): State<Seen>,
        uri: axum::http::Uri,
        body: Bytes,
    ) -> axum::Json<serde_json::Value> {
        if let Ok(mut v) = s.0.lock() {
            v.push((
                uri.path_and_query()
                    .map_or(String::new(), |p| p.to_string()),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        axum::Json(serde_json::json!({"ok": true}))
    }
    let app = Router::new()
        .route(
            "/session",
            get(|| async {
                axum::Json(
                    serde_json::json!({"sid": "s-42", "count": "7", "n": 7, "row": {"url": "/x"}}),
                )
            }),
        )
        .route(
            "/echo",
            get(|Query(q): Query<BTreeMap<String, String>>| async move { axum::Json(q) }),
        )
        .route("/anything", get(record).post(record))
        .route("/anything/{*rest}", get(record).post(record))
        .route("/post", post(record))
        .route(
            "/auth",
            get(
                |State(s): State<Seen>, h: axum::http::HeaderMap| async move {
                    let auth = h
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    if let Ok(mut v) = s.0.lock() {
                        v.push(("/auth".into(), auth));
                    }
                    "ok"
                },
            ),
        )
        .route(
            "/redirect",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "/anything/after")],
                    "",
                )
            }),
        )
        .route(
            "/status/{code}",
            get(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK)
                },
            ),
        )
        .with_state(seen.clone());
    (serve(app).await, seen)
}

fn errors(r: &RunResult, p: &Program) -> BTreeMap<String, (ErrorKind, String)> {
    r.total
        .errors
        .keys()
        .map(|k| {
            let name = p
                .stats
                .get(k.step as usize)
                .map_or_else(|| format!("#{}", k.step), |s| s.name.clone());
            (name, (k.kind, k.message.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undefined_attribute_is_a_counted_template_failure_not_an_empty_string() {
    let (host, seen) = recording_server().await;
    // `row` is captured JSON, so `row.ulr` can only be known at run time.
    let p = program(
        r#"
        scenario "s" {
            http GET "/session" { capture "row" json="$.row"; }
            http GET "/anything{{ row.ulr }}" name="typo"
            http GET "/anything{{ row.url }}" name="right"
        }
        "#,
    );
    let r = run(p.clone(), host, 2).await;
    let e = errors(&r, &p);
    let (kind, message) = e.get("typo").expect("the typo is a failure");
    assert_eq!(*kind, ErrorKind::Template, "{message}");
    assert!(message.contains("undefined"), "{message}");
    let paths: Vec<String> = seen.all().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        vec!["/anything/x", "/anything/x"],
        "nothing sent to /anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_compare_with_rendered_templates() {
    let (host, _) = recording_server().await;
    let p = program(
        r#"
        vars { want "s-42"; seven 7; key "sid"; }
        scenario "s" {
            http GET "/session" name="capture" { capture "sid" json="$.sid"; }
            http GET "/session" name="same" {
                check json="$.sid" equals="{{ sid }}"
                check json="$.n" equals="{{ seven }}"
                check body-contains="{{ want }}"
                check json="$.sid" contains="{{ sid[2:] }}"
                check json="$.{{ key }}" equals="s-42"
            }
            http GET "/session" name="different" { check json="$.sid" equals="{{ sid }}-not"; }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    let e = errors(&r, &p);
    assert!(!e.contains_key("same"), "{e:?}");
    assert_eq!(e.get("different").map(|(k, _)| *k), Some(ErrorKind::Check));
    let same = p.stats.iter().position(|s| s.name == "same").expect("stat") as u32;
    assert_eq!(r.total.steps[&same].checks_passed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_users_reach_for_render() {
    let (host, seen) = recording_server().await;
    let p = program(
        r#"
        vars { name "a\"b"; q "x y&z"; }
        scenario "s" {
            http POST "/post" {
                json "{\"name\": {{ name | tojson }}, \"b64\": \"{{ 'hello' | b64encode }}\", \"back\": \"{{ 'aGVsbG8=' | b64decode }}\", \"sha\": \"{{ 'abc' | sha256 }}\", \"mac\": \"{{ 'msg' | hmac('key') }}\", \"up\": \"{{ 'x' | upper }}\", \"date\": \"{{ 0 | date }}\", \"day\": \"{{ 86400 | date('%Y/%m/%d') }}\"}"
            }
            http GET "/anything?q={{ q | urlencode }}"
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    assert_eq!(r.total.failures(), 0, "{:?}", errors(&r, &p));
    let all = seen.all();
    let body: serde_json::Value = serde_json::from_str(&all[0].1).expect("the body is JSON");
    assert_eq!(body["name"], "a\"b");
    assert_eq!(body["b64"], "aGVsbG8=");
    assert_eq!(body["back"], "hello");
    assert_eq!(
        body["sha"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // HMAC-SHA256("key", "msg")
    assert_eq!(
        body["mac"],
        "2d93cbc1be167bcb1637a4a23cbff01a7878f0c50ee833954ea5221bb1b8c628"
    );
    assert_eq!(body["up"], "X");
    assert_eq!(body["date"], "1970-01-01T00:00:00Z");
    assert_eq!(body["day"], "1970/01/02");
    assert_eq!(all[1].0, "/anything?q=x%20y%26z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_json_body_that_is_not_json_is_a_body_failure_and_not_sent() {
    let (host, seen) = recording_server().await;
    let p = program(
        r#"
        vars { name "a\"b"; }
        scenario "s" {
            http POST "/post" name="raw" { json "{\"username\": \"{{ name }}\"}"; }
            http POST "/post" name="escaped" { json "{\"username\": {{ name | tojson }}}"; }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    let e = errors(&r, &p);
    let (kind, message) = e.get("raw").expect("raw is a failure");
    assert_eq!(*kind, ErrorKind::Body);
    assert!(message.contains(r#"{"username": "a"b"}"#), "{message}");
    assert!(!e.contains_key("escaped"));
    assert_eq!(seen.all().len(), 1, "only the valid body was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_vars_compare_as_numbers() {
    let (host, seen) = recording_server().await;
    // `vars` values are text in a plan file; "10" > 9 must be a numeric comparison.
    let p = program(
        r#"
        vars { limit 10; }
        scenario "s" {
            if "limit > 9" { http GET "/anything/gt"; else { http GET "/anything/not-gt"; } }
            if "limit < 11" { http GET "/anything/lt"; else { http GET "/anything/not-lt"; } }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    assert_eq!(r.total.failures(), 0, "{:?}", errors(&r, &p));
    let paths: Vec<String> = seen.all().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec!["/anything/gt", "/anything/lt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_ranges_and_classes() {
    let (host, _) = recording_server().await;
    let p = program(
        r#"
        scenario "s" {
            http GET "/status/201" name="list" { check status="200,201"; }
            http GET "/status/404" name="gone" { check status="404,410"; }
            http GET "/status/204" name="range" { check status="200-299"; }
            http GET "/status/404" name="class" { check status="2xx"; }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    let e = errors(&r, &p);
    assert_eq!(e.keys().collect::<Vec<_>>(), vec!["class"], "{e:?}");
    assert_eq!(e["class"].0, ErrorKind::Status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_the_auth_node_and_from_url_userinfo() {
    let (host, seen) = recording_server().await;
    let with_user = host.replacen("http://", "http://bob:p%40ss@", 1);
    let p = program(&format!(
        r#"
        vars {{ pw "s3cret"; }}
        scenario "s" {{
            http GET "/auth" {{ auth basic="alice:{{{{ pw }}}}"; }}
            http GET "/auth" {{ auth basic="carol:plain"; }}
            http GET "{with_user}/auth"
        }}
        "#
    ));
    let r = run(p.clone(), host, 1).await;
    assert_eq!(r.total.failures(), 0, "{:?}", errors(&r, &p));
    let auths: Vec<String> = seen.all().into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        auths,
        vec![
            "Basic YWxpY2U6czNjcmV0", // alice:s3cret
            "Basic Y2Fyb2w6cGxhaW4=", // carol:plain
            "Basic Ym9iOnBAc3M=",     // bob:p@ss
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_form_keys_repeat_index_and_response_facts() {
    let (host, seen) = recording_server().await;
    let p = program(
        r#"
        scenario "s" {
            http POST "/post" { form { tag "a"; tag "b"; one "1"; } }
            repeat count=3 { http GET "/anything/{{ index }}" name="/anything/i"; }
            http GET "/session"
            if "response.elapsed >= 0 and '/session' in response.url" {
                http GET "/anything/facts"
            }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    assert_eq!(r.total.failures(), 0, "{:?}", errors(&r, &p));
    let all = seen.all();
    assert_eq!(all[0].1, "tag=a&tag=b&one=1");
    let paths: Vec<&str> = all[1..].iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/anything/0",
            "/anything/1",
            "/anything/2",
            "/anything/facts"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_text_compared_with_a_number_fails_instead_of_comparing_by_type() {
    let (host, seen) = recording_server().await;
    // `$.count` is the JSON string "7", `$.n` the number 7.
    let p = program(
        r#"
        scenario "s" {
            http GET "/session" { capture "count" json="$.count"; capture "n" json="$.n"; }
            if "count > 5" { http GET "/anything/text-gt"; }
            if "count | int > 5" { http GET "/anything/cast-gt"; }
            if "n > 5" { http GET "/anything/number-gt"; }
        }
        "#,
    );
    let r = run(p.clone(), host, 1).await;
    let failures: Vec<(ErrorKind, String)> = r
        .total
        .errors
        .keys()
        .map(|k| (k.kind, k.message.clone()))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, ErrorKind::Template);
    assert!(failures[0].1.contains("`count` is text"), "{failures:?}");
    let paths: Vec<String> = seen.all().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec!["/anything/cast-gt", "/anything/number-gt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_may_set_its_own_redirects_on_both_http_paths() {
    // HTTP/1.1 goes through the direct client, HTTP/2 (prior knowledge) through reqwest.
    for http2 in ["#false", "#true"] {
        let (host, seen) = recording_server().await;
        let p = program(&format!(
            r#"
            plan "p" {{ http2 {http2}; }}
            scenario "s" {{
                http GET "/redirect" name="own" redirects=0 {{
                    check status=302
                    check header="location" equals="/anything/after"
                }}
                http GET "/redirect" name="plan's" {{ check status=200; }}
            }}
            "#
        ));
        let r = run(p.clone(), host, 1).await;
        assert_eq!(r.total.failures(), 0, "http2 {http2}: {:?}", errors(&r, &p));
        let paths: Vec<String> = seen.all().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec!["/anything/after"], "http2 {http2}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_paths_and_regexes_may_hold_templates() {
    let (host, seen) = recording_server().await;
    let p = program(
        r##"
        vars { key "sid"; }
        scenario "s" {
            http GET "/session" {
                capture "a" json="$.{{ key }}"
                capture "b" regex=#""{{ key }}":"([^"]+)""#
            }
            http GET "/anything/{{ a }}/{{ b }}"
        }
        "##,
    );
    let r = run(p.clone(), host, 1).await;
    assert_eq!(r.total.failures(), 0, "{:?}", errors(&r, &p));
    assert_eq!(seen.all()[0].0, "/anything/s-42/s-42");
}
