//! The rate limiter shared by all replicas: the same GCRA as [`super::LocalRateLimiter`], with
//! its state in Redis so that every replica draws from one budget of Prove's 25 per second.
//!
//! One Lua script per permit reads and moves the key's theoretical arrival time atomically,
//! using Redis's own clock (`TIME`) so that replica clocks never disagree. Prove's pause signals
//! (429, `X-RateLimit-Remaining: 0`) are written to Redis too, so one replica's 429 stops them
//! all. When Redis cannot answer, each replica falls back to its local limiter at the full
//! rate: the service keeps working, possibly over the limit, and the fallback is counted in
//! `prove_gateway_rate_limit_redis_errors_total` for an alert.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::rate_limit::{LocalRateLimiter, RateLimiter, SAFETY_MARGIN, Waiting};
use crate::config::OutboundSettings;
use crate::prove::ProveError;
use crate::prove::error::WaitLimit;

/// Reserves the next slot: returns `{admitted, wait_us}`. Times are microseconds of Redis's
/// clock; the keys expire once they no longer constrain anything.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local start = tat - tolerance
if start < now then start = now end
local paused = tonumber(redis.call('GET', KEYS[2]) or 0)
if paused > start then start = paused end
local wait = start - now
if wait > max_wait then return {0, wait} end
local tat_next = math.max(tat, start) + emission
redis.call('SET', KEYS[1], string.format('%d', tat_next), 'PX', math.ceil((tat_next - now) / 1000) + 1000)
return {1, wait}
";

/// Pauses every replica until `now + ARGV[1]` microseconds (never shortening a longer pause).
const PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untilv = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if current < untilv then
  redis.call('SET', KEYS[1], string.format('%d', untilv), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
";

/// The Redis-backed limiter.
pub struct RedisRateLimiter {
    redis: ConnectionManager,
    reserve: redis::Script,
    pause: redis::Script,
    emission_us: u64,
    tolerance_us: u64,
    max_wait: Duration,
    queue_limit: usize,
    waiting: Arc<AtomicUsize>,
    fallback: LocalRateLimiter,
}

impl RedisRateLimiter {
    /// A limiter on the Redis at `url`. The connection is made lazily and re-made after
    /// failures, so the gateway starts (on its local limiter) even while Redis is down.
    pub fn new(url: &SecretString, settings: &OutboundSettings) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            // A permit must not wait on a slow Redis: past this the local limiter decides.
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let redis = ConnectionManager::new_lazy_with_config(client, config)?;
        let rps = f64::from(settings.rate_limit_rps.max(1));
        let emission = Duration::from_secs_f64(SAFETY_MARGIN / rps);
        Ok(Self {
            redis,
            reserve: redis::Script::new(RESERVE),
            pause: redis::Script::new(PAUSE),
            emission_us: emission.as_micros() as u64,
            tolerance_us: (emission * settings.rate_limit_burst.saturating_sub(1)).as_micros()
                as u64,
            max_wait: settings.rate_limit_max_wait,
            queue_limit: settings.rate_limit_queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            fallback: LocalRateLimiter::new(settings),
        })
    }

    fn keys(key: &str) -> (String, String) {
        (
            format!("prove-gateway:ratelimit:{{{key}}}:tat"),
            format!("prove-gateway:ratelimit:{{{key}}}:pause"),
        )
    }

    async fn reserve(&self, key: &str, max_wait: Duration) -> redis::RedisResult<(bool, Duration)> {
        let (tat, pause) = Self::keys(key);
        let (admitted, wait_us): (i64, i64) = self
            .reserve
            .key(tat)
            .key(pause)
            .arg(self.emission_us)
            .arg(self.tolerance_us)
            .arg(max_wait.as_micros() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok((admitted == 1, Duration::from_micros(wait_us.max(0) as u64)))
    }
}

fn redis_failed(error: &redis::RedisError) {
    crate::telemetry::rate_limit_redis_failed(error);
}

impl RateLimiter for RedisRateLimiter {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Duration, ProveError>> {
        Box::pin(async move {
            let asked = Instant::now();
            let (max_wait, limit) = match deadline {
                Some(deadline) if deadline.saturating_duration_since(asked) <= self.max_wait => (
                    deadline.saturating_duration_since(asked),
                    WaitLimit::Deadline,
                ),
                _ => (self.max_wait, WaitLimit::MaxWait),
            };
            if self.waiting.load(Ordering::Relaxed) >= self.queue_limit {
                return Err(ProveError::Overloaded {
                    retry_after: Duration::from_micros(self.emission_us),
                });
            }
            match self.reserve(key, max_wait).await {
                Ok((true, wait)) => {
                    if !wait.is_zero() {
                        let _waiting = Waiting::enter(&self.waiting);
                        tokio::time::sleep(wait).await;
                    }
                    Ok(asked.elapsed())
                }
                Ok((false, wait)) => Err(ProveError::RateLimited {
                    retry_after: wait,
                    limit,
                }),
                Err(error) => {
                    redis_failed(&error);
                    self.fallback.acquire(key, deadline).await
                }
            }
        })
    }

    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.fallback.pause(key, until).await;
            let wait = until.saturating_duration_since(Instant::now());
            let (_, pause_key) = Self::keys(key);
            let result: redis::RedisResult<i64> = self
                .pause
                .key(pause_key)
                .arg(wait.as_micros() as u64)
                .invoke_async(&mut self.redis.clone())
                .await;
            if let Err(error) = result {
                redis_failed(&error);
            }
        })
    }
}
