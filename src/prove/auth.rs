//! OAuth client credentials: one cached bearer token per credential pair.
//!
//! Prove's tokens last an hour and cannot be refreshed with a refresh grant, so the gateway asks
//! `POST {base}/token` (no `/v3`) for a new one 60 seconds before the old one expires, as Prove's
//! SDKs do. Only one fetch is ever in flight per pair: concurrent callers wait for it and share
//! its result, success or failure, so a cold start, an expiry or an outage never sends a burst
//! of token requests.
//!
//! When Prove refuses the credentials themselves (HTTP 401 on `/token`), asking again at once
//! cannot help: an operator must fix them. The refusal is remembered for a backoff (1 s,
//! doubling, at most 30 s) during which calls fail at once with the same error and send nothing;
//! then one request tries again. One WARN line marks each change (refused, accepted again).
//! A rotated secret ([`super::secret`]) ends the backoff: the new secret is tried at once.
//!
//! Whether Prove accepts the credentials is also published as a [`CredentialState`] on a watch
//! channel, for whoever reports readiness (the server's health service); this module does not
//! know who listens.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::endpoint::Endpoint;
use super::error::ProveError;
use super::models::TokenResponse;
use super::settings::Credentials;
use crate::resilience::{self, Body, Outbound, OutboundRequest};

/// Refresh this long before the token expires (Prove's SDKs use the same margin).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest lifetime believed. Prove's tokens live an hour; `expires_in` is any JSON number up to
/// `u64::MAX`, which would overflow the clock or pin one token for ever. A token Prove revokes
/// earlier is still replaced on its first 401.
const LONGEST_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The first pause after Prove refuses the credentials: long enough that a burst of calls costs
/// one request, short enough that fixed credentials are picked up almost at once.
const FIRST_REFUSAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause. Credentials stay wrong until an operator acts; at one request per 30 s a
/// broken replica spends a negligible share of Prove's 25 requests per second, and a fix (a
/// rotated Secret, a re-enabled client) is noticed within half a minute.
const LONGEST_REFUSAL_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct CachedToken {
    value: Arc<str>,
    refresh_at: Instant,
}

/// How the fetches so far ended, for the callers that waited for them.
#[derive(Default)]
struct Outcomes {
    /// Fetches finished so far. A caller that finds this higher than before it queued knows a
    /// fetch ended while it waited, and shares that fetch's result instead of making its own.
    finished: u64,
    /// The last fetch's failure, with the deadline it ran under.
    failure: Option<(ProveError, Option<Instant>)>,
    /// Prove refused the credentials; `None` once it accepts them again.
    refused: Option<Refusal>,
}

impl Outcomes {
    /// Records how a fetch ended at `now`; returns the change of state it makes, if any.
    fn record(
        &mut self,
        result: &Result<Arc<str>, ProveError>,
        deadline: Option<Instant>,
        now: Instant,
        generation: u64,
    ) -> Option<CredentialsChange> {
        self.finished += 1;
        let error = match result {
            Ok(_) => {
                self.failure = None;
                return self.refused.take().map(|_| CredentialsChange::Accepted);
            }
            Err(error) => error,
        };
        self.failure = Some((error.clone(), deadline));
        if !matches!(error, ProveError::Api { status: 401, .. }) {
            // An outage says nothing about the credentials: a refusal stands, its backoff too.
            return None;
        }
        let backoff = self.refused.as_ref().map_or(FIRST_REFUSAL_BACKOFF, |r| {
            (r.backoff * 2).min(LONGEST_REFUSAL_BACKOFF)
        });
        let first = self.refused.is_none();
        self.refused = Some(Refusal {
            error: error.clone(),
            until: now + backoff,
            backoff,
            generation,
        });
        first.then_some(CredentialsChange::Refused { backoff })
    }
}

/// A change in whether Prove accepts the credentials: the only times the token source logs, so
/// a burst of failing calls writes one line, not one per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredentialsChange {
    Refused { backoff: Duration },
    Accepted,
}

impl CredentialsChange {
    fn log(self) {
        match self {
            Self::Refused { backoff } => tracing::warn!(
                backoff_ms = backoff.as_millis() as u64,
                "Prove refused the gateway's OAuth credentials (HTTP 401 on /token); calls fail \
                 at once, asking again after a backoff of up to 30 s"
            ),
            Self::Accepted => {
                tracing::warn!("Prove accepted the gateway's OAuth credentials again");
            }
        }
    }
}

