//! Verified Users end to end, with and without possession.

use prove_gateway::grpc::pb::{
    CheckResult, PossessionType, VerifyOutcome, VerifyRequest, VerifyStatusRequest,
};
use prove_gateway::simulator::PossessionAction;

use crate::helpers::spawn_app;

fn verify(possession: PossessionType, phone: &str) -> VerifyRequest {
    VerifyRequest {
        possession_type: possession as i32,
        phone_number: phone.into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        final_target_url: "https://www.example.com".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn verify_with_possession_is_pending_then_status_succeeds() {
    let mut app = spawn_app().await;
    let started = app
        .verify
        .verify(verify(PossessionType::Mobile, "2001004011"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.success(), VerifyOutcome::Pending);
    assert_eq!(started.possession_result(), CheckResult::Pending);
    assert_eq!(started.verify_result(), CheckResult::Pending);
    assert!(!started.auth_token.is_empty());

    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    let status = app
        .verify
        .verify_status(VerifyStatusRequest {
            correlation_id: started.correlation_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), VerifyOutcome::Success);
    assert_eq!(status.possession_result(), CheckResult::Success);
    assert_eq!(status.verify_result(), CheckResult::Success);
    assert!(!status.identity_id.is_empty());
}

#[tokio::test]
async fn verify_without_possession_answers_at_once() {
    let mut app = spawn_app().await;
    let answer = app
        .verify
        .verify(verify(PossessionType::CustomerSupplied, "2001004011"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.success(), VerifyOutcome::Success);
    assert_eq!(answer.possession_result(), CheckResult::NotApplicable);
    assert_eq!(answer.possession_result_raw, "not_applicable");
    assert_eq!(answer.verify_result(), CheckResult::Success);
    let sent = app
        .sim
        .records()
        .last("/v3/verify")
        .unwrap()
        .body
        .clone()
        .unwrap();
    assert_eq!(sent["firstName"], "Sheilakathryn");
    assert_eq!(sent["possessionType"], "none");
}

#[tokio::test]
async fn a_failing_verify_user_reports_the_failed_check() {
    let mut app = spawn_app().await;
    let answer = app
        .verify
        .verify(verify(PossessionType::CustomerSupplied, "2001009003"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.success(), VerifyOutcome::Failure);
    assert_eq!(answer.verify_result(), CheckResult::Failed);
}
