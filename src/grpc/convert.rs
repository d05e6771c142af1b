//! Conversion between the contract's messages and Prove's JSON models.
//!
//! Prove's string enums map to proto enums; a value this gateway does not know maps to
//! UNSPECIFIED and the raw string is returned beside it, so a new Prove value never fails a call.

use serde_json::{Map, Value};

use super::pb::{self, CheckResult, PossessionType, UnifyOutcome, VerifyOutcome};
use crate::prove::models;

/// Prove's `possessionType` string for a (validated) possession type.
pub fn possession_type(value: i32) -> &'static str {
    match PossessionType::try_from(value) {
        Ok(PossessionType::Desktop) => "desktop",
        Ok(PossessionType::CustomerSupplied) => "none",
        _ => "mobile",
    }
}

/// Prove's unify `success` string as the contract's enum.
pub fn unify_outcome(raw: &str) -> UnifyOutcome {
    match raw {
        "pending" => UnifyOutcome::Pending,
        "true" => UnifyOutcome::Success,
        "false" => UnifyOutcome::Failure,
        "possession_required" => UnifyOutcome::PossessionRequired,
        _ => UnifyOutcome::Unspecified,
    }
}

/// Prove's verify `success` string as the contract's enum.
pub fn verify_outcome(raw: &str) -> VerifyOutcome {
    match raw {
        "pending" => VerifyOutcome::Pending,
        "true" => VerifyOutcome::Success,
        "false" => VerifyOutcome::Failure,
        _ => VerifyOutcome::Unspecified,
    }
}

/// Prove's `possessionResult` / `verifyResult` string as the contract's enum.
pub fn check_result(raw: &str) -> CheckResult {
    match raw {
        "pending" => CheckResult::Pending,
        "success" => CheckResult::Success,
        "failed" => CheckResult::Failed,
        // Older Prove documents spell it with a space.
        "not_applicable" | "not applicable" => CheckResult::NotApplicable,
        _ => CheckResult::Unspecified,
    }
}

