//! Every error the simulator produces reaches the caller as the contract's table says, with its
//! details decodable by a plain tonic client.

use std::time::Duration;

use prove_gateway::config::OutboundSettings;
use prove_gateway::grpc::pb::{
    PossessionType, ProveErrorCode, UnifyBindRequest, UnifyStatusRequest, VerifyRequest,
};
use prove_gateway::simulator::{Faults, PossessionAction, SimulatorConfig};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{
    LogCapture, credentials, error_info, prove_error, spawn_app, spawn_app_configured,
    spawn_app_with, spawn_gateway, unify_request as unify,
};

/// Asserts the gRPC code, ErrorInfo reason and domain, and Prove's code in both places.
fn assert_prove_error(status: &tonic::Status, code: Code, reason: &str, prove_code: i64) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = error_info(status);
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "proveapis.com");
    assert_eq!(info.metadata["proveCode"], prove_code.to_string());
    let prove = prove_error(status).expect("ProveError detail");
    assert_eq!(prove.raw_code, prove_code);
    assert_eq!(
        prove.code, prove_code as i32,
        "a documented code maps to its enum value"
    );
    assert!(ProveErrorCode::try_from(prove.code).is_ok());
}

fn no_retries() -> OutboundSettings {
    OutboundSettings {
        retry_max_attempts: 1,
        ..OutboundSettings::default()
    }
}

/// Numbers whose Unify the simulator refuses, and how each refusal must reach the caller.
const REFUSED_NUMBERS: [(&str, Code, &str, i64); 5] = [
    // Not a sandbox test user.
    ("2005550100", Code::NotFound, "SANDBOX_USER_NOT_FOUND", 8007),
    // A Verified Users test user, called with Unify credentials.
    (
        "2001004011",
        Code::PermissionDenied,
        "SANDBOX_ACCESS_DENIED",
        8009,
    ),
    // The simulator's own failing numbers (src/simulator/README.md).
    (
        "2001009010",
        Code::PermissionDenied,
        "COUNTRY_NOT_AUTHORIZED",
        8010,
    ),
    ("2001009011", Code::NotFound, "IDENTITY_NOT_FOUND", 8011),
    (
        "2001009002",
        Code::FailedPrecondition,
        "DEVICE_REVOKED",
        8019,
    ),
];

#[tokio::test]
async fn numbers_prove_refuses_map_8007_8009_8010_8011_8019() {
    let mut app = spawn_app().await;
    for (phone, code, reason, prove_code) in REFUSED_NUMBERS {
        let err = app
            .unify
            .unify(unify(PossessionType::Mobile, phone))
            .await
            .unwrap_err();
        assert_prove_error(&err, code, reason, prove_code);
    }
}

#[tokio::test]
async fn a_field_prove_rejects_is_invalid_argument_8001() {
    let mut app = spawn_app().await;
    // The gateway checks only that an e-mail address has an @; Prove also restricts its
    // characters, so this one gets as far as Prove and comes back as 8001.
    let request = VerifyRequest {
        possession_type: PossessionType::CustomerSupplied as i32,
        phone_number: "2001004011".into(),
        first_name: "A".into(),
        last_name: "B".into(),
        email_address: "first_last@example.com".into(),
        ..Default::default()
    };
    let err = app.verify.verify(request).await.unwrap_err();
    assert_prove_error(&err, Code::InvalidArgument, "MALFORMED_REQUEST", 8001);
    assert!(prove_error(&err).unwrap().message.contains("emailAddress"));
}

