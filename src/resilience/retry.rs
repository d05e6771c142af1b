//! Retries what is safe and useful to retry, and nothing else.
//!
//! Retried: HTTP 429, 500, 502, 503 and 504 (Prove's documented transient answers), and
//! connections that failed before the request was sent. Never retried: any other answer
//! (a 200, or a 4xx such as the 403 Prove gives a replayed step), and a request whose outcome is
//! unknown (an attempt that timed out or lost its connection after sending). Prove's steps are
//! not idempotent: a status call that succeeded once answers 403 when repeated, so replaying a
//! request that may have arrived could turn a success into an error. Those errors go back to the
//! caller as DEADLINE_EXCEEDED or UNAVAILABLE, and the caller can ask the status RPC.
//!
//! The wait before attempt n+1 is "full jitter" (a uniform draw from zero to
//! `base * 2^(n-1)`, capped), never shorter than Prove's `Retry-After`, and a retry whose wait
//! would end after the caller's deadline, or that Prove asks to wait more than a minute for, is
//! not made. A shared retry budget (Finagle's, via
//! tower's `TpsBudget`) caps retries at a fraction of recent requests, so an outage does not
//! multiply the load on Prove.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use super::Error;
use super::OutboundSettings;
use super::rate_limit::retry_after;
use super::{OutboundRequest, OutboundResponse};

/// Retries may add this fraction of the requests of the last ten seconds. Half: enough to ride
/// out a partial outage (at 30% failures a call needs 0.43 retries on average), while a total
/// outage raises the load on Prove by at most 1.5 times instead of multiplying it.
const BUDGET_RATIO: f32 = 0.5;
/// ...plus this many per second, so a quiet gateway can still retry its first failures.
const BUDGET_MIN_PER_SECOND: u32 = 2;
/// How long a request counts towards the budget.
const BUDGET_TTL: Duration = Duration::from_secs(10);
/// The longest wait between two attempts, whatever the settings or Prove say. Prove's own
/// `Retry-After` is a second or two; a minute already means an outage, and a caller without a
/// deadline must not hang on a longer one. It also keeps the clock arithmetic on the computed
/// wait far from overflowing (`Retry-After: 18446744073709551615` is a valid header). An answer
/// asking for more goes back to the caller with its RetryInfo instead of being retried.
const LONGEST_WAIT: Duration = super::rate_limit::MAX_PAUSE;

/// Layer for tower's `Retry` with [`RetryPolicy`].
#[derive(Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// Retries as configured in `settings`, with one budget shared by all requests.
    pub fn new(settings: &OutboundSettings) -> Self {
        Self {
            policy: RetryPolicy {
                max_attempts: settings.retry_max_attempts.max(1),
                base_delay: settings.retry_base_delay,
                max_delay: settings.retry_max_delay,
                budget: Arc::new(TpsBudget::new(
                    BUDGET_TTL,
                    BUDGET_MIN_PER_SECOND,
                    BUDGET_RATIO,
                )),
            },
        }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = tower::retry::Retry<RetryPolicy, S>;
    fn layer(&self, inner: S) -> Self::Service {
        tower::retry::Retry::new(self.policy.clone(), inner)
    }
}

/// The retry decision for one Prove request.
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    budget: Arc<TpsBudget>,
}

