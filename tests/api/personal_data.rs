//! Personal data never reaches the logs: a Verify with names, an e-mail address and a phone
//! number, then its status, with everything the gateway and the simulator log captured for this
//! test alone.

use prove_gateway::grpc::pb::{PossessionType, VerifyOutcome, VerifyRequest, VerifyStatusRequest};
use prove_gateway::simulator::PossessionAction;

use crate::helpers::{LogCapture, spawn_app};

// Values no other part of the log could contain by chance.
const FIRST_NAME: &str = "Sheilakathryn";
const LAST_NAME: &str = "Butrimovich";
const EMAIL: &str = "sheilakathryn.butrimovich@example.com";
const PHONE: &str = "2001004011";

// The default (current-thread) runtime: the capture is this thread's, and every task of the
// gateway and the simulator runs on it.
#[tokio::test]
async fn verify_and_its_status_log_no_name_email_or_phone_number() {
    let logs = LogCapture::start();
    let mut app = spawn_app().await;
    let started = app
        .verify
        .verify(VerifyRequest {
            possession_type: PossessionType::Mobile as i32,
            phone_number: PHONE.into(),
            first_name: FIRST_NAME.into(),
            last_name: LAST_NAME.into(),
            email_address: EMAIL.into(),
            final_target_url: "https://www.example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    let status = app
        .verify
        .verify_status(VerifyStatusRequest {
            correlation_id: started.correlation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), VerifyOutcome::Success);
    // The values did reach Prove: the test would be empty if they had not.
    let sent = app.sim.records().last("/v3/verify").unwrap().body.clone();
    assert_eq!(sent.unwrap()["emailAddress"], EMAIL);
    drop(app);

    let text = logs.text();
    // The capture is live: both RPCs and both Prove calls left lines in it.
    for expected in ["/v3/verify", "/v3/verify-status", "VerifyStatus"] {
        assert!(
            text.contains(expected),
            "no {expected:?} in the log:\n{text}"
        );
    }
    let lowercase = text.to_lowercase();
    for secret in [
        FIRST_NAME,
        LAST_NAME,
        EMAIL,
        PHONE,
        "+12001004011", // the number as the gateway normalises it
        &started.auth_token,
    ] {
        assert!(
            !lowercase.contains(&secret.to_lowercase()),
            "the log contains {secret:?}:\n{text}"
        );
    }
}
