//! The rate limiter shared by all replicas: the same GCRA as [`super::LocalRateLimiter`], with
//! its state in Redis so that every replica draws from one budget of Prove's 25 per second.
//!
//! Lua scripts read and move the key's state atomically, using Redis's own clock (`TIME`) so
//! that replica clocks never disagree:
//! - `RESERVE` gives a caller its slot, or sends it at once;
//! - a caller that had to wait runs `ADMIT` when it wakes: Prove's pause and the sliding-window
//!   backstop are checked then, against the real send time, as in the local limiter;
//! - `PAUSE` records Prove's pause signals (429, `X-RateLimit-Remaining: 0`), so one replica's
//!   429 stops them all, callers already waiting on other replicas included.
//!
//! When Redis cannot answer, each replica falls back to its local limiter at the full rate: the
//! service keeps working, possibly over the limit, and the fallback is counted in
//! `prove_gateway_rate_limit_redis_errors_total` for an alert.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::OutboundSettings;
use super::error::{Error, WaitLimit};
use super::rate_limit::{
    LocalRateLimiter, MAX_PAUSE, RateLimiter, SAFETY_MARGIN, WINDOW, nearer_limit,
};

/// Reserves the next slot. Returns `{outcome, wait, slot, shift}`: outcome 0 refused (the wait
/// passes `max_wait`), 1 sent now, 2 queued (wait until `slot`, taken when the key's pause
/// shift was `shift`), 3 the caller may not wait (its replica's queue is full). Times are
/// microseconds of Redis's clock; the keys expire once they no longer constrain anything.
///
/// KEYS: tat, pause, shift, sent. ARGV: emission, tolerance, max_wait, may_wait (0/1),
/// per_window, window, member (unique per caller, for the `sent` log).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local window = tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local start = tat - tolerance
if start < now then start = now end
local paused = tonumber(redis.call('GET', KEYS[2]) or 0)
if paused > start then start = paused end
local wait = start - now
if wait > max_wait then return {0, wait, 0, 0} end
local room = false
if wait == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
  room = redis.call('ZCARD', KEYS[4]) < tonumber(ARGV[5])
end
if not room and ARGV[4] ~= '1' then return {3, wait, 0, 0} end
local tat_next = math.max(tat, start) + emission
redis.call('SET', KEYS[1], string.format('%d', tat_next), 'PX', math.ceil((tat_next - now) / 1000) + 1000)
if room then
  redis.call('ZADD', KEYS[4], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[4], math.ceil(window / 1000) + 1000)
  return {1, 0, 0, 0}
end
return {2, wait, start, tonumber(redis.call('GET', KEYS[3]) or 0)}
";

/// Lets a queued caller go if its slot (moved by the pauses since it was given), the pause and
/// the sliding window allow. Returns `{outcome, wait}`: outcome 1 sent now, 0 not yet (and the
/// slot did not move), 2 a pause moved the slot, 3 the window is full (late wake-ups).
///
/// KEYS: pause, shift, sent. ARGV: slot, shift when given, per_window, window, member.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(ARGV[1])
local window = tonumber(ARGV[4])
local shift = tonumber(redis.call('GET', KEYS[2]) or 0)
local due = slot + math.max(0, shift - tonumber(ARGV[2]))
local paused = tonumber(redis.call('GET', KEYS[1]) or 0)
if paused > due then due = paused end
if due > now then
  if due > slot then return {2, due - now} end
  return {0, due - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {3, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[3], now, ARGV[5])
redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000) + 1000)
return {1, 0}
";

