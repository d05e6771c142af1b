//! Readiness that means something: each product's health service follows whether Prove accepts
//! that product's credentials.
//!
//! While Prove answers 401 on `/token` for Unify's credentials, every Unify call fails, so
//! `prove.gateway.v1.UnifyService` answers NOT_SERVING, and SERVING again once a token is
//! accepted; Verify likewise. The overall service `""` stays SERVING: a liveness probe must not
//! restart a pod over credentials a restart cannot fix. Shutdown takes over from here: once it
//! has marked everything NOT_SERVING, a late credential change cannot mark a service SERVING.
//!
//! The states come from `prove::auth` as watch channels; `prove` knows nothing of health.

use std::sync::Arc;

use tokio::sync::{Mutex, watch};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::prove::auth::CredentialState;

/// The health service's statuses, as credential changes and shutdown set them.
#[derive(Clone)]
pub(super) struct Readiness {
    reporter: HealthReporter,
    /// The services of the products, each with its own status.
    products: [&'static str; 2],
    /// Set by shutdown; held while a status is being changed, so the two never interleave.
    stopping: Arc<Mutex<bool>>,
}

impl Readiness {
    /// Marks the server and both products' services SERVING.
    pub(super) async fn start(reporter: HealthReporter, products: [&'static str; 2]) -> Self {
        let readiness = Self {
            reporter,
            products,
            stopping: Arc::new(Mutex::new(false)),
        };
        readiness.set_all(ServingStatus::Serving).await;
        readiness
    }

    /// Marks everything NOT_SERVING, for good.
    pub(super) async fn stop(&self) {
        let mut stopping = self.stopping.lock().await;
        *stopping = true;
        self.set_all(ServingStatus::NotServing).await;
    }

    async fn set_all(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for service in self.products {
            self.reporter.set_service_status(service, status).await;
        }
    }

    /// Follows `states` for `service` until shutdown or until the token source is gone: one
    /// status change, and one log line, per change of state.
    pub(super) async fn follow(
        self,
        service: &'static str,
        mut states: watch::Receiver<CredentialState>,
    ) {
        let mut refused = false;
        while states.changed().await.is_ok() {
            let state = *states.borrow_and_update();
            let stopping = self.stopping.lock().await;
            if *stopping {
                return;
            }
            match state {
                // The first token of a start is no news: the service is SERVING already.
                CredentialState::Accepted if !refused => {}
                CredentialState::Refused => {
                    refused = true;
                    tracing::warn!(
                        service,
                        "NOT_SERVING: Prove refuses this product's OAuth credentials (HTTP 401 \
                         on /token); the server stays SERVING; fix or rotate the client secret"
                    );
                    self.reporter
                        .set_service_status(service, ServingStatus::NotServing)
                        .await;
                }
                CredentialState::Accepted => {
                    refused = false;
                    tracing::info!(
                        service,
                        "SERVING: Prove accepts this product's OAuth credentials"
                    );
                    self.reporter
                        .set_service_status(service, ServingStatus::Serving)
                        .await;
                }
                CredentialState::Untried => {}
            }
            drop(stopping);
        }
    }
}
