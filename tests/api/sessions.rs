//! Sessions belong to the caller that started them (issue 15, item 4): a status or bind call for
//! a session the gateway does not let through answers as Prove answers an unknown correlation ID
//! and Prove sees nothing; the owner's repeated status call gets the kept final answer; records
//! are shared by replicas through Redis; and a store that fails is a clear UNAVAILABLE.

use prost::Message;
use prove_gateway::callers::{SessionSettings, UnknownSessions};
use prove_gateway::config::{CallersSettings, Settings};
use prove_gateway::grpc::pb::{
    PossessionType, UnifyBindRequest, UnifyOutcome, UnifyStatusRequest, VerifyOutcome,
    VerifyRequest, VerifyStatusRequest,
};
use prove_gateway::simulator::{self, PossessionAction, SimulatorConfig};
use secrecy::SecretString;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::support::callers::{CallersMount, caller, callers_file, with_token};
use crate::helpers::{
    LogCapture, Redis, TestApp, error_info, mobile_unify, spawn_app, spawn_app_configured,
    spawn_gateway,
};

const UNIFY_STATUS: &str = "/v3/unify-status";
const UNIFY_BIND: &str = "/v3/unify-bind";
const VERIFY_STATUS: &str = "/v3/verify-status";

fn refusing(settings: &mut Settings) {
    settings.sessions = SessionSettings {
        unknown: UnknownSessions::Refuse,
    };
}

/// A replica whose records live in the Redis at `url`, refusing unknown sessions (so that a
/// session another replica started is let through only because the record is shared).
fn sharing(url: &str) -> impl FnOnce(&mut Settings) {
    let url = url.to_owned();
    move |settings: &mut Settings| {
        refusing(settings);
        settings.store.redis_url = Some(SecretString::from(url));
    }
}

fn status_request(id: &str) -> UnifyStatusRequest {
    UnifyStatusRequest {
        correlation_id: id.to_owned(),
        ..Default::default()
    }
}

fn verify_request() -> VerifyRequest {
    VerifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004011".into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        ..Default::default()
    }
}

/// Starts a Unify session on `app` and completes possession on its device.
async fn authenticated_unify(app: &mut TestApp) -> String {
    let started = app.unify.unify(mobile_unify()).await.unwrap().into_inner();
    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    started.correlation_id
}

/// Asserts two failed calls cannot be told apart: the same code, message and details, with
/// each detail decoded (ErrorInfo's metadata is a map, encoded in no fixed order).
fn assert_same_answer(ours: &tonic::Status, provers: &tonic::Status) {
    assert_eq!(ours.code(), provers.code());
    assert_eq!(ours.message(), provers.message());
    let info = |status: &tonic::Status| {
        let info = error_info(status);
        (info.reason, info.domain, info.metadata)
    };
    assert_eq!(info(ours), info(provers));
    let details = |status: &tonic::Status| {
        tonic_types::pb::Status::decode(status.details())
            .unwrap()
            .details
            .into_iter()
            .filter(|any| !any.type_url.ends_with("google.rpc.ErrorInfo"))
            .map(|any| (any.type_url, any.value))
            .collect::<Vec<_>>()
    };
    let (a, b) = (details(ours), details(provers));
    assert_eq!(a, b);
    let types: Vec<&str> = a.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/prove.gateway.v1.ProveError",
            "type.googleapis.com/google.rpc.RequestInfo"
        ]
    );
}

#[tokio::test]
async fn the_owners_repeated_unify_status_gets_the_same_outcome_and_prove_sees_one_status() {
    let mut app = spawn_app().await;
    let id = authenticated_unify(&mut app).await;
    let first = app
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.success(), UnifyOutcome::Success);
    let again = app
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert!(!again.prove_id.is_empty());
    assert_eq!(app.sim.records().count(UNIFY_STATUS), 1);
}

#[tokio::test]
async fn the_owners_repeated_verify_status_gets_the_same_outcome_and_prove_sees_one_status() {
    let mut app = spawn_app().await;
    let started = app
        .verify
        .verify(verify_request())
        .await
        .unwrap()
        .into_inner();
    let status = VerifyStatusRequest {
        correlation_id: started.correlation_id.clone(),
        ..Default::default()
    };
    // Pending is not final: Prove answers it again, so it is not kept.
    let pending = app.verify.verify_status(status.clone()).await.unwrap();
    assert_eq!(pending.get_ref().success(), VerifyOutcome::Pending);
    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    let first = app
        .verify
        .verify_status(status.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.success(), VerifyOutcome::Success);
    let again = app.verify.verify_status(status).await.unwrap().into_inner();
    assert_eq!(again, first);
    assert_eq!(app.sim.records().count(VERIFY_STATUS), 2);
}

