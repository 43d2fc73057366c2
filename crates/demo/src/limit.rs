//! Per-client-IP, per-route rate limiting of the demo target, modelled on the real backend's
//! slowapi limiter: a fixed window that opens at the first request of a key and admits
//! `limit` requests until it expires.
//!
//! Invariant: the lock is taken only for a map lookup and never across an `.await`; the map is
//! pruned of expired windows when it grows, so a long run with many client addresses stays
//! bounded by the number of addresses active within one window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    admitted: u32,
}

#[derive(Debug)]
struct Windows {
    by_key: HashMap<(IpAddr, usize), Window>,
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 4096;

/// Fixed-window counters keyed by (client IP, route index).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    period: Duration,
    windows: Mutex<Windows>,
}

impl RateLimiter {
    pub(crate) fn new(period: Duration) -> Self {
        RateLimiter {
            period,
            windows: Mutex::new(Windows {
                by_key: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
        }
    }

    /// Counts one request of `ip` on `route` at `now`; false when it is over `limit`.
    pub(crate) fn admit(&self, ip: IpAddr, route: usize, limit: u32, now: Instant) -> bool {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // the counters are still usable.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.by_key.len() >= windows.prune_at {
            let period = self.period;
            windows
                .by_key
                .retain(|_, w| now.duration_since(w.opened) < period);
            windows.prune_at = (windows.by_key.len() * 2).max(MIN_PRUNE_AT);
        }
        let window = windows.by_key.entry((ip, route)).or_insert(Window {
            opened: now,
            admitted: 0,
        });
        if now.duration_since(window.opened) >= self.period {
            *window = Window {
                opened: now,
                admitted: 0,
            };
        }
        if window.admitted >= limit {
            return false;
        }
        window.admitted += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn admits_limit_requests_then_refuses() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let now = Instant::now();
        let admitted = (0..25).filter(|_| limiter.admit(A, 0, 20, now)).count();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn keys_are_per_ip_and_per_route() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(limiter.admit(A, 0, 1, now));
        assert!(!limiter.admit(A, 0, 1, now));
        assert!(limiter.admit(B, 0, 1, now));
        assert!(limiter.admit(A, 1, 1, now));
    }

    #[test]
    fn window_reopens_after_the_period() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(limiter.admit(A, 0, 1, start));
        assert!(!limiter.admit(A, 0, 1, start + Duration::from_secs(59)));
        assert!(limiter.admit(A, 0, 1, start + Duration::from_secs(60)));
    }

    #[test]
    fn expired_windows_are_pruned_when_the_map_grows() {
        let limiter = RateLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        for route in 0..MIN_PRUNE_AT {
            assert!(limiter.admit(A, route, 1, start));
        }
        assert!(limiter.admit(B, 0, 1, start + Duration::from_secs(61)));
        let windows = limiter
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(windows.by_key.len(), 1);
    }
}
