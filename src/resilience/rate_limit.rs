//! Keeps the gateway under Prove's rate limit (25 requests per second per client), token
//! requests included, and shares Prove's own view of it.
//!
//! The limiter is a trait so that a backend shared by all replicas can replace the in-process
//! [`LocalRateLimiter`]. The algorithm is GCRA (the "generic cell rate algorithm"): each key
//! keeps a theoretical arrival time (TAT); a request may go at `TAT - burst tolerance`, and each
//! admitted request pushes the TAT on by one emission interval. Because the wait is known
//! before waiting, a caller whose deadline comes first is refused at once instead of timing out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::OutboundSettings;
use super::error::{Error, WaitLimit};
use super::{OutboundRequest, OutboundResponse};

mod signals;
pub use signals::{pause_from, retry_after};

/// Prove counts requests per second in windows we cannot see; running 2% below the configured
/// rate keeps arrival jitter of a few milliseconds from ever pushing a 26th request into one of
/// Prove's seconds, and still reaches 98% of the budget.
pub(super) const SAFETY_MARGIN: f64 = 1.02;

/// A rate limiter in front of every Prove request.
pub trait RateLimiter: Send + Sync + 'static {
    /// Waits until a request for `key` (an OAuth client ID) may go out and returns how long it
    /// waited. Refuses at once, without waiting, when the wait would end after `deadline` or
    /// exceed the configured maximum wait ([`Error::RateLimited`]), or when too many calls
    /// already wait ([`Error::Overloaded`]). A caller already waiting whose turn a pause
    /// moves past those limits is refused as well, as soon as it learns of the move.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Duration, Error>>;

    /// Prove said to send nothing for `key` until `until` (a 429's `Retry-After`, or
    /// `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`). Callers already waiting are held
    /// too, and go after the pause at their usual spacing, not all at once.
    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()>;
}

/// The sliding window the backstop counts in, a little over Prove's second for the same reason
/// as [`SAFETY_MARGIN`].
pub(super) const WINDOW: Duration = Duration::from_millis(1020);

/// The longest pause Prove's answers can impose (longer `Retry-After`s are cut to it). Prove's
/// windows are one second; a pause of a minute already covers any throttling it plausibly
/// asks for, while a bogus header (`Retry-After: 18446744073709551615`) would otherwise stop
/// every call for good, or overflow `Instant` arithmetic.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(60);

/// A waiting caller's place in its key's schedule.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The send time it was given.
    at: Instant,
    /// The key's [`KeyState::shift`] then: pauses since have moved the slot by the difference.
    shift_seen: Duration,
}

/// Per-key limiter state.
#[derive(Debug)]
struct KeyState {
    /// Theoretical arrival time of the next request at the nominal rate.
    tat: Instant,
    /// No request before this instant (Prove's own signal).
    paused_until: Option<Instant>,
    /// How far Prove's pauses have moved this key's schedule, in total.
    shift: Duration,
    /// The callers waiting for this key, by ticket number.
    waiting: BTreeMap<u64, Slot>,
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
            shift: Duration::ZERO,
            waiting: BTreeMap::new(),
            sent: VecDeque::new(),
        }
    }

    /// `slot`'s send time, moved by the pauses since it was given.
    fn moved(&self, slot: &Slot) -> Instant {
        slot.at + self.shift.saturating_sub(slot.shift_seen)
    }

    /// When the caller holding `slot` may go, as far as the schedule and Prove's pause go.
    fn due(&self, slot: &Slot) -> Instant {
        let moved = self.moved(slot);
        self.paused_until.map_or(moved, |paused| moved.max(paused))
    }

    /// Forgets sends that left the window; says whether one more fits in it.
    fn window_has_room(&mut self, now: Instant, per_window: usize) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|oldest| *oldest + WINDOW <= now)
        {
            self.sent.pop_front();
        }
        self.sent.len() < per_window
    }

    /// When the window has room again (after [`Self::window_has_room`] said it has none).
    fn window_opens(&self, now: Instant) -> Instant {
        self.sent.front().map_or(now, |oldest| *oldest + WINDOW)
    }
}

/// Everything behind the limiter's one lock.
#[derive(Debug)]
struct Keys {
    by_key: HashMap<String, KeyState>,
    /// Callers waiting, all keys together (the bound is [`LocalRateLimiter::queue_limit`]).
    waiting: usize,
    next_ticket: u64,
}

