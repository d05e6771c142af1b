//! The Prove client: one method per endpoint, all over one outbound stack.
//!
//! Each call gets a token for its product (Unify and Verify are separate Prove projects with
//! separate credentials), sends its JSON body through [`crate::resilience`], and decodes the
//! answer. A 401 means the token went stale early: the call drops it, fetches a new one and
//! tries once more.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tower::ServiceExt;

use super::auth::TokenSource;
use super::endpoint::Endpoint;
use super::error::ProveError;
use super::models::{
    ErrorBody, UnifyBindRequest, UnifyRequest, UnifyResponse, UnifyStatusRequest,
    UnifyStatusResponse, VerifyRequest, VerifyResponse, VerifyStatusRequest, VerifyStatusResponse,
};
use super::settings::Credentials;
use crate::resilience::{self, Body, Outbound, OutboundRequest, OutboundResponse, retry_after};

/// Prove's limit on a request body (error 8001 above it).
pub const MAX_BODY_BYTES: usize = 4096;

/// Which Prove product project a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Unified Authentication.
    Unify,
    /// Verified Users.
    Verify,
}

/// What a call knows about its caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallContext {
    /// The caller's deadline (from `grpc-timeout`).
    pub deadline: Option<Instant>,
}

/// The client for Prove's Unify and Verify endpoints.
#[derive(Clone)]
pub struct ProveClient {
    outbound: Outbound,
    unify: Arc<TokenSource>,
    verify: Arc<TokenSource>,
}

impl ProveClient {
    /// A client sending through `outbound` with one credential pair per product.
    pub fn new(outbound: Outbound, unify: Credentials, verify: Credentials) -> Self {
        Self {
            unify: Arc::new(TokenSource::new(unify, outbound.clone())),
            verify: Arc::new(TokenSource::new(verify, outbound.clone())),
            outbound,
        }
    }

    /// `POST /v3/unify`.
    pub async fn unify(
        &self,
        body: &UnifyRequest,
        cx: CallContext,
    ) -> Result<UnifyResponse, ProveError> {
        self.call(Product::Unify, Endpoint::Unify, body, cx).await
    }

    /// `POST /v3/unify-status`.
    pub async fn unify_status(
        &self,
        body: &UnifyStatusRequest,
        cx: CallContext,
    ) -> Result<UnifyStatusResponse, ProveError> {
        self.call(Product::Unify, Endpoint::UnifyStatus, body, cx)
            .await
    }

    /// `POST /v3/unify-bind` (answers like unify-status).
    pub async fn unify_bind(
        &self,
        body: &UnifyBindRequest,
        cx: CallContext,
    ) -> Result<UnifyStatusResponse, ProveError> {
        self.call(Product::Unify, Endpoint::UnifyBind, body, cx)
            .await
    }

    /// `POST /v3/verify`.
    pub async fn verify(
        &self,
        body: &VerifyRequest,
        cx: CallContext,
    ) -> Result<VerifyResponse, ProveError> {
        self.call(Product::Verify, Endpoint::Verify, body, cx).await
    }

    /// `POST /v3/verify-status`.
    pub async fn verify_status(
        &self,
        body: &VerifyStatusRequest,
        cx: CallContext,
    ) -> Result<VerifyStatusResponse, ProveError> {
        self.call(Product::Verify, Endpoint::VerifyStatus, body, cx)
            .await
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        product: Product,
        endpoint: Endpoint,
        body: &Req,
        cx: CallContext,
    ) -> Result<Resp, ProveError> {
        let tokens = match product {
            Product::Unify => &self.unify,
            Product::Verify => &self.verify,
        };
        let body = bytes::Bytes::from(encode(body)?);
        let client_id: Arc<str> = tokens.client_id().into();
        let mut refreshed = false;
        loop {
            let token = tokens.token(cx.deadline).await?;
            let request = OutboundRequest {
                path: endpoint.path(),
                body: Body::Json(body.clone()),
                bearer: Some(bearer(&token)?),
                client_id: client_id.clone(),
                deadline: cx.deadline,
                attempt: 1,
                on_answer: Some(record_answered_correlation_id),
            };
            let response = self.outbound.clone().oneshot(request).await?;
            if response.status == 401 && !refreshed {
                // Prove may revoke a token before its announced expiry; one fresh token and one
                // more try, then the 401 stands.
                tokens.invalidate(&token);
                refreshed = true;
                continue;
            }
            return decode(endpoint, response);
        }
    }
}

/// Unify and Verify answers carry the new session's correlation ID: put it on the attempt's
/// span, where a trace shows which attempt started the session.
fn record_answered_correlation_id(span: &tracing::Span, response: &OutboundResponse) {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "correlationId")]
        correlation_id: Option<String>,
    }
    if !(200..300).contains(&response.status) {
        return;
    }
    if let Ok(Answer {
        correlation_id: Some(id),
    }) = serde_json::from_slice(&response.body)
    {
        span.record("prove.correlation_id", id.as_str());
    }
}

/// Encodes a request body as Prove's JSON.
pub fn encode<Req: Serialize>(body: &Req) -> Result<Vec<u8>, ProveError> {
    // serde_json's encode errors name the rule broken ("key must be a string"), never a value.
    serde_json::to_vec(body).map_err(|e| {
        ProveError::Transport(resilience::Error::Request(format!("cannot encode: {e}")))
    })
}

/// The `Authorization` value for `token`, marked sensitive so no header dump shows it. A token
/// with bytes a header cannot carry came from Prove's answer: a bad response, not our fault.
fn bearer(token: &str) -> Result<http::HeaderValue, ProveError> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ProveError::BadResponse("token is not a valid header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Turns Prove's answer into the expected body or a [`ProveError`].
pub(crate) fn decode<Resp: DeserializeOwned>(
    endpoint: Endpoint,
    response: OutboundResponse,
) -> Result<Resp, ProveError> {
    if (200..300).contains(&response.status) {
        return serde_json::from_slice(&response.body).map_err(|e| {
            // serde's data errors can quote values (personal data): keep only where it broke.
            ProveError::BadResponse(format!(
                "answer of {} is not the documented JSON ({:?} error at line {} column {})",
                endpoint.path(),
                e.classify(),
                e.line(),
                e.column()
            ))
        });
    }
    let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
    let (code, message) = match body {
        Some(ErrorBody { code, message }) => (code, message),
        None => (None, None),
    };
    Err(ProveError::Api {
        status: response.status,
        code,
        message: message
            .unwrap_or_else(|| format!("HTTP {} without an error body", response.status)),
        retry_after: retry_after(&response.headers),
    })
}

#[cfg(test)]
mod properties;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_cannot_be_encoded_is_the_gateways_fault_not_proves() {
        // JSON object keys must be strings: serde_json refuses a map keyed by pairs.
        let body = std::collections::BTreeMap::from([((1, 2), 3)]);
        // (grpc::status maps this class to INTERNAL, GATEWAY_INTERNAL_ERROR, no RetryInfo.)
        let err = encode(&body).unwrap_err();
        assert!(
            matches!(err, ProveError::Transport(resilience::Error::Request(_))),
            "{err:?}"
        );
    }
}
