//! Verified Users (legacy possession flow): `/v3/verify` and `/v3/verify-status`.

use prove_gateway::simulator::{PossessionAction, Product};

use crate::helpers::{VERIFY_USER, keys, start};

#[tokio::test]
async fn verify_with_possession_is_pending_then_succeeds_with_an_identity_id() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", VERIFY_USER).await;
    let body = answer.assert_ok();
    assert_eq!(
        keys(body),
        [
            "authToken",
            "correlationId",
            "possessionResult",
            "success",
            "verifyResult"
        ]
    );
    assert_eq!(body["success"], "pending");
    assert_eq!(body["possessionResult"], "pending");
    assert_eq!(body["verifyResult"], "pending");
    let id = body["correlationId"].as_str().unwrap().to_owned();

    sim.sim
        .complete_possession(&id, PossessionAction::Otp("1234".into()))
        .unwrap();
    let status = sim.verify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "true");
    assert_eq!(body["possessionResult"], "success");
    assert_eq!(body["verifyResult"], "success");
    assert!(body["identityId"].is_string());
}

#[tokio::test]
async fn every_documented_verify_user_passes_the_desktop_flow() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    for phone in ["2001004011", "447968900002", "+447968900002", "2001004053"] {
        let answer = sim.start_verify(&token, "desktop", phone).await;
        let id = answer.assert_ok()["correlationId"]
            .as_str()
            .unwrap()
            .to_owned();
        sim.sim
            .complete_possession(&id, PossessionAction::InstantLink)
            .unwrap();
        let status = sim.verify_status(&token, &id).await;
        assert_eq!(status.assert_ok()["success"], "true", "{phone}");
    }
}

#[tokio::test]
async fn verify_status_stays_pending_and_pollable_until_possession_completes() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", VERIFY_USER).await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let status = sim.verify_status(&token, &id).await;
        let body = status.assert_ok();
        assert_eq!(keys(body), ["possessionResult", "success", "verifyResult"]);
        assert_eq!(body["success"], "pending");
        assert_eq!(body["possessionResult"], "pending");
    }
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    assert_eq!(
        sim.verify_status(&token, &id).await.assert_ok()["success"],
        "true"
    );
}

#[tokio::test]
async fn verify_without_possession_is_final_at_once_and_status_repeats_it() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "none", VERIFY_USER).await;
    let body = answer.assert_ok();
    assert_eq!(body["success"], "true");
    assert_eq!(body["possessionResult"], "not_applicable");
    assert_eq!(body["verifyResult"], "success");
    assert!(body.get("authToken").is_none());
    let id = body["correlationId"].as_str().unwrap().to_owned();

    let status = sim.verify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "true");
    assert_eq!(body["possessionResult"], "not_applicable");
    assert_eq!(body["verifyResult"], "success");
    assert!(body["identityId"].is_string());
}

#[tokio::test]
async fn simulator_verify_fail_user_fails_verification_after_possession() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", "2001009003").await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    let status = sim.verify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "false");
    assert_eq!(body["possessionResult"], "success");
    assert_eq!(body["verifyResult"], "failed");
    assert!(body.get("identityId").is_none());

    let none = sim.start_verify(&token, "none", "2001009003").await;
    let body = none.assert_ok();
    assert_eq!(body["success"], "false");
    assert_eq!(body["verifyResult"], "failed");
}

#[tokio::test]
async fn simulator_possession_fail_user_fails_possession_in_verify_status() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", "2001009004").await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.sim
        .complete_possession(&id, PossessionAction::Otp("1234".into()))
        .unwrap();
    let status = sim.verify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "false");
    assert_eq!(body["possessionResult"], "failed");
    assert_eq!(body["verifyResult"], "not_applicable");
}

#[tokio::test]
async fn wrong_otp_fails_verify_possession() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim.start_verify(&token, "mobile", VERIFY_USER).await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.sim
        .complete_possession(&id, PossessionAction::Otp("4321".into()))
        .unwrap();
    let status = sim.verify_status(&token, &id).await;
    assert_eq!(status.assert_ok()["possessionResult"], "failed");
}
