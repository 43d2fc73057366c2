//! The demo target against real clients: reqwest for every REST endpoint's shape and errors,
//! tokio-tungstenite for the oscilloscope protocol. Each test starts its own server on
//! `127.0.0.1:0`. WebSocket tests never sleep to wait: they wait for protocol events, and use
//! server pings (a short `ping_interval`) as the clock when they must show that nothing arrives.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loadplan::demo::{DemoConfig, DemoServer, WsStats, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async, connect_async_with_config,
};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous protocol bound: a frame is due every few ms in these tests.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

fn test_config() -> DemoConfig {
    DemoConfig {
        frame_interval: Duration::from_millis(10),
        fast_delays: true,
        seed: Some(7),
        ..DemoConfig::default()
    }
}

/// Pings every 100 ms: a clock for "nothing else arrived in the meantime".
fn ping_clock_config() -> DemoConfig {
    DemoConfig {
        ping_interval: Duration::from_millis(100),
        ..test_config()
    }
}

async fn start(config: DemoConfig) -> DemoServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    DemoServer::start(addr, config)
        .await
        .expect("demo target binds a free port")
}

/// reqwest is built with `rustls-no-provider`: hand it a TLS config with an explicit provider
/// (never used for these plain-HTTP requests) rather than installing a process-wide default.
fn client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("plain HTTP client")
}

async fn get(server: &DemoServer, path: &str) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{}{path}", server.base_url()))
        .send()
        .await
        .expect("request reaches the demo target");
    let status = response.status();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

async fn post_raw(
    server: &DemoServer,
    content_type: Option<&str>,
    body: &'static str,
) -> (StatusCode, String) {
    let mut request = client()
        .post(format!("{}/api/racing/track/generate", server.base_url()))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request
        .send()
        .await
        .expect("request reaches the demo target");
    let status = response.status();
    (status, response.text().await.expect("text body"))
}

async fn post_json(server: &DemoServer, body: Value) -> (StatusCode, String) {
    let response = client()
        .post(format!("{}/api/racing/track/generate", server.base_url()))
        .json(&body)
        .send()
        .await
        .expect("request reaches the demo target");
    let status = response.status();
    (status, response.text().await.expect("text body"))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON body")
}

