//! Keeps the gateway under Prove's rate limit (25 requests per second per client), token
//! requests included, and shares Prove's own view of it.
//!
//! The limiter is a trait so that a backend shared by all replicas can replace the in-process
//! [`LocalRateLimiter`]. The algorithm is GCRA (the "generic cell rate algorithm"): each key
//! keeps a theoretical arrival time (TAT); a request may go at `TAT - burst tolerance`, and each
//! admitted request pushes the TAT on by one emission interval. Because the wait is known
//! before waiting, a caller whose deadline comes first is refused at once instead of timing out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::{OutboundRequest, OutboundResponse};
use crate::config::OutboundSettings;
use crate::prove::ProveError;

/// Prove counts requests per second in windows we cannot see; running 2% below the configured
/// rate keeps arrival jitter of a few milliseconds from ever pushing a 26th request into one of
/// Prove's seconds, and still reaches 98% of the budget.
pub(super) const SAFETY_MARGIN: f64 = 1.02;

/// A rate limiter in front of every Prove request.
pub trait RateLimiter: Send + Sync + 'static {
    /// Waits until a request for `key` (an OAuth client ID) may go out and returns how long it
    /// waited. Refuses at once, without waiting, when the wait would end after `deadline` or
    /// exceed the configured maximum wait ([`ProveError::RateLimited`]), or when too many calls
    /// already wait ([`ProveError::Overloaded`]).
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Duration, ProveError>>;

    /// Prove said to send nothing for `key` until `until` (a 429's `Retry-After`, or
    /// `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`).
    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()>;
}

/// The sliding window the backstop counts in, a little over Prove's second for the same reason
/// as [`SAFETY_MARGIN`].
const WINDOW: Duration = Duration::from_millis(1020);

/// Per-key limiter state.
#[derive(Debug, Clone)]
struct KeyState {
    /// Theoretical arrival time of the next request at the nominal rate.
    tat: Instant,
    /// No request before this instant (Prove's own signal).
    paused_until: Option<Instant>,
    /// When the last `rps` permits were actually handed out. GCRA spaces the *scheduled*
    /// times; a busy machine can wake a waiter late so that it bunches up with the next one.
    /// This log is the backstop that holds the real send times to `rps` per window.
    sent: VecDeque<Instant>,
}

impl KeyState {
    fn new(now: Instant) -> Self {
        Self {
            tat: now,
            paused_until: None,
            sent: VecDeque::new(),
        }
    }
}

/// The in-process GCRA limiter: exact for one replica.
#[derive(Debug)]
pub struct LocalRateLimiter {
    emission: Duration,
    tolerance: Duration,
    per_window: usize,
    max_wait: Duration,
    queue_limit: usize,
    waiting: Arc<AtomicUsize>,
    keys: Mutex<HashMap<String, KeyState>>,
}

impl LocalRateLimiter {
    /// A limiter with the rate, burst, maximum wait and queue bound of `settings`.
    pub fn new(settings: &OutboundSettings) -> Self {
        let rps = f64::from(settings.rate_limit_rps.max(1));
        let emission = Duration::from_secs_f64(SAFETY_MARGIN / rps);
        Self {
            emission,
            tolerance: emission * settings.rate_limit_burst.saturating_sub(1),
            per_window: settings.rate_limit_rps.max(1) as usize,
            max_wait: settings.rate_limit_max_wait,
            queue_limit: settings.rate_limit_queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// How many calls wait for a permit right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Reserves the next slot for `key`, or says why not. The reservation is made under the
    /// lock, so concurrent callers get distinct slots; a caller that must wait joins the queue
    /// under the same lock, so that concurrent callers cannot all pass the bound's check before
    /// any of them counts.
    fn reserve(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<(Instant, Option<Waiting>), ProveError> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let state = keys
            .entry(key.to_owned())
            .or_insert_with(|| KeyState::new(now));
        let base = state.tat.max(now);
        let mut start = base.checked_sub(self.tolerance).unwrap_or(now).max(now);
        if let Some(paused) = state.paused_until {
            start = start.max(paused);
        }
        let wait = start - now;
        if !wait.is_zero() {
            if self.waiting.load(Ordering::Relaxed) >= self.queue_limit {
                return Err(ProveError::Overloaded { retry_after: wait });
            }
            let too_late = deadline.is_some_and(|d| start > d);
            if wait > self.max_wait || too_late {
                return Err(ProveError::RateLimited { retry_after: wait });
            }
        }
        state.tat = base.max(start) + self.emission;
        let waiting = (!wait.is_zero()).then(|| Waiting::enter(&self.waiting));
        Ok((start, waiting))
    }

    /// Records a send at `now` if the window allows it; otherwise says when to look again.
    fn admit(&self, key: &str, now: Instant) -> Result<(), Instant> {
        let mut keys = self.keys.lock();
        let state = keys
            .entry(key.to_owned())
            .or_insert_with(|| KeyState::new(now));
        while state
            .sent
            .front()
            .is_some_and(|oldest| *oldest + WINDOW <= now)
        {
            state.sent.pop_front();
        }
        if state.sent.len() >= self.per_window {
            return Err(state.sent.front().map_or(now, |oldest| *oldest + WINDOW));
        }
        state.sent.push_back(now);
        Ok(())
    }
}

/// Counts a waiting caller for as long as it waits, cancelled or not.
pub(super) struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    pub(super) fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RateLimiter for LocalRateLimiter {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Duration, ProveError>> {
        Box::pin(async move {
            let asked = Instant::now();
            let (mut start, _waiting) = self.reserve(key, deadline)?;
            loop {
                // Only a real wait sleeps: tokio rounds any sleep up to its next 1 ms tick,
                // which would add a millisecond to every call that needs no wait at all.
                if start > Instant::now() {
                    tokio::time::sleep_until(start).await;
                }
                match self.admit(key, Instant::now()) {
                    Ok(()) => return Ok(asked.elapsed()),
                    Err(retry_at) => start = retry_at,
                }
            }
        })
    }

    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut keys = self.keys.lock();
            let state = keys
                .entry(key.to_owned())
                .or_insert_with(|| KeyState::new(until));
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        })
    }
}

