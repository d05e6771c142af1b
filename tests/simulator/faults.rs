//! Injected faults on `/v3`: 500 / 8000, latency, dropped connections and non-JSON 200s; set at
//! start or at run time, never on `/token`.

use std::time::Duration;

use prove_gateway::simulator::{FaultKind, Faults, PossessionAction, Product};
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{UNIFY_USER, start, start_with};

fn unify_body() -> serde_json::Value {
    json!({"possessionType": "mobile", "phoneNumber": UNIFY_USER})
}

#[tokio::test]
async fn error_rate_one_answers_500_8000_and_leaves_the_session_untouched() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    sim.sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    sim.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::none()
    });
    let answer = sim.unify_status(&token, &id).await;
    assert_eq!(answer.assert_error(500, 8000), "Internal Error");
    sim.sim.set_faults(Faults::none());
    assert_eq!(
        sim.unify_status(&token, &id).await.assert_ok()["success"],
        "true"
    );
}

#[tokio::test]
async fn faults_set_at_start_apply_to_v3_but_never_to_token() {
    let sim = start_with(|c| {
        c.faults = Faults {
            error_rate: 1.0,
            ..Faults::none()
        }
    })
    .await;
    let token = sim.token(Product::Unify).await;
    sim.post("/v3/unify", &token, &unify_body())
        .await
        .assert_error(500, 8000);
}

#[tokio::test]
async fn latency_delays_answers_by_at_least_the_configured_time() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.sim.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::none()
    });
    let started = Instant::now();
    sim.post("/v3/unify", &token, &unify_body())
        .await
        .assert_ok();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn drop_rate_one_closes_the_connection_without_an_answer() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::none()
    });
    let result = sim
        .http
        .post(sim.url("/v3/unify"))
        .bearer_auth(&token)
        .json(&unify_body())
        .send()
        .await;
    let error = result.expect_err("a dropped connection is not an answer");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    let records = sim.sim.records();
    let last = records.last("/v3/unify").unwrap();
    assert_eq!(last.fault, Some(FaultKind::Drop));
    assert_eq!(last.status, None);

    // The server itself is fine: the next request on a new connection is answered.
    sim.sim.set_faults(Faults::none());
    sim.post("/v3/unify", &token, &unify_body())
        .await
        .assert_ok();
}

#[tokio::test]
async fn malformed_rate_one_answers_200_with_a_body_that_is_not_json() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    sim.sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::none()
    });
    let response = sim
        .http
        .post(sim.url("/v3/unify"))
        .bearer_auth(&token)
        .json(&unify_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
}

#[tokio::test]
async fn seeded_fault_sequences_repeat() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let faults = Faults {
        error_rate: 0.5,
        seed: Some(42),
        ..Faults::none()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        sim.sim.set_faults(faults.clone());
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(
                sim.post("/v3/unify", &token, &unify_body())
                    .await
                    .status
                    .as_u16(),
            );
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&500) && runs[0].contains(&200));
}

#[tokio::test]
async fn faults_can_be_read_and_changed_over_http() {
    let sim = start().await;
    let url = sim.url("/_simulator/faults");
    let put = sim
        .http
        .put(&url)
        .json(&json!({"errorRate": 1.0, "latencyMs": 5, "seed": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got: serde_json::Value = sim
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"errorRate": 1.0, "latencyMs": 5, "dropRate": 0.0, "malformedRate": 0.0, "seed": 9})
    );
    assert_eq!(sim.sim.faults().latency, Duration::from_millis(5));
    let token = sim.token(Product::Unify).await;
    sim.post("/v3/unify", &token, &unify_body())
        .await
        .assert_error(500, 8000);

    let bad = sim
        .http
        .put(&url)
        .json(&json!({"errorRate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
