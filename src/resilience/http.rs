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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use futures::FutureExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tower::ServiceExt as _;

    use super::*;
    use crate::resilience::retry::retryable;

    fn request() -> OutboundRequest {
        OutboundRequest {
            path: "/v3/unify",
            body: Body::Json(bytes::Bytes::from_static(b"{}")),
            bearer: None,
            client_id: "client".into(),
            deadline: None,
            attempt: 1,
            on_answer: None,
        }
    }

    async fn send(client: reqwest::Client, addr: SocketAddr) -> Result<OutboundResponse, Error> {
        let base = url::Url::parse(&format!("http://{addr}")).unwrap();
        HttpSend::new(client, base).oneshot(request()).await
    }

    /// Reads one HTTP/1.1 request, head and body, off `stream`: once it returns, the request
    /// was written in full.
    async fn read_request(stream: &mut TcpStream) {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed before its request was complete");
            seen.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if seen.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_and_retried() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        // Nothing listens there any more: the kernel refuses the connection.
        let result = send(build_client(Duration::from_secs(5)).unwrap(), addr).await;
        assert!(matches!(result, Err(Error::Unreachable(_))), "{result:?}");
        assert_eq!(
            retryable(&result),
            Some(None),
            "Prove never saw it: retried"
        );
    }

    #[tokio::test]
    async fn no_answer_in_time_after_sending_is_a_timeout_of_a_sent_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // reqwest's own timeout, on the wall clock: a paused clock would jump past it while the
        // connection is still being made. Nothing here asserts how long anything took.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let prove = async {
            let (mut stream, _) = listener.accept().await.unwrap();
            read_request(&mut stream).await;
            // Never answers; holds the connection until the client gives up on it.
            let _ = stream.read(&mut [0u8; 1]).await;
        };
        let (result, ()) = tokio::join!(send(client, addr), prove);
        assert!(
            matches!(result, Err(Error::Timeout { sent: true })),
            "{result:?}"
        );
        assert_eq!(retryable(&result), None, "Prove may have acted on it");
    }

    #[tokio::test]
    async fn a_connection_dropped_after_the_request_was_written_is_lost_and_never_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A replay would wait for an answer for ever; the timeout turns that into a failure.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let prove = async {
            let (mut stream, _) = listener.accept().await.unwrap();
            read_request(&mut stream).await;
            drop(stream);
        };
        let (result, ()) = tokio::join!(send(client, addr), prove);
        assert!(
            matches!(result, Err(Error::ConnectionLost(_))),
            "{result:?}"
        );
        assert_eq!(retryable(&result), None, "Prove may have acted on it");
        assert!(
            listener.accept().now_or_never().is_none(),
            "the client sent the request again on a new connection"
        );
    }

    /// A fake Prove that answers `/v3/unify` with a redirect to `/elsewhere` and anything else
    /// with 200, on every connection, and keeps the head of each request it read.
    fn redirecting_prove(listener: TcpListener) -> Arc<parking_lot::Mutex<Vec<String>>> {
        let heads = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        let mut body = vec![0u8; length];
                        stream.read_exact(&mut body).await.unwrap();
                        let reply: &[u8] = if head.starts_with("post /v3/unify ") {
                            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        seen.lock().push(head);
                        stream.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        heads
    }

    #[tokio::test]
    async fn the_client_names_itself_and_never_follows_a_redirect() {
        // A followed redirect would replay the POST, bearer token included, to wherever the
        // answer points.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = redirecting_prove(listener);
        let response = send(build_client(Duration::from_secs(5)).unwrap(), addr)
            .await
            .unwrap();
        assert_eq!(
            response.status, 307,
            "the redirect comes back as the answer"
        );
        let heads = heads.lock();
        assert_eq!(heads.len(), 1, "{heads:?}");
        let agent = format!(
            "user-agent: prove-gateway/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(heads[0].contains(&agent), "{}", heads[0]);
    }

    #[tokio::test]
    async fn a_transport_error_keeps_its_causes_and_drops_the_url() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let result = send(build_client(Duration::from_secs(5)).unwrap(), addr).await;
        let Err(Error::Unreachable(cause)) = result else {
            panic!("{result:?}");
        };
        // reqwest's chain, one cause after another: "client error (Connect): tcp connect
        // error: Connection refused (os error 111)".
        assert!(cause.contains("refused"), "{cause}");
        assert!(cause.contains(": "), "the causes are joined: {cause}");
        assert!(!cause.starts_with(':'), "{cause}");
        assert!(!cause.contains(&addr.to_string()), "{cause}");
    }
}