fn hits(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

// ---------------------------------------------------------------- REST

#[tokio::test]
async fn welcome_and_health_routes_answer_their_documented_bodies() {
    let server = start(test_config()).await;
    for (path, body) in [
        ("/", json!({"message": "Welcome to Durable Code API"})),
        ("/health", json!({"status": "healthy"})),
        (
            "/api/racing/health",
            json!({"status": "healthy", "service": "racing-api"}),
        ),
        (
            "/api/delay/health",
            json!({"status": "healthy", "module": "delay"}),
        ),
    ] {
        assert_eq!(get(&server, path).await, (StatusCode::OK, body), "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn oscilloscope_config_lists_ranges_and_defaults() {
    let server = start(test_config()).await;
    let (status, body) = get(&server, "/api/oscilloscope/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "sample_rate": 1000, "buffer_size": 100,
            "supported_wave_types": ["sine", "square", "noise"],
            "frequency": {"min": 0.1, "max": 100.0, "default": 10.0},
            "amplitude": {"min": 0.1, "max": 10.0, "default": 1.0},
            "offset": {"min": -10.0, "max": 10.0, "default": 0.0},
        })
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stream_info_describes_the_websocket_in_about_950_bytes() {
    let server = start(test_config()).await;
    let response = client()
        .get(format!(
            "{}/api/oscilloscope/stream/info",
            server.base_url()
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!((900..1_000).contains(&text.len()), "{} bytes", text.len());
    let info = parse(&text);
    assert_eq!(info["endpoint"], "/api/oscilloscope/stream");
    assert_eq!(info["protocol"], "WebSocket");
    for command in ["start", "stop", "configure"] {
        assert_eq!(info["commands"][command]["example"]["command"], command);
    }
    assert!(info["response_format"].is_object());
    assert_eq!(
        info["supported_wave_types"],
        json!(["sine", "square", "noise"])
    );
    assert_eq!(
        (info["sample_rate"].clone(), info["buffer_size"].clone()),
        (json!(1000), json!(100))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oscilloscope_health_carries_an_iso_timestamp() {
    let server = start(test_config()).await;
    let (status, body) = get(&server, "/api/oscilloscope/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["module"], "oscilloscope");
    assert_eq!(body["sample_rate"], 1000);
    assert_eq!(body["supported_waves"], json!(["sine", "square", "noise"]));
    let stamp = body["timestamp"].as_str().expect("timestamp is a string");
    let bytes = stamp.as_bytes();
    assert!(stamp.len() >= 19, "{stamp}");
    assert_eq!(
        (bytes[4], bytes[7], bytes[10], bytes[13], bytes[16]),
        (b'-', b'-', b'T', b':', b':'),
        "{stamp}"
    );
    assert!(stamp.starts_with("20"), "{stamp}");
    server.shutdown().await;
}

#[tokio::test]
async fn simple_track_has_32_point_boundaries() {
    let server = start(test_config()).await;
    let (status, body) = get(&server, "/api/racing/track/simple").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["width"].clone(), body["height"].clone()),
        (json!(800), json!(600))
    );
    assert_eq!(
        body["boundaries"]["inner"].as_array().map(Vec::len),
        Some(32)
    );
    assert_eq!(
        body["boundaries"]["outer"].as_array().map(Vec::len),
        Some(32)
    );
    assert_eq!(body["start_position"], json!({"x": 400.0, "y": 500.0}));
    assert_eq!(body["track_width"], 100.0);

    let (status, body) = get(&server, "/api/racing/track/simple?width=1920&height=1080").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["boundaries"]["outer"][0],
        json!({"x": 1860.0, "y": 540.0})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn simple_track_rejects_bad_queries_with_422_details() {
    let server = start(test_config()).await;
    let (status, body) = get(&server, "/api/racing/track/simple?width=100&height=abc").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = body["detail"].as_array().expect("detail is a list");
    assert_eq!(detail.len(), 2);
    assert_eq!(detail[0]["type"], "greater_than_equal");
    assert_eq!(detail[0]["loc"], json!(["query", "width"]));
    assert_eq!(detail[0]["ctx"], json!({"ge": 400}));
    assert_eq!(detail[1]["type"], "int_parsing");
    assert_eq!(detail[1]["loc"], json!(["query", "height"]));

    let (status, body) = get(&server, "/api/racing/track/simple?height=1081").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["type"], "less_than_equal");
    server.shutdown().await;
}

#[tokio::test]
async fn generate_requires_a_json_object_body() {
    let server = start(test_config()).await;
    let cases = [
        (None, "", "missing"),
        (Some("application/json"), "", "missing"),
        (Some("application/json"), "{not json", "json_invalid"),
        (Some("application/json"), "[1, 2]", "model_attributes_type"),
        (Some("text/plain"), "{}", "model_attributes_type"),
    ];
    for (content_type, body, kind) in cases {
        let (status, text) = post_raw(&server, content_type, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content_type:?} {body:?}"
        );
        assert_eq!(
            parse(&text)["detail"][0]["type"],
            kind,
            "{content_type:?} {body:?}"
        );
    }
    let (status, _) = post_raw(&server, Some("application/json"), "{}").await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn generate_validates_every_field() {
    let server = start(test_config()).await;
    let (status, text) = post_json(
        &server,
        json!({"difficulty": "extreme", "seed": 1_000_000, "width": 399, "layout": "oval",
               "num_points": 5, "variation_amount": 0.6, "hairpin_chance": -0.1,
               "hairpin_intensity": 6, "smoothing_passes": 9, "track_width_override": 59}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = parse(&text);
    let fields: Vec<&str> = body["detail"]
        .as_array()
        .expect("detail is a list")
        .iter()
        .map(|e| e["loc"][1].as_str().expect("field name"))
        .collect();
    assert_eq!(
        fields,
        [
            "difficulty",
            "seed",
            "width",
            "layout",
            "num_points",
            "variation_amount",
            "hairpin_chance",
            "hairpin_intensity",
            "smoothing_passes",
            "track_width_override",
        ]
    );
    assert_eq!(
        body["detail"][0]["msg"],
        "String should match pattern '^(easy|medium|hard)$'"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn generated_tracks_are_11_to_30_kb_and_deterministic_per_seed() {
    let server = start(test_config()).await;
    let (status, first) = post_json(&server, json!({"seed": 4242, "difficulty": "hard"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, again) = post_json(&server, json!({"seed": 4242, "difficulty": "hard"})).await;
    assert_eq!(first, again, "same seed, same track");
    let (_, other) = post_json(&server, json!({"seed": 4243, "difficulty": "hard"})).await;
    assert_ne!(first, other);

    for body in [
        json!({}),
        json!({"num_points": 24, "smoothing_passes": 5, "width": 1920, "height": 1080}),
        json!({"num_points": 6, "smoothing_passes": 0}),
        json!({"layout": "figure8", "difficulty": "easy"}),
        json!({"layout": "monaco", "unknown_field": "ignored"}),
    ] {
        let (status, text) = post_json(&server, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            (11_000..=30_000).contains(&text.len()),
            "{body}: {} bytes",
            text.len()
        );
        let track = parse(&text);
        let inner = track["boundaries"]["inner"].as_array().expect("inner");
        assert_eq!(
            Some(inner.len()),
            track["boundaries"]["outer"].as_array().map(Vec::len)
        );
        assert!(track["start_position"]["x"].is_f64() && track["track_width"].is_f64());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn delay_endpoints_sleep_then_make_each_chained_call() {
    let server = start(test_config()).await;
    let (status, body) = get(&server, "/api/delay/fast?call=med,slow").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["endpoint"], "fast");
    let calls = body["calls"].as_array().expect("calls is a list");
    let endpoints: Vec<&str> = calls
        .iter()
        .map(|c| c["endpoint"].as_str().expect("name"))
        .collect();
    assert_eq!(endpoints, ["med", "slow"]);
    // With `fast_delays` the documented ranges shrink a hundredfold: 0.5–1, 5–10, 20–30 ms.
    let ms = |v: &Value| v["delay_ms"].as_u64().expect("delay_ms is an integer");
    assert!(ms(&body) <= 1, "{body}");
    assert!((5..=10).contains(&ms(&calls[0])), "{body}");
    assert!((20..=30).contains(&ms(&calls[1])), "{body}");
    let total = body["total_ms"].as_u64().expect("total_ms");
    assert!(total >= ms(&body) + ms(&calls[0]) + ms(&calls[1]), "{body}");

    let (status, body) = get(&server, "/api/delay/slow").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["endpoint"].clone(), body["calls"].clone()),
        (json!("slow"), json!([]))
    );

    // The chained calls are requests to those routes, as on the real server.
    assert_eq!(
        server.hits(),
        hits(&[
            ("GET /api/delay/fast", 1),
            ("GET /api/delay/med", 1),
            ("GET /api/delay/slow", 2)
        ])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_delay_chains_are_400() {
    let server = start(test_config()).await;
    assert_eq!(
        get(&server, "/api/delay/med?call=fast,fast,fast,fast,fast,fast").await,
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Chain depth 6 exceeds maximum of 5"})
        )
    );
    assert_eq!(
        get(&server, "/api/delay/fast?call=fast,warp").await,
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Invalid delay types: warp. Valid: fast, med, slow"})
        )
    );
    assert_eq!(
        server.hits(),
        hits(&[("GET /api/delay/fast", 1), ("GET /api/delay/med", 1)])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = start(test_config()).await;
    for path in [
        "/api/status",
        "/api/delay/turbo",
        "/api/oscilloscope/stream",
    ] {
        assert_eq!(
            get(&server, path).await,
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
            "{path}"
        );
    }
    assert_eq!(
        get(&server, "/api/racing/track/generate").await,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method Not Allowed"})
        )
    );
    assert!(server.hits().is_empty(), "{:?}", server.hits());
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let server = start(DemoConfig {
        rate_limit: true,
        ..test_config()
    })
    .await;
    let http = client();
    let url = format!("{}/api/oscilloscope/config", server.base_url());
    for i in 0..20 {
        let response = http.get(&url).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
    }
    let refused = http.get(&url).send().await.expect("request");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"60"[..])
    );
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({"error": "Rate limit exceeded", "message": "Too many requests"})
    );
    // Limits are per route, and the racing routes have none.
    assert_eq!(get(&server, "/health").await.0, StatusCode::OK);
    for _ in 0..40 {
        assert_eq!(get(&server, "/api/racing/health").await.0, StatusCode::OK);
    }
    assert_eq!(
        server.hits(),
        hits(&[
            ("GET /api/oscilloscope/config", 21),
            ("GET /health", 1),
            ("GET /api/racing/health", 40),
        ])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn error_rate_one_answers_every_rest_request_with_500() {
    let server = start(DemoConfig {
        error_rate: 1.0,
        ..test_config()
    })
    .await;
    for path in ["/health", "/api/racing/track/simple", "/api/delay/fast"] {
        assert_eq!(
            get(&server, path).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"detail": "injected error"})
            ),
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn injected_errors_are_reproducible_for_a_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let server = start(DemoConfig {
            error_rate: 0.5,
            seed: Some(seed),
            ..test_config()
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(get(&server, "/health").await.0.as_u16());
        }
        assert_eq!(server.hits(), hits(&[("GET /health", 40)]));
        server.shutdown().await;
        out
    }
    let first = statuses(11).await;
    assert_eq!(first, statuses(11).await);
    let errors = first.iter().filter(|&&s| s == 500).count();
    assert!((5..=35).contains(&errors), "{errors} of 40 at rate 0.5");
    assert!(first.iter().all(|&s| s == 200 || s == 500));
}

#[tokio::test]
async fn latency_delays_every_rest_response_by_at_least_its_value() {
    let latency = Duration::from_millis(60);
    let server = start(DemoConfig {
        latency,
        ..test_config()
    })
    .await;
    let started = tokio::time::Instant::now();
    assert_eq!(get(&server, "/health").await.0, StatusCode::OK);
    // A lower bound only: the sleep happens before the response can exist.
    assert!(started.elapsed() >= latency);
    server.shutdown().await;
}

#[tokio::test]
async fn hits_count_every_request_that_reached_a_route() {
    let server = start(test_config()).await;
    get(&server, "/").await;
    get(&server, "/health").await;
    get(&server, "/health").await;
    get(&server, "/api/racing/track/simple?width=1").await; // 422 still counts
    post_json(&server, json!({})).await;
    get(&server, "/nowhere").await; // 404: no route
    let mut ws = connect(&server).await;
    ws.close(None).await.expect("close");
    assert_eq!(
        server.hits(),
        hits(&[
            ("GET /", 1),
            ("GET /health", 2),
            ("GET /api/racing/track/simple", 1),
            ("POST /api/racing/track/generate", 1),
            ("WS /api/oscilloscope/stream", 1),
        ])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn serve_runs_until_its_token_is_cancelled() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let token = CancellationToken::new();
    let server = tokio::spawn(serve(listener, test_config(), token.clone()));
    let response = client()
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    token.cancel();
    server.await.expect("serve task").expect("serve returns Ok");
}

// ---------------------------------------------------------------- WebSocket

#[derive(Debug)]
enum Event {
    Frame(Value),
    Error(Value),
    Ping,
    Close(Option<CloseFrame>),
    /// The stream ended, with the transport error if any.
    End(Option<tungstenite::Error>),
}

async fn connect(server: &DemoServer) -> Ws {
    let url = format!("ws://{}/api/oscilloscope/stream", server.addr());
    // TCP_NODELAY: with Nagle's algorithm a pong queued behind an unacknowledged command waits
    // for the server's delayed ACK (40 ms), longer than the short test ping period.
    let (ws, response) = connect_async_with_config(url, None, true)
        .await
        .expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

async fn next_event(ws: &mut Ws) -> Event {
    loop {
        let next = tokio::time::timeout(RECEIVE_TIMEOUT, ws.next())
            .await
            .expect("the server spoke within the receive timeout");
        return match next {
            None => Event::End(None),
            Some(Err(e)) => Event::End(Some(e)),
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).expect("JSON text frame");
                if value.get("samples").is_some() {
                    Event::Frame(value)
                } else {
                    Event::Error(value)
                }
            }
            Some(Ok(Message::Ping(_))) => Event::Ping,
            Some(Ok(Message::Close(frame))) => Event::Close(frame),
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(b))) => panic!("unexpected binary frame {b:?}"),
        };
    }
}

async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        match next_event(ws).await {
            Event::Frame(v) => return v,
            Event::Ping => {}
            other => panic!("expected a data frame, got {other:?}"),
        }
    }
}

/// The next error object, and how many data frames arrived before it.
async fn next_error(ws: &mut Ws) -> (Value, usize) {
    let mut frames = 0;
    loop {
        match next_event(ws).await {
            Event::Error(v) => return (v, frames),
            Event::Frame(_) => frames += 1,
            Event::Ping => {}
            other => panic!("expected an error object, got {other:?}"),
        }
    }
}

/// Reads until `pings` server pings arrived, failing on anything else.
async fn expect_silence_for_pings(ws: &mut Ws, pings: usize) {
    for _ in 0..pings {
        match next_event(ws).await {
            Event::Ping => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }
}

async fn close_and_finish(mut ws: Ws) {
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .await
    .expect("close");
    loop {
        match next_event(&mut ws).await {
            Event::Close(frame) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
                break;
            }
            Event::Frame(_) | Event::Error(_) | Event::Ping => {}
            Event::End(e) => panic!("stream ended before the close reply: {e:?}"),
        }
    }
}

const START: &str =
    r#"{"command":"start","wave_type":"sine","frequency":10,"amplitude":1,"offset":0}"#;

#[tokio::test]
async fn start_streams_frames_of_100_samples() {
    let server = start(test_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    let mut last_timestamp = 0.0;
    for _ in 0..5 {
        let frame = next_frame(&mut ws).await;
        let samples = frame["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 100);
        assert!(
            samples
                .iter()
                .all(|s| s.as_f64().is_some_and(|v| v.abs() <= 1.0 + 1e-9))
        );
        assert_eq!(frame["sample_rate"], 1000);
        assert_eq!(frame["wave_type"], "sine");
        assert_eq!(
            frame["parameters"],
            json!({"frequency": 10.0, "amplitude": 1.0, "offset": 0.0})
        );
        let timestamp = frame["timestamp"].as_f64().expect("timestamp");
        assert!(timestamp >= last_timestamp && timestamp > 1.6e9);
        last_timestamp = timestamp;
    }
    close_and_finish(ws).await;
    assert_eq!(server.ws_stats().sessions, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn configure_changes_parameters_while_streaming() {
    let server = start(test_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    send(
        &mut ws,
        r#"{"command":"configure","wave_type":"square","frequency":25,"amplitude":2,"offset":0.5}"#,
    )
    .await;
    let wanted = json!({"frequency": 25.0, "amplitude": 2.0, "offset": 0.5});
    let mut frame = next_frame(&mut ws).await;
    let mut in_flight = 0;
    while frame["parameters"] != wanted {
        in_flight += 1;
        assert!(in_flight < 20, "configure never took effect");
        frame = next_frame(&mut ws).await;
    }
    assert_eq!(frame["wave_type"], "square");
    let samples = frame["samples"].as_array().expect("samples");
    assert!(
        samples
            .iter()
            .all(|s| s == &json!(2.5) || s == &json!(-1.5)),
        "{frame}"
    );
    close_and_finish(ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn stop_ends_the_stream_until_the_next_start() {
    let server = start(ping_clock_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    let mut received = 0;
    for _ in 0..3 {
        next_frame(&mut ws).await;
        received += 1;
    }
    send(&mut ws, r#"{"command":"stop"}"#).await;
    send(&mut ws, r#"{"command":"stop"}"#).await;
    let (error, in_flight) = next_error(&mut ws).await;
    assert_eq!(
        error,
        json!({"error": "Invalid transition from paused to paused. Valid transitions: disconnecting, streaming"})
    );
    received += in_flight;
    // Every frame the server sent has arrived, and three ping periods bring no more.
    assert_eq!(server.ws_stats().frames_sent, received as u64);
    expect_silence_for_pings(&mut ws, 3).await;
    assert_eq!(server.ws_stats().frames_sent, received as u64);

    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    close_and_finish(ws).await;
    assert_eq!(server.ws_stats().errors_sent, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_messages_get_error_objects_and_streaming_goes_on() {
    let server = start(test_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    let bad = [
        "this is not json",
        r#"{"wave_type":"sine"}"#,
        r#"{"command":"restart"}"#,
        r#"{"command":"configure","frequency":500,"amplitude":1,"offset":0,"wave_type":"sine"}"#,
        r#"{"command":"start","wave_type":"triangle"}"#,
    ];
    for text in bad {
        send(&mut ws, text).await;
        let (error, _) = next_error(&mut ws).await;
        let message = error["error"].as_str().expect("error text");
        assert!(!message.is_empty(), "{text}");
        assert!(error.get("samples").is_none());
    }
    // Still streaming with the original parameters.
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["parameters"]["frequency"], 10.0);
    close_and_finish(ws).await;
    assert_eq!(server.ws_stats().errors_sent, bad.len() as u64);
    server.shutdown().await;
}

#[tokio::test]
async fn json_that_is_not_an_object_stops_processing_but_keeps_the_socket() {
    let server = start(ping_clock_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    send(&mut ws, "[1, 2, 3]").await;
    let (error, _) = next_error(&mut ws).await;
    assert_eq!(error["error"], "Data processing error");
    assert!(error["message"].is_string());
    // Further commands are ignored; no frames, no errors; the socket stays open.
    send(&mut ws, START).await;
    send(&mut ws, "not json either").await;
    expect_silence_for_pings(&mut ws, 3).await;
    close_and_finish(ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_binary_frame_drops_the_connection_without_a_close_frame() {
    let server = start(test_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send binary");
    loop {
        match next_event(&mut ws).await {
            Event::Frame(_) | Event::Ping => {}
            Event::End(_) => break,
            other => panic!("expected the TCP connection to drop, got {other:?}"),
        }
    }
    assert_eq!(
        server.ws_stats(),
        WsStats {
            sessions: 1,
            frames_sent: server.ws_stats().frames_sent,
            errors_sent: 0,
            dropped: 1,
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn server_pings_and_the_session_survives_answered_pings() {
    let server = start(ping_clock_config()).await;
    let mut ws = connect(&server).await;
    // Nothing but pings before `start`: no greeting. Reading answers each ping with a pong.
    expect_silence_for_pings(&mut ws, 4).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    close_and_finish(ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_handshake_on_the_seed_path_is_refused_with_403() {
    let server = start(test_config()).await;
    let url = format!("ws://{}/api/oscilloscope/ws", server.addr());
    match connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    assert!(server.hits().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn websocket_admissions_are_limited_to_50_per_ip() {
    let server = start(DemoConfig {
        rate_limit: true,
        ..test_config()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..50 {
        let mut ws = connect(&server).await;
        // A round trip proves the session task is running (and counted).
        send(&mut ws, "?").await;
        next_error(&mut ws).await;
        open.push(ws);
    }
    let url = format!("ws://{}/api/oscilloscope/stream", server.addr());
    match connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    assert_eq!(server.hits(), hits(&[("WS /api/oscilloscope/stream", 51)]));
    assert_eq!(server.ws_stats().sessions, 50);
    for ws in open {
        close_and_finish(ws).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_going_away() {
    let server = start(test_config()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, START).await;
    next_frame(&mut ws).await;
    let stopping = tokio::spawn(server.shutdown());
    loop {
        match next_event(&mut ws).await {
            Event::Frame(_) | Event::Ping => {}
            Event::Close(frame) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
                break;
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    stopping.await.expect("shutdown completes");
}
