//! The tower layer between the RPC span ([`crate::telemetry::GrpcTraceLayer`]) and tonic's
//! routes. One instance per connection. It
//! - counts the connection's open calls, so the connection can tell when it is idle;
//! - cuts request messages still incomplete once the server drains, so a stalled client cannot
//!   hold shutdown;
//! - enforces the caller's deadline (`grpc-timeout`), which tonic's own server loop did;
//! - gives the statuses tonic answers by itself, below the handlers (undecodable or oversize
//!   messages), the ErrorInfo the contract promises on every failure: they come with none.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Frame;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;

use crate::grpc::status;
use crate::telemetry::{BodyEnd, WatchBody};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long after the caller's deadline the edge answers for a handler that has not. Handlers
/// get the edge's deadline ([`crate::grpc::Deadline`]) and answer at it with a more precise
/// status (UPSTREAM_TIMEOUT, a refused rate-limit wait); the grace is the time a handler may
/// take to build that answer on a loaded machine (10 ms lost the race there under four
/// concurrent builds). The caller has stopped listening by then, so the grace costs it nothing.
/// The edge answers for what no handler watches: a request message still arriving.
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// The calls of one connection, as far as idleness goes.
#[derive(Debug, Clone, Copy, Default)]
struct Calls {
    /// Calls whose answer is not finished.
    open: usize,
    /// Calls started so far, so a call that began and ended between two looks still counts.
    started: u64,
}

/// What the edge layer shares with the task serving its connection.
#[derive(Debug, Clone)]
pub(super) struct ConnectionState {
    calls: Arc<watch::Sender<Calls>>,
    /// Cancelled when request messages still incomplete must be cut (see [`CutOnDrain`]).
    cut: CancellationToken,
}

impl ConnectionState {
    pub(super) fn new(cut: CancellationToken) -> Self {
        Self {
            calls: Arc::new(watch::Sender::new(Calls::default())),
            cut,
        }
    }

    fn call_started(&self) -> CallGuard {
        self.calls.send_modify(|calls| {
            calls.open += 1;
            calls.started += 1;
        });
        CallGuard(self.calls.clone())
    }

    /// Completes once the connection has had no call open for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let mut calls = self.calls.subscribe();
        loop {
            let Ok(now) = calls.wait_for(|c| c.open == 0).await.map(|c| *c) else {
                // The sender lives in `self`, so this cannot happen; never call it idle.
                return std::future::pending().await;
            };
            let quiet = tokio::time::sleep(timeout);
            tokio::select! {
                () = quiet => return,
                _ = calls.wait_for(|c| c.open > 0 || c.started != now.started) => {}
            }
        }
    }
}

/// Keeps its call counted as open until the answer is finished or dropped.
struct CallGuard(Arc<watch::Sender<Calls>>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0
            .send_modify(|calls| calls.open = calls.open.saturating_sub(1));
    }
}

/// Layer for [`Edge`], built for each connection.
#[derive(Debug, Clone)]
pub(super) struct EdgeLayer {
    connection: ConnectionState,
}

impl EdgeLayer {
    pub(super) fn new(connection: ConnectionState) -> Self {
        Self { connection }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Edge {
            inner,
            connection: self.connection.clone(),
        }
    }
}

/// See [`EdgeLayer`].
#[derive(Debug, Clone)]
pub(super) struct Edge<S> {
    inner: S,
    connection: ConnectionState,
}

impl<S, B> tower::Service<http::Request<B>> for Edge<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let guard = self.connection.call_started();
        let caller_deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::grpc::parse_grpc_timeout)
            .and_then(|timeout| Instant::now().checked_add(timeout));
        if let Some(at) = caller_deadline {
            request.extensions_mut().insert(crate::grpc::Deadline(at));
        }
        let deadline = caller_deadline.and_then(|at| at.checked_add(DEADLINE_GRACE));
        let cut = self.connection.cut.clone();
        let request = request.map(|body| Body::new(CutOnDrain::new(body, cut)));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = match deadline {
                None => answer.await,
                // Polls the answer before the timer, so a handler's answer at the same tick wins.
                Some(deadline) => match tokio::time::timeout_at(deadline, answer).await {
                    Ok(answered) => answered,
                    Err(_) => Ok(status::caller_deadline_exceeded().into_http()),
                },
            };
            let Ok(mut response) = response;
            // A failure before any message went out travels "trailers-only": in the headers.
            add_error_info(response.headers_mut());
            Ok(response.map(|body| Body::new(WatchBody::new(body, Answer { _guard: guard }))))
        })
    }
}

