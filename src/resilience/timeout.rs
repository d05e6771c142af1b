//! Bounds one attempt: by the attempt timeout, and by the caller's deadline when that is sooner.
//!
//! A timed-out attempt may have reached Prove, so its error says the outcome is unknown; the
//! retry layer does not replay such a request (see `retry`).

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::Error;
use super::{OutboundRequest, OutboundResponse};

/// Layer for [`AttemptTimeout`].
#[derive(Debug, Clone)]
pub struct AttemptTimeoutLayer {
    timeout: Duration,
}

impl AttemptTimeoutLayer {
    /// Each attempt gets at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> tower::Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Fails an attempt with [`Error::Timeout`] when it runs past its time.
#[derive(Debug, Clone)]
pub struct AttemptTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<OutboundRequest> for AttemptTimeout<S>
where
    S: tower::Service<OutboundRequest, Response = OutboundResponse, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = OutboundResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<OutboundResponse, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: OutboundRequest) -> Self::Future {
        let mut until = Instant::now() + self.timeout;
        if let Some(deadline) = request.deadline {
            until = until.min(deadline);
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(until, future).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout { sent: true }),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tower::{Layer as _, ServiceExt as _};

    use super::*;
    use crate::resilience::Body;

    /// An attempt whose answer takes `latency`.
    fn prove_answering_after(
        latency: Duration,
    ) -> impl tower::Service<
        OutboundRequest,
        Response = OutboundResponse,
        Error = Error,
        Future = BoxFuture<'static, Result<OutboundResponse, Error>>,
    > {
        tower::service_fn(move |_: OutboundRequest| -> BoxFuture<'static, _> {
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                Ok(OutboundResponse {
                    status: 200,
                    headers: ::http::HeaderMap::new(),
                    body: bytes::Bytes::new(),
                })
            })
        })
    }

    fn request(deadline: Option<Instant>) -> OutboundRequest {
        OutboundRequest {
            path: "/v3/unify",
            body: Body::Json(bytes::Bytes::new()),
            bearer: None,
            client_id: "c".into(),
            deadline,
            attempt: 1,
            on_answer: None,
        }
    }

    /// Sends one attempt through a 1 s attempt timeout; returns its result and how long it took.
    async fn attempt(
        latency: Duration,
        deadline: Option<Instant>,
    ) -> (Result<OutboundResponse, Error>, Duration) {
        let service =
            AttemptTimeoutLayer::new(Duration::from_secs(1)).layer(prove_answering_after(latency));
        let start = Instant::now();
        let result = service.oneshot(request(deadline)).await;
        (result, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_attempt_timeout_passes() {
        let (result, took) = attempt(Duration::from_millis(999), None).await;
        assert_eq!(result.unwrap().status, 200);
        assert_eq!(took, Duration::from_millis(999));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_is_cut_off_at_the_attempt_timeout_as_sent() {
        let (result, took) = attempt(Duration::from_secs(5), None).await;
        assert!(
            matches!(result, Err(Error::Timeout { sent: true })),
            "{result:?}"
        );
        assert_eq!(took, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_nearer_deadline_cuts_the_attempt_off_first() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let (result, took) = attempt(Duration::from_secs(5), Some(deadline)).await;
        assert!(
            matches!(result, Err(Error::Timeout { sent: true })),
            "{result:?}"
        );
        assert_eq!(took, Duration::from_millis(300));
        // A deadline further away than the attempt timeout leaves the timeout in charge.
        let far = Instant::now() + Duration::from_secs(30);
        let (_, took) = attempt(Duration::from_secs(5), Some(far)).await;
        assert_eq!(took, Duration::from_secs(1));
    }
}
