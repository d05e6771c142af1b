//! The request log: what reached the simulator, including rejected requests.

use std::time::Duration;

use prove_gateway::simulator::{FaultKind, Faults, Product, Records, SIM_VERIFY_CLIENT_ID};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestSim, UNIFY_USER, start};

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
    assert_eq!(body["requests"][0]["inFlight"], false);
    assert!(body["requests"][0]["answeredAtMs"].as_u64() >= body["requests"][0]["atMs"].as_u64());
    let deleted = sim.http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(sim.sim.records().total(), 0);
}

/// Polls the log until `done` holds, for up to 10 s (generous: the simulator records on arrival,
/// which takes microseconds; the bound only turns a hang into a failure).
async fn records_until(sim: &TestSim, done: impl Fn(&Records) -> bool) -> Records {
    for _ in 0..1000 {
        let records = sim.sim.records();
        if done(&records) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the log never reached the expected state: {:?}",
        sim.sim.records().requests()
    );
}

fn hold_every_answer(sim: &TestSim) {
    // Far longer than any test: the request stays in the simulator until its caller gives up.
    sim.sim.set_faults(Faults {
        latency: Duration::from_secs(600),
        ..Faults::none()
    });
}

#[tokio::test]
async fn a_request_held_by_a_slow_fault_is_visible_before_its_answer() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    hold_every_answer(&sim);
    let (http, url) = (sim.http.clone(), sim.url("/v3/unify"));
    let caller = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(token)
            .json(&json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}))
            .send()
            .await
    });

    let records = records_until(&sim, |r| r.count("/v3/unify") == 1).await;
    assert!(!caller.is_finished(), "the caller is still waiting");
    let held = records.last("/v3/unify").unwrap();
    assert_eq!(held.method, "POST");
    assert_eq!(held.status, None, "not answered yet");
    assert!(held.in_flight() && held.answered_at.is_none());
    assert_eq!(held.client_id.as_deref(), Some("sim-unify-client"));
    assert_eq!(held.body.as_ref().unwrap()["possessionType"], "mobile");
    assert_eq!(
        records.in_flight().count(),
        1,
        "the token request was answered"
    );
    caller.abort();
}

#[tokio::test]
async fn a_request_whose_caller_hangs_up_is_still_recorded() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    hold_every_answer(&sim);
    // The caller's own deadline, like the gateway's: it gives up and closes the connection.
    let gone = sim
        .http
        .post(sim.url("/v3/unify"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .json(&json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}))
        .send()
        .await
        .expect_err("the simulator holds the answer past the caller's deadline");
    assert!(gone.is_timeout(), "{gone:?}");

    let records = records_until(&sim, |r| r.count("/v3/unify") == 1).await;
    let abandoned = records.last("/v3/unify").unwrap();
    assert_eq!(abandoned.status, None);
    assert!(abandoned.in_flight(), "never answered");
    assert_eq!(abandoned.client_id.as_deref(), Some("sim-unify-client"));
}

#[tokio::test]
async fn a_request_cut_by_the_drop_fault_is_recorded() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::none()
    });
    sim.http
        .post(sim.url("/v3/unify"))
        .bearer_auth(&token)
        .json(&json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}))
        .send()
        .await
        .expect_err("a dropped connection is not an answer");

    let records = records_until(&sim, |r| r.count("/v3/unify") == 1).await;
    let cut = records.last("/v3/unify").unwrap();
    assert_eq!(cut.fault, Some(FaultKind::Drop));
    assert_eq!(cut.status, None, "no answer was sent");
    assert!(
        !cut.in_flight(),
        "the simulator is done with it: it cut the connection"
    );
}

/// A request whose body is still arriving is in the log with its head, and the same record is
/// completed once the answer goes out. Raw HTTP/1.1 so the test decides when the body ends.
#[tokio::test]
async fn a_request_is_recorded_at_its_head_and_completed_by_its_answer() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let body = json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER}).to_string();
    let (first, rest) = body.as_bytes().split_at(10);
    let mut stream = TcpStream::connect(sim.sim.addr()).await.unwrap();
    let head = format!(
        "POST /v3/unify HTTP/1.1\r\nhost: sim\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();

    let records = records_until(&sim, |r| r.count("/v3/unify") == 1).await;
    let arrived = records.last("/v3/unify").unwrap();
    assert_eq!(arrived.status, None);
    assert!(arrived.in_flight());
    assert!(arrived.has_authorization);
    assert!(arrived.body.is_none(), "the body has not arrived yet");

    stream.write_all(rest).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let records = sim.sim.records();
    assert_eq!(
        records.count("/v3/unify"),
        1,
        "completed, not recorded twice"
    );
    let answered = records.last("/v3/unify").unwrap();
    assert_eq!(answered.status, Some(200));
    assert_eq!(answered.received, arrived.received, "the same record");
    assert!(answered.answered.unwrap() >= answered.received);
    assert!(answered.answered_at.is_some() && !answered.in_flight());
    assert_eq!(answered.body.as_ref().unwrap()["phoneNumber"], UNIFY_USER);
}
