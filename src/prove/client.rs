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

impl Product {
    /// The product's part in the names of its own settings, `PROVE_<PART>_CLIENT_ID` and the
    /// like: configuration builds those names from it instead of spelling each one out.
    pub const fn env_name(self) -> &'static str {
        match self {
            Self::Unify => "UNIFY",
            Self::Verify => "VERIFY",
        }
    }
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

    /// Whether Prove accepts `product`'s credentials, now and as it changes.
    pub fn credential_state(
        &self,
        product: Product,
    ) -> tokio::sync::watch::Receiver<super::auth::CredentialState> {
        match product {
            Product::Unify => self.unify.credential_state(),
            Product::Verify => self.verify.credential_state(),
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

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tower::util::BoxCloneSyncService;

    const PHONE: &str = "2001004014";

    fn answer(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: &str,
    ) -> OutboundResponse {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        OutboundResponse {
            status,
            headers: map,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_2xx_answer_is_decoded_into_the_endpoints_body() {
        let body = r#"{"success":"pending","correlationId":"c-1","authToken":"jwt"}"#;
        let decoded: UnifyResponse = decode(Endpoint::Unify, answer(200, &[], body)).unwrap();
        assert_eq!(decoded.success, "pending");
        assert_eq!(decoded.correlation_id, "c-1");
        assert_eq!(decoded.auth_token.as_deref(), Some("jwt"));
    }

    #[test]
    fn a_2xx_answer_that_is_not_the_documented_json_is_a_bad_response_quoting_no_value() {
        // A field of the wrong type holding personal data: serde would quote it.
        let body = format!(r#"{{"success":{PHONE},"correlationId":"c-1"}}"#);
        for body in [body.as_str(), "not json", ""] {
            let err = decode::<UnifyResponse>(Endpoint::Unify, answer(201, &[], body)).unwrap_err();
            let ProveError::BadResponse(message) = &err else {
                panic!("{err:?}");
            };
            assert!(message.contains("/v3/unify"), "{message}");
            assert!(!message.contains(PHONE), "a value leaked: {message}");
        }
    }

    #[test]
    fn an_error_answer_carries_proves_code_and_message_when_it_has_them() {
        let body = r#"{"code":8008,"message":"phone number is invalid"}"#;
        for status in [400, 404, 500, 503] {
            let err =
                decode::<UnifyResponse>(Endpoint::Unify, answer(status, &[], body)).unwrap_err();
            let ProveError::Api {
                status: seen,
                code,
                message,
                retry_after,
            } = err
            else {
                panic!("{err:?}");
            };
            assert_eq!((seen, code), (status, Some(8008)));
            assert_eq!(message, "phone number is invalid");
            assert_eq!(retry_after, None);
        }
    }

    #[test]
    fn an_error_answer_without_proves_body_still_says_its_status() {
        for (status, body) in [(400, ""), (502, "<html>Bad Gateway</html>"), (500, "{}")] {
            let err =
                decode::<UnifyResponse>(Endpoint::Verify, answer(status, &[], body)).unwrap_err();
            let ProveError::Api {
                status: seen,
                code,
                message,
                ..
            } = err
            else {
                panic!("{err:?}");
            };
            assert_eq!((seen, code), (status, None));
            assert_eq!(message, format!("HTTP {status} without an error body"));
        }
    }

    #[test]
    fn retry_after_is_carried_on_a_refusal() {
        let body = r#"{"code":9001,"message":"slow down"}"#;
        for status in [429, 503] {
            let refused = answer(status, &[("retry-after", "7")], body);
            let err = decode::<UnifyResponse>(Endpoint::Unify, refused).unwrap_err();
            assert!(
                matches!(err, ProveError::Api { retry_after: Some(wait), .. } if wait == Duration::from_secs(7)),
                "{err:?}"
            );
        }
    }

    /// A fake Prove behind the outbound stack: the token endpoint hands out `t1`, `t2`, …; the
    /// Unify endpoint answers 401 to the first `refusals` calls and then 200, and writes down
    /// the bearer of each call. A runaway loop is cut off after a few calls.
    #[derive(Clone, Default)]
    struct FakeProve {
        tokens: Arc<AtomicUsize>,
        bearers: Arc<parking_lot::Mutex<Vec<String>>>,
        /// The path and rate-limit key (client ID) of every request.
        keys: Arc<parking_lot::Mutex<Vec<(&'static str, String)>>>,
        refusals: usize,
    }

    impl FakeProve {
        fn client(&self) -> ProveClient {
            let prove = self.clone();
            let outbound = tower::service_fn(move |request: OutboundRequest| {
                let prove = prove.clone();
                async move {
                    let key = (request.path, request.client_id.to_string());
                    prove.keys.lock().push(key);
                    if request.path == Endpoint::Token.path() {
                        let n = prove.tokens.fetch_add(1, Ordering::SeqCst) + 1;
                        let body = format!(
                            r#"{{"access_token":"t{n}","token_type":"Bearer","expires_in":3600}}"#
                        );
                        return Ok(answer(200, &[], &body));
                    }
                    let mut bearers = prove.bearers.lock();
                    if bearers.len() >= 5 {
                        return Err(crate::resilience::Error::Request("runaway loop".into()));
                    }
                    let bearer = request.bearer.as_ref().and_then(|b| b.to_str().ok());
                    let token = bearer.and_then(|b| b.strip_prefix("Bearer "));
                    bearers.push(token.unwrap_or_default().to_owned());
                    Ok(if bearers.len() <= prove.refusals {
                        answer(401, &[], r#"{"code":8003,"message":"token expired"}"#)
                    } else {
                        answer(200, &[], r#"{"success":"pending","correlationId":"c-9"}"#)
                    })
                }
            });
            let credentials = |id: &str| super::super::settings::Credentials {
                client_id: id.to_owned(),
                client_secret: "s3cr3t".to_owned().into(),
            };
            ProveClient::new(
                BoxCloneSyncService::new(outbound),
                credentials("unify-id"),
                credentials("verify-id"),
            )
        }

        fn bearers(&self) -> Vec<String> {
            self.bearers.lock().clone()
        }
    }

    fn unify_request() -> UnifyRequest {
        UnifyRequest {
            possession_type: "mobile".into(),
            phone_number: Some(PHONE.into()),
            ..UnifyRequest::default()
        }
    }

    #[tokio::test]
    async fn each_products_requests_are_limited_under_its_own_client_id() {
        // Prove's 25 per second is per client ID: a Unify call and its token request spend the
        // Unify project's budget, a Verify call the Verify project's.
        let prove = FakeProve::default();
        let client = prove.client();
        client
            .unify(&unify_request(), CallContext::default())
            .await
            .unwrap();
        let status = VerifyStatusRequest {
            correlation_id: "c-9".into(),
            ..VerifyStatusRequest::default()
        };
        // The fake answers in Unify's shape, which Verify cannot decode: only the keys matter.
        let _ = client.verify_status(&status, CallContext::default()).await;
        let keys = prove.keys.lock().clone();
        let key = |path: &'static str, id: &str| (path, id.to_owned());
        assert_eq!(
            keys,
            [
                key("/token", "unify-id"),
                key("/v3/unify", "unify-id"),
                key("/token", "verify-id"),
                key("/v3/verify-status", "verify-id"),
            ]
        );
    }

    #[tokio::test]
    async fn a_401_drops_the_token_and_tries_once_more_with_a_fresh_one() {
        let prove = FakeProve {
            refusals: 1,
            ..FakeProve::default()
        };
        let answer = prove
            .client()
            .unify(&unify_request(), CallContext::default())
            .await
            .unwrap();
        assert_eq!(answer.correlation_id, "c-9");
        assert_eq!(
            prove.bearers(),
            ["t1", "t2"],
            "a fresh token for the second try"
        );
        assert_eq!(prove.tokens.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_second_401_stands() {
        let prove = FakeProve {
            refusals: usize::MAX,
            ..FakeProve::default()
        };
        let err = prove
            .client()
            .unify(&unify_request(), CallContext::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProveError::Api {
                    status: 401,
                    code: Some(8003),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(prove.bearers(), ["t1", "t2"], "one retry, not more");
        assert_eq!(prove.tokens.load(Ordering::SeqCst), 2);
    }
}
