//! Prove's wire JSON, as the simulator sees it: request and response bodies of `/token` and
//! the `/v3` Unify and Verify endpoints, with Prove's exact field names.
//!
//! These are the simulator's own models, deliberately separate from whatever client models the
//! gateway has, so a mistake in one side's field names cannot hide behind a shared type.
//! Responses follow Prove's convention of omitting absent optional fields, empty objects and
//! empty arrays: every optional field is `Option` with `skip_serializing_if`, and there are no
//! collections that could serialize as `{}` or `[]`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON type a request field must have. Checked before deserializing so a wrong type answers
/// 8001 naming the field (serde's own message names a line and column instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Bool,
}

/// A request model's JSON fields and their types.
pub(crate) trait Fields {
    const FIELDS: &'static [(&'static str, Kind)];
}

/// `{"code": 8001, "message": "…"}`; `code` is optional in Prove's SDKs.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    pub message: String,
}

/// `POST /token` answer. Prove's snake_case OAuth names.
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// `POST /v3/unify` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnifyRequest {
    pub possession_type: Option<String>,
    pub phone_number: Option<String>,
    pub final_target_url: Option<String>,
    pub sms_message: Option<String>,
    #[serde(rename = "allowOTPRetry")]
    pub allow_otp_retry: Option<bool>,
    pub client_request_id: Option<String>,
    pub client_human_id: Option<String>,
    pub email_address: Option<String>,
    pub ip_address: Option<String>,
    pub prove_id: Option<String>,
    // Accepted and type-checked, but the sandbox has no behaviour for them.
    #[allow(dead_code)]
    pub check_reputation: Option<bool>,
    #[allow(dead_code)]
    pub client_customer_id: Option<String>,
    #[allow(dead_code)]
    pub device_id: Option<String>,
    #[allow(dead_code)]
    pub rebind: Option<bool>,
}

impl Fields for UnifyRequest {
    const FIELDS: &'static [(&'static str, Kind)] = &[
        ("possessionType", Kind::Str),
        ("phoneNumber", Kind::Str),
        ("finalTargetUrl", Kind::Str),
        ("smsMessage", Kind::Str),
        ("allowOTPRetry", Kind::Bool),
        ("checkReputation", Kind::Bool),
        ("clientCustomerId", Kind::Str),
        ("clientRequestId", Kind::Str),
        ("clientHumanId", Kind::Str),
        ("deviceId", Kind::Str),
        ("emailAddress", Kind::Str),
        ("ipAddress", Kind::Str),
        ("proveId", Kind::Str),
        ("rebind", Kind::Bool),
    ];
}

/// `POST /v3/unify` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnifyResponse {
    pub success: &'static str,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
}

/// `POST /v3/unify-status` and `POST /v3/verify-status` body (same two fields).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusRequest {
    pub correlation_id: Option<String>,
    pub client_request_id: Option<String>,
}

impl Fields for StatusRequest {
    const FIELDS: &'static [(&'static str, Kind)] =
        &[("correlationId", Kind::Str), ("clientRequestId", Kind::Str)];
}

/// `POST /v3/unify-bind` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnifyBindRequest {
    pub correlation_id: Option<String>,
    pub phone_number: Option<String>,
    pub client_request_id: Option<String>,
}

impl Fields for UnifyBindRequest {
    const FIELDS: &'static [(&'static str, Kind)] = &[
        ("correlationId", Kind::Str),
        ("phoneNumber", Kind::Str),
        ("clientRequestId", Kind::Str),
    ];
}

/// `POST /v3/unify-status` and `POST /v3/unify-bind` answer (Prove uses one shape for both).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnifyStatusResponse {
    pub success: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prove_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_human_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(skip_serializing_if = "is_absent_or_empty")]
    pub evaluation: Option<Map<String, Value>>,
}

/// `POST /v3/verify` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyRequest {
    pub possession_type: Option<String>,
    pub phone_number: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub final_target_url: Option<String>,
    pub sms_message: Option<String>,
    #[serde(rename = "allowOTPRetry")]
    pub allow_otp_retry: Option<bool>,
    pub client_request_id: Option<String>,
    pub email_address: Option<String>,
    // Accepted and type-checked, but the sandbox has no behaviour for it.
    #[allow(dead_code)]
    pub client_customer_id: Option<String>,
}

impl Fields for VerifyRequest {
    const FIELDS: &'static [(&'static str, Kind)] = &[
        ("possessionType", Kind::Str),
        ("phoneNumber", Kind::Str),
        ("firstName", Kind::Str),
        ("lastName", Kind::Str),
        ("finalTargetUrl", Kind::Str),
        ("smsMessage", Kind::Str),
        ("allowOTPRetry", Kind::Bool),
        ("clientCustomerId", Kind::Str),
        ("clientRequestId", Kind::Str),
        ("emailAddress", Kind::Str),
    ];
}

/// `POST /v3/verify` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyResponse {
    pub success: &'static str,
    pub possession_result: &'static str,
    pub verify_result: &'static str,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(skip_serializing_if = "is_absent_or_empty")]
    pub evaluation: Option<Map<String, Value>>,
}

/// `POST /v3/verify-status` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyStatusResponse {
    pub success: &'static str,
    pub possession_result: &'static str,
    pub verify_result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    #[serde(skip_serializing_if = "is_absent_or_empty")]
    pub evaluation: Option<Map<String, Value>>,
}

/// Prove omits empty objects, so an empty evaluation map is left out like an absent one.
fn is_absent_or_empty(map: &Option<Map<String, Value>>) -> bool {
    map.as_ref().is_none_or(Map::is_empty)
}

/// An `evaluation` map of `{"<key>": {"result": "pass"|"fail"}}` entries, the shape of Prove's
/// documented examples; the values are opaque to clients.
pub(crate) fn evaluation(entries: &[(&str, bool)]) -> Option<Map<String, Value>> {
    let map: Map<String, Value> = entries
        .iter()
        .map(|(key, pass)| {
            let result = if *pass { "pass" } else { "fail" };
            ((*key).to_owned(), serde_json::json!({ "result": result }))
        })
        .collect();
    Some(map)
}
