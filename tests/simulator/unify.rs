//! Unified Authentication: `/v3/unify`, `/v3/unify-status`, `/v3/unify-bind` for the sandbox
//! users, per possession type.

use prove_gateway::simulator::{PossessionAction, Product};
use serde_json::{Value, json};

use crate::helpers::{FINAL_URL, SHORT_TERM_USER, UNIFY_USER, keys, start};

fn is_lowercase_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn assert_no_nulls_or_empties(value: &Value) {
    for (key, v) in value.as_object().unwrap() {
        assert!(!v.is_null(), "{key} is null");
        assert_ne!(v, &json!({}), "{key} is an empty object");
        assert_ne!(v, &json!([]), "{key} is an empty array");
    }
}

#[tokio::test]
async fn unify_starts_pending_with_a_uuid_correlation_id_and_a_jwt_auth_token() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "clientRequestId": "r-1"}),
        )
        .await;
    let body = answer.assert_ok();
    assert_eq!(keys(body), ["authToken", "correlationId", "success"]);
    assert_eq!(body["success"], "pending");
    assert!(is_lowercase_uuid(body["correlationId"].as_str().unwrap()));
    assert_eq!(body["authToken"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn mobile_flow_passes_after_authenticate_and_issues_a_device_id() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({
                "possessionType": "mobile", "phoneNumber": UNIFY_USER,
                "clientRequestId": "req-1", "clientHumanId": "human-1"
            }),
        )
        .await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    let status = sim.unify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_no_nulls_or_empties(body);
    assert_eq!(
        keys(body),
        [
            "clientHumanId",
            "clientRequestId",
            "deviceId",
            "evaluation",
            "phoneNumber",
            "proveId",
            "success"
        ]
    );
    assert_eq!(body["success"], "true");
    assert_eq!(body["phoneNumber"], UNIFY_USER);
    assert_eq!(body["clientHumanId"], "human-1");
    assert_eq!(body["clientRequestId"], "req-1");
    assert_eq!(body["evaluation"]["authentication"]["result"], "pass");
}

#[tokio::test]
async fn the_same_user_keeps_the_same_prove_id_and_prove_key_across_sessions() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
        sim.sim
            .complete_possession(&id, PossessionAction::Authenticate)
            .unwrap();
        let status = sim.unify_status(&token, &id).await;
        let body = status.assert_ok();
        seen.push((body["proveId"].clone(), body["deviceId"].clone()));
    }
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn desktop_flow_passes_after_instant_link_without_a_device_id() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "desktop", UNIFY_USER).await;
    sim.sim
        .complete_possession(&id, PossessionAction::InstantLink)
        .unwrap();
    let status = sim.unify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "true");
    assert!(body["proveId"].is_string());
    assert!(body.get("deviceId").is_none());
}

#[tokio::test]
async fn otp_1234_passes_and_any_other_code_fails() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for (otp, expected) in [("1234", "true"), ("9999", "false")] {
        let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
        sim.sim
            .complete_possession(&id, PossessionAction::Otp(otp.into()))
            .unwrap();
        let status = sim.unify_status(&token, &id).await;
        assert_eq!(status.assert_ok()["success"], expected, "otp {otp}");
    }
}

#[tokio::test]
async fn allow_otp_retry_lets_a_wrong_code_be_followed_by_the_right_one() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "allowOTPRetry": true}),
        )
        .await;
    let id = answer.assert_ok()["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.sim
        .complete_possession(&id, PossessionAction::Otp("0000".into()))
        .unwrap();
    sim.sim
        .complete_possession(&id, PossessionAction::Otp("1234".into()))
        .unwrap();
    assert_eq!(
        sim.unify_status(&token, &id).await.assert_ok()["success"],
        "true"
    );
}

#[tokio::test]
async fn status_before_possession_is_false() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    let status = sim.unify_status(&token, &id).await;
    let body = status.assert_ok();
    assert_eq!(body["success"], "false");
    assert!(body.get("proveId").is_none());
}

#[tokio::test]
async fn short_term_users_pass_without_possession_and_get_no_prove_key() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for phone in [SHORT_TERM_USER, "+2001004029"] {
        let id = sim.start_unify(&token, "mobile", phone).await;
        let status = sim.unify_status(&token, &id).await;
        let body = status.assert_ok();
        assert_eq!(body["success"], "true", "{phone}");
        assert!(body["proveId"].is_string());
        assert!(body.get("deviceId").is_none(), "{phone}");
    }
}

#[tokio::test]
async fn every_documented_unify_user_passes_the_mobile_flow() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for phone in [
        "2001004014",
        "2001004015",
        "+2001004025",
        "+2001004026",
        "2001004016",
        "2001004017",
        "2001004041",
        "+2001004027",
        "+2001004028",
        "+2001004043",
    ] {
        let id = sim.start_unify(&token, "mobile", phone).await;
        sim.sim
            .complete_possession(&id, PossessionAction::Authenticate)
            .unwrap();
        let status = sim.unify_status(&token, &id).await;
        let body = status.assert_ok();
        assert_eq!(body["success"], "true", "{phone}");
        assert!(body["deviceId"].is_string(), "{phone}");
    }
}

#[tokio::test]
async fn us_numbers_match_with_or_without_country_code_but_not_as_international() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for phone in ["12001004014", "+12001004014"] {
        sim.start_unify(&token, "mobile", phone).await;
    }
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": "+2001004014"}),
        )
        .await;
    answer.assert_error(400, 8007);
}

#[tokio::test]
async fn customer_supplied_possession_requires_bind_which_returns_the_prove_key() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "none", UNIFY_USER).await;
    let status = sim.unify_status(&token, &id).await;
    assert_eq!(status.assert_ok()["success"], "possession_required");
    let bind = sim
        .post(
            "/v3/unify-bind",
            &token,
            &json!({"correlationId": id, "phoneNumber": UNIFY_USER, "clientRequestId": "bind-1"}),
        )
        .await;
    let body = bind.assert_ok();
    assert_no_nulls_or_empties(body);
    assert_eq!(body["success"], "true");
    assert_eq!(body["phoneNumber"], UNIFY_USER);
    assert_eq!(body["clientRequestId"], "bind-1");
    assert!(body["proveId"].is_string());
    assert!(body["deviceId"].is_string());
}

#[tokio::test]
async fn bind_with_a_different_number_answers_success_false() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "none", UNIFY_USER).await;
    sim.unify_status(&token, &id).await.assert_ok();
    let bind = sim
        .post(
            "/v3/unify-bind",
            &token,
            &json!({"correlationId": id, "phoneNumber": "2001004015"}),
        )
        .await;
    let body = bind.assert_ok();
    assert_eq!(keys(body), ["success"]);
    assert_eq!(body["success"], "false");
}

#[tokio::test]
async fn unify_with_a_prove_id_from_an_earlier_success_identifies_the_user() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    let status = sim.unify_status(&token, &id).await;
    let prove_id = status.assert_ok()["proveId"].as_str().unwrap().to_owned();
    let again = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "proveId": prove_id}),
        )
        .await;
    assert_eq!(again.assert_ok()["success"], "pending");
}

#[tokio::test]
async fn unify_accepts_desktop_with_a_valid_final_target_url() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "desktop", "phoneNumber": UNIFY_USER,
                    "finalTargetUrl": FINAL_URL, "smsMessage": "Your link: ####"}),
        )
        .await;
    assert_eq!(answer.assert_ok()["success"], "pending");
}
