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
        let lifetime = Duration::from_secs(parsed.expires_in);
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
