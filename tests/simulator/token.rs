//! `/token`: OAuth client credentials, token expiry, and the bearer check on `/v3`.

use std::time::Duration;

use prove_gateway::simulator::{Product, SIM_UNIFY_CLIENT_ID, SIM_UNIFY_CLIENT_SECRET};
use serde_json::json;

use crate::helpers::{TestSim, keys, start, start_with};

/// Any authenticated call that reaches the sandbox logic; a random correlation ID is 8008.
async fn token_accepted(sim: &TestSim, token: &str) -> bool {
    let answer = sim
        .unify_status(token, "00000000-0000-4000-8000-000000000000")
        .await;
    match answer.body["code"].as_u64() {
        Some(8008) => true,
        Some(8002) => false,
        other => panic!("unexpected answer {other:?}: {}", answer.body),
    }
}

#[tokio::test]
async fn token_is_a_bearer_token_with_the_configured_lifetime() {
    let sim = start_with(|c| c.token_ttl = Duration::from_secs(120)).await;
    let answer = sim
        .token_request(&[
            ("client_id", SIM_UNIFY_CLIENT_ID),
            ("client_secret", SIM_UNIFY_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .await;
    let body = answer.assert_ok();
    assert_eq!(keys(body), ["access_token", "expires_in", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 120);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert!(token_accepted(&sim, token).await);
}

#[tokio::test]
async fn default_token_lifetime_is_an_hour() {
    let sim = start().await;
    let answer = sim
        .token_request(&[
            ("client_id", SIM_UNIFY_CLIENT_ID),
            ("client_secret", SIM_UNIFY_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .await;
    assert_eq!(answer.assert_ok()["expires_in"], 3600);
}

#[tokio::test]
async fn token_expires_after_its_lifetime_on_the_simulator_clock() {
    let sim = start_with(|c| c.token_ttl = Duration::from_secs(60)).await;
    let token = sim.token(Product::Unify).await;
    sim.clock.advance(Duration::from_secs(59));
    assert!(token_accepted(&sim, &token).await);
    sim.clock.advance(Duration::from_secs(1));
    let answer = sim
        .unify_status(&token, "00000000-0000-4000-8000-000000000000")
        .await;
    answer.assert_error(401, 8002);
}

#[tokio::test]
async fn wrong_secret_or_unknown_client_is_401_8002() {
    let sim = start().await;
    for (id, secret) in [
        (SIM_UNIFY_CLIENT_ID, "wrong"),
        ("nobody", SIM_UNIFY_CLIENT_SECRET),
    ] {
        let answer = sim
            .token_request(&[
                ("client_id", id),
                ("client_secret", secret),
                ("grant_type", "client_credentials"),
            ])
            .await;
        answer.assert_error(401, 8002);
    }
}

#[tokio::test]
async fn grant_type_other_than_client_credentials_is_401_8002() {
    let sim = start().await;
    let answer = sim
        .token_request(&[
            ("client_id", SIM_UNIFY_CLIENT_ID),
            ("client_secret", SIM_UNIFY_CLIENT_SECRET),
            ("grant_type", "password"),
        ])
        .await;
    answer.assert_error(401, 8002);
}

#[tokio::test]
async fn missing_form_field_is_400_8001_naming_it() {
    let sim = start().await;
    let answer = sim
        .token_request(&[
            ("client_id", SIM_UNIFY_CLIENT_ID),
            ("grant_type", "client_credentials"),
        ])
        .await;
    assert_eq!(
        answer.assert_error(400, 8001),
        "field 'client_secret' is missing"
    );
}

#[tokio::test]
async fn json_token_request_is_400_8001() {
    let sim = start().await;
    let response = sim
        .http
        .post(sim.url("/token"))
        .json(&json!({"client_id": SIM_UNIFY_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    TestSim::decode(response).await.assert_error(400, 8001);
}

#[tokio::test]
async fn v3_token_url_is_403_and_unknown_paths_are_404() {
    let sim = start().await;
    let v3_token = sim
        .http
        .post(sim.url("/v3/token"))
        .form(&[("client_id", SIM_UNIFY_CLIENT_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(v3_token.status(), 403);
    let unknown = sim.http.post(sim.url("/v3/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn wrong_http_method_is_403() {
    let sim = start().await;
    for path in ["/token", "/v3/unify", "/v3/verify-status"] {
        let response = sim.http.get(sim.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn v3_without_or_with_an_unknown_bearer_token_is_401_8002() {
    let sim = start().await;
    let body = json!({"possessionType": "mobile", "phoneNumber": "2001004014"});
    let response = sim
        .http
        .post(sim.url("/v3/unify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    TestSim::decode(response).await.assert_error(401, 8002);
    sim.post("/v3/unify", "not-a-token", &body)
        .await
        .assert_error(401, 8002);
}

#[tokio::test(start_paused = true)]
async fn tokio_clock_lets_paused_tokio_time_expire_tokens() {
    let sim = start_with(|c| {
        c.clock = std::sync::Arc::new(prove_gateway::simulator::TokioClock::new());
        c.token_ttl = Duration::from_secs(60);
    })
    .await;
    let token = sim.token(Product::Unify).await;
    assert!(token_accepted(&sim, &token).await);
    tokio::time::advance(Duration::from_secs(61)).await;
    let answer = sim
        .unify_status(&token, "00000000-0000-4000-8000-000000000000")
        .await;
    answer.assert_error(401, 8002);
}