/// Why an attempt may be retried, and the least wait Prove asked for.
pub(crate) fn retryable(result: &Result<OutboundResponse, Error>) -> Option<Option<Duration>> {
    match result {
        Ok(response) if matches!(response.status, 429 | 500 | 502 | 503 | 504) => {
            Some(retry_after(&response.headers))
        }
        Err(Error::Unreachable(_)) => Some(None),
        _ => None,
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in `[0, min(max_delay, base * 2^(attempt-1), LONGEST_WAIT)]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay).min(LONGEST_WAIT);
        cap.mul_f64(rand::rng().random::<f64>())
    }
}

impl tower::retry::Policy<OutboundRequest, OutboundResponse, Error> for RetryPolicy {
    type Future = BoxFuture<'static, ()>;

    fn retry(
        &mut self,
        request: &mut OutboundRequest,
        result: &mut Result<OutboundResponse, Error>,
    ) -> Option<Self::Future> {
        if request.attempt == 1 {
            // A first attempt that got this far was really sent: that is what earns budget.
            // (Depositing when the call starts would let deposits expire while calls still wait
            // for the rate limiter, starving the retries of a long queue.)
            self.budget.deposit();
        }
        let prove_wait = retryable(result)?;
        if request.attempt >= self.max_attempts {
            return None;
        }
        let prove_wait = prove_wait.unwrap_or_default();
        // `retry_after` cuts Prove's wait to the longest pause, so an answer at the cap asked
        // for at least that long.
        if prove_wait >= LONGEST_WAIT {
            crate::telemetry::retry_skipped(request.path, "retry_after");
            return None;
        }
        let delay = self.backoff(request.attempt).max(prove_wait);
        if request.deadline.is_some_and(|deadline| {
            Instant::now()
                .checked_add(delay)
                .is_none_or(|resume| resume >= deadline)
        }) {
            crate::telemetry::retry_skipped(request.path, "deadline");
            return None;
        }
        if !self.budget.withdraw() {
            crate::telemetry::retry_skipped(request.path, "budget");
            return None;
        }
        crate::telemetry::retry_scheduled(request.path, request.attempt + 1, delay);
        request.attempt += 1;
        Some(Box::pin(async move { tokio::time::sleep(delay).await }))
    }

    fn clone_request(&mut self, request: &OutboundRequest) -> Option<OutboundRequest> {
        Some(request.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tower::retry::Policy;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryLayer::new(&OutboundSettings {
            retry_max_attempts: max_attempts,
            ..OutboundSettings::default()
        })
        .policy
    }

    fn request(deadline: Option<Instant>) -> OutboundRequest {
        OutboundRequest {
            path: "/v3/unify",
            body: super::super::Body::Json(bytes::Bytes::new()),
            bearer: None,
            client_id: "c".into(),
            deadline,
            attempt: 1,
            on_answer: None,
        }
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<OutboundResponse, Error> {
        let mut headers = ::http::HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert("retry-after", value.parse().unwrap());
        }
        Ok(OutboundResponse {
            status,
            headers,
            body: bytes::Bytes::new(),
        })
    }

    #[test]
    fn transient_statuses_are_retried_and_others_are_not() {
        for status in [429, 500, 502, 503, 504] {
            let mut req = request(None);
            assert!(
                policy(3)
                    .retry(&mut req, &mut answer(status, None))
                    .is_some(),
                "{status}"
            );
            assert_eq!(req.attempt, 2);
        }
        for status in [200, 400, 401, 403, 404, 501] {
            let mut req = request(None);
            assert!(
                policy(3)
                    .retry(&mut req, &mut answer(status, None))
                    .is_none(),
                "{status}"
            );
        }
    }

    #[test]
    fn only_connections_that_never_sent_are_retried() {
        let mut req = request(None);
        let mut refused = Err(Error::Unreachable("refused".into()));
        assert!(policy(3).retry(&mut req, &mut refused).is_some());
        let mut lost = Err(Error::ConnectionLost("reset".into()));
        assert!(policy(3).retry(&mut request(None), &mut lost).is_none());
        let mut timed_out = Err(Error::Timeout { sent: true });
        assert!(
            policy(3)
                .retry(&mut request(None), &mut timed_out)
                .is_none()
        );
    }

    #[test]
    fn a_request_the_gateway_could_not_build_is_never_retried() {
        let mut unbuildable = Err(Error::Request("bad Prove URL".into()));
        let mut req = request(None);
        assert!(policy(3).retry(&mut req, &mut unbuildable).is_none());
        assert_eq!(req.attempt, 1);
    }

    #[test]
    fn attempts_stop_at_the_cap() {
        let mut policy = policy(2);
        let mut req = request(None);
        assert!(policy.retry(&mut req, &mut answer(500, None)).is_some());
        assert!(policy.retry(&mut req, &mut answer(500, None)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_honours_retry_after() {
        let mut req = request(None);
        let start = Instant::now();
        policy(3)
            .retry(&mut req, &mut answer(429, Some("2")))
            .unwrap()
            .await;
        assert!(Instant::now() - start >= Duration::from_secs(2));
    }

    #[test]
    fn no_retry_whose_wait_passes_the_deadline() {
        let mut req = request(Some(Instant::now() + Duration::from_millis(500)));
        assert!(
            policy(3)
                .retry(&mut req, &mut answer(429, Some("2")))
                .is_none()
        );
    }

    #[test]
    fn backoff_is_spread_over_the_whole_range_below_its_cap() {
        // Full jitter is uniform on [0, cap]: "equal jitter" (cap/2 plus a draw) or no jitter
        // would never give the low values, and would move the mean. Statistical: for 10,000
        // draws the mean's standard deviation is cap/sqrt(12 * 10,000) = 0.29% of the cap, so
        // the 5% tolerance is 17 deviations; five runs saw means of 49.6% to 50.2% of the cap,
        // and 24.8% to 25.7% of draws below a quarter of it (2,000 to 3,000 allowed: the count's
        // standard deviation is 43).
        let policy = policy(10);
        let cap = Duration::from_millis(400); // attempt 3: 100 ms * 2^2
        let draws: Vec<Duration> = (0..10_000).map(|_| policy.backoff(3)).collect();
        let mean = draws.iter().sum::<Duration>() / 10_000;
        assert!(
            mean > cap.mul_f64(0.45) && mean < cap.mul_f64(0.55),
            "mean {mean:?} for a cap of {cap:?}"
        );
        let low = draws.iter().filter(|d| **d < cap / 4).count();
        eprintln!("backoff over 10,000 draws: mean {mean:?} of a {cap:?} cap, {low} below cap/4");
        assert!(
            (2_000..=3_000).contains(&low),
            "{low} of 10,000 below cap/4"
        );
        assert!(draws.iter().any(|d| *d < cap / 100), "no draw near zero");
        assert!(draws.iter().all(|d| *d <= cap));
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let policy = policy(10);
        for attempt in 1..12 {
            let cap =
                (Duration::from_millis(100) * (1 << (attempt - 1))).min(Duration::from_secs(5));
            for _ in 0..50 {
                assert!(policy.backoff(attempt) <= cap);
            }
        }
    }

    /// A policy whose settings are as large as a Duration goes.
    fn huge_policy() -> RetryPolicy {
        RetryLayer::new(&OutboundSettings {
            retry_max_attempts: u32::MAX,
            retry_base_delay: Duration::MAX,
            retry_max_delay: Duration::MAX,
            ..OutboundSettings::default()
        })
        .policy
    }

    #[test]
    fn backoff_stays_bounded_for_any_attempt_and_settings() {
        let policy = huge_policy();
        for attempt in [0, 1, 2, 17, 64, u32::MAX - 1, u32::MAX] {
            for _ in 0..200 {
                assert!(policy.backoff(attempt) <= LONGEST_WAIT, "{attempt}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_backoff_neither_overflows_the_deadline_check_nor_waits_for_ever() {
        let mut with_deadline = request(Some(Instant::now() + Duration::from_secs(10)));
        // The computed wait passes any deadline: no retry (and no panic adding it to now).
        for _ in 0..50 {
            let retry = huge_policy().retry(&mut with_deadline, &mut answer(500, None));
            if let Some(wait) = retry {
                let start = Instant::now();
                wait.await;
                assert!(Instant::now() - start < Duration::from_secs(10));
            }
        }
        let mut no_deadline = request(None);
        let start = Instant::now();
        if let Some(wait) = huge_policy().retry(&mut no_deadline, &mut answer(500, None)) {
            wait.await;
        }
        assert!(Instant::now() - start <= LONGEST_WAIT);
    }

    #[test]
    fn an_absurd_retry_after_is_not_waited_for() {
        for retry_after in ["18446744073709551615", "9999999999"] {
            let mut with_deadline = request(Some(Instant::now() + Duration::from_secs(10)));
            assert!(
                policy(3)
                    .retry(&mut with_deadline, &mut answer(503, Some(retry_after)))
                    .is_none(),
                "{retry_after}"
            );
            let mut no_deadline = request(None);
            assert!(
                policy(3)
                    .retry(&mut no_deadline, &mut answer(429, Some(retry_after)))
                    .is_none(),
                "{retry_after}: a caller without a deadline would hang on it"
            );
        }
        // Garbage and negative values are no Retry-After at all: the usual backoff applies.
        for retry_after in ["-1", "soon", "1e9", ""] {
            let mut req = request(None);
            assert!(
                policy(3)
                    .retry(&mut req, &mut answer(503, Some(retry_after)))
                    .is_some(),
                "{retry_after:?}"
            );
        }
    }

    #[test]
    fn the_budget_stops_a_retry_storm() {
        // A total outage: 1,000 requests, every attempt fails, up to 10 attempts each.
        let mut policy = policy(10);
        let mut retries = 0;
        for _ in 0..1000 {
            let mut req = request(None);
            while policy.retry(&mut req, &mut answer(500, None)).is_some() {
                retries += 1;
            }
        }
        // Without a budget: 9,000 retries. With it, as documented above: half the requests of
        // the last ten seconds (500) plus a reserve of 2 per second over those ten seconds
        // (20). Literal numbers, so that changing a constant fails this test.
        assert!(retries <= 520, "{retries} retries, the budget allows 520");
        assert!(
            retries >= 500,
            "{retries}: the budget still lets half the requests retry"
        );
    }
}
