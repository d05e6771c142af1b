//! Session rules: 15-minute expiry (8008), steps out of order and replays (8003), sessions
//! belonging to their client, and the OTP / Instant Link windows.

use std::time::Duration;

use prove_gateway::simulator::{PossessionAction, Product, SimulatorError};
use serde_json::json;

use crate::helpers::{UNIFY_USER, VERIFY_USER, other_unify_credential, start, start_with};

#[tokio::test]
async fn session_expires_15_minutes_after_it_starts_with_8008() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", VERIFY_USER).await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.clock.advance(Duration::from_secs(15 * 60 - 1));
    assert_eq!(
        sim.verify_status(&token, &id).await.assert_ok()["success"],
        "pending"
    );
    sim.clock.advance(Duration::from_secs(1));
    let message = sim
        .verify_status(&token, &id)
        .await
        .assert_error(403, 8008)
        .to_owned();
    assert_eq!(message, "correlation ID is expired or invalid");
    assert_eq!(
        sim.sim
            .complete_possession(&id, PossessionAction::Authenticate),
        Err(SimulatorError::UnknownSession)
    );
}

#[tokio::test]
async fn possession_cannot_complete_on_an_expired_session() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        sim.sim
            .complete_possession(&id, PossessionAction::Authenticate),
        Err(SimulatorError::SessionExpired)
    );
    sim.unify_status(&token, &id).await.assert_error(403, 8008);
}

#[tokio::test]
async fn unknown_correlation_id_is_403_8008() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.unify_status(&token, &uuid::Uuid::new_v4().to_string())
        .await
        .assert_error(403, 8008);
}

#[tokio::test]
async fn another_clients_correlation_id_is_403_8008() {
    let sim = start_with(|c| c.credentials.push(other_unify_credential())).await;
    let token = sim.token(Product::Unify).await;
    let other = other_unify_credential();
    let other_token = sim.token_for(&other.client_id, &other.client_secret).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.unify_status(&other_token, &id)
        .await
        .assert_error(403, 8008);
}

#[tokio::test]
async fn repeating_a_final_unify_status_is_403_8003() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    sim.unify_status(&token, &id).await.assert_ok();
    let message = sim
        .unify_status(&token, &id)
        .await
        .assert_error(403, 8003)
        .to_owned();
    assert_eq!(message, "step called out of order");
}

#[tokio::test]
async fn repeating_possession_required_or_bind_is_403_8003() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "none", UNIFY_USER).await;
    assert_eq!(
        sim.unify_status(&token, &id).await.assert_ok()["success"],
        "possession_required"
    );
    sim.unify_status(&token, &id).await.assert_error(403, 8003);
    let bind = json!({"correlationId": id, "phoneNumber": UNIFY_USER});
    sim.post("/v3/unify-bind", &token, &bind).await.assert_ok();
    sim.post("/v3/unify-bind", &token, &bind)
        .await
        .assert_error(403, 8003);
}

#[tokio::test]
async fn repeating_a_final_verify_status_is_403_8003() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "none", VERIFY_USER).await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.verify_status(&token, &id).await.assert_ok();
    sim.verify_status(&token, &id).await.assert_error(403, 8003);
}

#[tokio::test]
async fn bind_before_possession_required_is_403_8003() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for possession in ["none", "mobile"] {
        let id = sim.start_unify(&token, possession, UNIFY_USER).await;
        sim.post(
            "/v3/unify-bind",
            &token,
            &json!({"correlationId": id, "phoneNumber": UNIFY_USER}),
        )
        .await
        .assert_error(403, 8003);
    }
}

#[tokio::test]
async fn status_of_the_other_product_is_403_8003() {
    let sim = start().await;
    let unify_token = sim.token(Product::Unify).await;
    let unify_id = sim.start_unify(&unify_token, "mobile", UNIFY_USER).await;
    sim.verify_status(&unify_token, &unify_id)
        .await
        .assert_error(403, 8003);

    let verify_token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&verify_token, "mobile", VERIFY_USER).await;
    let verify_id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.unify_status(&verify_token, &verify_id)
        .await
        .assert_error(403, 8003);
}

#[tokio::test]
async fn a_rejected_step_can_be_retried_once_corrected() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "none", UNIFY_USER).await;
    sim.unify_status(&token, &id).await.assert_ok();
    sim.post("/v3/unify-bind", &token, &json!({"correlationId": id}))
        .await
        .assert_error(400, 8001);
    let bind = sim
        .post(
            "/v3/unify-bind",
            &token,
            &json!({"correlationId": id, "phoneNumber": UNIFY_USER}),
        )
        .await;
    assert_eq!(bind.assert_ok()["success"], "true");
}

#[tokio::test]
async fn otp_after_two_minutes_and_instant_link_after_three_fail_possession() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let otp_id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    let link_id = sim.start_unify(&token, "desktop", UNIFY_USER).await;
    sim.clock.advance(Duration::from_secs(3 * 60 + 1));
    sim.sim
        .complete_possession(&otp_id, PossessionAction::Otp("1234".into()))
        .unwrap();
    sim.sim
        .complete_possession(&link_id, PossessionAction::InstantLink)
        .unwrap();
    for id in [otp_id, link_id] {
        assert_eq!(
            sim.unify_status(&token, &id).await.assert_ok()["success"],
            "false"
        );
    }
}

#[tokio::test]
async fn possession_actions_are_checked_against_the_flow() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let desktop = sim.start_unify(&token, "desktop", UNIFY_USER).await;
    assert_eq!(
        sim.sim
            .complete_possession(&desktop, PossessionAction::Otp("1234".into())),
        Err(SimulatorError::WrongAction("desktop"))
    );
    let none = sim.start_unify(&token, "none", UNIFY_USER).await;
    assert_eq!(
        sim.sim
            .complete_possession(&none, PossessionAction::Authenticate),
        Err(SimulatorError::PossessionNotApplicable)
    );
    let mobile = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.sim
        .complete_possession(&mobile, PossessionAction::Authenticate)
        .unwrap();
    assert_eq!(
        sim.sim
            .complete_possession(&mobile, PossessionAction::Authenticate),
        Err(SimulatorError::AlreadyCompleted)
    );
}

#[tokio::test]
async fn simulator_possession_fail_user_fails_unify_even_after_authenticate() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", "2001009001").await;
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    let status = sim.unify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "false");
    assert_eq!(body["evaluation"]["authentication"]["result"], "fail");
}
