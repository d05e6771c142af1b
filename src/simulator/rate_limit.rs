//! Prove's rate limit: N requests per second per client ID (25 by default), answered with
//! 429 / 8018 above it, and the `X-RateLimit-*` / `Retry-After` headers.
//!
//! A fixed one-second window per client, aligned to the clock's Unix second, is the simplest
//! reading of "25 requests per second" and makes `X-RateLimit-Reset` an exact epoch second. A
//! client that bursts across a second boundary can therefore get up to 2N through in a short
//! span, which real limiters may not allow; clients should not rely on either.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use parking_lot::Mutex;

use super::clock::epoch_secs;

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix second at which the current window ends.
    pub reset: u64,
    /// Seconds a refused client must wait (`Retry-After`).
    pub retry_after: u64,
}

impl Decision {
    /// Writes the `X-RateLimit-*` headers, plus `Retry-After` on a refusal. The window is one
    /// second long, so `Retry-After` is 1 (the docs require a whole number of seconds, and 0
    /// would invite an immediate retry), or longer while a throttle is set.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: u64| {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        };
        set("x-ratelimit-limit", u64::from(self.limit));
        set("x-ratelimit-remaining", u64::from(self.remaining));
        set("x-ratelimit-reset", self.reset);
        if !self.allowed {
            set("retry-after", self.retry_after);
        }
    }
}

/// Per-client fixed-window counters; the limit can change at run time.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rps: AtomicU32,
    windows: Mutex<HashMap<String, (u64, u32)>>,
    /// Until then every client is refused, as Prove does when it asks for a longer pause.
    throttled_until: Mutex<Option<SystemTime>>,
}

impl RateLimiter {
    pub fn new(rps: u32) -> Self {
        Self {
            rps: AtomicU32::new(rps),
            windows: Mutex::new(HashMap::new()),
            throttled_until: Mutex::new(None),
        }
    }

    /// Refuses every request until `until`, with `Retry-After` counting down to it.
    pub fn throttle(&self, until: SystemTime) {
        *self.throttled_until.lock() = Some(until);
    }

    /// Sets requests per second per client; 0 disables limiting (and its headers).
    pub fn set_rps(&self, rps: u32) {
        self.rps.store(rps, Ordering::Relaxed);
    }

    pub fn rps(&self) -> u32 {
        self.rps.load(Ordering::Relaxed)
    }

    /// Counts a request by `client_id`, unless it is refused; `None` when limiting is off.
    pub fn check(&self, client_id: &str, now: SystemTime) -> Option<Decision> {
        let limit = self.rps();
        let throttled = *self.throttled_until.lock();
        if let Some(wait) = throttled.and_then(|until| until.duration_since(now).ok()) {
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Some(Decision {
                allowed: false,
                limit: limit.max(1),
                remaining: 0,
                reset: epoch_secs(now) + retry_after,
                retry_after,
            });
        }
        if limit == 0 {
            return None;
        }
        let second = epoch_secs(now);
        let mut windows = self.windows.lock();
        // Forget clients idle since an earlier second so the map stays small.
        windows.retain(|_, (window, _)| *window >= second);
        let (window, count) = windows.entry(client_id.to_owned()).or_insert((second, 0));
        if *window != second {
            *window = second;
            *count = 0;
        }
        let allowed = *count < limit;
        if allowed {
            *count += 1;
        }
        Some(Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(*count),
            reset: second + 1,
            retry_after: 1,
        })
    }
}
