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