/// The negative cache for refused credentials.
struct Refusal {
    /// Prove's refusal, handed to every call until `until`.
    error: ProveError,
    until: Instant,
    /// The pause that ends at `until`; the next refusal doubles it.
    backoff: Duration,
    /// The generation of the secret refused: a rotated secret is tried at once.
    generation: u64,
}

/// Whether Prove accepts a credential pair, as its last token request showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CredentialState {
    /// No token requested yet.
    #[default]
    Untried,
    /// The last answer to a token request was a token.
    Accepted,
    /// The last answer to a token request was 401: the credentials are refused. Outages and
    /// timeouts leave the state as it was: they say nothing about the credentials.
    Refused,
}

/// Hands out bearer tokens for one credential pair.
pub struct TokenSource {
    credentials: Credentials,
    outbound: Outbound,
    cached: RwLock<Option<CachedToken>>,
    /// Held while a fetch is in flight; callers that queue on it find its result when they get
    /// it.
    fetching: tokio::sync::Mutex<()>,
    outcomes: Mutex<Outcomes>,
    state: watch::Sender<CredentialState>,
}

impl TokenSource {
    /// A token source for `credentials` whose token requests go through `outbound` (and so
    /// through the rate limiter and retries like every other Prove request).
    /// A secret given as a file is read again from now on (see [`super::secret`]).
    pub fn new(credentials: Credentials, outbound: Outbound) -> Self {
        credentials.client_secret.keep_current();
        Self {
            credentials,
            outbound,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            outcomes: Mutex::new(Outcomes::default()),
            state: watch::Sender::new(CredentialState::Untried),
        }
    }

    /// Whether Prove accepts these credentials, now and as it changes.
    pub fn credential_state(&self) -> watch::Receiver<CredentialState> {
        self.state.subscribe()
    }

    /// The client ID the tokens are for.
    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// A valid token: the cached one, or a new one fetched by a single request whose result
    /// every caller waiting for it shares.
    pub async fn token(&self, deadline: Option<Instant>) -> Result<Arc<str>, ProveError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        self.refused()?;
        let seen = self.outcomes.lock().finished;
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        if let Some(error) = self.failed_since(seen, deadline) {
            return Err(error);
        }
        self.refused()?;
        let (secret, generation) = self.credentials.client_secret.current_with_generation();
        let result = self.fetch(&secret, deadline).await;
        self.finished(&result, deadline, generation);
        result
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

    /// Prove's refusal, while its backoff lasts and the secret it refused is still the one
    /// in force.
    fn refused(&self) -> Result<(), ProveError> {
        let generation = self.credentials.client_secret.generation();
        match &self.outcomes.lock().refused {
            Some(refusal) if Instant::now() < refusal.until && refusal.generation == generation => {
                Err(refusal.error.clone())
            }
            _ => Ok(()),
        }
    }