#[tokio::test]
async fn bind_before_possession_required_is_step_out_of_order_8003() {
    let mut app = spawn_app().await;
    let started = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap()
        .into_inner();
    let err = app
        .unify
        .unify_bind(UnifyBindRequest {
            correlation_id: started.correlation_id.clone(),
            phone_number: "2001004014".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_prove_error(&err, Code::FailedPrecondition, "STEP_OUT_OF_ORDER", 8003);
    let info = error_info(&err);
    assert_eq!(info.metadata["correlationId"], started.correlation_id);
    assert_eq!(
        err.get_details_request_info().unwrap().request_id,
        started.correlation_id
    );
}

/// Prove refuses a status step repeated after it answered (8003). The gateway gives its owner
/// the kept answer instead (tests/api/sessions.rs); a session the gateway has no record of, here
/// one started through another replica that shares no store, is forwarded, and Prove's 8003
/// reaches the caller as the contract says.
#[tokio::test]
async fn repeating_a_finished_status_step_the_gateway_did_not_keep_is_refused_8003() {
    let mut app = spawn_app().await;
    let mut other = spawn_gateway(app.sim.clone(), |_| {}).await;
    let started = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap()
        .into_inner();
    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::Authenticate)
        .unwrap();
    let status = UnifyStatusRequest {
        correlation_id: started.correlation_id,
        ..Default::default()
    };
    other.unify.unify_status(status.clone()).await.unwrap();
    let err = other.unify.unify_status(status).await.unwrap_err();
    assert_prove_error(&err, Code::FailedPrecondition, "STEP_OUT_OF_ORDER", 8003);
    assert_eq!(app.sim.records().count("/v3/unify-status"), 2);
}

#[tokio::test]
async fn an_unknown_correlation_id_is_failed_precondition_8008() {
    let mut app = spawn_app().await;
    let err = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_prove_error(
        &err,
        Code::FailedPrecondition,
        "INVALID_CORRELATION_ID",
        8008,
    );
}

#[tokio::test]
async fn wrong_gateway_credentials_are_internal_8002_not_unauthenticated() {
    let mut app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        if let prove_gateway::config::Upstream::Prove { unify, .. } = &mut settings.upstream {
            *unify = credentials("sim-unify-client", "wrong-secret");
        }
    })
    .await;
    let err = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap_err();
    assert_prove_error(&err, Code::Internal, "UPSTREAM_UNAUTHORIZED", 8002);
    assert!(!err.message().contains("wrong-secret"));
}

#[tokio::test]
async fn prove_rate_limit_is_resource_exhausted_8018_with_retry_info() {
    let mut app = spawn_app_with(SimulatorConfig::default(), no_retries()).await;
    // The gateway's limiter keeps within the simulator's rate, and holds every call after a
    // 429 or X-RateLimit-Remaining: 0, so Prove's 429 is forced with a throttle, once the
    // token (which the throttle refuses too) is in hand. Retries are off.
    app.unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap();
    app.sim.throttle(Duration::from_secs(2));
    let err = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .expect_err("the simulator's throttle answers 429");
    assert_prove_error(&err, Code::ResourceExhausted, "RATE_LIMITED", 8018);
    let retry = err.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.unwrap() >= Duration::from_secs(1));
}