/// The in-process GCRA limiter: exact for one replica.
#[derive(Debug)]
pub struct LocalRateLimiter {
    emission: Duration,
    tolerance: Duration,
    per_window: usize,
    max_wait: Duration,
    queue_limit: usize,
    keys: Mutex<Keys>,
}

/// What a waiting caller does next.
enum Step {
    Go,
    WaitUntil(Instant),
    Refuse(Error),
}

/// A caller's place in the queue; dropping it (the call was cancelled, or refused) gives the
/// place up.
struct Ticket<'a> {
    limiter: &'a LocalRateLimiter,
    key: &'a str,
    number: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut keys = self.limiter.keys.lock();
        let Keys {
            by_key, waiting, ..
        } = &mut *keys;
        let held = by_key
            .get_mut(self.key)
            .is_some_and(|state| state.waiting.remove(&self.number).is_some());
        if held {
            *waiting -= 1;
        }
    }
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
            keys: Mutex::new(Keys {
                by_key: HashMap::new(),
                waiting: 0,
                next_ticket: 0,
            }),
        }
    }

    /// How many calls wait for a permit right now.
    pub fn waiting(&self) -> usize {
        self.keys.lock().waiting
    }

    /// The limit a caller that asked at `asked` would pass by waiting until `at`, if any: the
    /// nearer of its deadline and the maximum wait.
    fn limit_passed(
        &self,
        at: Instant,
        asked: Instant,
        deadline: Option<Instant>,
    ) -> Option<WaitLimit> {
        nearer_limit(asked.checked_add(self.max_wait), deadline)
            .filter(|(end, _)| at > *end)
            .map(|(_, limit)| limit)
    }

    /// Takes a permit for `key` at once (`None`), or a place in the queue, or says why not. It
    /// all happens under the lock: concurrent callers get distinct slots, and a caller that
    /// must wait counts itself in the same step as it checks the queue's bound.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Result<Option<Ticket<'a>>, Error> {
        let mut keys = self.keys.lock();
        let Keys {
            by_key,
            waiting,
            next_ticket,
        } = &mut *keys;
        let state = by_key
            .entry(key.to_owned())
            .or_insert_with(|| KeyState::new(now));
        let base = state.tat.max(now);
        let mut start = base.checked_sub(self.tolerance).unwrap_or(now).max(now);
        if let Some(paused) = state.paused_until {
            start = start.max(paused);
        }
        if start <= now && state.window_has_room(now, self.per_window) {
            state.tat = base + self.emission;
            state.sent.push_back(now);
            return Ok(None);
        }
        // This caller waits: for its slot, or for room in the window after late wake-ups.
        let ready = if start > now {
            start
        } else {
            state.window_opens(now)
        };
        let wait = ready - now;
        if *waiting >= self.queue_limit {
            return Err(Error::Overloaded { retry_after: wait });
        }
        if let Some(limit) = self.limit_passed(start, now, deadline) {
            return Err(Error::RateLimited {
                retry_after: wait,
                limit,
            });
        }
        state.tat = base.max(start) + self.emission;
        let number = *next_ticket;
        *next_ticket += 1;
        state.waiting.insert(
            number,
            Slot {
                at: start,
                shift_seen: state.shift,
            },
        );
        *waiting += 1;
        Ok(Some(Ticket {
            limiter: self,
            key,
            number,
        }))
    }

    /// Sends the holder of `ticket` now if its slot has come, Prove's pause is over and the
    /// window has room; else says until when to sleep, or that a pause moved its slot further
    /// than it can wait.
    fn next_step(&self, ticket: &Ticket<'_>, asked: Instant, deadline: Option<Instant>) -> Step {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let Keys {
            by_key, waiting, ..
        } = &mut *keys;
        // Only the ticket itself removes its slot, and keys are never removed.
        let Some(state) = by_key.get_mut(ticket.key) else {
            return Step::Go;
        };
        let Some(slot) = state.waiting.get(&ticket.number).copied() else {
            return Step::Go;
        };
        let due = state.due(&slot);
        if due > now {
            // A slot only moves for a pause: refused now rather than cut off at the deadline.
            if due > slot.at
                && let Some(limit) = self.limit_passed(due, asked, deadline)
            {
                return Step::Refuse(Error::RateLimited {
                    retry_after: due - now,
                    limit,
                });
            }
            return Step::WaitUntil(due);
        }
        if !state.window_has_room(now, self.per_window) {
            return Step::WaitUntil(state.window_opens(now));
        }
        state.sent.push_back(now);
        state.waiting.remove(&ticket.number);
        *waiting -= 1;
        Step::Go
    }
}

