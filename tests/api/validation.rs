//! Invalid requests are refused with INVALID_ARGUMENT and a BadRequest naming each field,
//! before any call to Prove (the simulator's counters stay at zero).

use prove_gateway::grpc::pb::{
    PossessionType, UnifyBindRequest, UnifyRequest, UnifyStatusRequest, VerifyRequest,
    VerifyStatusRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, error_info, mobile_unify, spawn_app};

const CORRELATION_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

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

    // Every field within its own limit, but each character takes four bytes in UTF-8, so the
    // body Prove would receive passes 4 KB.
    let wide = "\u{1d11e}";
    let oversized = UnifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004014".into(),
        client_customer_id: wide.repeat(128),
        client_request_id: wide.repeat(128),
        client_human_id: wide.repeat(128),
        device_id: wide.repeat(128),
        prove_id: wide.repeat(128),
        sms_message: wide.repeat(160),
        email_address: format!("{}@example.com", wide.repeat(240)),
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

/// Asserts that `result` was refused naming exactly `expected`, without quoting `value`, and
/// that nothing at all has reached the simulator (not even `/token`).
fn assert_refused<T: std::fmt::Debug>(
    app: &TestApp,
    result: Result<T, tonic::Status>,
    expected: &[&str],
    value: &str,
) {
    let err = result.expect_err(value);
    assert_eq!(fields(&err), expected, "{value:?}");
    assert!(value.trim().len() < 4 || !err.message().contains(value.trim()));
    assert_eq!(app.sim.records().total(), 0, "{value:?} reached Prove");
}

fn verify_request(phone: &str) -> VerifyRequest {
    VerifyRequest {
        possession_type: PossessionType::CustomerSupplied as i32,
        phone_number: phone.into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn e_mail_addresses_no_address_contains_never_reach_prove() {
    let mut app = spawn_app().await;
    for email in [
        "a b@example.com",
        "ab@example.com\r\nBcc: c@example.com",
        "ab\0@example.com",
        "a\u{3000}b@example.com",
        "a@b@example.com",
        "@example.com",
        "ab@",
        "ab.example.com",
        " ",
    ] {
        let unify = UnifyRequest {
            email_address: email.into(),
            ..mobile_unify()
        };
        let result = app.unify.unify(unify).await;
        assert_refused(&app, result, &["email_address"], email);
        let verify = VerifyRequest {
            email_address: email.into(),
            ..verify_request("2001004011")
        };
        let result = app.verify.verify(verify).await;
        assert_refused(&app, result, &["email_address"], email);
    }
}

#[tokio::test]
async fn a_real_address_outside_proves_charset_is_left_for_prove_to_judge() {
    let mut app = spawn_app().await;
    let request = UnifyRequest {
        email_address: "first-last@my-company.com".into(),
        ..mobile_unify()
    };
    // The simulator, like Prove's reference, allows only letters, digits and @.+ and refuses `-`
    // with 8001; the gateway does not second-guess that for a real address.
    let err = app.unify.unify(request).await.unwrap_err();
    assert_eq!(error_info(&err).reason, "MALFORMED_REQUEST", "{err:?}");
    assert_eq!(app.sim.records().count("/v3/unify"), 1);
}

#[tokio::test]
async fn a_blank_prove_id_never_reaches_prove() {
    let mut app = spawn_app().await;
    let request = UnifyRequest {
        possession_type: PossessionType::Mobile as i32,
        prove_id: " ".into(),
        ..Default::default()
    };
    let result = app.unify.unify(request).await;
    assert_refused(&app, result, &["phone_number", "prove_id"], " ");
    let request = UnifyRequest {
        prove_id: "\t".into(),
        ..mobile_unify()
    };
    let result = app.unify.unify(request).await;
    assert_refused(&app, result, &["prove_id"], "\t");
}

#[tokio::test]
async fn phone_numbers_outside_7_to_15_digits_never_reach_prove() {
    let mut app = spawn_app().await;
    for phone in [
        "123456",
        "+123456",
        "1234567890123456",
        "+1234567890123456",
        "12345678901234567890123456789012",
    ] {
        let result = app
            .unify
            .unify(UnifyRequest {
                phone_number: phone.into(),
                ..mobile_unify()
            })
            .await;
        assert_refused(&app, result, &["phone_number"], phone);
        let bind = UnifyBindRequest {
            correlation_id: CORRELATION_ID.into(),
            phone_number: phone.into(),
            ..Default::default()
        };
        let result = app.unify.unify_bind(bind).await;
        assert_refused(&app, result, &["phone_number"], phone);
        let result = app.verify.verify(verify_request(phone)).await;
        assert_refused(&app, result, &["phone_number"], phone);
    }
}

#[tokio::test]
async fn sandbox_numbers_in_every_documented_form_still_reach_prove() {
    let mut app = spawn_app().await;
    for phone in ["2001004014", "12001004014", "+12001004014", "+2001004025"] {
        let request = UnifyRequest {
            phone_number: phone.into(),
            ..mobile_unify()
        };
        app.unify.unify(request).await.expect(phone);
    }
    // Prove's docs write this international sandbox user without its +.
    for phone in ["447968900002", "+447968900002"] {
        app.verify.verify(verify_request(phone)).await.expect(phone);
    }
    assert_eq!(app.sim.records().count("/v3/unify"), 4);
    assert_eq!(app.sim.records().count("/v3/verify"), 2);
}

#[tokio::test]
async fn blank_ids_and_control_characters_never_reach_prove() {
    let mut app = spawn_app().await;
    let value = "ab\r\nX-Injected: 1";
    let request = UnifyRequest {
        client_request_id: value.into(),
        ..mobile_unify()
    };
    let result = app.unify.unify(request).await;
    assert_refused(&app, result, &["client_request_id"], value);

    let value = "Your code is ######\u{1b}[8m";
    let request = UnifyRequest {
        sms_message: value.into(),
        ..mobile_unify()
    };
    let result = app.unify.unify(request).await;
    assert_refused(&app, result, &["sms_message"], value);

    let value = "Sheila\0";
    let request = VerifyRequest {
        first_name: value.into(),
        ..verify_request("2001004011")
    };
    let result = app.verify.verify(request).await;
    assert_refused(&app, result, &["first_name"], value);

    for value in [" ", "\t"] {
        let request = UnifyStatusRequest {
            correlation_id: CORRELATION_ID.into(),
            client_request_id: value.into(),
        };
        let result = app.unify.unify_status(request).await;
        assert_refused(&app, result, &["client_request_id"], value);
        let request = VerifyStatusRequest {
            correlation_id: CORRELATION_ID.into(),
            client_request_id: value.into(),
        };
        let result = app.verify.verify_status(request).await;
        assert_refused(&app, result, &["client_request_id"], value);
    }
}
