//! Prove's error answers (`{"code": …, "message": …}` with an HTTP status) and the errors of the
//! simulator's own Rust API ([`SimulatorError`]).
//!
//! Every error the simulated API sends is built here, so the code ⇄ HTTP status table lives in
//! one place (see the README table). The Prove code is also attached to the response as an
//! extension so [`records`](super::records) can note which code each request got.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::models::ErrorBody;

/// A Prove error answer. Messages name fields, never their values: Prove's messages never echo a
/// phone number or a name, and neither may ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// `None` for routing errors (unknown path, wrong method), where Prove's edge answers without
    /// a code; the SDKs declare `code` optional, so clients must cope.
    pub code: Option<u32>,
    pub message: String,
}

/// The Prove code an answer carried, as a response extension read by the recorder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeTag(pub u32);

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Some(code),
            message: message.into(),
        }
    }

    /// 500 / 8000, what the error-rate fault answers.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 8000, "Internal Error")
    }

    /// 400 / 8001 with a free message (body-level problems).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 8001, message)
    }

    /// 400 / 8001: a required field is absent.
    pub fn missing(field: &str) -> Self {
        Self::malformed(format!("field '{field}' is missing"))
    }

    /// 400 / 8001: a field is present but breaks a rule; `why` must not contain the value.
    pub fn invalid(field: &str, why: &str) -> Self {
        Self::malformed(format!("field '{field}' is invalid: {why}"))
    }

    /// 401 / 8002: bad credentials, or a missing, unknown or expired bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 8002, message)
    }

    /// 403 / 8003: the step is not allowed in the session's current state, or was repeated after
    /// it already answered 200.
    pub fn out_of_order() -> Self {
        Self::new(StatusCode::FORBIDDEN, 8003, "step called out of order")
    }

    /// 400 / 8007: the phone number is not a sandbox test user.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            8007,
            "no test user found matching the phone number",
        )
    }

    /// 403 / 8008: unknown, expired or foreign correlation ID.
    pub fn invalid_correlation() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            8008,
            "correlation ID is expired or invalid",
        )
    }

    /// 403 / 8009: the test user belongs to the other product.
    pub fn access_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            8009,
            "sandbox test user access denied: credentials do not match the test user's product",
        )
    }

    /// 403 / 8010.
    pub fn country() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            8010,
            "unauthorized for country of the phone number",
        )
    }

    /// 404 / 8011, the status of the SDK's own example for this code.
    pub fn identity_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 8011, "Identity Not Found")
    }

    /// 429 / 8018 with the message of Prove's documented example.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            8018,
            "Rate limit exceeded. Please wait before making more requests.",
        )
    }

    /// 403 / 8019.
    pub fn device_revoked() -> Self {
        Self::new(StatusCode::FORBIDDEN, 8019, "Device has been revoked")
    }

    /// 404 without a code: no such path.
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: None,
            message: "Not Found".into(),
        }
    }

    /// 403 without a code: a path that exists only by mistake (`/v3/token`) or a wrong method,
    /// Prove's two documented causes of a bare 403.
    pub fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: None,
            message: "Forbidden".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(code) = self.code {
            response.extensions_mut().insert(CodeTag(code));
        }
        response
    }
}

/// Why [`Simulator::complete_possession`](super::Simulator::complete_possession) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulatorError {
    /// No session has this correlation ID.
    #[error("no session has this correlation ID")]
    UnknownSession,
    /// The session is older than 15 minutes.
    #[error("the session has expired")]
    SessionExpired,
    /// The session used `possessionType=none`; possession is the customer's job there.
    #[error("the session uses customer-supplied possession (possessionType=none)")]
    PossessionNotApplicable,
    /// Possession was already completed, or the status step already gave its final answer.
    #[error("possession was already completed or the session is finished")]
    AlreadyCompleted,
    /// The action does not exist for this possession type (OTP is a mobile fallback, Instant Link
    /// a desktop one).
    #[error("this possession action does not apply to possessionType={0}")]
    WrongAction(&'static str),
}
