//! Unified Authentication end to end: gRPC client → gateway → HTTP → simulator → back.

use prove_gateway::grpc::pb::{PossessionType, UnifyBindRequest, UnifyOutcome, UnifyStatusRequest};
use prove_gateway::simulator::PossessionAction;

use crate::helpers::spawn_app;
use crate::helpers::unify_request as unify;

#[tokio::test]
async fn mobile_unify_then_possession_then_status_succeeds_with_a_device_id() {
    let mut app = spawn_app().await;

    let started = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.success(), UnifyOutcome::Pending);
    assert_eq!(started.success_raw, "pending");
    assert!(uuid::Uuid::parse_str(&started.correlation_id).is_ok());
    assert!(!started.auth_token.is_empty());

    app.sim
        .complete_possession(
            &started.correlation_id,
            PossessionAction::Otp("1234".into()),
        )
        .unwrap();
    let status = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: started.correlation_id.clone(),
            client_request_id: "req-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), UnifyOutcome::Success);
    assert!(!status.prove_id.is_empty());
    assert!(!status.device_id.is_empty(), "mobile places a Prove Key");
    assert_eq!(status.client_request_id, "req-2");
    assert!(status.evaluation.is_some());

    // What reached Prove: Prove's field names, and a client request ID the gateway generated.
    let records = app.sim.records();
    let sent = records.last("/v3/unify").unwrap().body.clone().unwrap();
    assert_eq!(sent["possessionType"], "mobile");
    assert_eq!(sent["phoneNumber"], "2001004014");
    assert!(
        sent["clientRequestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[tokio::test]
async fn a_wrong_otp_fails_the_session() {
    let mut app = spawn_app().await;
    let started = app
        .unify
        .unify(unify(PossessionType::Mobile, "2001004014"))
        .await
        .unwrap()
        .into_inner();
    app.sim
        .complete_possession(
            &started.correlation_id,
            PossessionAction::Otp("9999".into()),
        )
        .unwrap();
    let status = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: started.correlation_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), UnifyOutcome::Failure);
}

#[tokio::test]
async fn desktop_unify_with_final_target_url_succeeds_without_a_device_id() {
    let mut app = spawn_app().await;
    let mut request = unify(PossessionType::Desktop, "2001004014");
    request.final_target_url = "https://www.example.com/continue".into();
    let started = app.unify.unify(request).await.unwrap().into_inner();
    assert_eq!(started.success(), UnifyOutcome::Pending);

    app.sim
        .complete_possession(&started.correlation_id, PossessionAction::InstantLink)
        .unwrap();
    let status = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: started.correlation_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), UnifyOutcome::Success);
    assert!(status.device_id.is_empty(), "desktop places no Prove Key");
    let sent = app
        .sim
        .records()
        .last("/v3/unify")
        .unwrap()
        .body
        .clone()
        .unwrap();
    assert_eq!(sent["finalTargetUrl"], "https://www.example.com/continue");
}

#[tokio::test]
async fn customer_supplied_possession_requires_bind_and_bind_succeeds() {
    let mut app = spawn_app().await;
    let started = app
        .unify
        .unify(unify(PossessionType::CustomerSupplied, "2001004014"))
        .await
        .unwrap()
        .into_inner();
    let status = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: started.correlation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.success(), UnifyOutcome::PossessionRequired);

    let bound = app
        .unify
        .unify_bind(UnifyBindRequest {
            correlation_id: started.correlation_id,
            phone_number: "2001004014".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bound.success(), UnifyOutcome::Success);
    assert!(!bound.prove_id.is_empty());
    assert!(!bound.phone_number.is_empty());
    assert_eq!(
        app.sim
            .records()
            .last("/v3/unify")
            .unwrap()
            .body
            .clone()
            .unwrap()["possessionType"],
        "none"
    );
}
