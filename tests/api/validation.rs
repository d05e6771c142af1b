//! Invalid requests are refused with INVALID_ARGUMENT and a BadRequest naming each field,
//! before any call to Prove (the simulator's counters stay at zero).

use prove_gateway::grpc::pb::{
    PossessionType, UnifyBindRequest, UnifyRequest, UnifyStatusRequest, VerifyRequest,
    VerifyStatusRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{error_info, spawn_app};

fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let info = error_info(status);
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("INVALID_FIELD", "prove-gateway")
    );
    status
        .get_details_bad_request()
        .expect("BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn invalid_requests_never_reach_prove() {
    let mut app = spawn_app().await;

    let err = app.unify.unify(UnifyRequest::default()).await.unwrap_err();
    assert_eq!(fields(&err), ["possession_type", "phone_number"]);

    let err = app
        .unify
        .unify(UnifyRequest {
            possession_type: PossessionType::Desktop as i32,
            phone_number: "2001004014".into(),
            final_target_url: format!("https://example.com/{}", "x".repeat(120)),
            sms_message: "y".repeat(161),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["final_target_url", "sms_message"]);

    let err = app
        .unify
        .unify_status(UnifyStatusRequest {
            correlation_id: "not-a-uuid".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["correlation_id"]);

    let err = app
        .unify
        .unify_bind(UnifyBindRequest::default())
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["correlation_id", "phone_number"]);

    let err = app
        .verify
        .verify(VerifyRequest {
            possession_type: PossessionType::Mobile as i32,
            phone_number: "+1 (200) 100-4011".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["phone_number", "first_name", "last_name"]);
    assert!(
        !err.message().contains("100-4011"),
        "no personal data in messages"
    );

    let err = app
        .verify
        .verify_status(VerifyStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["correlation_id"]);

    // Every field within its own limit, but control characters take six bytes each in JSON
    // (\u0001), so the body Prove would receive passes 4 KB.
    let control = "\u{1}";
    let oversized = UnifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004014".into(),
        client_customer_id: control.repeat(128),
        client_request_id: control.repeat(128),
        client_human_id: control.repeat(128),
        device_id: control.repeat(128),
        prove_id: control.repeat(128),
        sms_message: control.repeat(160),
        ..Default::default()
    };
    let json_len = serde_json::to_vec(&prove_gateway::grpc::convert::unify_request(&oversized))
        .unwrap()
        .len();
    assert!(json_len > 4096, "{json_len}");
    let err = app.unify.unify(oversized).await.unwrap_err();
    assert_eq!(fields(&err), ["request"]);

    assert_eq!(
        app.sim.records().total(),
        0,
        "nothing reached Prove, not even /token"
    );
}