#[tokio::test]
async fn a_step_out_of_order_that_is_no_repeat_still_goes_to_prove() {
    // After the kept `true`, a bind is out of order: Prove says so, the gateway does not guess.
    let mut app = spawn_app().await;
    let id = authenticated_unify(&mut app).await;
    app.unify.unify_status(status_request(&id)).await.unwrap();
    let err = app
        .unify
        .unify_bind(UnifyBindRequest {
            correlation_id: id,
            phone_number: "2001004014".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&err).reason, "STEP_OUT_OF_ORDER");
    assert_eq!(app.sim.records().count(UNIFY_BIND), 1);
}

#[tokio::test]
async fn refuse_answers_an_unknown_id_exactly_as_prove_does_and_prove_sees_nothing() {
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let mut forwarding = spawn_gateway(sim.clone(), |_| {}).await;
    let mut refusing = spawn_gateway(sim.clone(), refusing).await;
    let id = uuid::Uuid::new_v4().to_string();

    let provers = forwarding
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap_err();
    assert_eq!(error_info(&provers).reason, "INVALID_CORRELATION_ID");
    assert_eq!(sim.records().count(UNIFY_STATUS), 1, "forward asks Prove");
    sim.reset_records();

    let ours = refusing
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap_err();
    assert_same_answer(&ours, &provers);
    let bind = refusing
        .unify
        .unify_bind(UnifyBindRequest {
            correlation_id: id.clone(),
            phone_number: "2001004014".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bind.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&bind).reason, "INVALID_CORRELATION_ID");
    let verify = refusing
        .verify
        .verify_status(VerifyStatusRequest {
            correlation_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_info(&verify).reason, "INVALID_CORRELATION_ID");
    assert_eq!(sim.records().total(), 0, "Prove saw no request at all");

    // The refusing gateway's own sessions are let through.
    let id = authenticated_unify(&mut refusing).await;
    refusing
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_replicas_sharing_redis_hold_ownership_and_kept_outcomes_across_them() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let mut one = spawn_gateway(sim.clone(), sharing(&redis.url)).await;
    let mut two = spawn_gateway(sim.clone(), sharing(&redis.url)).await;

    // Started on one: two knows whose it is (it refuses sessions it has no record of).
    let id = authenticated_unify(&mut one).await;
    let first = two
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.success(), UnifyOutcome::Success);
    // Read again on one: the outcome two kept, without Prove.
    let again = one
        .unify
        .unify_status(status_request(&id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(sim.records().count(UNIFY_STATUS), 1);

    // An ID neither started is still refused by both, without Prove.
    let unknown = uuid::Uuid::new_v4().to_string();
    for replica in [&mut one, &mut two] {
        let err = replica
            .unify
            .unify_status(status_request(&unknown))
            .await
            .unwrap_err();
        assert_eq!(error_info(&err).reason, "INVALID_CORRELATION_ID");
    }
    assert_eq!(sim.records().count(UNIFY_STATUS), 1);
}

#[tokio::test]
async fn with_redis_stopped_a_status_call_is_unavailable_and_never_goes_unchecked() {
    let Some(mut redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let logs = LogCapture::start();
    let mut app = spawn_app_configured(SimulatorConfig::default(), sharing(&redis.url)).await;
    let id = authenticated_unify(&mut app).await;
    redis.stop();
    app.sim.reset_records();

    for _ in 0..2 {
        let err = app
            .unify
            .unify_status(status_request(&id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        let info = error_info(&err);
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("SESSION_STORE_UNAVAILABLE", "prove-gateway")
        );
        assert!(err.get_details_retry_info().is_some());
    }
    assert_eq!(
        app.sim.records().count(UNIFY_STATUS),
        0,
        "the ownership check was not skipped"
    );
    // A start fails clearly too: its session could not be recorded as the caller's.
    let err = app.unify.unify(mobile_unify()).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "SESSION_STORE_UNAVAILABLE");
    // The gateway is still serving: the same clear answer, not a broken connection.
    let err = app
        .verify
        .verify_status(VerifyStatusRequest {
            correlation_id: id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    logs.wait_for("the session store failed").await;
    let text = logs.text();
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        !text.contains(&redis.url),
        "the Redis URL (it may hold a password): {text}"
    );
}

const TOKEN_A: &str = "shop-a-tok-2b7f0c9e41";
const TOKEN_B: &str = "shop-b-tok-9d03a7e5f2";

/// Two callers, `a` and `b`, each allowed every method.
fn two_callers() -> CallersMount {
    let all = [
        "prove.gateway.v1.UnifyService/*",
        "prove.gateway.v1.VerifyService/*",
    ];
    CallersMount::new(&callers_file(&[
        caller("a", TOKEN_A, &all),
        caller("b", TOKEN_B, &all),
    ]))
}

/// Callers from `mount`, and (unless `None`) records in the Redis at `redis`. Unknown sessions
/// are left forwarded, so that only ownership can refuse.
fn with_callers(mount: &CallersMount, redis: Option<&str>) -> impl FnOnce(&mut Settings) {
    let (file, redis) = (mount.path(), redis.map(str::to_owned));
    move |settings: &mut Settings| {
        settings.callers = CallersSettings {
            file: Some(file),
            mtls: false,
            reload_interval: std::time::Duration::from_secs(60),
        };
        settings.store.redis_url = redis.map(SecretString::from);
    }
}

/// B's status, bind and verify-status calls on `id`, each refused.
async fn foreign_reads(app: &mut TestApp, id: &str) -> Vec<tonic::Status> {
    let status = app
        .unify
        .unify_status(with_token(status_request(id), TOKEN_B))
        .await
        .unwrap_err();
    let bind = app
        .unify
        .unify_bind(with_token(
            UnifyBindRequest {
                correlation_id: id.to_owned(),
                phone_number: "2001004014".into(),
                ..Default::default()
            },
            TOKEN_B,
        ))
        .await
        .unwrap_err();
    let verify = app
        .verify
        .verify_status(with_token(
            VerifyStatusRequest {
                correlation_id: id.to_owned(),
                ..Default::default()
            },
            TOKEN_B,
        ))
        .await
        .unwrap_err();
    vec![status, bind, verify]
}

#[tokio::test]
async fn caller_b_reading_caller_as_session_gets_what_an_unknown_id_gets_and_prove_sees_nothing() {
    let mount = two_callers();
    let mut app =
        spawn_app_configured(SimulatorConfig::default(), with_callers(&mount, None)).await;
    let started = app
        .unify
        .unify(with_token(mobile_unify(), TOKEN_A))
        .await
        .unwrap()
        .into_inner();
    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    let id = started.correlation_id;

    // What B gets for a random ID nobody started: Prove's own answer (unknown IDs are forwarded).
    let random = uuid::Uuid::new_v4().to_string();
    let unknown = app
        .unify
        .unify_status(with_token(status_request(&random), TOKEN_B))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&unknown).reason, "INVALID_CORRELATION_ID");
    app.sim.reset_records();

    let refused = foreign_reads(&mut app, &id).await;
    for status in &refused {
        assert_eq!(status.code(), unknown.code());
        assert_eq!(error_info(status).reason, "INVALID_CORRELATION_ID");
        assert_eq!(status.message(), unknown.message());
    }
    // The status answer differs from the random ID's only by the ID it names.
    let same_but_the_id = |status: &tonic::Status| {
        let mut info = error_info(status);
        info.metadata.remove("correlationId");
        (info.reason, info.domain, info.metadata)
    };
    assert_eq!(same_but_the_id(&refused[0]), same_but_the_id(&unknown));
    assert_eq!(app.sim.records().total(), 0, "Prove saw no request");

    // A's own read goes through, and the outcome is A's alone.
    let answer = app
        .unify
        .unify_status(with_token(status_request(&id), TOKEN_A))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.success(), UnifyOutcome::Success);
    let again = foreign_reads(&mut app, &id).await;
    assert_eq!(error_info(&again[0]).reason, "INVALID_CORRELATION_ID");
    assert_eq!(app.sim.records().count(UNIFY_STATUS), 1);
}

#[tokio::test]
async fn ownership_holds_across_replicas_sharing_redis() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let mount = two_callers();
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let mut one = spawn_gateway(sim.clone(), with_callers(&mount, Some(&redis.url))).await;
    let mut two = spawn_gateway(sim.clone(), with_callers(&mount, Some(&redis.url))).await;
    let started = one
        .unify
        .unify(with_token(mobile_unify(), TOKEN_A))
        .await
        .unwrap()
        .into_inner();
    sim.complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    sim.reset_records();
    for status in foreign_reads(&mut two, &started.correlation_id).await {
        assert_eq!(error_info(&status).reason, "INVALID_CORRELATION_ID");
    }
    assert_eq!(sim.records().total(), 0, "Prove saw no request");
    two.unify
        .unify_status(with_token(status_request(&started.correlation_id), TOKEN_A))
        .await
        .unwrap();
}
