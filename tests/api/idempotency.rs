//! Idempotent starts (issue 15, item 5): a Unify or Verify sent again with the same
//! `client_request_id` gets the first answer, with one Prove request and one SMS, on one replica
//! or across replicas sharing Redis; the same key with other fields is refused; a failed first
//! call leaves the key free.

use std::time::Duration;

use prove_gateway::config::{OutboundSettings, Settings};
use prove_gateway::grpc::pb::{
    PossessionType, UnifyRequest, UnifyResponse, VerifyRequest, VerifyStatusRequest,
};
use prove_gateway::simulator::{self, Faults, PossessionAction, SimulatorConfig};
use secrecy::SecretString;
use tonic::Code;

use crate::helpers::{
    LogCapture, Redis, TestApp, error_info, spawn_app, spawn_app_configured, spawn_gateway,
    with_timeout,
};

const UNIFY: &str = "/v3/unify";

fn keyed_unify(key: &str) -> UnifyRequest {
    UnifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004014".into(),
        client_request_id: key.into(),
        ..Default::default()
    }
}

/// `n` concurrent keyed Unify calls on `app`.
async fn concurrent_unify(app: &TestApp, n: usize, key: &str) -> Vec<UnifyResponse> {
    let calls = (0..n).map(|_| {
        let mut client = app.unify.clone();
        let request = keyed_unify(key);
        async move { client.unify(request).await.unwrap().into_inner() }
    });
    futures::future::join_all(calls).await
}

fn assert_all_the_same(answers: &[UnifyResponse]) {
    let first = &answers[0];
    assert!(!first.correlation_id.is_empty());
    assert!(!first.auth_token.is_empty());
    for answer in answers {
        assert_eq!(answer, first);
    }
}

#[tokio::test]
async fn twenty_concurrent_unify_calls_with_one_key_make_one_prove_request_and_one_answer() {
    let logs = LogCapture::start();
    let app = spawn_app().await;
    // Prove is slow, so every call arrives while the first is still at Prove.
    app.sim.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::none()
    });
    let answers = concurrent_unify(&app, 20, "order-1234").await;
    assert_eq!(answers.len(), 20);
    assert_all_the_same(&answers);
    assert_eq!(app.sim.records().count(UNIFY), 1);
    // The stored answer holds the auth token, a secret: it reaches no log line.
    assert!(!logs.text().contains(&answers[0].auth_token));

    // And later, one more repeat: the same answer still, and still one request.
    let later = concurrent_unify(&app, 1, "order-1234").await;
    assert_eq!(later[0], answers[0]);
    assert_eq!(app.sim.records().count(UNIFY), 1);

    // Without a key every call is its own session.
    let mut client = app.unify.clone();
    let other = client.unify(keyed_unify("")).await.unwrap().into_inner();
    assert_ne!(other.correlation_id, answers[0].correlation_id);
    assert_eq!(app.sim.records().count(UNIFY), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_failed_precondition_and_not_sent() {
    let mut app = spawn_app().await;
    app.unify.unify(keyed_unify("order-1")).await.unwrap();
    let mut other = keyed_unify("order-1");
    other.allow_otp_retry = true;
    let err = app.unify.unify(other).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let info = error_info(&err);
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("IDEMPOTENCY_KEY_REUSED", "prove-gateway")
    );
    assert_eq!(app.sim.records().count(UNIFY), 1);
}

#[tokio::test]
async fn after_a_failed_first_call_the_key_goes_to_prove_again() {
    let no_retries = OutboundSettings {
        retry_max_attempts: 1,
        ..OutboundSettings::default()
    };
    let mut app = spawn_app_configured(SimulatorConfig::default(), |s: &mut Settings| {
        s.outbound = no_retries;
    })
    .await;
    app.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::none()
    });
    let err = app.unify.unify(keyed_unify("order-2")).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "PROVE_INTERNAL_ERROR");
    app.sim.set_faults(Faults::none());
    // A deadline, so that a marker the failure left behind would show as a timeout rather than
    // as a wait for its expiry.
    let answer = app
        .unify
        .unify(with_timeout(keyed_unify("order-2"), Duration::from_secs(5)))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.correlation_id.is_empty());
    let records = app.sim.records();
    assert_eq!(records.count(UNIFY), 2);
    assert_eq!(records.count_status(UNIFY, 500), 1);
}

#[tokio::test]
async fn a_repeated_verify_gets_the_first_session_and_sends_one_sms() {
    let mut app = spawn_app().await;
    let request = VerifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004011".into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        client_request_id: "signup-7".into(),
        ..Default::default()
    };
    let first = app
        .verify
        .verify(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app.verify.verify(request).await.unwrap().into_inner();
    assert_eq!(again, first);
    assert_eq!(app.sim.records().count("/v3/verify"), 1);
    // The replayed session is the caller's own: its status goes through.
    app.sim
        .complete_possession(&first.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    app.verify
        .verify_status(VerifyStatusRequest {
            correlation_id: again.correlation_id,
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_make_one_prove_request_for_one_key() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let shared = |s: &mut Settings| s.store.redis_url = Some(SecretString::from(redis.url.clone()));
    let one = spawn_gateway(sim.clone(), shared).await;
    let two = spawn_gateway(sim.clone(), shared).await;
    sim.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::none()
    });
    let (a, b) = tokio::join!(
        concurrent_unify(&one, 10, "order-9"),
        concurrent_unify(&two, 10, "order-9")
    );
    let answers: Vec<UnifyResponse> = a.into_iter().chain(b).collect();
    assert_all_the_same(&answers);
    assert_eq!(sim.records().count(UNIFY), 1);

    // The other body is refused on the replica that did not make the call, too.
    let mut other = keyed_unify("order-9");
    other.check_reputation = true;
    let first_replica_answered = sim.records().count(UNIFY);
    let mut client = two.unify.clone();
    let err = client.unify(other.clone()).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "IDEMPOTENCY_KEY_REUSED");
    let mut client = one.unify.clone();
    let err = client.unify(other).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(sim.records().count(UNIFY), first_replica_answered);
}

#[tokio::test]
async fn one_key_of_two_callers_names_two_calls() {
    use prove_gateway::config::CallersSettings;

    use crate::helpers::support::callers::{CallersMount, caller, callers_file, with_token};

    let all = ["prove.gateway.v1.UnifyService/*"];
    let mount = CallersMount::new(&callers_file(&[
        caller("a", "tok-a-61c2f08e", &all),
        caller("b", "tok-b-0e7d13a9", &all),
    ]));
    let file = mount.path();
    let mut app = spawn_app_configured(SimulatorConfig::default(), move |s: &mut Settings| {
        s.callers = CallersSettings {
            file: Some(file),
            mtls: false,
            reload_interval: Duration::from_secs(60),
        };
    })
    .await;
    let a = app
        .unify
        .unify(with_token(keyed_unify("order-5"), "tok-a-61c2f08e"))
        .await
        .unwrap()
        .into_inner();
    let b = app
        .unify
        .unify(with_token(keyed_unify("order-5"), "tok-b-0e7d13a9"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(a.correlation_id, b.correlation_id);
    assert_eq!(app.sim.records().count(UNIFY), 2);
}
