//! Who may call (issue 15): bearer tokens from a callers file, each caller's allow list, the
//! refusals and their reasons, the open health and reflection services, the file reloaded while
//! the gateway runs, and the audit line. Prove's side is read from the simulator's records: a
//! refused call must not reach it.

use std::time::Duration;

use prove_gateway::config::CallersSettings;
use prove_gateway::grpc::pb::{VerifyRequest, VerifyStatusRequest};
use prove_gateway::simulator::SimulatorConfig;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::support::callers::{
    CallersMount, caller, callers_file, token_sha256, with_token,
};
use crate::helpers::{LogCapture, TestApp, error_info, mobile_unify, spawn_app_configured};

const CHECKOUT_TOKEN: &str = "checkout-tok-5f1c0b7e9a";
const AUDIT_TOKEN: &str = "audit-tok-88d2e41c03";
const UNIFY_SERVICE: &str = "prove.gateway.v1.UnifyService/*";
const VERIFY_STATUS: &str = "prove.gateway.v1.VerifyService/VerifyStatus";

/// `checkout` may call UnifyService; `audit` only VerifyStatus.
fn two_callers() -> String {
    callers_file(&[
        caller("checkout", CHECKOUT_TOKEN, &[UNIFY_SERVICE]),
        caller("audit", AUDIT_TOKEN, &[VERIFY_STATUS]),
    ])
}

/// A gateway reading its callers from `mount`, looking for changes every 20 ms.
async fn gateway(mount: &CallersMount) -> TestApp {
    let path = mount.path();
    spawn_app_configured(SimulatorConfig::default(), move |settings| {
        settings.callers = CallersSettings {
            file: Some(path),
            mtls: false,
            reload_interval: Duration::from_millis(20),
        };
    })
    .await
}

fn verify_request() -> VerifyRequest {
    VerifyRequest {
        possession_type: prove_gateway::grpc::pb::PossessionType::Mobile as i32,
        phone_number: "2001004011".into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        final_target_url: "https://www.example.com".into(),
        ..Default::default()
    }
}

/// Requests that reached Prove's product endpoints (token requests aside).
fn prove_calls(app: &TestApp) -> usize {
    let records = app.sim.records();
    records
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v3/"))
        .count()
}

fn assert_refused(status: &tonic::Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = error_info(status);
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "prove-gateway");
}

