//! `/api/delay/{fast,med,slow}`: sleep a random time in the endpoint's range (50–100 ms,
//! 0.5–1 s, 2–3 s; a hundredth of that with `fast_delays`), then make each call of the optional
//! `?call=a,b` chain in turn, and report every delay.
//!
//! The real server makes chained calls over HTTP to itself (without forwarding `call`), so each
//! one is a request in its own right. Here they run in-process but behave the same way: each is
//! counted as a hit on its route, checked against that route's limit for the loopback address
//! (where the real self-calls come from), delayed by `--latency` and subject to injected errors.
//! A chained call that is refused or fails makes the whole request a bare 500, as the real
//! server's `KeyError` on the error body does.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde::Serialize;
use tokio::time::Instant;

use super::pipeline::{admit, detail, shutting_down, sleep_unless_shutdown};
use super::state::{Shared, route_index};
use super::validate::query_map;

const MAX_CHAIN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelayKind {
    Fast,
    Med,
    Slow,
}

impl DelayKind {
    fn name(self) -> &'static str {
        match self {
            DelayKind::Fast => "fast",
            DelayKind::Med => "med",
            DelayKind::Slow => "slow",
        }
    }

    fn path(self) -> &'static str {
        match self {
            DelayKind::Fast => "/api/delay/fast",
            DelayKind::Med => "/api/delay/med",
            DelayKind::Slow => "/api/delay/slow",
        }
    }

    /// The real sleep range, in seconds.
    fn range(self) -> (f64, f64) {
        match self {
            DelayKind::Fast => (0.05, 0.1),
            DelayKind::Med => (0.5, 1.0),
            DelayKind::Slow => (2.0, 3.0),
        }
    }

    fn from_name(name: &str) -> Option<DelayKind> {
        match name {
            "fast" => Some(DelayKind::Fast),
            "med" => Some(DelayKind::Med),
            "slow" => Some(DelayKind::Slow),
            _ => None,
        }
    }
}

/// Parses `call=a,b,…` (blank entries skipped); the error is the real server's 400 detail.
pub(crate) fn parse_chain(call: Option<&str>) -> Result<Vec<DelayKind>, String> {
    let names: Vec<&str> = call
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_CHAIN {
        return Err(format!(
            "Chain depth {} exceeds maximum of {MAX_CHAIN}",
            names.len()
        ));
    }
    let invalid: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| DelayKind::from_name(n).is_none())
        .collect();
    if !invalid.is_empty() {
        return Err(format!(
            "Invalid delay types: {}. Valid: fast, med, slow",
            invalid.join(", ")
        ));
    }
    Ok(names.into_iter().filter_map(DelayKind::from_name).collect())
}

#[derive(Debug, Serialize)]
struct CallResult {
    endpoint: &'static str,
    delay_ms: u64,
}

#[derive(Debug, Serialize)]
struct DelayResponse {
    endpoint: &'static str,
    delay_ms: u64,
    calls: Vec<CallResult>,
    total_ms: u64,
}

/// Why a request stopped early.
enum Abort {
    ShuttingDown,
    ChainFailed,
}

impl From<Abort> for Response {
    fn from(abort: Abort) -> Response {
        match abort {
            Abort::ShuttingDown => shutting_down(),
            Abort::ChainFailed => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
            }
        }
    }
}

/// Sleeps the endpoint's random delay; returns it in whole milliseconds (truncated).
async fn apply_delay(
    shared: &Shared,
    kind: DelayKind,
    rng: &mut impl RngExt,
) -> Result<u64, Abort> {
    let (low, high) = kind.range();
    let mut seconds = rng.random_range(low..high);
    if shared.config.fast_delays {
        seconds /= 100.0;
    }
    let duration = Duration::from_secs_f64(seconds);
    if !sleep_unless_shutdown(shared, duration).await {
        return Err(Abort::ShuttingDown);
    }
    Ok(duration.as_millis() as u64)
}

/// One chained call, as if it came back in over HTTP from the loopback address.
async fn chained_call(
    shared: &Shared,
    kind: DelayKind,
    rng: &mut impl RngExt,
) -> Result<CallResult, Abort> {
    let route = route_index("GET", kind.path()).ok_or(Abort::ChainFailed)?;
    if !sleep_unless_shutdown(shared, shared.config.latency).await {
        return Err(Abort::ShuttingDown);
    }
    if !admit(shared, route, IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        return Err(Abort::ChainFailed);
    }
    if shared.config.error_rate > 0.0 && shared.error_dice.unit() < shared.config.error_rate {
        return Err(Abort::ChainFailed);
    }
    let delay_ms = apply_delay(shared, kind, rng).await?;
    Ok(CallResult {
        endpoint: kind.name(),
        delay_ms,
    })
}

async fn run(
    shared: &Shared,
    kind: DelayKind,
    chain: &[DelayKind],
) -> Result<DelayResponse, Abort> {
    let started = Instant::now();
    let mut rng = shared.delay_dice.rng();
    let delay_ms = apply_delay(shared, kind, &mut rng).await?;
    let mut calls = Vec::with_capacity(chain.len());
    for &next in chain {
        calls.push(chained_call(shared, next, &mut rng).await?);
    }
    Ok(DelayResponse {
        endpoint: kind.name(),
        delay_ms,
        calls,
        total_ms: started.elapsed().as_millis() as u64,
    })
}

async fn delay(shared: Arc<Shared>, kind: DelayKind, query: Option<String>) -> Response {
    let query = query_map(query.as_deref());
    let chain = match parse_chain(query.get("call").and_then(|v| v.as_str())) {
        Ok(chain) => chain,
        Err(message) => return detail(StatusCode::BAD_REQUEST, &message),
    };
    match run(&shared, kind, &chain).await {
        Ok(body) => Json(body).into_response(),
        Err(abort) => abort.into(),
    }
}

pub(crate) async fn fast(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    delay(shared, DelayKind::Fast, q).await
}

pub(crate) async fn med(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    delay(shared, DelayKind::Med, q).await
}

pub(crate) async fn slow(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    delay(shared, DelayKind::Slow, q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_parses_in_order_skipping_blanks() {
        assert_eq!(parse_chain(None), Ok(vec![]));
        assert_eq!(parse_chain(Some("")), Ok(vec![]));
        assert_eq!(
            parse_chain(Some(" med, ,fast,slow,")),
            Ok(vec![DelayKind::Med, DelayKind::Fast, DelayKind::Slow])
        );
    }

    #[test]
    fn chain_longer_than_five_is_refused() {
        assert_eq!(
            parse_chain(Some("fast,fast,fast,fast,fast,fast")),
            Err("Chain depth 6 exceeds maximum of 5".to_owned())
        );
        assert!(parse_chain(Some("fast,fast,fast,fast,fast")).is_ok());
    }

    #[test]
    fn unknown_delay_types_are_listed() {
        assert_eq!(
            parse_chain(Some("fast,turbo,warp")),
            Err("Invalid delay types: turbo, warp. Valid: fast, med, slow".to_owned())
        );
    }
}