/// The nearer of the end of the maximum wait (`None`: too far to represent) and the caller's
/// deadline, and which one it is. A tie goes to the deadline, the caller's own limit.
pub(super) fn nearer_limit(
    max_wait_end: Option<Instant>,
    deadline: Option<Instant>,
) -> Option<(Instant, WaitLimit)> {
    match (deadline, max_wait_end) {
        (Some(deadline), Some(end)) if end < deadline => Some((end, WaitLimit::MaxWait)),
        (Some(deadline), _) => Some((deadline, WaitLimit::Deadline)),
        (None, end) => end.map(|end| (end, WaitLimit::MaxWait)),
    }
}

impl RateLimiter for LocalRateLimiter {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Duration, Error>> {
        Box::pin(async move {
            let asked = Instant::now();
            let Some(ticket) = self.reserve(key, deadline, asked)? else {
                return Ok(Duration::ZERO);
            };
            loop {
                match self.next_step(&ticket, asked, deadline) {
                    Step::Go => return Ok(asked.elapsed()),
                    // Only a real wait sleeps (`WaitUntil` is always in the future): tokio
                    // rounds any sleep up to its next 1 ms tick, which would add a millisecond
                    // to every call that needs no wait at all.
                    Step::WaitUntil(at) => tokio::time::sleep_until(at).await,
                    Step::Refuse(error) => return Err(error),
                }
            }
        })
    }