/// Reads Prove's rate-limit signals from an answer: when to resume sending, if at all.
///
/// A 429 pauses for `Retry-After` (seconds or an HTTP date; one second when absent);
/// `X-RateLimit-Remaining: 0` pauses until `X-RateLimit-Reset` (Unix seconds).
pub fn pause_from(response: &OutboundResponse) -> Option<Instant> {
    let now = Instant::now();
    if response.status == 429 {
        let wait = retry_after(&response.headers).unwrap_or(Duration::from_secs(1));
        return Some(now + wait);
    }
    let remaining = header_str(&response.headers, "x-ratelimit-remaining")?;
    if remaining.trim() != "0" {
        return None;
    }
    let reset: u64 = header_str(&response.headers, "x-ratelimit-reset")?
        .trim()
        .parse()
        .ok()?;
    let wait = (UNIX_EPOCH + Duration::from_secs(reset))
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    // A reset further away than a minute is not a per-second window; don't stall on it.
    (!wait.is_zero() && wait <= Duration::from_secs(60)).then_some(now + wait)
}

/// Parses `Retry-After`: delta seconds or an HTTP date (RFC 9110).
pub fn retry_after(headers: &::http::HeaderMap) -> Option<Duration> {
    let raw = header_str(headers, "retry-after")?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(raw).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn header_str<'h>(headers: &'h ::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// Layer for [`RateLimit`].
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<dyn RateLimiter>,
}

impl RateLimitLayer {
    /// Limits with `limiter`.
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// Takes a permit before each attempt and feeds Prove's rate-limit signals back.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<dyn RateLimiter>,
}

