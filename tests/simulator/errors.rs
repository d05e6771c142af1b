//! Prove's error codes as the simulator produces them: 8001 validation (including the 4 KB
//! limit), 8007, 8009, 8010, 8011 and 8019. Session codes (8003, 8008) are in `sessions.rs`,
//! 8002 in `token.rs`, 8018 in `rate_limit.rs`, 8000 in `faults.rs`.

use prove_gateway::simulator::Product;
use serde_json::{Value, json};

use crate::helpers::{FINAL_URL, TestSim, UNIFY_USER, VERIFY_USER, start};

/// A `/v3/unify` body of exactly `len` bytes, padded with an ignored field.
fn unify_body_of_len(len: usize) -> Vec<u8> {
    let base =
        json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "pad": ""}).to_string();
    let pad = "x".repeat(len - base.len());
    let body = base.replace(r#""pad":"""#, &format!(r#""pad":"{pad}""#));
    assert_eq!(body.len(), len);
    body.into_bytes()
}

async fn unify_error(sim: &TestSim, token: &str, body: Value) -> String {
    let answer = sim.post("/v3/unify", token, &body).await;
    answer.assert_error(400, 8001).to_owned()
}

#[tokio::test]
async fn body_of_4096_bytes_is_accepted_and_4097_is_8001() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let ok = sim
        .post_raw(
            "/v3/unify",
            &token,
            "application/json",
            unify_body_of_len(4096),
        )
        .await;
    assert_eq!(ok.assert_ok()["success"], "pending");
    let too_big = sim
        .post_raw(
            "/v3/unify",
            &token,
            "application/json",
            unify_body_of_len(4097),
        )
        .await;
    assert!(too_big.assert_error(400, 8001).contains("4 KB"));
}

#[tokio::test]
async fn body_that_is_not_a_json_object_is_8001() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    for body in [&b"{not json"[..], b"[1,2]", b"\"text\""] {
        let answer = sim
            .post_raw("/v3/unify", &token, "application/json", body.to_vec())
            .await;
        answer.assert_error(400, 8001);
    }
}

#[tokio::test]
async fn non_json_content_type_is_8001() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let body = json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}).to_string();
    let answer = sim
        .post_raw("/v3/unify", &token, "text/plain", body.into_bytes())
        .await;
    assert!(answer.assert_error(400, 8001).contains("Content-Type"));
}

#[tokio::test]
async fn wrongly_typed_fields_are_8001_naming_the_field() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": 1, "phoneNumber": UNIFY_USER}),
    )
    .await;
    assert_eq!(
        message,
        "field 'possessionType' is invalid: must be a string"
    );
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "allowOTPRetry": "yes"}),
    )
    .await;
    assert_eq!(
        message,
        "field 'allowOTPRetry' is invalid: must be a boolean"
    );
}

#[tokio::test]
async fn possession_type_outside_desktop_mobile_none_is_8001() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "tablet", "phoneNumber": UNIFY_USER}),
    )
    .await;
    assert!(message.starts_with("field 'possessionType' is invalid"));
    let message = unify_error(&sim, &token, json!({"phoneNumber": UNIFY_USER})).await;
    assert_eq!(message, "field 'possessionType' is missing");
}

#[tokio::test]
async fn final_target_url_is_required_for_desktop_and_limited_to_128_safe_characters() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "desktop", "phoneNumber": UNIFY_USER}),
    )
    .await;
    assert_eq!(message, "field 'finalTargetUrl' is missing");

    let long = format!("https://example.com/{}", "a".repeat(109));
    assert_eq!(long.len(), 129);
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "desktop", "phoneNumber": UNIFY_USER, "finalTargetUrl": long}),
    )
    .await;
    assert_eq!(
        message,
        "field 'finalTargetUrl' is invalid: longer than 128 characters"
    );

    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "desktop", "phoneNumber": UNIFY_USER,
               "finalTargetUrl": "https://example.com/a b"}),
    )
    .await;
    assert!(message.starts_with("field 'finalTargetUrl' is invalid"));
}