/// The error of one Unify call, retries off, against a simulator with `faults`.
async fn unify_failing_with(faults: Faults) -> tonic::Status {
    let sim = SimulatorConfig {
        faults,
        ..SimulatorConfig::default()
    };
    let mut app = spawn_app_with(sim, no_retries()).await;
    app.unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_prove_internal_error_is_unavailable_8000_with_retry_info() {
    let err = unify_failing_with(Faults {
        error_rate: 1.0,
        ..Faults::none()
    })
    .await;
    assert_prove_error(&err, Code::Unavailable, "PROVE_INTERNAL_ERROR", 8000);
    assert!(err.get_details_retry_info().is_some());
}

#[tokio::test]
async fn a_malformed_answer_is_internal_and_says_so() {
    let err = unify_failing_with(Faults {
        malformed_rate: 1.0,
        ..Faults::none()
    })
    .await;
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(error_info(&err).reason, "UPSTREAM_BAD_RESPONSE");
    assert!(
        err.message().contains("not the documented JSON"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable() {
    let err = unify_failing_with(Faults {
        drop_rate: 1.0,
        ..Faults::none()
    })
    .await;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(error_info(&err).reason, "UPSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn a_connection_dropped_after_sending_is_not_sent_again_even_with_retries_on() {
    // Prove may have acted on a request whose connection broke after it arrived (a status step
    // it answered once answers 403 when repeated), so the gateway must not send it again:
    // default retries (5 attempts), and the simulator cuts every /v3 connection on arrival.
    let sim = SimulatorConfig {
        faults: Faults {
            drop_rate: 1.0,
            ..Faults::none()
        },
        ..SimulatorConfig::default()
    };
    let mut app = spawn_app_with(sim, OutboundSettings::default()).await;
    let err = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(error_info(&err).reason, "UPSTREAM_UNAVAILABLE");
    let records = app.sim.records();
    let arrivals: Vec<_> = records.for_path("/v3/unify").collect();
    assert_eq!(arrivals.len(), 1, "sent once: {arrivals:?}");
    assert_eq!(
        arrivals[0].fault,
        Some(prove_gateway::simulator::FaultKind::Drop)
    );
    assert!(
        err.get_details_retry_info().is_none(),
        "the outcome is unknown: the caller should ask the status first, not just retry"
    );
}

#[tokio::test]
async fn a_connection_refused_before_sending_is_retried() {
    // Runs on the current-thread runtime, so the capture sees this test's gateway only.
    let logs = LogCapture::start();
    // A port bound but not listening: connections to it are refused, so nothing is sent.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let prove_addr = socket.local_addr().unwrap();
    let app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        if let prove_gateway::config::Upstream::Prove { base_url, .. } = &mut settings.upstream {
            *base_url = format!("http://{prove_addr}").parse().unwrap();
        }
        settings.outbound = OutboundSettings {
            retry_max_attempts: 50,
            retry_base_delay: Duration::from_millis(20),
            retry_max_delay: Duration::from_millis(50),
            ..OutboundSettings::default()
        };
    })
    .await;
    let call = tokio::spawn({
        let mut client = app.unify.clone();
        async move {
            client
                .unify(unify(PossessionType::Mobile, "2001004014"))
                .await
        }
    });

    // The first request (the token's) was refused and a retry is scheduled: now Prove comes up
    // on that port. (Between the socket's close and the simulator's bind another process could
    // take the port; the window is microseconds.)
    logs.wait_for("retry.scheduled").await;
    drop(socket);
    let prove = prove_gateway::simulator::spawn(SimulatorConfig {
        listen: prove_addr,
        ..SimulatorConfig::default()
    })
    .await
    .expect("the refused port is free again");

    call.await
        .unwrap()
        .expect("the refused request was retried and the call went through");
    let text = logs.text();
    let scheduled = text
        .lines()
        .find(|line| line.contains("retry.scheduled"))
        .unwrap();
    assert!(scheduled.contains("/token"), "{scheduled}");
    let records = prove.records();
    assert_eq!(records.count("/token"), 1, "only the retry reached Prove");
    assert_eq!(records.count("/v3/unify"), 1);
}

#[tokio::test]
async fn a_request_the_gateway_cannot_build_is_internal_and_not_retried() {
    // A base URL that paths cannot be joined to (no URL from PROVE_BASE_URL gets this far; an
    // embedding program can build one): the gateway's own fault, which no retry can fix.
    let mut app = spawn_app_configured(SimulatorConfig::default(), |settings| {
        if let prove_gateway::config::Upstream::Prove { base_url, .. } = &mut settings.upstream {
            *base_url = "data:text/plain,prove".parse().unwrap();
        }
    })
    .await;
    let err = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    let info = error_info(&err);
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("GATEWAY_INTERNAL_ERROR", "prove-gateway")
    );
    assert!(
        err.get_details_retry_info().is_none(),
        "waiting does not help"
    );
    assert_eq!(app.sim.records().total(), 0, "nothing was sent");
}
