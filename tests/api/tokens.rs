//! OAuth tokens: one token request serves many calls, expiry refreshes it, a token Prove
//! refuses mid-flight is replaced with one retry, and refused credentials are not asked again
//! and again.

use std::sync::Arc;
use std::time::Duration;

use prove_gateway::config::OutboundSettings;
use prove_gateway::simulator::{ManualClock, SimulatorConfig};

use crate::helpers::{
    credentials, error_info, mobile_unify as unify, spawn_app, spawn_app_configured, spawn_app_with,
};

#[tokio::test]
async fn concurrent_calls_on_a_cold_start_share_one_token_request() {
    let app = spawn_app().await;
    let calls = (0..10).map(|_| {
        let mut client = app.unify.clone();
        async move { client.unify(unify()).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let mut client = app.unify.clone();
    for _ in 0..5 {
        client.unify(unify()).await.unwrap();
    }
    let records = app.sim.records();
    assert_eq!(records.count("/v3/unify"), 15);
    assert_eq!(records.count("/token"), 1, "one token for fifteen calls");
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_prove_refuses_it() {
    // Two-second tokens: the gateway refreshes them halfway, before they expire.
    let sim = SimulatorConfig {
        token_ttl: Duration::from_secs(2),
        ..SimulatorConfig::default()
    };
    let mut app = spawn_app_with(sim, OutboundSettings::default()).await;
    app.unify.unify(unify()).await.unwrap();
    // The gateway's own clock must pass the refresh point (1 s): nothing outside it shows when
    // it has. (The one-hour production branch is tested on a paused clock in prove/auth.rs.)
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.unify.unify(unify()).await.unwrap();
    let records = app.sim.records();
    assert_eq!(records.count("/token"), 2);
    assert_eq!(records.count_status("/v3/unify", 401), 0);
}

#[tokio::test]
async fn a_token_refused_mid_flight_is_replaced_and_the_call_retried_once() {
    let clock = Arc::new(ManualClock::new());
    let sim = SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    };
    let mut app = spawn_app_with(sim, OutboundSettings::default()).await;
    app.unify.unify(unify()).await.unwrap();
    // Prove's clock passes the token's hour while the gateway still thinks it fresh.
    clock.advance(Duration::from_secs(3601));
    app.unify.unify(unify()).await.unwrap();
    let records = app.sim.records();
    assert_eq!(records.count_status("/v3/unify", 401), 1);
    assert_eq!(records.count_status("/v3/unify", 200), 2);
    assert_eq!(records.count("/token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_401s_cost_one_new_token_and_every_call_succeeds() {
    let clock = Arc::new(ManualClock::new());
    let sim = SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    };
    let app = spawn_app_with(sim, OutboundSettings::default()).await;
    let mut warm = app.unify.clone();
    warm.unify(unify()).await.unwrap();
    // Prove revokes the token (its clock passes the token's hour) while the gateway still
    // thinks it fresh.
    clock.advance(Duration::from_secs(3601));
    app.sim.reset_records();

    let calls = (0..20).map(|_| {
        let mut client = app.unify.clone();
        async move { client.unify(unify()).await }
    });
    for result in futures::future::join_all(calls).await {
        result.expect("each call succeeds on its one retry with the new token");
    }

    let records = app.sim.records();
    // Every call takes the cached token before it queues for the rate limiter (40 ms apart),
    // and the new token's request queues behind them, so all twenty carry the revoked one.
    assert_eq!(records.count_status("/v3/unify", 401), 20);
    assert_eq!(records.count_status("/v3/unify", 200), 20);
    assert_eq!(
        records.count("/token"),
        1,
        "one new token for twenty refusals"
    );
}

#[tokio::test]
async fn wrong_credentials_cost_one_token_request_for_22_calls_then_one_per_backoff() {
    // This test's own log lines (current-thread runtime: the gateway runs on this thread).
    let logs = crate::helpers::LogCapture::start();
    let app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        if let prove_gateway::config::Upstream::Prove { unify, .. } = &mut settings.upstream {
            *unify = credentials(
                prove_gateway::simulator::SIM_UNIFY_CLIENT_ID,
                "not-the-s3cret",
            );
        }
    })
    .await;
    let calls = (0..22).map(|_| {
        let mut client = app.unify.clone();
        async move { client.unify(unify()).await }
    });
    for result in futures::future::join_all(calls).await {
        let err = result.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
        assert_eq!(error_info(&err).reason, "UPSTREAM_UNAUTHORIZED");
    }
    assert_eq!(app.sim.records().count("/token"), 1, "one refusal shared");

    // Within the first backoff (one second; this call comes milliseconds after the refusal, and
    // the unit tests in prove/auth.rs check the backoff's edges on a paused clock): the same
    // answer at once, without a request.
    let mut client = app.unify.clone();
    let err = client.unify(unify()).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "UPSTREAM_UNAUTHORIZED");
    assert_eq!(
        app.sim.records().count("/token"),
        1,
        "no request in the backoff"
    );

    // After it: one more request. The backoff runs on the gateway's clock, which the test
    // cannot observe; its edges are checked on a paused clock in prove/auth.rs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.unify(unify()).await.unwrap_err();
    assert_eq!(app.sim.records().count("/token"), 2);
    assert_eq!(app.sim.records().count("/v3/unify"), 0);

    // One WARN for the change of state, not one per call or per refusal.
    let text = logs.text();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("refused the gateway's OAuth credentials"))
        .count();
    assert_eq!(warnings, 1, "{text}");
    assert!(
        !text.contains("not-the-s3cret"),
        "the secret is never logged"
    );
}
