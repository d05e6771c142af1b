//! The outbound path to Prove, as tower layers composed in one place ([`outbound_stack`]).
//!
//! Read the stack top to bottom; each request goes down it and its answer comes back up:
//!
//! 1. [`retry`]: outermost, so that every attempt goes through everything below it again:
//!    a retry takes a fresh rate-limit permit and gets its own attempt timeout.
//! 2. [`rate_limit`]: waits for a permit (or refuses at once when the wait would pass the
//!    caller's deadline) and learns from Prove's answers: a 429 or `X-RateLimit-Remaining: 0`
//!    stops all sending until Prove's reset.
//! 3. [`timeout`]: bounds one attempt by the attempt timeout and by the caller's deadline.
//! 4. [`http`]: the pooled reqwest client that actually sends.
//!
//! Everything below the retry layer sees one attempt; nothing but the retry layer decides to
//! send a request twice.

pub mod error;
pub mod http;
pub mod rate_limit;
pub mod redis_limiter;
pub mod retry;
pub mod settings;
pub mod timeout;

use std::sync::Arc;

use bytes::Bytes;
use http::HttpSend;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

pub use error::{Error, WaitLimit};
pub use rate_limit::{LocalRateLimiter, RateLimiter, retry_after};
pub use redis_limiter::RedisRateLimiter;
pub use settings::OutboundSettings;

/// The limiter the settings ask for: shared through Redis when `PROVE_RATE_LIMIT_REDIS_URL` is
/// set, else this replica's own.
pub fn limiter(settings: &OutboundSettings) -> Result<Arc<dyn RateLimiter>, redis::RedisError> {
    Ok(match &settings.rate_limit_redis_url {
        Some(url) => Arc::new(RedisRateLimiter::new(url, settings)?),
        None => Arc::new(LocalRateLimiter::new(settings)),
    })
}

/// The body of an outbound request, already encoded so retries replay the same bytes.
#[derive(Clone)]
pub enum Body {
    /// `application/json`.
    Json(Bytes),
    /// `application/x-www-form-urlencoded` (the token request, which holds the client secret).
    Form(Bytes),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // JSON bodies hold personal data and the form holds the OAuth client secret: only the
        // kind and the length are printed.
        let (kind, bytes) = match self {
            Self::Json(bytes) => ("Json", bytes),
            Self::Form(bytes) => ("Form", bytes),
        };
        write!(f, "{kind}({} bytes)", bytes.len())
    }
}

/// Looks at an answer on the attempt's span before the attempt ends, so the caller can add
/// what only it can read from the body (Prove's correlation ID) to the right span.
pub type AnswerHook = fn(&tracing::Span, &OutboundResponse);

/// One request to Prove; cheap to clone so that the retry layer can replay it.
#[derive(Clone)]
pub struct OutboundRequest {
    /// The path on the upstream host (`/v3/unify`); also the endpoint's label in metrics and
    /// spans, so it must come from a small fixed set.
    pub path: &'static str,
    /// The encoded body.
    pub body: Body,
    /// The `Authorization` value (`Bearer …`, marked sensitive), for `/v3` calls. The caller
    /// builds it, so a token that cannot be a header is its error, found before sending.
    pub bearer: Option<::http::HeaderValue>,
    /// The OAuth client ID the call is made for: Prove limits the rate per client, so the
    /// limiter keys its permits by it.
    pub client_id: Arc<str>,
    /// When the caller stops waiting (from `grpc-timeout`); `None` means no deadline.
    pub deadline: Option<Instant>,
    /// Which attempt this is, starting at 1; the retry layer counts it up.
    pub attempt: u32,
    /// Called with each answer of each attempt, on the attempt's span.
    pub on_answer: Option<AnswerHook>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies hold personal data and bearers are secrets: neither is printed.
        f.debug_struct("OutboundRequest")
            .field("path", &self.path)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Prove's answer to one request, whatever its HTTP status: deciding what a status means is the
/// retry policy's and the client's job.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (rate-limit headers among them).
    pub headers: ::http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// The composed outbound service.
pub type Outbound = BoxCloneSyncService<OutboundRequest, OutboundResponse, Error>;

/// Builds the outbound stack over `client` (see the module docs for the order and its reasons).
pub fn outbound_stack(
    client: reqwest::Client,
    base_url: url::Url,
    limiter: Arc<dyn RateLimiter>,
    settings: &OutboundSettings,
) -> Outbound {
    let service = ServiceBuilder::new()
        .layer(retry::RetryLayer::new(settings))
        .layer(rate_limit::RateLimitLayer::new(limiter))
        .layer(timeout::AttemptTimeoutLayer::new(settings.request_timeout))
        .service(HttpSend::new(client, base_url));
    BoxCloneSyncService::new(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_request_prints_neither_its_body_nor_its_bearer() {
        let form = Body::Form(Bytes::from_static(
            b"grant_type=client_credentials&client_id=id&client_secret=hunter2",
        ));
        assert_eq!(format!("{form:?}"), "Form(64 bytes)");
        let mut bearer = ::http::HeaderValue::from_static("Bearer t0ken");
        bearer.set_sensitive(true);
        let request = OutboundRequest {
            path: "/token",
            body: form,
            bearer: Some(bearer),
            client_id: "id".into(),
            deadline: None,
            attempt: 1,
            on_answer: None,
        };
        let printed = format!("{request:?}");
        assert_eq!(
            printed,
            r#"OutboundRequest { path: "/token", attempt: 1, .. }"#
        );
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("t0ken"), "{printed}");
    }
}
