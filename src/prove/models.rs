//! Prove's JSON bodies, with Prove's exact field names (prove-api.md sections 1, 3 and 4a).
//!
//! Requests leave out fields the caller did not set, as Prove's own SDKs do. Responses accept
//! any field Prove may omit as optional, and keep unknown string values as strings: mapping them
//! to the contract's enums is `grpc::convert`'s job.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v3/unify`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyRequest {
    /// `desktop`, `mobile` or `none`.
    pub possession_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_message: Option<String>,
    /// Prove spells this one with a capitalised acronym.
    #[serde(rename = "allowOTPRetry", skip_serializing_if = "Option::is_none")]
    pub allow_otp_retry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_reputation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_human_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prove_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebind: Option<bool>,
}

/// Answer of `POST /v3/unify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyResponse {
    pub success: String,
    pub correlation_id: String,
    #[serde(default)]
    pub auth_token: Option<String>,
}

/// `POST /v3/unify-status`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyStatusRequest {
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
}

/// `POST /v3/unify-bind`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyBindRequest {
    pub correlation_id: String,
    pub phone_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
}

/// Answer of `POST /v3/unify-status` and `POST /v3/unify-bind`, which share one shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifyStatusResponse {
    pub success: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub prove_id: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub client_human_id: Option<String>,
    #[serde(default)]
    pub client_request_id: Option<String>,
    #[serde(default)]
    pub evaluation: Option<Map<String, Value>>,
}

/// `POST /v3/verify` (the possession flow, prove-api.md 4a).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    pub possession_type: String,
    pub phone_number: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_message: Option<String>,
    #[serde(rename = "allowOTPRetry", skip_serializing_if = "Option::is_none")]
    pub allow_otp_retry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
}

/// Answer of `POST /v3/verify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub success: String,
    pub possession_result: String,
    pub verify_result: String,
    pub correlation_id: String,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub evaluation: Option<Map<String, Value>>,
}

/// `POST /v3/verify-status`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyStatusRequest {
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
}

/// Answer of `POST /v3/verify-status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyStatusResponse {
    pub success: String,
    pub possession_result: String,
    pub verify_result: String,
    #[serde(default)]
    pub identity_id: Option<String>,
    #[serde(default)]
    pub evaluation: Option<Map<String, Value>>,
}

/// Answer of `POST /token` (OAuth client credentials).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

/// Prove's error body: `{"code": 8003, "message": "..."}`. The code is optional in Prove's SDKs.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}
