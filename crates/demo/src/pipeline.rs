//! What happens to a request between the socket and a handler: stray WebSocket handshakes are
//! refused, and a request that matched a route is counted, delayed by `--latency`, checked
//! against the per-IP limits, and possibly answered with an injected 500, in that order.
//! Also the FastAPI-shaped answers for unknown paths (404) and wrong methods (405).
//!
//! Invariant: every request that reaches a route of `state::ROUTES` increments that route's hit
//! counter exactly once, before anything can refuse it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::state::{ROUTES, STREAM_PATH, Shared, route_index};

/// A JSON body written out verbatim, so keys keep the real server's order.
pub(crate) fn json_text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// `{"detail": "<message>"}` with `status`.
pub(crate) fn detail(status: StatusCode, message: &str) -> Response {
    json_text(status, serde_json::json!({ "detail": message }).to_string())
}

pub(crate) async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

pub(crate) async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The real server's 429 body, byte for byte (it is written by hand there, with spaces).
pub(crate) fn too_many_requests() -> Response {
    let mut response = json_text(
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error": "Rate limit exceeded", "message": "Too many requests"}"#,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

/// A refused WebSocket handshake: bare 403, as uvicorn answers a socket closed before accept.
fn forbidden() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

pub(crate) fn shutting_down() -> Response {
    detail(StatusCode::SERVICE_UNAVAILABLE, "Server shutting down")
}

pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Sleeps for `duration` unless the server shuts down first (then `false`).
pub(crate) async fn sleep_unless_shutdown(shared: &Shared, duration: Duration) -> bool {
    if duration.is_zero() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = shared.shutdown.cancelled() => false,
    }
}

/// Outer layer: a WebSocket handshake anywhere but the stream path gets 403, the way Starlette
/// refuses a socket that matches no WebSocket route (e.g. the seed's `/api/oscilloscope/ws`).
pub(crate) async fn refuse_stray_websockets(request: Request, next: Next) -> Response {
    if is_websocket_upgrade(request.headers()) && request.uri().path() != STREAM_PATH {
        return forbidden();
    }
    next.run(request).await
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Counts a hit on `route` and applies its limit for `ip`; false when refused.
pub(crate) fn admit(shared: &Shared, route: usize, ip: IpAddr) -> bool {
    shared.count_hit(route);
    within_limit(shared, route, ip)
}

/// Applies the per-IP limit of `route` (when limiting is on); false when refused.
fn within_limit(shared: &Shared, route: usize, ip: IpAddr) -> bool {
    if !shared.config.rate_limit {
        return true;
    }
    match ROUTES.get(route).and_then(|r| r.limit_per_minute) {
        Some(limit) => shared.limiter.admit(ip, route, limit, Instant::now()),
        None => true,
    }
}

/// Route layer: count, latency, limit, injected error, handler.
pub(crate) async fn route_pipeline(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let websocket = is_websocket_upgrade(request.headers());
    let method = if websocket {
        "WS"
    } else {
        request.method().as_str()
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| route_index(method, path.as_str()));
    let Some(route) = route else {
        // A plain GET on the WebSocket route, or a method the route does not serve.
        return next.run(request).await;
    };
    let ip = client_ip(&request);
    shared.count_hit(route);
    if websocket {
        if !within_limit(&shared, route, ip) {
            return forbidden();
        }
        return next.run(request).await;
    }
    // The latency is added before the limit check so that refusals are slow too: every REST
    // response is delayed, as `--latency` promises.
    if !sleep_unless_shutdown(&shared, shared.config.latency).await {
        return shutting_down();
    }
    if !within_limit(&shared, route, ip) {
        return too_many_requests();
    }
    if shared.config.error_rate > 0.0 && shared.error_dice.unit() < shared.config.error_rate {
        return detail(StatusCode::INTERNAL_SERVER_ERROR, "injected error");
    }
    next.run(request).await
}