impl<S> tower::Service<OutboundRequest> for RateLimit<S>
where
    S: tower::Service<OutboundRequest, Response = OutboundResponse, Error = ProveError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = OutboundResponse;
    type Error = ProveError;
    type Future = BoxFuture<'static, Result<OutboundResponse, ProveError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProveError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: OutboundRequest) -> Self::Future {
        // The clone that was driven to readiness serves this call; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let key = request.client_id.clone();
            let result = limiter.acquire(&key, request.deadline).await;
            match &result {
                Ok(waited) => crate::telemetry::rate_limit_waited(*waited),
                Err(error) => crate::telemetry::rate_limit_rejected(error),
            }
            result?;
            let response = inner.call(request).await?;
            if let Some(until) = pause_from(&response) {
                limiter.pause(&key, until).await;
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limiter(rps: u32, burst: u32, max_wait: Duration, queue: usize) -> LocalRateLimiter {
        LocalRateLimiter::new(&OutboundSettings {
            rate_limit_rps: rps,
            rate_limit_burst: burst,
            rate_limit_max_wait: max_wait,
            rate_limit_queue: queue,
            ..OutboundSettings::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn permits_are_spaced_by_the_emission_interval() {
        let limiter = limiter(25, 1, Duration::from_secs(60), 100);
        let start = Instant::now();
        let mut grants = Vec::new();
        for _ in 0..50 {
            limiter.acquire("client", None).await.unwrap();
            grants.push(Instant::now() - start);
        }
        // 25 per second with the 2% margin: 40.8 ms apart; 50 permits span 49 intervals.
        let spacing = grants[1] - grants[0];
        assert!(spacing >= Duration::from_millis(40), "{spacing:?}");
        let in_first_second = grants
            .iter()
            .filter(|g| **g < Duration::from_secs(1))
            .count();
        assert_eq!(in_first_second, 25);
    }

    #[tokio::test(start_paused = true)]
    async fn late_wakeups_never_put_more_than_the_rate_into_one_window() {
        let limiter = limiter(25, 1, Duration::from_secs(60), 100);
        let start = Instant::now();
        // Simulate a waiter woken 30 ms late by taking a permit, then stalling.
        let mut sent = Vec::new();
        for i in 0..60 {
            limiter.acquire("k", None).await.unwrap();
            sent.push(Instant::now());
            if i % 10 == 0 {
                tokio::time::advance(Duration::from_millis(30)).await;
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 25,
                "{in_window} permits within a second of {:?}",
                *t - start
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_limited_independently() {
        let limiter = limiter(1, 1, Duration::from_secs(60), 100);
        limiter.acquire("a", None).await.unwrap();
        let waited = limiter.acquire("b", None).await.unwrap();
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_refused_at_once() {
        let limiter = limiter(1, 1, Duration::from_secs(60), 100);
        limiter.acquire("k", None).await.unwrap();
        let before = Instant::now();
        let err = limiter
            .acquire("k", Some(before + Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProveError::RateLimited { retry_after } if retry_after > Duration::from_millis(900))
        );
        assert_eq!(Instant::now(), before, "refused without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_sheds_the_call() {
        let limiter = Arc::new(limiter(1, 1, Duration::from_secs(60), 1));
        limiter.acquire("k", None).await.unwrap();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire("k", None).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(limiter.waiting(), 1);
        let err = limiter.acquire("k", None).await.unwrap_err();
        assert!(matches!(err, ProveError::Overloaded { .. }));
        waiter.await.unwrap().unwrap();
        assert_eq!(limiter.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_permit_until_it_ends() {
        let limiter = limiter(25, 5, Duration::from_secs(60), 100);
        let start = Instant::now();
        limiter.pause("k", start + Duration::from_secs(2)).await;
        limiter.acquire("k", None).await.unwrap();
        assert!(Instant::now() - start >= Duration::from_secs(2));
    }

    /// `threads` OS threads, each starting `per_thread` callers one after another while holding
    /// at most `held` of them waiting (dropping, that is cancelling, the oldest to make room),
    /// so that together they keep the queue at its bound. Each caller that queues reads the
    /// queue's length at once: the most any of them saw.
    fn most_seen_waiting(
        limiter: &LocalRateLimiter,
        threads: usize,
        per_thread: usize,
        held: usize,
    ) -> usize {
        let start = std::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                            .unwrap();
                        let mut waiting = VecDeque::new();
                        let mut most = 0;
                        start.wait();
                        runtime.block_on(async {
                            for _ in 0..per_thread {
                                let mut caller = limiter.acquire("k", None);
                                match futures::poll!(&mut caller) {
                                    Poll::Pending => {
                                        most = most.max(limiter.waiting());
                                        waiting.push_back(caller);
                                        if waiting.len() > held {
                                            waiting.pop_front();
                                        }
                                    }
                                    // Shed, or the very first caller, which goes at once.
                                    Poll::Ready(Err(ProveError::Overloaded { .. }) | Ok(_)) => {}
                                    Poll::Ready(other) => panic!("{other:?}"),
                                }
                            }
                        });
                        most
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap())
                .max()
                .unwrap_or(0)
        })
    }

    #[test]
    fn concurrent_callers_never_queue_more_than_the_bound() {
        // Eight threads that together want 24 waiting callers, on a queue of 10. Statistical:
        // the overshoot was a race between threads (a caller passed the check, then counted
        // itself after the lock was released); before the fix 8 of 10 runs saw 11 or 12
        // callers waiting. Since the fix, checking and counting are one step under the lock.
        let limiter = limiter(1, 1, Duration::from_secs(1_000_000), 10);
        let most = most_seen_waiting(&limiter, 8, 100_000, 3);
        assert!(most <= 10, "{most} callers waited on a queue of 10");
        assert_eq!(limiter.waiting(), 0, "cancelled callers leave the queue");
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let mut headers = ::http::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        let later = SystemTime::now() + Duration::from_secs(30);
        headers.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let parsed = retry_after(&headers).unwrap();
        assert!(parsed > Duration::from_secs(28) && parsed <= Duration::from_secs(30));
    }

    #[test]
    fn remaining_zero_pauses_until_reset() {
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2;
        let mut headers = ::http::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let response = OutboundResponse {
            status: 200,
            headers,
            body: bytes::Bytes::new(),
        };
        let until = pause_from(&response).unwrap();
        assert!(until > Instant::now() + Duration::from_millis(900));
    }
}
