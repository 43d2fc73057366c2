//! The demo target's plain REST handlers: welcome and health routes, the oscilloscope's static
//! descriptions, and the two racing-track endpoints with their FastAPI-shaped 422s.
//!
//! Static bodies are written out verbatim (compact, as Starlette renders them, keys in the real
//! server's order). Handlers never sleep or count: `pipeline.rs` did that before they run.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::pipeline::json_text;
use super::racing::{self, DEFAULT_HEIGHT, DEFAULT_WIDTH, HEIGHT, WIDTH};
use super::state::Shared;
use super::track_request::TrackParams;
use super::validate::{FieldError, int_in, query_map, unprocessable};

pub(crate) async fn root() -> Response {
    json_text(
        StatusCode::OK,
        r#"{"message":"Welcome to Durable Code API"}"#,
    )
}

pub(crate) async fn health() -> Response {
    json_text(StatusCode::OK, r#"{"status":"healthy"}"#)
}

pub(crate) async fn racing_health() -> Response {
    json_text(
        StatusCode::OK,
        r#"{"status":"healthy","service":"racing-api"}"#,
    )
}

pub(crate) async fn delay_health() -> Response {
    json_text(StatusCode::OK, r#"{"status":"healthy","module":"delay"}"#)
}

pub(crate) const OSCILLOSCOPE_CONFIG: &str = concat!(
    r#"{"sample_rate":1000,"buffer_size":100,"supported_wave_types":["sine","square","noise"],"#,
    r#""frequency":{"min":0.1,"max":100.0,"default":10.0},"#,
    r#""amplitude":{"min":0.1,"max":10.0,"default":1.0},"#,
    r#""offset":{"min":-10.0,"max":10.0,"default":0.0}}"#,
);

pub(crate) async fn oscilloscope_config() -> Response {
    json_text(StatusCode::OK, OSCILLOSCOPE_CONFIG)
}

/// The WebSocket's self-description; about 950 bytes like the real one.
pub(crate) const STREAM_INFO: &str = concat!(
    r#"{"endpoint":"/api/oscilloscope/stream","protocol":"WebSocket","#,
    r#""commands":{"start":{"description":"Start streaming waveform data with the given "#,
    r#"parameters (omitted ones take their defaults)","example":{"command":"start","wave_type":"sine","frequency":10.0,"#,
    r#""amplitude":1.0,"offset":0.0}},"stop":{"description":"Pause streaming; the connection "#,
    r#"stays open","example":{"command":"stop"}},"configure":{"description":"Update waveform "#,
    r#"parameters without changing the streaming state","example":{"command":"configure","#,
    r#""wave_type":"square","frequency":25.0,"amplitude":2.0,"offset":0.5}}},"#,
    r#""response_format":{"timestamp":"Unix timestamp in seconds (float)","#,
    r#""samples":"Array of 100 waveform samples, t = i / sample_rate","#,
    r#""sample_rate":"Samples per second (1000)","#,
    r#""wave_type":"Current waveform type","#,
    r#""parameters":"Current frequency (Hz), amplitude and DC offset"},"#,
    r#""supported_wave_types":["sine","square","noise"],"sample_rate":1000,"buffer_size":100}"#,
);

pub(crate) async fn stream_info() -> Response {
    json_text(StatusCode::OK, STREAM_INFO)
}

pub(crate) async fn oscilloscope_health() -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    json_text(
        StatusCode::OK,
        format!(
            r#"{{"status":"healthy","module":"oscilloscope","timestamp":"{}","sample_rate":1000,"supported_waves":["sine","square","noise"]}}"#,
            iso_timestamp(now)
        ),
    )
}

/// `datetime.isoformat()` of a UTC instant, without offset (the real server runs in UTC).
pub(crate) fn iso_timestamp(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    match since_epoch.subsec_micros() {
        0 => format!("{year:04}-{month:02}-{day:02}T{time}"),
        micros => format!("{year:04}-{month:02}-{day:02}T{time}.{micros:06}"),
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `GET /api/racing/track/simple?width&height`.
pub(crate) async fn track_simple(RawQuery(query): RawQuery) -> Response {
    let query = query_map(query.as_deref());
    let mut errors = Vec::new();
    let mut get = |name: &'static str, default: i64, range| match query.get(name) {
        None => default,
        Some(v) => int_in(("query", name), v, range).unwrap_or_else(|e| {
            errors.push(e);
            default
        }),
    };
    let width = get("width", DEFAULT_WIDTH, WIDTH);
    let height = get("height", DEFAULT_HEIGHT, HEIGHT);
    if !errors.is_empty() {
        return unprocessable(&errors);
    }
    Json(racing::simple_track(width, height)).into_response()
}

/// `POST /api/racing/track/generate`: a JSON object body is required (`{}` at least).
pub(crate) async fn track_generate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match parse_body(&headers, &body).and_then(|b| {
        let Value::Object(fields) = b else {
            return Err(vec![not_an_object(b)]);
        };
        TrackParams::from_json(&fields)
    }) {
        Ok(params) => params,
        Err(errors) => return unprocessable(&errors),
    };
    let mut rng = match params.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => shared.track_dice.rng(),
    };
    Json(racing::generate(&params, &mut rng)).into_response()
}