#[tokio::test]
async fn sms_message_over_160_characters_is_8001() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let message = unify_error(
        &sim,
        &token,
        json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "smsMessage": "é".repeat(161)}),
    )
    .await;
    assert_eq!(
        message,
        "field 'smsMessage' is invalid: longer than 160 characters"
    );
    let ok = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "smsMessage": "é".repeat(160)}),
        )
        .await;
    ok.assert_ok();
}

#[tokio::test]
async fn unify_needs_a_phone_number_or_prove_id() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let message = unify_error(&sim, &token, json!({"possessionType": "mobile"})).await;
    assert_eq!(message, "field 'phoneNumber' is missing");
}

#[tokio::test]
async fn verify_requires_names_and_never_echoes_personal_data() {
    let sim = start().await;
    let token = sim.token(Product::Verify).await;
    let answer = sim
        .post(
            "/v3/verify",
            &token,
            &json!({"possessionType": "desktop", "phoneNumber": VERIFY_USER,
                    "firstName": "Sheilakathryn", "finalTargetUrl": FINAL_URL}),
        )
        .await;
    let message = answer.assert_error(400, 8001);
    assert_eq!(message, "field 'lastName' is missing");
    let answer = sim
        .post(
            "/v3/verify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": "555-0100-x",
                    "firstName": "Sheilakathryn", "lastName": "Butrimovich"}),
        )
        .await;
    let message = answer.assert_error(400, 8001);
    assert!(message.starts_with("field 'phoneNumber' is invalid"));
    assert!(!message.contains("555") && !message.contains("Sheilakathryn"));
}

#[tokio::test]
async fn status_correlation_id_must_be_a_lowercase_uuid() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .unify_status(&token, "0F8FAD5B-D9CB-469F-A165-70867728950E")
        .await;
    assert_eq!(
        answer.assert_error(400, 8001),
        "field 'correlationId' is invalid: must be a lowercase UUID"
    );
    let answer = sim.post("/v3/unify-status", &token, &json!({})).await;
    assert_eq!(
        answer.assert_error(400, 8001),
        "field 'correlationId' is missing"
    );
}

#[tokio::test]
async fn unknown_number_is_400_8007() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &json!({"possessionType": "mobile", "phoneNumber": "2025550123"}),
        )
        .await;
    let message = answer.assert_error(400, 8007);
    assert!(!message.contains("2025550123"));
}

#[tokio::test]
async fn test_user_of_the_other_product_is_403_8009_both_ways() {
    let sim = start().await;
    let unify_token = sim.token(Product::Unify).await;
    let verify_token = sim.token(Product::Verify).await;
    sim.post(
        "/v3/unify",
        &verify_token,
        &json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}),
    )
    .await
    .assert_error(403, 8009);
    sim.start_verify(&unify_token, "mobile", VERIFY_USER)
        .await
        .assert_error(403, 8009);
}

#[tokio::test]
async fn country_number_is_403_8010_on_both_products() {
    let sim = start().await;
    let unify_token = sim.token(Product::Unify).await;
    let verify_token = sim.token(Product::Verify).await;
    sim.post(
        "/v3/unify",
        &unify_token,
        &json!({"possessionType": "mobile", "phoneNumber": "2001009010"}),
    )
    .await
    .assert_error(403, 8010);
    sim.start_verify(&verify_token, "mobile", "2001009010")
        .await
        .assert_error(403, 8010);
}

#[tokio::test]
async fn identity_not_found_number_and_unknown_prove_id_are_404_8011() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.post(
        "/v3/unify",
        &token,
        &json!({"possessionType": "mobile", "phoneNumber": "2001009011"}),
    )
    .await
    .assert_error(404, 8011);
    sim.post(
        "/v3/unify",
        &token,
        &json!({"possessionType": "mobile", "proveId": "no-such-prove-id"}),
    )
    .await
    .assert_error(404, 8011);
    let verify_token = sim.token(Product::Verify).await;
    sim.start_verify(&verify_token, "mobile", "2001009011")
        .await
        .assert_error(404, 8011);
}

#[tokio::test]
async fn revoked_device_number_is_403_8019_on_unify() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.post(
        "/v3/unify",
        &token,
        &json!({"possessionType": "mobile", "phoneNumber": "2001009002"}),
    )
    .await
    .assert_error(403, 8019);
}
