//! The open model's arrival clock: a sleep with sub-millisecond precision.
//!
//! tokio's timer wheel has a 1 ms resolution and rounds every deadline up to the next
//! tick, so an arrival generator sleeping on it starts arrivals up to ~1 ms late on
//! top of the runtime's own delay: a lateness p99 above 1 ms at any rate. On Linux
//! this sleeps on a `timerfd` (a high-resolution kernel timer, woken through tokio's
//! reactor like a socket) instead; elsewhere, or if the timerfd cannot be made, it
//! falls back to tokio's timer.
//!
//! The generator pairs it with a batch window (see `open::BATCH`): it never wakes
//! more often than once per window, so a high rate costs a few thousand wake-ups a
//! second, not one per arrival.

use std::time::Instant;

/// A reusable one-shot timer (one per arrival generator).
pub struct ArrivalTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl ArrivalTimer {
    /// Must be called inside a tokio runtime (the timerfd registers with its reactor).
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
            // `AsyncFd::new` is deprecated because an fd it does not own may be closed under
            // it; this one owns its `OwnedFd` (the replacement, `register`, is unsafe, and
            // the crate forbids unsafe code).
            #[allow(deprecated)]
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .map_err(std::io::Error::from)
            .and_then(tokio::io::unix::AsyncFd::new);
            match fd {
                Ok(fd) => ArrivalTimer { fd: Some(fd) },
                Err(e) => {
                    tracing::debug!(
                        "open model: no timerfd ({e}); arrivals use tokio's 1 ms timer"
                    );
                    ArrivalTimer { fd: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        ArrivalTimer {}
    }

    /// Whether sleeps are finer than tokio's 1 ms timer.
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Sleep until `at` (returns at once if it has passed). Cancel-safe: dropping the
    /// future leaves the timer reusable.
    pub async fn sleep_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            match precise_sleep(fd, at).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("open model: timerfd failed ({e}); back to tokio's timer");
                    self.fd = None;
                }
            }
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

impl Default for ArrivalTimer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
async fn precise_sleep(
    fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    at: Instant,
) -> std::io::Result<()> {
    use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
    let d = at.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Ok(());
    }
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: d.subsec_nanos().into(),
        },
    };
    // Re-arming resets the expiration count, so a stale wake-up from an earlier,
    // abandoned sleep only costs one empty read below.
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 8];
        match guard.try_io(|inner| {
            rustix::io::read(inner.get_ref(), &mut buf).map_err(std::io::Error::from)
        }) {
            Ok(r) => {
                // The expiration is consumed and the timer is not re-armed until the next
                // sleep: not readable until then (saves an empty read per sleep).
                guard.clear_ready();
                return r.map(|_| ());
            }
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleeps_until_the_deadline_and_is_reusable() {
        let mut t = ArrivalTimer::new();
        #[cfg(target_os = "linux")]
        assert!(t.is_precise(), "a timerfd is available on Linux");
        for _ in 0..3 {
            let at = Instant::now() + Duration::from_micros(300);
            t.sleep_until(at).await;
            assert!(Instant::now() >= at);
        }
        // A past deadline returns at once; an abandoned sleep leaves it usable.
        t.sleep_until(Instant::now() - Duration::from_millis(1))
            .await;
        let far = Instant::now() + Duration::from_secs(60);
        let abandoned = tokio::time::timeout(Duration::from_millis(5), t.sleep_until(far)).await;
        assert!(abandoned.is_err(), "a 60 s sleep does not end in 5 ms");
        let at = Instant::now() + Duration::from_micros(200);
        t.sleep_until(at).await;
        assert!(Instant::now() >= at);
    }
}