fn not_an_object(input: Value) -> FieldError {
    FieldError::new(
        "model_attributes_type",
        ("body", ""),
        "Input should be a valid dictionary or object to extract fields from",
        input,
    )
}

/// FastAPI's body decoding: empty → missing; a non-JSON content type → the raw text, which then
/// fails as "not an object"; JSON (or no content type) → decoded, or `json_invalid`.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Vec<FieldError>> {
    if body.is_empty() {
        return Err(vec![FieldError::new(
            "missing",
            ("body", ""),
            "Field required",
            Value::Null,
        )]);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        let text = String::from_utf8_lossy(body).into_owned();
        return Err(vec![not_an_object(Value::String(text))]);
    }
    serde_json::from_slice(body).map_err(|e| {
        vec![
            FieldError::new("json_invalid", ("body", ""), "JSON decode error", json!({}))
                .with_ctx(json!({ "error": e.to_string() })),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamp_formats_like_python() {
        assert_eq!(iso_timestamp(Duration::ZERO), "1970-01-01T00:00:00");
        assert_eq!(
            iso_timestamp(Duration::from_micros(1_795_766_341_520_001)),
            "2026-11-27T07:59:01.520001"
        );
        // 2000-02-29 (a leap day in a century leap year) at 12:00.
        assert_eq!(
            iso_timestamp(Duration::from_secs(951_825_600)),
            "2000-02-29T12:00:00"
        );
    }

    #[test]
    fn static_descriptions_are_valid_json_of_the_documented_size() {
        let config: Value = serde_json::from_str(OSCILLOSCOPE_CONFIG).expect("config is JSON");
        assert_eq!(
            config["frequency"],
            json!({"min": 0.1, "max": 100.0, "default": 10.0})
        );
        let info: Value = serde_json::from_str(STREAM_INFO).expect("info is JSON");
        assert_eq!(info["endpoint"], "/api/oscilloscope/stream");
        assert!(
            (900..1_000).contains(&STREAM_INFO.len()),
            "{}",
            STREAM_INFO.len()
        );
    }

    #[test]
    fn body_decoding_follows_fastapi() {
        let json_headers = HeaderMap::new();
        let kind = |r: Result<Value, Vec<FieldError>>| r.map_err(|e| e[0].kind);
        assert_eq!(kind(parse_body(&json_headers, b"")), Err("missing"));
        assert_eq!(kind(parse_body(&json_headers, b"{")), Err("json_invalid"));
        assert_eq!(kind(parse_body(&json_headers, b"{}")), Ok(json!({})));
        let mut text = HeaderMap::new();
        text.insert(
            header::CONTENT_TYPE,
            "text/plain".parse().expect("static header"),
        );
        assert_eq!(kind(parse_body(&text, b"{}")), Err("model_attributes_type"));
    }
}