    /// The failure of a fetch that ended after `seen`, if this caller should share it.
    ///
    /// A failure that came from the fetching caller's own deadline (it ran out of time, or the
    /// limiter could not admit it in time) is shared only with callers who have no more time;
    /// a caller with a later deadline fetches for itself.
    fn failed_since(&self, seen: u64, deadline: Option<Instant>) -> Option<ProveError> {
        let outcomes = self.outcomes.lock();
        if outcomes.finished == seen {
            return None;
        }
        let (error, ran_under) = outcomes.failure.as_ref()?;
        let bound_by_its_deadline = matches!(
            error,
            ProveError::Transport(
                resilience::Error::Timeout { .. } | resilience::Error::RateLimited { .. }
            )
        );
        let more_time = match (ran_under, deadline) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(theirs), Some(mine)) => mine > *theirs,
        };
        (!(bound_by_its_deadline && more_time)).then(|| error.clone())
    }

    /// Records how a fetch with the secret of `generation` ended, logs the change of state it
    /// makes, if any, and publishes the credentials' state.
    fn finished(
        &self,
        result: &Result<Arc<str>, ProveError>,
        deadline: Option<Instant>,
        generation: u64,
    ) {
        let change = self
            .outcomes
            .lock()
            .record(result, deadline, Instant::now(), generation);
        if let Some(change) = change {
            change.log();
        }
        let state = match result {
            Ok(_) => CredentialState::Accepted,
            Err(ProveError::Api { status: 401, .. }) => CredentialState::Refused,
            Err(_) => return,
        };
        // Only a change wakes the listeners, so each change is reported once.
        self.state
            .send_if_modified(|now| std::mem::replace(now, state) != state);
    }

    async fn fetch(
        &self,
        secret: &secrecy::SecretString,
        deadline: Option<Instant>,
    ) -> Result<Arc<str>, ProveError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("client_secret", secret.expose_secret())
            .finish();
        let request = OutboundRequest {
            path: Endpoint::Token.path(),
            body: Body::Form(form.into()),
            bearer: None,
            client_id: self.credentials.client_id.as_str().into(),
            deadline,
            attempt: 1,
            on_answer: None,
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

    use futures::future::join_all;
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
        /// The client secret of the last token request.
        secret_sent: Arc<parking_lot::Mutex<String>>,
    }

    impl FakeProve {
        fn new(status: u16, body: &str) -> Self {
            Self {
                status: Arc::new(AtomicU16::new(status)),
                body: Arc::new(parking_lot::Mutex::new(body.to_owned())),
                requests: Arc::new(AtomicUsize::new(0)),
                latency: Duration::from_millis(100),
                secret_sent: Arc::default(),
            }
        }

        fn refusing() -> Self {
            Self::new(
                401,
                r#"{"code":8002,"message":"invalid client credentials"}"#,
            )
        }

        fn accepting(expires_in: &str) -> Self {
            Self::new(
                200,
                &format!(
                    r#"{{"access_token":"t0k3n","token_type":"Bearer","expires_in":{expires_in}}}"#
                ),
            )
        }

        fn answer(&self, status: u16, body: &str) {
            self.status.store(status, Ordering::SeqCst);
            *self.body.lock() = body.to_owned();
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        fn source(&self) -> TokenSource {
            self.source_with("s3cr3t-value".to_owned().into())
        }

        fn source_with(&self, secret: crate::prove::ClientSecret) -> TokenSource {
            let prove = self.clone();
            let service = tower::service_fn(move |request: OutboundRequest| {
                let prove = prove.clone();
                async move {
                    prove.requests.fetch_add(1, Ordering::SeqCst);
                    if let crate::resilience::Body::Form(form) = &request.body {
                        let secret = url::form_urlencoded::parse(form)
                            .find(|(k, _)| k == "client_secret")
                            .map(|(_, v)| v.into_owned());
                        *prove.secret_sent.lock() = secret.unwrap_or_default();
                    }
                    let answered = Instant::now() + prove.latency;
                    if let Some(deadline) = request.deadline.filter(|d| *d < answered) {
                        tokio::time::sleep_until(deadline).await;
                        return Err(resilience::Error::Timeout { sent: true });
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
                client_secret: secret,
            };
            TokenSource::new(credentials, BoxCloneSyncService::new(service))
        }
    }

    fn is_refusal(result: &Result<Arc<str>, ProveError>) -> bool {
        matches!(result, Err(ProveError::Api { status: 401, .. }))
    }

    #[tokio::test(start_paused = true)]
    async fn an_expires_in_of_u64_max_is_capped_not_a_panic() {
        let prove = FakeProve::accepting("18446744073709551615");
        let tokens = prove.source();
        assert_eq!(&*tokens.token(None).await.unwrap(), "t0k3n");
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "the token is cached");
        // Trusted for a day, less the refresh margin, and not a second longer.
        tokio::time::advance(Duration::from_secs(24 * 3600 - 61)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "believed for the day");
        tokio::time::advance(Duration::from_secs(61)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_one_hour_token_is_refreshed_60_seconds_before_it_expires() {
        // Prove's tokens last an hour; the gateway asks for a new one 60 s before that, counted
        // from when it asked for the old one (the answer's 100 ms are part of the token's life).
        let prove = FakeProve::accepting("3600");
        let tokens = prove.source();
        let asked = Instant::now();
        tokens.token(None).await.unwrap();
        let refresh_at = asked + Duration::from_secs(3540);

        tokio::time::advance(refresh_at - Duration::from_millis(1) - Instant::now()).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "still fresh 1 ms before the margin");

        tokio::time::advance(Duration::from_millis(1)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2, "refreshed 60 s before expiry");
        // The new token is again good for 3,540 s from its request.
        tokio::time::advance(Duration::from_secs(3000)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_callers_of_an_expired_token_share_one_refresh() {
        let prove = FakeProve::accepting("3600");
        let tokens = prove.source();
        tokens.token(None).await.unwrap();
        tokio::time::advance(Duration::from_secs(3540)).await;
        let results = join_all((0..20).map(|_| tokens.token(None))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(prove.requests(), 2, "one refresh for twenty callers");
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

    #[tokio::test(start_paused = true)]
    async fn a_refused_fetch_is_shared_with_the_callers_waiting_for_it() {
        let prove = FakeProve::refusing();
        let tokens = prove.source();
        let results = join_all((0..20).map(|_| tokens.token(None))).await;
        assert!(results.iter().all(is_refusal), "{results:?}");
        assert_eq!(prove.requests(), 1, "one request for twenty callers");
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_at_token_is_shared_with_the_callers_waiting_for_it() {
        // Not a refusal (no backoff holds the callers back): only the shared result does.
        let prove = FakeProve::new(503, r#"{"code":8000,"message":"try later"}"#);
        let tokens = prove.source();
        let results = join_all((0..20).map(|_| tokens.token(None))).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(ProveError::Api { status: 503, .. }))),
            "{results:?}"
        );
        assert_eq!(prove.requests(), 1, "one request for twenty callers");
        // A caller that comes after the outage asks again.
        tokens.token(None).await.unwrap_err();
        assert_eq!(prove.requests(), 2);
        // Callers with more time than the one that fetched share it too: an outage is not a
        // failure of the fetching caller's own deadline.
        let now = Instant::now();
        let deadlines: Vec<_> = (0..20u64)
            .map(|i| Some(now + Duration::from_secs(10) + Duration::from_millis(i)))
            .collect();
        let results = join_all(deadlines.iter().map(|d| tokens.token(*d))).await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert_eq!(
            prove.requests(),
            3,
            "one request for twenty callers with deadlines"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_are_not_asked_again_until_a_doubling_backoff_ends() {
        let prove = FakeProve::refusing();
        let tokens = prove.source();
        assert!(is_refusal(&tokens.token(None).await));
        let mut asked = 1;
        // The pause after each refusal: 1 s, doubling, at most 30 s.
        for backoff in [1, 2, 4, 8, 16, 30, 30] {
            let backoff = Duration::from_secs(backoff);
            tokio::time::advance(backoff - Duration::from_millis(10)).await;
            assert!(is_refusal(&tokens.token(None).await), "fails at once");
            assert_eq!(prove.requests(), asked, "no request within {backoff:?}");
            tokio::time::advance(Duration::from_millis(10)).await;
            assert!(is_refusal(&tokens.token(None).await));
            asked += 1;
            assert_eq!(prove.requests(), asked, "one request after {backoff:?}");
        }
        // Accepted again: the backoff starts over at one second on the next refusal.
        prove.answer(
            200,
            r#"{"access_token":"t0k3n","token_type":"Bearer","expires_in":3600}"#,
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        tokens.token(None).await.unwrap();
        tokens.invalidate(&tokens.token(None).await.unwrap());
        prove.answer(401, r#"{"code":8002,"message":"revoked"}"#);
        assert!(is_refusal(&tokens.token(None).await));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_refusal(&tokens.token(None).await));
        assert_eq!(prove.requests(), asked + 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_ran_out_of_its_callers_time_is_not_shared_with_callers_with_more() {
        let prove = FakeProve::accepting("3600");
        let tokens = prove.source();
        let hurried = tokens.token(Some(Instant::now() + Duration::from_millis(50)));
        let patient = tokens.token(Some(Instant::now() + Duration::from_secs(5)));
        let (hurried, patient) = tokio::join!(hurried, patient);
        assert!(
            matches!(
                hurried,
                Err(ProveError::Transport(resilience::Error::Timeout { .. }))
            ),
            "{hurried:?}"
        );
        assert_eq!(&*patient.unwrap(), "t0k3n");
        assert_eq!(prove.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_ran_out_of_time_is_shared_with_callers_who_have_no_more() {
        // A caller with the same deadline would run out of time the same way: it shares the
        // timeout instead of spending a second request on it.
        let prove = FakeProve::accepting("3600");
        let tokens = prove.source();
        let deadline = Some(Instant::now() + Duration::from_millis(50));
        let (first, second) = tokio::join!(tokens.token(deadline), tokens.token(deadline));
        for result in [first, second] {
            assert!(
                matches!(
                    result,
                    Err(ProveError::Transport(resilience::Error::Timeout { .. }))
                ),
                "{result:?}"
            );
        }
        assert_eq!(prove.requests(), 1);
    }

    #[test]
    fn the_state_changes_once_when_credentials_are_refused_and_once_when_accepted_again() {
        // What is logged at WARN: one line per change. (Capturing the lines themselves would
        // install a second tracing dispatcher in this test binary, which disturbs the export
        // filter's callsite test in telemetry.rs.)
        let refused = Err(ProveError::Api {
            status: 401,
            code: Some(8002),
            message: "invalid client credentials".into(),
            retry_after: None,
        });
        let outage = Err(ProveError::Transport(resilience::Error::Unreachable(
            "refused".into(),
        )));
        let accepted = Ok(Arc::from("t0k3n"));
        let mut outcomes = Outcomes::default();
        let now = Instant::now();
        let changes: Vec<_> = [
            &refused, &refused, &outage, &refused, &accepted, &accepted, &outage, &refused,
        ]
        .into_iter()
        .map(|result| outcomes.record(result, None, now, 0))
        .collect();
        let one_second = Duration::from_secs(1);
        assert_eq!(
            changes,
            [
                Some(CredentialsChange::Refused {
                    backoff: one_second
                }),
                None,
                None,
                None,
                Some(CredentialsChange::Accepted),
                None,
                None,
                Some(CredentialsChange::Refused {
                    backoff: one_second
                }),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_secret_is_sent_at_once_even_within_the_refusal_backoff() {
        let prove = FakeProve::refusing();
        let secret = crate::prove::ClientSecret::fixed("old-secret".to_owned().into());
        let tokens = prove.source_with(secret.clone());
        assert!(is_refusal(&tokens.token(None).await));
        assert_eq!(prove.secret_sent.lock().as_str(), "old-secret");
        // Within the backoff, the refused secret is not sent again...
        assert!(is_refusal(&tokens.token(None).await));
        assert_eq!(prove.requests(), 1);
        // ...but a rotated one is: the refusal was of the old secret.
        secret.rotate("new-secret");
        prove.answer(
            200,
            r#"{"access_token":"t0k3n","token_type":"Bearer","expires_in":3600}"#,
        );
        assert_eq!(&*tokens.token(None).await.unwrap(), "t0k3n");
        assert_eq!(prove.requests(), 2);
        assert_eq!(prove.secret_sent.lock().as_str(), "new-secret");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_token_outlives_a_rotation_and_the_refresh_uses_the_new_secret() {
        let prove = FakeProve::accepting("3600");
        let secret = crate::prove::ClientSecret::fixed("old-secret".to_owned().into());
        let tokens = prove.source_with(secret.clone());
        tokens.token(None).await.unwrap();
        secret.rotate("new-secret");
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "the token held stays in use");
        tokio::time::advance(Duration::from_secs(3540)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2);
        assert_eq!(prove.secret_sent.lock().as_str(), "new-secret");
    }

    #[tokio::test(start_paused = true)]
    async fn the_credential_state_follows_refusals_and_acceptance_but_not_outages() {
        let accept = r#"{"access_token":"t0k3n","token_type":"Bearer","expires_in":3600}"#;
        let prove = FakeProve::refusing();
        let tokens = prove.source();
        let mut state = tokens.credential_state();
        assert_eq!(*state.borrow_and_update(), CredentialState::Untried);
        tokens.token(None).await.unwrap_err();
        assert!(state.has_changed().unwrap());
        assert_eq!(*state.borrow_and_update(), CredentialState::Refused);
        // A second refusal is no change.
        tokio::time::advance(Duration::from_secs(1)).await;
        tokens.token(None).await.unwrap_err();
        assert!(!state.has_changed().unwrap());

        prove.answer(200, accept);
        tokio::time::advance(Duration::from_secs(2)).await;
        let token = tokens.token(None).await.unwrap();
        assert!(state.has_changed().unwrap());
        assert_eq!(*state.borrow_and_update(), CredentialState::Accepted);
        // An outage says nothing about the credentials: still accepted.
        tokens.invalidate(&token);
        prove.answer(503, r#"{"code":8000,"message":"try later"}"#);
        tokens.token(None).await.unwrap_err();
        assert!(!state.has_changed().unwrap());
        assert_eq!(*state.borrow(), CredentialState::Accepted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_shorter_than_twice_the_margin_is_refreshed_halfway() {
        // 100 s is less than two margins of 60 s: refreshed at 50 s, counted from the request
        // (taking 60 s off would leave 40 s; a two-second token would have none left at all).
        let prove = FakeProve::accepting("100");
        let tokens = prove.source();
        let asked = Instant::now();
        tokens.token(None).await.unwrap();
        let refresh_at = asked + Duration::from_secs(50);

        tokio::time::advance(refresh_at - Duration::from_millis(1) - Instant::now()).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 1, "still fresh 1 ms before half its life");

        tokio::time::advance(Duration::from_millis(1)).await;
        tokens.token(None).await.unwrap();
        assert_eq!(prove.requests(), 2, "refreshed halfway through its life");
    }
}