/// Pauses every replica until `now + ARGV[1]` microseconds (never shortening a longer pause).
/// Callers already queued, here or elsewhere, hold slots from the later of now and the current
/// pause on: the whole schedule moves by what this pause adds, so that they resume at its end
/// and keep their spacing, and the burst allowance starts empty then. (The local limiter knows
/// its queue and moves it exactly; here a caller due just before the pause may go at its end
/// closer than one interval to the next: the sliding window still holds the rate.)
///
/// KEYS: tat, pause, shift. ARGV: pause, tolerance. The shift total lives a day, far longer
/// than any caller waits.
const PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untilv = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[2]) or 0)
if current >= untilv then return 0 end
local shift = untilv - math.max(now, current)
local total = tonumber(redis.call('GET', KEYS[3]) or 0) + shift
redis.call('SET', KEYS[3], string.format('%d', total), 'PX', 86400000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local tat_next = math.max(tat + shift, untilv + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], string.format('%d', tat_next), 'PX', math.ceil((tat_next - now) / 1000) + 1000)
redis.call('SET', KEYS[2], string.format('%d', untilv), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
return 1
";

/// The Redis-backed limiter.
pub struct RedisRateLimiter {
    redis: ConnectionManager,
    reserve: redis::Script,
    admit: redis::Script,
    pause: redis::Script,
    emission: Duration,
    tolerance: Duration,
    per_window: usize,
    max_wait: Duration,
    queue_limit: usize,
    waiting: AtomicUsize,
    fallback: LocalRateLimiter,
}

/// The Redis keys of one client ID; one hash slot, so the scripts work on a cluster too.
struct Keys {
    tat: String,
    pause: String,
    shift: String,
    sent: String,
}

impl Keys {
    fn of(key: &str) -> Self {
        let name = |part: &str| format!("prove-gateway:ratelimit:{{{key}}}:{part}");
        Self {
            tat: name("tat"),
            pause: name("pause"),
            shift: name("shift"),
            sent: name("sent"),
        }
    }
}

/// A queued caller's slot, in Redis's clock.
#[derive(Clone, Copy)]
struct Slot {
    at_us: i64,
    shift_us: i64,
}

enum Reserved {
    Sent,
    Queued(Slot, Duration),
    TooLong(Duration),
    QueueFull(Duration),
}

enum Admitted {
    Sent,
    /// Not yet; `true` when a pause moved the slot.
    Wait(Duration, bool),
}

/// A place in this replica's queue, given back when dropped (the call went, was refused, or
/// was cancelled).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// Takes a place if one is free: checking and counting are one atomic step, so concurrent
    /// callers cannot all pass the bound together.
    fn take(waiting: &'a AtomicUsize, limit: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
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
            admit: redis::Script::new(ADMIT),
            pause: redis::Script::new(PAUSE),
            emission,
            tolerance: emission * settings.rate_limit_burst.saturating_sub(1),
            per_window: settings.rate_limit_rps.max(1) as usize,
            max_wait: settings.rate_limit_max_wait,
            queue_limit: settings.rate_limit_queue,
            waiting: AtomicUsize::new(0),
            fallback: LocalRateLimiter::new(settings),
        })
    }

    async fn reserve(
        &self,
        key: &str,
        max_wait: Duration,
        may_wait: bool,
        member: &str,
    ) -> redis::RedisResult<Reserved> {
        let keys = Keys::of(key);
        let (outcome, wait, at_us, shift_us): (i64, i64, i64, i64) = self
            .reserve
            .key(keys.tat)
            .key(keys.pause)
            .key(keys.shift)
            .key(keys.sent)
            .arg(micros(self.emission))
            .arg(micros(self.tolerance))
            .arg(micros(max_wait))
            .arg(u8::from(may_wait))
            .arg(self.per_window)
            .arg(micros(WINDOW))
            .arg(member)
            .invoke_async(&mut self.redis.clone())
            .await?;
        let wait = from_micros(wait);
        Ok(match outcome {
            1 => Reserved::Sent,
            2 => Reserved::Queued(Slot { at_us, shift_us }, wait),
            3 => Reserved::QueueFull(wait.max(self.emission)),
            _ => Reserved::TooLong(wait),
        })
    }

    async fn admit(&self, key: &str, slot: Slot, member: &str) -> redis::RedisResult<Admitted> {
        let keys = Keys::of(key);
        let (outcome, wait): (i64, i64) = self
            .admit
            .key(keys.pause)
            .key(keys.shift)
            .key(keys.sent)
            .arg(slot.at_us)
            .arg(slot.shift_us)
            .arg(self.per_window)
            .arg(micros(WINDOW))
            .arg(member)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match outcome {
            1 => Admitted::Sent,
            _ => Admitted::Wait(from_micros(wait), outcome == 2),
        })
    }

    /// Sleeps until the queued `slot` may go, asking Redis again at each wake-up.
    async fn wait_turn(
        &self,
        key: &str,
        slot: Slot,
        member: &str,
        mut wait: Duration,
        asked: Instant,
        deadline: Option<Instant>,
    ) -> Result<Duration, Error> {
        loop {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            match self.admit(key, slot, member).await {
                Ok(Admitted::Sent) => return Ok(asked.elapsed()),
                Ok(Admitted::Wait(next, moved)) => {
                    // Refused now rather than cut off at the deadline later.
                    let due = Instant::now().checked_add(next);
                    let passed = nearer_limit(asked.checked_add(self.max_wait), deadline)
                        .filter(|(end, _)| due.is_none_or(|due| due > *end));
                    if moved && let Some((_, limit)) = passed {
                        return Err(Error::RateLimited {
                            retry_after: next,
                            limit,
                        });
                    }
                    wait = next;
                }
                Err(error) => {
                    redis_failed(&error);
                    return self.fallback.acquire(key, deadline).await;
                }
            }
        }
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
    ) -> BoxFuture<'a, Result<Duration, Error>> {
        Box::pin(async move {
            let asked = Instant::now();
            let (max_wait, limit) = nearer_limit(asked.checked_add(self.max_wait), deadline)
                .map_or((self.max_wait, WaitLimit::MaxWait), |(end, limit)| {
                    (end.saturating_duration_since(asked), limit)
                });
            // The place is taken before asking Redis, so that callers whose answers are still
            // on the way count already; Redis is told whether this caller may wait at all.
            let place = QueuePlace::take(&self.waiting, self.queue_limit);
            let member = uuid::Uuid::new_v4().to_string();
            match self.reserve(key, max_wait, place.is_some(), &member).await {
                Ok(Reserved::Sent) => Ok(asked.elapsed()),
                Ok(Reserved::Queued(slot, wait)) => {
                    self.wait_turn(key, slot, &member, wait, asked, deadline)
                        .await
                }
                Ok(Reserved::TooLong(wait)) => Err(Error::RateLimited {
                    retry_after: wait,
                    limit,
                }),
                Ok(Reserved::QueueFull(wait)) => Err(Error::Overloaded { retry_after: wait }),
                Err(error) => {
                    redis_failed(&error);
                    drop(place);
                    self.fallback.acquire(key, deadline).await
                }
            }
        })
    }

    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.fallback.pause(key, until).await;
            let wait = until
                .saturating_duration_since(Instant::now())
                .min(MAX_PAUSE);
            if wait.is_zero() {
                return;
            }
            let keys = Keys::of(key);
            let result: redis::RedisResult<i64> = self
                .pause
                .key(keys.tat)
                .key(keys.pause)
                .key(keys.shift)
                .arg(micros(wait))
                .arg(micros(self.tolerance))
                .invoke_async(&mut self.redis.clone())
                .await;
            if let Err(error) = result {
                redis_failed(&error);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_place_is_taken_only_below_the_limit_and_given_back_on_drop() {
        let waiting = AtomicUsize::new(0);
        let first = QueuePlace::take(&waiting, 2);
        let second = QueuePlace::take(&waiting, 2);
        assert!(first.is_some() && second.is_some());
        assert_eq!(waiting.load(Ordering::SeqCst), 2);
        assert!(QueuePlace::take(&waiting, 2).is_none(), "the queue is full");
        assert_eq!(
            waiting.load(Ordering::SeqCst),
            2,
            "a refused caller counts nothing"
        );
        drop(first);
        assert_eq!(waiting.load(Ordering::SeqCst), 1);
        assert!(
            QueuePlace::take(&waiting, 2).is_some(),
            "a freed place is taken again"
        );
        assert!(
            QueuePlace::take(&AtomicUsize::new(0), 0).is_none(),
            "no queue at all"
        );
    }

    #[test]
    fn durations_go_to_redis_in_whole_microseconds_and_come_back_never_negative() {
        assert_eq!(micros(Duration::from_nanos(40_816_326)), 40_816);
        assert_eq!(micros(Duration::MAX), u64::MAX, "saturates, never wraps");
        assert_eq!(from_micros(1_500), Duration::from_micros(1_500));
        assert_eq!(
            from_micros(-3),
            Duration::ZERO,
            "Redis's clock went back: no wait"
        );
    }
}