/// The status tonic answered by itself, rewritten with an ErrorInfo (tonic's message kept);
/// `None` for a success or a status that carries details already: every status of the gateway
/// does. Its codes follow gRPC's conventions: INTERNAL for a message that cannot be decoded,
/// RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE) for one over the size limit.
fn with_error_info(headers: &http::HeaderMap) -> Option<tonic::Status> {
    let status = tonic::Status::from_header_map(headers)?;
    if !status.details().is_empty() {
        return None;
    }
    match status.code() {
        tonic::Code::Internal => Some(status::malformed_message(status.message())),
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => {
            Some(status::message_too_large(status.message()))
        }
        _ => None,
    }
}

/// Rewrites the status in `headers` (an answer's headers or its trailers) when tonic sent it
/// without details.
fn add_error_info(headers: &mut http::HeaderMap) {
    if let Some(status) = with_error_info(headers) {
        headers.remove("grpc-message");
        if status.add_header(headers).is_err() {
            // Only a message with bytes no header may hold; ours are ASCII.
            headers.remove("grpc-status-details-bin");
        }
    }
}

/// Watches an answer's body: keeps its call counted as open until it is finished or dropped,
/// and gives a status in its trailers the ErrorInfo tonic left out.
struct Answer {
    _guard: CallGuard,
}

impl BodyEnd for Answer {
    fn trailers(&mut self, trailers: &mut http::HeaderMap) {
        add_error_info(trailers);
    }
}

pin_project_lite::pin_project! {
    /// A request body that ends in an error, instead of waiting on, once `cut` is cancelled
    /// while the message is still incomplete. The handler then answers at once and the
    /// connection can close; a complete message is never affected.
    struct CutOnDrain<B> {
        #[pin]
        inner: B,
        cut: CancellationToken,
        #[pin]
        cancelled: Option<WaitForCancellationFutureOwned>,
    }
}

impl<B> CutOnDrain<B> {
    fn new(inner: B, cut: CancellationToken) -> Self {
        Self {
            inner,
            cut,
            cancelled: None,
        }
    }
}

impl<B> http_body::Body for CutOnDrain<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        // Only a body that is waiting needs to watch for the cut.
        if this.cancelled.is_none() {
            this.cancelled.set(Some(this.cut.clone().cancelled_owned()));
        }
        match this.cancelled.as_pin_mut().map(|c| c.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(status::malformed_message(
                "the request message was still incomplete when the server began shutting down",
            ))))),
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tonic::{Code, Status};
    use tonic_types::StatusExt;
    use tower::{Layer, ServiceExt};

    /// An answer that streams one message and then `trailers`.
    fn streamed(trailers: http::HeaderMap) -> http::Response<Body> {
        let frames: Vec<Result<Frame<Bytes>, Status>> = vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ];
        http::Response::new(Body::new(http_body_util::StreamBody::new(
            futures::stream::iter(frames),
        )))
    }

    /// What the edge makes of `answer`: the status of its headers or of its trailers.
    async fn through_edge(answer: http::Response<Body>) -> Status {
        let answer = parking_lot::Mutex::new(Some(answer));
        let inner = tower::service_fn(move |_: http::Request<Body>| {
            let answer = answer.lock().take().unwrap();
            async move { Ok::<_, Infallible>(answer) }
        });
        let edge = EdgeLayer::new(ConnectionState::new(CancellationToken::new())).layer(inner);
        let response = edge
            .oneshot(http::Request::new(Body::empty()))
            .await
            .unwrap();
        if let Some(status) = Status::from_header_map(response.headers()) {
            return status;
        }
        let collected = response.into_body().collect().await.unwrap();
        Status::from_header_map(collected.trailers().unwrap()).unwrap()
    }

    fn trailers_of(status: &Status) -> http::HeaderMap {
        let mut trailers = http::HeaderMap::new();
        status.add_header(&mut trailers).unwrap();
        trailers
    }

    #[tokio::test]
    async fn a_status_without_details_in_the_trailers_gets_its_error_info() {
        let cases = [
            (
                Status::internal("Unexpected EOF decoding stream."),
                Code::Internal,
                "MALFORMED_MESSAGE",
            ),
            (
                Status::out_of_range("Error, decoded message length too large"),
                Code::ResourceExhausted,
                "MESSAGE_TOO_LARGE",
            ),
        ];
        for (sent, code, reason) in cases {
            let status = through_edge(streamed(trailers_of(&sent))).await;
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(status.get_details_error_info().unwrap().reason, reason);
            assert_eq!(status.message(), sent.message(), "tonic's words are kept");
        }
    }

    #[tokio::test]
    async fn statuses_with_details_and_successes_are_left_alone() {
        let ours = status::caller_deadline_exceeded();
        let status = through_edge(ours.clone().into_http()).await;
        assert_eq!(status.details(), ours.details());
        let status = through_edge(streamed(trailers_of(&ours))).await;
        assert_eq!(status.details(), ours.details());
        let status = through_edge(streamed(trailers_of(&Status::ok("")))).await;
        assert_eq!(status.code(), Code::Ok);
        assert!(status.details().is_empty());
    }
}
