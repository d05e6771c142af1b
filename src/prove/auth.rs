//! OAuth client credentials: one cached bearer token per credential pair.
//!
//! Prove's tokens last an hour and cannot be refreshed with a refresh grant, so the gateway asks
//! `POST {base}/token` (no `/v3`) for a new one 60 seconds before the old one expires, as Prove's
//! SDKs do. Only one fetch is ever in flight per pair: concurrent callers wait for it and share
//! its result, so a cold start or an expiry never sends a burst of token requests.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tower::ServiceExt;

use super::error::ProveError;
use super::models::TokenResponse;
use crate::config::Credentials;
use crate::resilience::{Body, Endpoint, Outbound, OutboundRequest};

/// Refresh this long before the token expires (Prove's SDKs use the same margin).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest lifetime believed. Prove's tokens live an hour; `expires_in` is any JSON number up to
/// `u64::MAX`, which would overflow the clock or pin one token for ever. A token Prove revokes
/// earlier is still replaced on its first 401.
const LONGEST_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
struct CachedToken {
    value: Arc<str>,
    refresh_at: Instant,
}

/// Hands out bearer tokens for one credential pair.
pub struct TokenSource {
    credentials: Credentials,
    outbound: Outbound,
    cached: RwLock<Option<CachedToken>>,
    /// Held while a fetch is in flight; callers that queue on it find the new token when they
    /// get it.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenSource {
    /// A token source for `credentials` whose token requests go through `outbound` (and so
    /// through the rate limiter and retries like every other Prove request).
    pub fn new(credentials: Credentials, outbound: Outbound) -> Self {
        Self {
            credentials,
            outbound,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The client ID the tokens are for.
    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// A valid token: the cached one, or a new one fetched by a single request.
    pub async fn token(&self, deadline: Option<Instant>) -> Result<Arc<str>, ProveError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let token = self.fetch(deadline).await?;
        Ok(token)
    }

    /// Forgets `token` after Prove refused it, unless another caller already replaced it.
    pub fn invalidate(&self, token: &Arc<str>) {
        let mut cached = self.cached.write();
        if cached
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.value, token))
        {
            *cached = None;
        }
    }

    fn fresh(&self) -> Option<Arc<str>> {
        let cached = self.cached.read();
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.value.clone())
    }

    async fn fetch(&self, deadline: Option<Instant>) -> Result<Arc<str>, ProveError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair(
                "client_secret",
                self.credentials.client_secret.expose_secret(),
            )
            .finish();
        let request = OutboundRequest {
            endpoint: Endpoint::Token,
            body: Body::Form(form.into()),
            bearer: None,
            client_id: self.credentials.client_id.as_str().into(),
            deadline,
            attempt: 1,
        };
        let asked = Instant::now();
        let response = self.outbound.clone().oneshot(request).await;
        crate::telemetry::token_fetched(response.as_ref().map_or(0, |r| r.status));
        let parsed: TokenResponse = super::client::decode(Endpoint::Token, response?)?;
        if !parsed.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ProveError::BadResponse(format!(
                "token type {:?} is not Bearer",
                parsed.token_type
            )));
        }
        let lifetime = Duration::from_secs(parsed.expires_in).min(LONGEST_LIFETIME);
        // A token shorter-lived than the margin is refreshed halfway through its life instead.
        let early = if lifetime > REFRESH_MARGIN * 2 {
            lifetime - REFRESH_MARGIN
        } else {
            lifetime / 2
        };
        let token: Arc<str> = parsed.access_token.into();
        *self.cached.write() = Some(CachedToken {
            value: token.clone(),
            refresh_at: asked + early,
        });
        Ok(token)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

        use tower::util::BoxCloneSyncService;

    use super::*;
    use crate::resilience::OutboundResponse;

    /// A fake Prove token endpoint: answers every request after `latency` with the current
    /// `status` and `body`, counting requests. A request whose deadline comes first times out
    /// at its deadline, as the timeout layer would make it.
    #[derive(Clone)]
    struct FakeProve {
        status: Arc<AtomicU16>,
        body: Arc<parking_lot::Mutex<String>>,
        requests: Arc<AtomicUsize>,
        latency: Duration,
    }

    impl FakeProve {
        fn new(status: u16, body: &str) -> Self {
            Self {
                status: Arc::new(AtomicU16::new(status)),
                body: Arc::new(parking_lot::Mutex::new(body.to_owned())),
                requests: Arc::new(AtomicUsize::new(0)),
                latency: Duration::from_millis(100),
            }
        }

        fn accepting(expires_in: &str) -> Self {
            Self::new(
                200,
                &format!(r#"{{"access_token":"t0k3n","token_type":"Bearer","expires_in":{expires_in}}}"#),
            )
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        fn source(&self) -> TokenSource {
            let prove = self.clone();
            let service = tower::service_fn(move |request: OutboundRequest| {
                let prove = prove.clone();
                async move {
                    prove.requests.fetch_add(1, Ordering::SeqCst);
                    let answered = Instant::now() + prove.latency;
                    if let Some(deadline) = request.deadline.filter(|d| *d < answered) {
                        tokio::time::sleep_until(deadline).await;
                        return Err(ProveError::Timeout { sent: true });
                    }
                    tokio::time::sleep_until(answered).await;
                    Ok(OutboundResponse {
                        status: prove.status.load(Ordering::SeqCst),
                        headers: ::http::HeaderMap::new(),
                        body: prove.body.lock().clone().into(),
                    })
                }
            });
            let credentials = Credentials {
                client_id: "client-id-7".into(),
                client_secret: "s3cr3t-value".to_owned().into(),
            };
            TokenSource::new(credentials, BoxCloneSyncService::new(service))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_expires_in_of_u64_max_is_capped_not_a_panic() {
        let prove = FakeProve::accepting("18446744073709551615");
        let tokens = prove.source();
        assert_eq!(&*tokens.token(None).await.unwrap(), "t0k3n");
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "the token is cached");
        // Trusted for a day at most.
        tokio::time::advance(Duration::from_secs(24 * 3600)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_negative_or_garbage_expires_in_is_a_bad_response() {
        for garbage in [
            "-1",
            "-18446744073709551616",
            "18446744073709551616",
            "1.5",
            "1e3",
            r#""3600""#,
            "null",
            "[]",
        ] {
            let tokens = FakeProve::accepting(garbage).source();
            let result = tokens.token(None).await;
            assert!(
                matches!(result, Err(ProveError::BadResponse(_))),
                "{garbage}: {result:?}"
            );
        }
    }
}