#[tokio::test]
async fn a_caller_is_served_what_it_is_allowed_and_denied_the_rest_before_prove() {
    let mount = CallersMount::new(&two_callers());
    let mut app = gateway(&mount).await;

    let started = app
        .unify
        .unify(with_token(mobile_unify(), CHECKOUT_TOKEN))
        .await
        .expect("checkout may call Unify")
        .into_inner();
    assert!(!started.correlation_id.is_empty());
    assert_eq!(app.sim.records().count("/v3/unify"), 1);

    let denied = app
        .verify
        .verify(with_token(verify_request(), CHECKOUT_TOKEN))
        .await
        .unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
    assert_eq!(error_info(&denied).metadata["caller"], "checkout");
    assert_eq!(
        error_info(&denied).metadata["method"],
        "prove.gateway.v1.VerifyService/Verify"
    );
    // audit may call VerifyStatus only: its Unify is refused too.
    let denied = app
        .unify
        .unify(with_token(mobile_unify(), AUDIT_TOKEN))
        .await
        .unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
    assert_eq!(error_info(&denied).metadata["caller"], "audit");
    assert_eq!(app.sim.records().count("/v3/verify"), 0);
    assert_eq!(prove_calls(&app), 1, "Prove saw only the allowed call");

    // What audit is allowed does reach Prove (an unknown ID: Prove's own refusal).
    let status = app
        .verify
        .verify_status(with_token(
            VerifyStatusRequest {
                correlation_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            },
            AUDIT_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_ne!(error_info(&status).reason, "CALLER_NOT_ALLOWED");
    assert_eq!(app.sim.records().count("/v3/verify-status"), 1);
}

#[tokio::test]
async fn calls_without_a_token_the_file_lists_are_unauthenticated_before_prove() {
    let mount = CallersMount::new(&two_callers());
    let mut app = gateway(&mount).await;
    let unknown = "not-a-callers-token-7d1e";
    let attempts = [
        ("no token", tonic::Request::new(mobile_unify())),
        ("an unknown token", with_token(mobile_unify(), unknown)),
        (
            "its hash instead of the token",
            with_token(mobile_unify(), &token_sha256(CHECKOUT_TOKEN)),
        ),
        ("another scheme", {
            let mut request = tonic::Request::new(mobile_unify());
            request.metadata_mut().insert(
                "authorization",
                format!("Basic {CHECKOUT_TOKEN}").parse().unwrap(),
            );
            request
        }),
    ];
    for (what, request) in attempts {
        let refused = app.unify.unify(request).await.unwrap_err();
        assert_refused(&refused, Code::Unauthenticated, "CALLER_UNAUTHENTICATED");
        assert!(
            !refused.message().contains(unknown) && !refused.message().contains(CHECKOUT_TOKEN),
            "{what}: the message repeats the credential: {}",
            refused.message()
        );
    }
    assert_eq!(prove_calls(&app), 0, "Prove saw none of them");
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_token() {
    let mount = CallersMount::new(&two_callers());
    let app = gateway(&mount).await;
    let mut health = HealthClient::new(app.channel.clone());
    let answer = health
        .check(HealthCheckRequest {
            service: "prove.gateway.v1.UnifyService".into(),
        })
        .await
        .expect("health needs no token");
    assert_eq!(
        answer.into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection needs no token")
        .into_inner();
    assert!(matches!(answers.next().await, Some(Ok(_))));
}

#[tokio::test]
async fn twenty_concurrent_calls_of_two_callers_each_get_their_own_answer() {
    let mount = CallersMount::new(&two_callers());
    let app = gateway(&mount).await;
    let calls = (0..20).map(|i| {
        let mut unify = app.unify.clone();
        let token = if i % 2 == 0 {
            CHECKOUT_TOKEN
        } else {
            AUDIT_TOKEN
        };
        async move { (token, unify.unify(with_token(mobile_unify(), token)).await) }
    });
    let answers = futures::future::join_all(calls).await;
    for (token, answer) in &answers {
        match *token {
            CHECKOUT_TOKEN => assert!(answer.is_ok(), "{answer:?}"),
            _ => assert_refused(
                answer.as_ref().unwrap_err(),
                Code::PermissionDenied,
                "CALLER_NOT_ALLOWED",
            ),
        }
    }
    assert_eq!(app.sim.records().count("/v3/unify"), 10);
    assert_eq!(prove_calls(&app), 10);
}

/// Calls Unify with `token` until it gets `code`, for at most ten seconds (the gateway reads
/// the file every 20 ms).
async fn wait_for_unify(app: &TestApp, token: &str, code: Code) {
    let mut unify = app.unify.clone();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let got = match unify.unify(with_token(mobile_unify(), token)).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            if got == code {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "Unify with {token:?} never got {code:?}");
}

#[tokio::test]
async fn the_callers_file_is_reloaded_on_a_secret_update_and_a_broken_update_changes_nothing() {
    let logs = LogCapture::start();
    let mut mount = CallersMount::new(&callers_file(&[caller(
        "checkout",
        CHECKOUT_TOKEN,
        &[UNIFY_SERVICE],
    )]));
    let mut app = gateway(&mount).await;
    app.unify
        .unify(with_token(mobile_unify(), CHECKOUT_TOKEN))
        .await
        .unwrap();

    // The Secret is updated: checkout's token is rotated away, a new caller arrives.
    let new_token = "rotated-tok-0b9c6a2d";
    mount.update(&callers_file(&[caller(
        "checkout-v2",
        new_token,
        &[UNIFY_SERVICE],
    )]));
    wait_for_unify(&app, new_token, Code::Ok).await;
    let removed = app
        .unify
        .unify(with_token(mobile_unify(), CHECKOUT_TOKEN))
        .await
        .unwrap_err();
    assert_refused(&removed, Code::Unauthenticated, "CALLER_UNAUTHENTICATED");

    // A broken update (a misspelt key) is refused with one WARN; the callers stay as they were.
    mount.update(&format!(
        "{}    alow: [\"{VERIFY_STATUS}\"]\n",
        callers_file(&[caller("checkout-v3", CHECKOUT_TOKEN, &[UNIFY_SERVICE])])
    ));
    logs.wait_for("callers file changed but is not valid").await;
    assert!(
        logs.text().contains("unknown field `alow`"),
        "{}",
        logs.text()
    );
    app.unify
        .unify(with_token(mobile_unify(), new_token))
        .await
        .expect("the callers before the broken update still call");
    let refused = app
        .unify
        .unify(with_token(mobile_unify(), CHECKOUT_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Fixed again: in force, and the broken file was warned about once, however many times
    // the gateway looked at it meanwhile.
    mount.update(&callers_file(&[caller(
        "checkout-v4",
        CHECKOUT_TOKEN,
        &[UNIFY_SERVICE],
    )]));
    wait_for_unify(&app, CHECKOUT_TOKEN, Code::Ok).await;
    wait_for_unify(&app, new_token, Code::Unauthenticated).await;
    let warnings = logs
        .text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("callers file"))
        .count();
    assert_eq!(warnings, 1, "{}", logs.text());
}

#[tokio::test]
async fn the_audit_line_names_caller_method_code_and_correlation_id_and_no_token_is_logged() {
    let logs = LogCapture::start();
    let mount = CallersMount::new(&two_callers());
    let mut app = gateway(&mount).await;
    let started = app
        .unify
        .unify(with_token(mobile_unify(), CHECKOUT_TOKEN))
        .await
        .unwrap()
        .into_inner();
    app.verify
        .verify(with_token(verify_request(), CHECKOUT_TOKEN))
        .await
        .unwrap_err();
    app.unify
        .unify(with_token(mobile_unify(), AUDIT_TOKEN))
        .await
        .unwrap_err();
    let stranger = "stranger-tok-61f0aa";
    app.unify
        .unify(with_token(mobile_unify(), stranger))
        .await
        .unwrap_err();

    let text = logs.text();
    let audit = |method: &str, code: &str, caller: &str| {
        text.lines().any(|line| {
            line.contains(" rpc ")
                && line.contains(&format!("method=\"{method}\""))
                && line.contains(&format!("code=\"{code}\""))
                && line.contains(&format!("caller=\"{caller}\""))
        })
    };
    let served = text
        .lines()
        .find(|l| {
            l.contains(" rpc ") && l.contains("caller=\"checkout\"") && l.contains("code=\"OK\"")
        })
        .unwrap_or_else(|| panic!("no audit line of the served call:\n{text}"));
    assert!(
        served.contains("method=\"prove.gateway.v1.UnifyService/Unify\"")
            && served.contains(&format!("correlation_id={}", started.correlation_id)),
        "{served}"
    );
    assert!(
        audit(
            "prove.gateway.v1.VerifyService/Verify",
            "PERMISSION_DENIED",
            "checkout"
        ),
        "{text}"
    );
    assert!(
        audit(
            "prove.gateway.v1.UnifyService/Unify",
            "PERMISSION_DENIED",
            "audit"
        ),
        "{text}"
    );
    assert!(
        audit(
            "prove.gateway.v1.UnifyService/Unify",
            "UNAUTHENTICATED",
            "unauthenticated"
        ),
        "{text}"
    );

    // Neither a token nor its digest, in any line of the gateway or the simulator.
    for secret in [CHECKOUT_TOKEN, AUDIT_TOKEN, stranger] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
        assert!(
            !text.contains(&token_sha256(secret)),
            "{secret}'s digest logged"
        );
    }
    // Nor the metadata that carried them.
    assert!(!text.contains("Bearer "), "{text}");
}
