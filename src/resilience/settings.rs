//! The settings of the outbound path: timeouts, the rate limiter and retries.
//!
//! The defaults live here once: `config` uses them as the flags' defaults and `Default` builds
//! from them, so `--help`, the README and the tests cannot disagree.

use std::time::Duration;

use secrecy::SecretString;

/// Default time allowed to open a connection to Prove.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time allowed for one HTTP attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default requests per second (Prove allows 25 per client).
pub const RATE_LIMIT_RPS: u32 = 25;
/// Default burst: 1, so no second of Prove's ever sees more than the rate.
pub const RATE_LIMIT_BURST: u32 = 1;
/// Default longest wait for the rate limiter.
pub const RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Default most calls waiting for the rate limiter at once.
pub const RATE_LIMIT_QUEUE: usize = 2048;
/// Default most HTTP attempts per request.
pub const RETRY_MAX_ATTEMPTS: u32 = 5;
/// Default first backoff.
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);
/// Default longest backoff.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// Limits of the outbound path to Prove (each is documented on its flag in `config`).
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one HTTP attempt (the caller's deadline bounds the whole call).
    pub request_timeout: Duration,
    /// Requests per second, token requests included.
    pub rate_limit_rps: u32,
    /// Requests that may go out back to back before the rate applies.
    pub rate_limit_burst: u32,
    /// Longest a call waits for the rate limiter.
    pub rate_limit_max_wait: Duration,
    /// Most calls that may wait for the rate limiter at once.
    pub rate_limit_queue: usize,
    /// Redis URL of a limiter shared by all replicas (it may hold a password).
    pub rate_limit_redis_url: Option<SecretString>,
    /// Most HTTP attempts per request (1: no retries).
    pub retry_max_attempts: u32,
    /// First backoff before a retry.
    pub retry_base_delay: Duration,
    /// Longest backoff between two attempts.
    pub retry_max_delay: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            rate_limit_rps: RATE_LIMIT_RPS,
            rate_limit_burst: RATE_LIMIT_BURST,
            rate_limit_max_wait: RATE_LIMIT_MAX_WAIT,
            rate_limit_queue: RATE_LIMIT_QUEUE,
            rate_limit_redis_url: None,
            retry_max_attempts: RETRY_MAX_ATTEMPTS,
            retry_base_delay: RETRY_BASE_DELAY,
            retry_max_delay: RETRY_MAX_DELAY,
        }
    }
}
