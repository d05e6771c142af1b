//! Readiness follows the credentials: a product whose credentials Prove refuses is NOT_SERVING
//! until they are accepted again, while the server as a whole stays SERVING.

use std::time::Duration;

use prove_gateway::config::Upstream;
use prove_gateway::simulator::{self, Credential, Product, SimulatorConfig};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{LogCapture, credentials, error_info, mobile_unify, spawn_app_configured};

const UNIFY: &str = "prove.gateway.v1.UnifyService";
const VERIFY: &str = "prove.gateway.v1.VerifyService";
/// The Unify secret the gateway is given, which the simulator does not know at first.
const WRONG: &str = "r0tated-elsewhere-secret";

async fn status(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test]
async fn a_product_is_not_serving_while_prove_refuses_its_credentials_and_the_server_stays_serving()
{
    let logs = LogCapture::start();
    let mut app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        if let Upstream::Prove { unify, .. } = &mut settings.upstream {
            *unify = credentials(simulator::SIM_UNIFY_CLIENT_ID, WRONG);
        }
    })
    .await;
    let mut health = HealthClient::new(app.channel.clone());
    let mut unify_health = health
        .watch(HealthCheckRequest {
            service: UNIFY.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), unify_health.next())
            .await
            .expect("a health change")
            .unwrap()
            .unwrap()
            .status()
    };
    assert_eq!(next().await, ServingStatus::Serving, "untried credentials");

    let refused = app.unify.unify(mobile_unify()).await.unwrap_err();
    assert_eq!(error_info(&refused).reason, "UPSTREAM_UNAUTHORIZED");
    assert_eq!(next().await, ServingStatus::NotServing);
    assert_eq!(status(&mut health, UNIFY).await, ServingStatus::NotServing);
    assert_eq!(
        status(&mut health, "").await,
        ServingStatus::Serving,
        "liveness holds"
    );
    assert_eq!(
        status(&mut health, VERIFY).await,
        ServingStatus::Serving,
        "Verify is fine"
    );

    // Prove accepts the secret now (the portal's side of a rotation). Calls fail at once until
    // the refusal backoff (1 s) ends; then one token request succeeds.
    let mut accepted = Credential::default_set();
    accepted.push(Credential::new(
        simulator::SIM_UNIFY_CLIENT_ID,
        WRONG,
        Product::Unify,
    ));
    app.sim.set_credentials(accepted);
    let mut tries = 0;
    while app.unify.unify(mobile_unify()).await.is_err() {
        tries += 1;
        assert!(tries < 200, "the accepted credentials are never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(next().await, ServingStatus::Serving);
    assert_eq!(status(&mut health, "").await, ServingStatus::Serving);

    // One line per change, naming the service; the secret in none.
    let text = logs.text();
    let not_serving = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("NOT_SERVING") && l.contains(UNIFY))
        .count();
    assert_eq!(not_serving, 1, "{text}");
    let serving = text
        .lines()
        .filter(|l| l.contains(" SERVING: Prove accepts") && l.contains(UNIFY))
        .count();
    assert_eq!(serving, 1, "{text}");
    assert!(!text.contains(WRONG), "the secret is never logged");
}
