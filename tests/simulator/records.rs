//! The request log: what reached the simulator, including rejected requests.

use prove_gateway::simulator::{Product, SIM_VERIFY_CLIENT_ID};
use serde_json::json;

use crate::helpers::{UNIFY_USER, start};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn records_keep_path_status_client_and_trace_headers() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let response = sim
        .http
        .post(sim.url("/v3/unify"))
        .bearer_auth(&token)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "vendor=1")
        .header("baggage", "tenant=acme")
        .header("user-agent", "prove-gateway-test")
        .json(&json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER, "clientRequestId": "r-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let records = sim.sim.records();
    assert_eq!(records.total(), 2);
    assert_eq!(records.count("/token"), 1);
    assert_eq!(records.count_status("/v3/unify", 200), 1);
    let unify = records.last("/v3/unify").unwrap();
    assert_eq!(unify.method, "POST");
    assert_eq!(unify.client_id.as_deref(), Some("sim-unify-client"));
    assert_eq!(unify.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(unify.tracestate.as_deref(), Some("vendor=1"));
    assert_eq!(unify.baggage.as_deref(), Some("tenant=acme"));
    assert_eq!(unify.user_agent.as_deref(), Some("prove-gateway-test"));
    assert_eq!(unify.content_type.as_deref(), Some("application/json"));
    assert!(unify.has_authorization);
    assert_eq!(unify.body.as_ref().unwrap()["clientRequestId"], "r-9");
    let token_record = records.last("/token").unwrap();
    assert!(
        token_record.body.is_none(),
        "the form with the secret is never kept"
    );
}

#[tokio::test]
async fn rejected_requests_are_recorded_with_their_code() {
    let sim = start().await;
    sim.post("/v3/verify", "bogus", &json!({})).await;
    let verify_token = sim.token(Product::Verify).await;
    sim.post(
        "/v3/unify",
        &verify_token,
        &json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}),
    )
    .await;
    let records = sim.sim.records();
    let rejected = records.last("/v3/verify").unwrap();
    assert_eq!(rejected.status, Some(401));
    assert_eq!(rejected.code, Some(8002));
    assert!(rejected.client_id.is_none());
    let denied = records.last("/v3/unify").unwrap();
    assert_eq!(denied.code, Some(8009));
    assert_eq!(denied.client_id.as_deref(), Some(SIM_VERIFY_CLIENT_ID));
}

#[tokio::test]
async fn reset_records_empties_the_log() {
    let sim = start().await;
    sim.token(Product::Unify).await;
    assert_eq!(sim.sim.records().total(), 1);
    sim.sim.reset_records();
    assert_eq!(sim.sim.records().total(), 0);
}

#[tokio::test]
async fn records_are_served_and_cleared_over_http_without_recording_themselves() {
    let sim = start().await;
    sim.token(Product::Unify).await;
    let url = sim.url("/_simulator/records");
    let body: serde_json::Value = sim
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["requests"][0]["path"], "/token");
    assert_eq!(body["requests"][0]["status"], 200);
    assert_eq!(body["requests"][0]["clientId"], "sim-unify-client");
    let deleted = sim.http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(sim.sim.records().total(), 0);
}
