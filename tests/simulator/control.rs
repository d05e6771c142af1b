//! The simulator-only HTTP controls: possession, rate limit, and shutdown of the handle.

use prove_gateway::simulator::Product;
use serde_json::json;

use crate::helpers::{UNIFY_USER, start};

#[tokio::test]
async fn possession_can_be_completed_over_http() {
    let sim = start().await;
    let token = sim.token(Product::Unify).await;
    let id = sim.start_unify(&token, "mobile", UNIFY_USER).await;
    let url = sim.url("/_simulator/possession");
    let done = sim
        .http
        .post(&url)
        .json(&json!({"correlationId": id, "action": "otp", "otp": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 204);
    assert_eq!(
        sim.unify_status(&token, &id).await.assert_ok()["success"],
        "true"
    );

    let again = sim
        .http
        .post(&url)
        .json(&json!({"correlationId": id, "action": "authenticate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let unknown = sim
        .http
        .post(&url)
        .json(&json!({"correlationId": "nope", "action": "instant_link"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn rate_limit_can_be_read_and_changed_over_http() {
    let sim = start().await;
    let url = sim.url("/_simulator/rate-limit");
    let put = sim
        .http
        .put(&url)
        .json(&json!({"rps": 7}))
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
    assert_eq!(got, json!({"rps": 7}));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start().await;
    let url = sim.url("/token");
    let handle = sim.sim.clone();
    handle.shutdown().await;
    let fresh = reqwest::Client::new();
    assert!(fresh.post(&url).send().await.is_err());
}

#[tokio::test]
async fn run_standalone_serves_until_its_shutdown_future_completes() {
    use prove_gateway::simulator::{SimulatorConfig, run_standalone};
    // A free port, found by binding and releasing it (run_standalone binds its own).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = SimulatorConfig {
        listen: addr,
        ..SimulatorConfig::default()
    };
    let server = tokio::spawn(run_standalone(config, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}/_simulator/rate-limit");
    let client = reqwest::Client::new();
    let mut answered = false;
    for _ in 0..50 {
        if let Ok(response) = client.get(&url).send().await {
            assert_eq!(
                response.json::<serde_json::Value>().await.unwrap(),
                json!({"rps": 25})
            );
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(answered, "the standalone simulator never answered");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn the_simulator_also_speaks_http2_with_prior_knowledge() {
    let sim = start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .post(sim.url("/token"))
        .form(&[
            ("client_id", prove_gateway::simulator::SIM_UNIFY_CLIENT_ID),
            (
                "client_secret",
                prove_gateway::simulator::SIM_UNIFY_CLIENT_SECRET,
            ),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}