    /// Holds every caller of `key` until `until`, those already waiting included. The queue
    /// keeps its order and spacing: it moves as a whole so that its first caller goes at the
    /// pause's end, and the burst allowance starts empty then, so nothing bunches up at the
    /// end of the pause.
    fn pause<'a>(&'a self, key: &'a str, until: Instant) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let now = Instant::now();
            let until = now
                .checked_add(MAX_PAUSE)
                .map_or(until, |max| until.min(max));
            if until <= now {
                return;
            }
            let mut keys = self.keys.lock();
            let state = keys
                .by_key
                .entry(key.to_owned())
                .or_insert_with(|| KeyState::new(now));
            if state.paused_until.is_some_and(|paused| paused >= until) {
                return;
            }
            let first = state.waiting.values().map(|slot| state.moved(slot)).min();
            let shift = first.map_or(Duration::ZERO, |first| {
                until.saturating_duration_since(first)
            });
            state.shift += shift;
            state.tat = (state.tat + shift).max(until + self.tolerance);
            state.paused_until = Some(until);
        })
    }
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
    S: tower::Service<OutboundRequest, Response = OutboundResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = OutboundResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<OutboundResponse, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
                Err(error) => crate::telemetry::rate_limit_rejected(error.rejection_reason()),
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
            matches!(err, Error::RateLimited { retry_after, .. } if retry_after > Duration::from_millis(900))
        );
        assert_eq!(Instant::now(), before, "refused without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_maximum_wait_is_refused_as_max_wait() {
        let limiter = limiter(1, 1, Duration::from_millis(500), 100);
        limiter.acquire("k", None).await.unwrap();
        let far = Some(Instant::now() + Duration::from_secs(60));
        let err = limiter.acquire("k", far).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    limit: WaitLimit::MaxWait,
                    ..
                }
            ),
            "{err:?}"
        );
        // With a deadline nearer than the maximum wait, the deadline is what the wait passes.
        let near = Some(Instant::now() + Duration::from_millis(100));
        let err = limiter.acquire("k", near).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    limit: WaitLimit::Deadline,
                    ..
                }
            ),
            "{err:?}"
        );
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
        assert!(matches!(err, Error::Overloaded { .. }));
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

    /// Starts `n` callers for `key` that queue behind a permit taken now, and returns their
    /// handles; each answers the instant it was admitted.
    async fn queue_callers(
        limiter: &Arc<LocalRateLimiter>,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<Instant>> {
        limiter.acquire("k", None).await.unwrap();
        let callers: Vec<_> = (0..n)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire("k", None).await.unwrap();
                    Instant::now()
                })
            })
            .collect();
        // Let every caller take its slot before the test goes on.
        tokio::task::yield_now().await;
        assert_eq!(limiter.waiting(), n);
        callers
    }

    async fn admitted(callers: Vec<tokio::task::JoinHandle<Instant>>) -> Vec<Instant> {
        let mut times = Vec::new();
        for caller in callers {
            times.push(caller.await.unwrap());
        }
        times.sort();
        times
    }

    /// 20 per second with the 2% margin: 51 ms. The pause tests use this rate because tokio's
    /// timer wakes on whole milliseconds; at 25 per second (40.8 ms) a waiter woken 0.2 ms late
    /// would send 40 ms after one woken 0.8 ms late, and the spacing could not be checked
    /// exactly.
    fn emission_at_20() -> Duration {
        Duration::from_millis(51)
    }

    fn assert_spaced(times: &[Instant], at_least: Duration) {
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= at_least,
                "two sends {gap:?} apart, less than {at_least:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pause_holds_callers_already_queued() {
        let limiter = Arc::new(limiter(20, 1, Duration::from_secs(60), 100));
        let callers = queue_callers(&limiter, 5).await;
        // The 429 arrives while all five wait for their slots (the first is due at 51 ms).
        tokio::time::sleep(Duration::from_millis(10)).await;
        let pause_end = Instant::now() + Duration::from_secs(2);
        limiter.pause("k", pause_end).await;

        let times = admitted(callers).await;
        for t in &times {
            assert!(
                *t >= pause_end,
                "admitted {:?} before the pause ended",
                pause_end - *t
            );
        }
        assert_eq!(times[0], pause_end, "the queue resumes at the pause's end");
        assert_spaced(&times, emission_at_20());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_arriving_mid_queue_holds_the_rest_and_keeps_their_spacing() {
        let limiter = Arc::new(limiter(20, 1, Duration::from_secs(60), 100));
        let started = Instant::now();
        let callers = queue_callers(&limiter, 20).await;
        // 300 ms in, the first five have gone; X-RateLimit-Remaining: 0 pauses the rest.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let paused_at = Instant::now();
        let pause_end = paused_at + Duration::from_secs(2);
        limiter.pause("k", pause_end).await;

        let times = admitted(callers).await;
        let before: Vec<_> = times.iter().filter(|t| **t <= paused_at).collect();
        let after: Vec<_> = times.iter().copied().filter(|t| *t > paused_at).collect();
        assert_eq!(
            before.len(),
            5,
            "{:?}",
            times.iter().map(|t| *t - started).collect::<Vec<_>>()
        );
        for t in &after {
            assert!(
                *t >= pause_end,
                "admitted {:?} before the pause ended",
                pause_end - *t
            );
        }
        assert_eq!(after.len(), 15);
        assert_eq!(after[0], pause_end, "the queue resumes at the pause's end");
        assert_spaced(&after, emission_at_20());
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
                                    Poll::Ready(Err(Error::Overloaded { .. }) | Ok(_)) => {}
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

    #[tokio::test(start_paused = true)]
    async fn a_pause_past_a_waiters_deadline_refuses_it_before_the_deadline() {
        let limiter = Arc::new(limiter(20, 1, Duration::from_secs(60), 100));
        limiter.acquire("k", None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let result = limiter.acquire("k", Some(deadline)).await;
                (result, Instant::now())
            })
        };
        tokio::task::yield_now().await;
        limiter
            .pause("k", Instant::now() + Duration::from_secs(2))
            .await;

        let (result, answered) = waiter.await.unwrap();
        assert!(
            matches!(result, Err(Error::RateLimited { retry_after, .. }) if retry_after > Duration::from_secs(1)),
            "{result:?}"
        );
        assert!(answered < deadline, "refused only at {answered:?}");
        assert_eq!(limiter.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_never_longer_than_the_longest_pause() {
        let limiter = limiter(25, 1, Duration::from_secs(600), 100);
        let asked = Instant::now();
        limiter
            .pause("k", asked + Duration::from_secs(1_000_000_000))
            .await;
        limiter.acquire("k", None).await.unwrap();
        assert_eq!(Instant::now() - asked, MAX_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_and_the_spacing_after_it_still_fit_the_window() {
        // A burst of five at once, then GCRA's spacing: by the schedule alone 29 permits would
        // go within the first second (5 at 0 ms, then one every 40.8 ms from 40.8 ms on). The
        // sliding window holds the real sends to 25 in any 1.02 s.
        let limiter = limiter(25, 5, Duration::from_secs(60), 100);
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..60 {
            limiter.acquire("k", None).await.unwrap();
            sent.push(Instant::now() - start);
        }
        assert_eq!(&sent[..5], &[Duration::ZERO; 5], "the burst goes at once");
        for (i, first) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| **t < *first + WINDOW)
                .count();
            assert!(
                in_window <= 25,
                "{in_window} permits within {WINDOW:?} of {first:?}"
            );
        }
        // The 26th waits for the first send to leave the window, not a moment longer.
        assert_eq!(sent[25], WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_of_exactly_the_maximum_wait_or_up_to_the_deadline_is_made() {
        // One per second with the margin: the second caller waits exactly one emission.
        let emission = Duration::from_secs_f64(SAFETY_MARGIN);
        let limiter = limiter(1, 1, emission, 100);
        limiter.acquire("k", None).await.unwrap();
        assert_eq!(limiter.acquire("k", None).await.unwrap(), emission);
        let deadline = Instant::now() + emission;
        assert_eq!(
            limiter.acquire("k", Some(deadline)).await.unwrap(),
            emission,
            "a slot at the deadline itself is still in time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_tie_between_the_deadline_and_the_maximum_wait_is_the_deadline() {
        let limiter = limiter(1, 1, Duration::from_millis(500), 100);
        limiter.acquire("k", None).await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        let err = limiter.acquire("k", Some(deadline)).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    limit: WaitLimit::Deadline,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_says_when_the_callers_slot_would_have_come() {
        // 25 per second: the next slot is one emission away, while the window only opens a
        // whole window after the first send. The hint is the slot.
        let limiter = limiter(25, 1, Duration::from_millis(10), 100);
        limiter.acquire("k", None).await.unwrap();
        let err = limiter.acquire("k", None).await.unwrap_err();
        let emission = Duration::from_secs_f64(SAFETY_MARGIN / 25.0);
        assert!(
            matches!(err, Error::RateLimited { retry_after, limit: WaitLimit::MaxWait } if retry_after == emission),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_shed_for_a_full_window_is_told_when_the_window_opens() {
        // Two per second with a burst of five: two go at once and fill the window while the
        // schedule would let a third go too. Nobody may queue, so the third is shed, with the
        // moment the first send leaves the window as its hint.
        let limiter = limiter(2, 5, Duration::from_secs(60), 0);
        limiter.acquire("k", None).await.unwrap();
        limiter.acquire("k", None).await.unwrap();
        let err = limiter.acquire("k", None).await.unwrap_err();
        assert!(
            matches!(err, Error::Overloaded { retry_after } if retry_after == WINDOW),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_pause_extends_a_pause_and_a_shorter_one_never_shortens_it() {
        let limiter = limiter(25, 1, Duration::from_secs(60), 100);
        let start = Instant::now();
        limiter.pause("a", start + Duration::from_secs(2)).await;
        limiter.pause("a", start + Duration::from_secs(3)).await;
        limiter.acquire("a", None).await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(3), "extended");

        let start = Instant::now();
        limiter.pause("b", start + Duration::from_secs(2)).await;
        limiter.pause("b", start + Duration::from_secs(1)).await;
        limiter.acquire("b", None).await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(2),
            "not shortened"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_pause_the_burst_allowance_starts_empty() {
        // Five may go at once normally; right after a pause they go one emission apart, so
        // that Prove does not see a burst the moment its pause ends.
        let limiter = limiter(20, 5, Duration::from_secs(60), 100);
        let pause_end = Instant::now() + Duration::from_secs(2);
        limiter.pause("k", pause_end).await;
        let mut sent = Vec::new();
        for _ in 0..5 {
            limiter.acquire("k", None).await.unwrap();
            sent.push(Instant::now());
        }
        assert_eq!(sent[0], pause_end);
        assert_spaced(&sent, emission_at_20());
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_arriving_after_a_pause_queues_behind_the_callers_it_moved() {
        let limiter = Arc::new(limiter(20, 1, Duration::from_secs(60), 100));
        let mut callers = queue_callers(&limiter, 5).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let pause_end = Instant::now() + Duration::from_secs(2);
        limiter.pause("k", pause_end).await;
        // A newcomer during the pause: its slot comes after the five moved ones, not among them.
        let late = limiter.clone();
        callers.push(tokio::spawn(async move {
            late.acquire("k", None).await.unwrap();
            Instant::now()
        }));
        let times = admitted(callers).await;
        assert_eq!(times[0], pause_end);
        assert_spaced(&times, emission_at_20());
    }
}
