//! Per-server shared state of the demo target: the route table (the single source of truth for
//! hit-counter keys and per-IP limits), lock-free hit and WebSocket counters, and the seeded dice
//! every random choice is drawn from.
//!
//! Invariants: `hits[i]` counts `ROUTES[i]`; counters are plain atomics (no lock is ever held
//! across an `.await`); a server built with a fixed seed draws the same random numbers for the
//! same sequence of requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use super::limit::RateLimiter;
use super::{DemoConfig, WsStats};

/// One route of the real backend, as the demo serves it.
#[derive(Debug)]
pub(crate) struct RouteSpec {
    /// `"GET"`, `"POST"`, or `"WS"` for the WebSocket handshake.
    pub method: &'static str,
    pub path: &'static str,
    /// `"METHOD /path"`: the key of [`super::DemoServer::hits`].
    pub key: &'static str,
    /// Requests (WebSocket admissions for `WS`) per client IP per minute when limiting is on.
    pub limit_per_minute: Option<u32>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    key: &'static str,
    limit_per_minute: Option<u32>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        key,
        limit_per_minute,
    }
}

pub(crate) const STREAM_PATH: &str = "/api/oscilloscope/stream";

/// Every route the demo serves, with the limits of docs/demo-target.md.
pub(crate) const ROUTES: &[RouteSpec] = &[
    route("GET", "/", "GET /", Some(30)),
    route("GET", "/health", "GET /health", Some(60)),
    route(
        "GET",
        "/api/oscilloscope/config",
        "GET /api/oscilloscope/config",
        Some(20),
    ),
    route(
        "GET",
        "/api/oscilloscope/stream/info",
        "GET /api/oscilloscope/stream/info",
        Some(30),
    ),
    route(
        "GET",
        "/api/oscilloscope/health",
        "GET /api/oscilloscope/health",
        Some(60),
    ),
    route("WS", STREAM_PATH, "WS /api/oscilloscope/stream", Some(50)),
    route(
        "GET",
        "/api/racing/track/simple",
        "GET /api/racing/track/simple",
        None,
    ),
    route(
        "POST",
        "/api/racing/track/generate",
        "POST /api/racing/track/generate",
        None,
    ),
    route("GET", "/api/racing/health", "GET /api/racing/health", None),
    route("GET", "/api/delay/fast", "GET /api/delay/fast", Some(30)),
    route("GET", "/api/delay/med", "GET /api/delay/med", Some(30)),
    route("GET", "/api/delay/slow", "GET /api/delay/slow", Some(30)),
    route(
        "GET",
        "/api/delay/health",
        "GET /api/delay/health",
        Some(60),
    ),
];

/// Index into [`ROUTES`] of a method label (`"WS"` for an upgrade) and a matched path.
pub(crate) fn route_index(method: &str, path: &str) -> Option<usize> {
    ROUTES
        .iter()
        .position(|r| r.method == method && r.path == path)
}

/// Reproducible random draws: the n-th draw of a dice depends only on its seed and n.
///
/// Drawing is a counter increment plus a hash, so concurrent requests never contend on a lock;
/// a sequential client against a seeded server sees the same numbers on every run.
#[derive(Debug)]
pub(crate) struct Dice {
    seed: u64,
    draws: AtomicU64,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Self {
        Dice {
            seed,
            draws: AtomicU64::new(0),
        }
    }

    fn next_u64(&self) -> u64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        splitmix64(self.seed ^ splitmix64(n))
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        // 53 high bits → the f64 mantissa: exact and uniform.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh generator for one independent consumer (a request, a WebSocket session).
    pub(crate) fn rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.next_u64())
    }
}

/// SplitMix64 finaliser: a bijective mixer that turns counters into well-spread seeds.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Default)]
pub(crate) struct WsCounters {
    pub sessions: AtomicU64,
    pub frames_sent: AtomicU64,
    pub errors_sent: AtomicU64,
    pub dropped: AtomicU64,
}

impl WsCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WsStats {
        WsStats {
            sessions: self.sessions.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            errors_sent: self.errors_sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Everything the handlers of one server share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: DemoConfig,
    hits: Box<[AtomicU64]>,
    pub ws: WsCounters,
    pub limiter: RateLimiter,
    /// Injected 500s (`error_rate`).
    pub error_dice: Dice,
    /// Durations of `/api/delay/*`.
    pub delay_dice: Dice,
    /// Seeds of generated tracks sent without a `seed`.
    pub track_dice: Dice,
    /// Noise of oscilloscope sessions.
    pub session_dice: Dice,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(config: DemoConfig, shutdown: CancellationToken) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        // Independent streams per purpose, so that e.g. a delay draw never shifts which
        // request gets an injected error.
        let dice = |salt: u64| Dice::new(splitmix64(seed ^ salt));
        Shared {
            hits: ROUTES.iter().map(|_| AtomicU64::new(0)).collect(),
            ws: WsCounters::default(),
            limiter: RateLimiter::new(std::time::Duration::from_secs(60)),
            error_dice: dice(1),
            delay_dice: dice(2),
            track_dice: dice(3),
            session_dice: dice(4),
            config,
            shutdown,
        }
    }

    pub(crate) fn count_hit(&self, route: usize) {
        if let Some(counter) = self.hits.get(route) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Routes hit at least once, keyed `"METHOD /path"`.
    pub(crate) fn hits(&self) -> BTreeMap<String, u64> {
        ROUTES
            .iter()
            .zip(self.hits.iter())
            .map(|(spec, n)| (spec.key.to_owned(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub(crate) fn ws_stats(&self) -> WsStats {
        self.ws.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_are_method_and_path() {
        for spec in ROUTES {
            assert_eq!(spec.key, format!("{} {}", spec.method, spec.path));
        }
    }

    #[test]
    fn route_index_distinguishes_websocket_from_get() {
        assert_eq!(route_index("GET", STREAM_PATH), None);
        let ws = route_index("WS", STREAM_PATH).expect("the stream route is in the table");
        assert_eq!(ROUTES[ws].limit_per_minute, Some(50));
    }

    #[test]
    fn dice_with_same_seed_repeat_their_draws() {
        let a = Dice::new(7);
        let b = Dice::new(7);
        let draws_a: Vec<f64> = (0..5).map(|_| a.unit()).collect();
        let draws_b: Vec<f64> = (0..5).map(|_| b.unit()).collect();
        assert_eq!(draws_a, draws_b);
        assert!(draws_a.iter().all(|u| (0.0..1.0).contains(u)));
        assert_ne!(draws_a[0], Dice::new(8).unit());
    }

    #[test]
    fn hits_lists_only_routes_that_were_hit() {
        let shared = Shared::new(DemoConfig::default(), CancellationToken::new());
        let health = route_index("GET", "/health").expect("health route");
        shared.count_hit(health);
        shared.count_hit(health);
        assert_eq!(
            shared.hits(),
            BTreeMap::from([("GET /health".to_owned(), 2)])
        );
    }
}
