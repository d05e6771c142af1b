//! The bottom of the outbound stack: sends one attempt with the pooled reqwest client.
//!
//! The client is built once ([`build_client`]) and shared by every RPC, so connections to Prove
//! are kept alive and reused. Any HTTP answer is a success here; only a failure to get an answer
//! is an error, and it records whether the request may have reached Prove.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use tracing::Instrument;

use super::Error;
use super::{Body, OutboundRequest, OutboundResponse};

/// Builds the one HTTP client of the process: rustls, keep-alive, connect timeout.
pub fn build_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("prove-gateway/", env!("CARGO_PKG_VERSION")))
        // Redirects would replay a POST with a bearer token to another host: never follow them.
        .redirect(reqwest::redirect::Policy::none())
        // reqwest's default retry policy only replays requests the server refused at the
        // protocol level (HTTP/2 REFUSED_STREAM), which never reached Prove's application: safe
        // under our own retry layer, which handles everything else.
        .build()
}

/// Sends an [`OutboundRequest`] to Prove.
#[derive(Clone)]
pub struct HttpSend {
    client: reqwest::Client,
    base_url: url::Url,
}

impl HttpSend {
    /// A sender for `base_url` (Prove's host, without `/v3`).
    pub fn new(client: reqwest::Client, base_url: url::Url) -> Self {
        Self { client, base_url }
    }
}

impl tower::Service<OutboundRequest> for HttpSend {
    type Response = OutboundResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<OutboundResponse, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: OutboundRequest) -> Self::Future {
        let client = self.client.clone();
        let url = self.base_url.join(request.path);
        let endpoint = request.path;
        let on_answer = request.on_answer;
        let span = crate::telemetry::attempt_span(endpoint, request.attempt);
        let attempt_span = span.clone();
        let started = tokio::time::Instant::now();
        let attempt = async move {
            // A URL or request that cannot be built is the gateway's own fault, never sent: not
            // an outage of Prove, so it is not retried and gets no retry hint.
            let url = url.map_err(|e| Error::Request(format!("bad Prove URL: {e}")))?;
            let (content_type, bytes) = match request.body {
                Body::Json(bytes) => ("application/json", bytes),
                Body::Form(bytes) => ("application/x-www-form-urlencoded", bytes),
            };
            let mut builder = client
                .post(url)
                .header(CONTENT_TYPE, content_type)
                .header(ACCEPT, "application/json")
                .body(bytes);
            if let Some(bearer) = request.bearer {
                builder = builder.header(AUTHORIZATION, bearer);
            }
            let mut http_request = builder
                .build()
                .map_err(|e| Error::Request(cause_of(&e, "cannot build the request")))?;
            crate::telemetry::inject_trace_context(http_request.headers_mut());
            let response = client
                .execute(http_request)
                .await
                .map_err(transport_error)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(transport_error)?;
            Ok(OutboundResponse {
                status,
                headers,
                body,
            })
        };
        Box::pin(
            async move {
                // Counts the attempt even when the timeout layer drops this future mid-flight.
                let mut finished = AttemptFinished {
                    span: attempt_span,
                    endpoint,
                    started,
                    status: None,
                };
                let result = attempt.await;
                if let Ok(response) = &result {
                    if let Some(hook) = on_answer {
                        hook(&finished.span, response);
                    }
                    finished.status = Some(response.status);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Records an attempt's outcome when it ends: with its HTTP status, or as an error when it got
/// no answer, including when a timeout dropped it before Prove answered.
struct AttemptFinished {
    span: tracing::Span,
    endpoint: &'static str,
    started: tokio::time::Instant,
    status: Option<u16>,
}

impl Drop for AttemptFinished {
    fn drop(&mut self) {
        crate::telemetry::attempt_finished(
            &self.span,
            self.endpoint,
            self.status,
            self.started.elapsed(),
        );
    }
}

/// Classifies a reqwest failure. A connect error means Prove never saw the request, so it is
/// safe to retry; anything later leaves the outcome unknown.
fn transport_error(error: reqwest::Error) -> Error {
    if error.is_connect() {
        Error::Unreachable(cause_of(&error, "connection failed"))
    } else if error.is_timeout() {
        Error::Timeout { sent: true }
    } else {
        Error::ConnectionLost(cause_of(&error, "connection failed"))
    }
}

/// reqwest's messages include the URL; keep only the cause chain, or `fallback` without one.
fn cause_of(error: &reqwest::Error, fallback: &str) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.is_empty() {
        text = fallback.into();
    }
    text
}