/// Empty proto strings mean "not set": Prove gets no field rather than an empty one.
fn opt(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Proto booleans default to false, which is also Prove's default: only `true` is sent.
fn flag(value: bool) -> Option<bool> {
    value.then_some(true)
}

/// The `/v3/unify` body for a request. Prove requires `clientRequestId`: when the caller set none,
/// a fresh UUIDv4 is sent.
pub fn unify_request(request: &pb::UnifyRequest) -> models::UnifyRequest {
    models::UnifyRequest {
        possession_type: possession_type(request.possession_type).to_owned(),
        phone_number: opt(&request.phone_number),
        final_target_url: opt(&request.final_target_url),
        sms_message: opt(&request.sms_message),
        allow_otp_retry: flag(request.allow_otp_retry),
        check_reputation: flag(request.check_reputation),
        client_customer_id: opt(&request.client_customer_id),
        client_request_id: Some(
            opt(&request.client_request_id).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ),
        client_human_id: opt(&request.client_human_id),
        device_id: opt(&request.device_id),
        email_address: opt(&request.email_address),
        ip_address: opt(&request.ip_address),
        prove_id: opt(&request.prove_id),
        rebind: flag(request.rebind),
    }
}

/// The contract's answer to Unify.
pub fn unify_response(response: models::UnifyResponse) -> pb::UnifyResponse {
    pb::UnifyResponse {
        success: unify_outcome(&response.success) as i32,
        success_raw: response.success,
        correlation_id: response.correlation_id,
        auth_token: response.auth_token.unwrap_or_default(),
    }
}

/// The `/v3/unify-status` body.
pub fn unify_status_request(request: &pb::UnifyStatusRequest) -> models::UnifyStatusRequest {
    models::UnifyStatusRequest {
        correlation_id: request.correlation_id.clone(),
        client_request_id: opt(&request.client_request_id),
    }
}

/// The contract's answer to UnifyStatus.
pub fn unify_status_response(response: models::UnifyStatusResponse) -> pb::UnifyStatusResponse {
    pb::UnifyStatusResponse {
        success: unify_outcome(&response.success) as i32,
        success_raw: response.success,
        phone_number: response.phone_number.unwrap_or_default(),
        prove_id: response.prove_id.unwrap_or_default(),
        device_id: response.device_id.unwrap_or_default(),
        client_human_id: response.client_human_id.unwrap_or_default(),
        client_request_id: response.client_request_id.unwrap_or_default(),
        evaluation: response.evaluation.map(to_struct),
    }
}

/// The `/v3/unify-bind` body.
pub fn unify_bind_request(request: &pb::UnifyBindRequest) -> models::UnifyBindRequest {
    models::UnifyBindRequest {
        correlation_id: request.correlation_id.clone(),
        phone_number: request.phone_number.clone(),
        client_request_id: opt(&request.client_request_id),
    }
}

/// The contract's answer to UnifyBind (Prove answers bind like status).
pub fn unify_bind_response(response: models::UnifyStatusResponse) -> pb::UnifyBindResponse {
    let status = unify_status_response(response);
    pb::UnifyBindResponse {
        success: status.success,
        success_raw: status.success_raw,
        phone_number: status.phone_number,
        prove_id: status.prove_id,
        device_id: status.device_id,
        client_human_id: status.client_human_id,
        client_request_id: status.client_request_id,
        evaluation: status.evaluation,
    }
}

/// The `/v3/verify` body.
pub fn verify_request(request: &pb::VerifyRequest) -> models::VerifyRequest {
    models::VerifyRequest {
        possession_type: possession_type(request.possession_type).to_owned(),
        phone_number: request.phone_number.clone(),
        first_name: request.first_name.clone(),
        last_name: request.last_name.clone(),
        final_target_url: opt(&request.final_target_url),
        sms_message: opt(&request.sms_message),
        allow_otp_retry: flag(request.allow_otp_retry),
        client_customer_id: opt(&request.client_customer_id),
        client_request_id: opt(&request.client_request_id),
        email_address: opt(&request.email_address),
    }
}

/// The contract's answer to Verify.
pub fn verify_response(response: models::VerifyResponse) -> pb::VerifyResponse {
    pb::VerifyResponse {
        success: verify_outcome(&response.success) as i32,
        success_raw: response.success,
        possession_result: check_result(&response.possession_result) as i32,
        possession_result_raw: response.possession_result,
        verify_result: check_result(&response.verify_result) as i32,
        verify_result_raw: response.verify_result,
        correlation_id: response.correlation_id,
        auth_token: response.auth_token.unwrap_or_default(),
        evaluation: response.evaluation.map(to_struct),
    }
}

/// The `/v3/verify-status` body.
pub fn verify_status_request(request: &pb::VerifyStatusRequest) -> models::VerifyStatusRequest {
    models::VerifyStatusRequest {
        correlation_id: request.correlation_id.clone(),
        client_request_id: opt(&request.client_request_id),
    }
}

/// The contract's answer to VerifyStatus.
pub fn verify_status_response(response: models::VerifyStatusResponse) -> pb::VerifyStatusResponse {
    pb::VerifyStatusResponse {
        success: verify_outcome(&response.success) as i32,
        success_raw: response.success,
        possession_result: check_result(&response.possession_result) as i32,
        possession_result_raw: response.possession_result,
        verify_result: check_result(&response.verify_result) as i32,
        verify_result_raw: response.verify_result,
        identity_id: response.identity_id.unwrap_or_default(),
        evaluation: response.evaluation.map(to_struct),
    }
}

/// Prove's opaque `evaluation` object as a `google.protobuf.Struct`.
pub fn to_struct(map: Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_strings_map_to_enums_and_unknown_ones_to_unspecified() {
        assert_eq!(
            unify_outcome("possession_required"),
            UnifyOutcome::PossessionRequired
        );
        assert_eq!(unify_outcome("maybe"), UnifyOutcome::Unspecified);
        assert_eq!(check_result("not applicable"), CheckResult::NotApplicable);
        assert_eq!(check_result("sideways"), CheckResult::Unspecified);
        let response = unify_response(models::UnifyResponse {
            success: "brand_new".into(),
            correlation_id: "c".into(),
            auth_token: None,
        });
        assert_eq!(response.success, UnifyOutcome::Unspecified as i32);
        assert_eq!(response.success_raw, "brand_new");
    }

    #[test]
    fn unset_fields_are_left_out_of_the_json() {
        let request = pb::UnifyRequest {
            possession_type: PossessionType::CustomerSupplied as i32,
            phone_number: "2001004014".into(),
            ..Default::default()
        };
        let json = serde_json::to_value(unify_request(&request)).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(json["possessionType"], "none");
        assert!(uuid::Uuid::parse_str(json["clientRequestId"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn allow_otp_retry_keeps_prove_spelling() {
        let request = pb::VerifyRequest {
            allow_otp_retry: true,
            ..Default::default()
        };
        let json = serde_json::to_value(verify_request(&request)).unwrap();
        assert_eq!(json["allowOTPRetry"], true);
    }

    #[test]
    fn evaluation_becomes_a_struct() {
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"authentication":{"result":"pass"},"risk":{"score":7}}"#)
                .unwrap();
        let s = to_struct(map);
        let auth = match &s.fields["authentication"].kind {
            Some(prost_types::value::Kind::StructValue(inner)) => inner.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            auth.fields["result"].kind,
            Some(prost_types::value::Kind::StringValue("pass".into()))
        );
    }
}
