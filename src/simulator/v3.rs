//! The `/v3` Unify and Verified Users handlers: validate the request (see
//! [`validate`](super::validate)), find the sandbox user, then start a session or run the next
//! step of one (see [`sessions`](super::sessions)). Token, rate limit and faults were already
//! handled by the gate in [`routes`](super::routes); the caller arrives as [`Caller`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;

use super::auth::fake_jwt;
use super::error::ApiError;
use super::models::{
    StatusRequest, UnifyBindRequest, UnifyRequest, UnifyResponse, UnifyStatusResponse,
    VerifyRequest, VerifyResponse, VerifyStatusResponse,
};
use super::routes::Caller;
use super::sandbox::{self, Behaviour};
use super::sessions::{NewSession, SESSION_TTL, verify_outcome};
use super::validate::{self, PossessionType};
use super::{Product, Shared};

type AppState = Arc<Shared>;

/// `POST /v3/unify`: starts a Unify session.
pub(crate) async fn unify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UnifyResponse>, ApiError> {
    let req: UnifyRequest = validate::json_body(&headers, &body)?;
    let possession = validate::possession_type(req.possession_type.as_deref())?;
    validate::final_target_url(possession, req.final_target_url.as_deref())?;
    validate::sms_message(req.sms_message.as_deref())?;
    validate::charset("emailAddress", req.email_address.as_deref(), "@.+")?;
    validate::charset("ipAddress", req.ip_address.as_deref(), ".:")?;
    // phoneNumber wins when both are sent; proveId (from an earlier success) stands in for it.
    let (user, phone_number) = match (req.phone_number.as_deref(), req.prove_id.as_deref()) {
        (Some(raw), _) => {
            let raw = validate::required("phoneNumber", Some(raw))?;
            let e164 = sandbox::normalise("phoneNumber", raw)?;
            (sandbox::find(&e164), raw.to_owned())
        }
        (None, Some(prove_id)) => {
            let prove_id = validate::required("proveId", Some(prove_id))?;
            let user =
                sandbox::find_by_prove_id(prove_id).ok_or_else(ApiError::identity_not_found)?;
            (Some(user), user.e164.to_owned())
        }
        (None, None) => return Err(ApiError::missing("phoneNumber")),
    };
    let user = sandbox::user_for(user, caller.product)?;
    if caller.product != Product::Unify {
        return Err(ApiError::access_denied());
    }
    if user.behaviour == Behaviour::DeviceRevoked {
        return Err(ApiError::device_revoked());
    }
    let now = state.clock.now();
    let correlation_id = state.sessions.start(
        NewSession {
            product: Product::Unify,
            client_id: caller.client_id,
            user,
            possession_type: possession,
            phone_number,
            client_request_id: req.client_request_id,
            client_human_id: req.client_human_id,
            allow_otp_retry: req.allow_otp_retry.unwrap_or(false),
        },
        now,
    );
    Ok(Json(UnifyResponse {
        success: "pending",
        auth_token: Some(fake_jwt(&correlation_id, now + SESSION_TTL)),
        correlation_id,
    }))
}

/// `POST /v3/unify-status`.
pub(crate) async fn unify_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UnifyStatusResponse>, ApiError> {
    let req: StatusRequest = validate::json_body(&headers, &body)?;
    let id = validate::correlation_id(req.correlation_id.as_deref())?;
    let answer = state
        .sessions
        .step(&caller.client_id, id, state.clock.now(), |session| {
            session.unify_status(req.client_request_id.clone())
        })?;
    Ok(Json(answer))
}

/// `POST /v3/unify-bind`.
pub(crate) async fn unify_bind(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UnifyStatusResponse>, ApiError> {
    let req: UnifyBindRequest = validate::json_body(&headers, &body)?;
    let id = validate::correlation_id(req.correlation_id.as_deref())?;
    let phone = validate::required("phoneNumber", req.phone_number.as_deref())?;
    let e164 = sandbox::normalise("phoneNumber", phone)?;
    let answer = state
        .sessions
        .step(&caller.client_id, id, state.clock.now(), |session| {
            session.unify_bind(&e164, phone, req.client_request_id.clone())
        })?;
    Ok(Json(answer))
}

/// `POST /v3/verify`: starts a Verified Users session; with possessionType=none the answer is
/// already final.
pub(crate) async fn verify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<VerifyResponse>, ApiError> {
    let req: VerifyRequest = validate::json_body(&headers, &body)?;
    let possession = validate::possession_type(req.possession_type.as_deref())?;
    let phone = validate::required("phoneNumber", req.phone_number.as_deref())?;
    validate::required("firstName", req.first_name.as_deref())?;
    validate::required("lastName", req.last_name.as_deref())?;
    validate::final_target_url(possession, req.final_target_url.as_deref())?;
    validate::sms_message(req.sms_message.as_deref())?;
    validate::charset("emailAddress", req.email_address.as_deref(), "@.+")?;
    let e164 = sandbox::normalise("phoneNumber", phone)?;
    let user = sandbox::user_for(sandbox::find(&e164), caller.product)?;
    if caller.product != Product::Verify {
        return Err(ApiError::access_denied());
    }
    let now = state.clock.now();
    let correlation_id = state.sessions.start(
        NewSession {
            product: Product::Verify,
            client_id: caller.client_id,
            user,
            possession_type: possession,
            phone_number: phone.to_owned(),
            client_request_id: req.client_request_id,
            client_human_id: None,
            allow_otp_retry: req.allow_otp_retry.unwrap_or(false),
        },
        now,
    );
    if possession == PossessionType::None {
        let outcome = verify_outcome(user, None);
        return Ok(Json(VerifyResponse {
            success: outcome.success,
            possession_result: outcome.possession_result,
            verify_result: outcome.verify_result,
            correlation_id,
            auth_token: None,
            evaluation: outcome.evaluation,
        }));
    }
    Ok(Json(VerifyResponse {
        success: "pending",
        possession_result: "pending",
        verify_result: "pending",
        auth_token: Some(fake_jwt(&correlation_id, now + SESSION_TTL)),
        correlation_id,
        evaluation: None,
    }))
}

/// `POST /v3/verify-status`.
pub(crate) async fn verify_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<VerifyStatusResponse>, ApiError> {
    let req: StatusRequest = validate::json_body(&headers, &body)?;
    let id = validate::correlation_id(req.correlation_id.as_deref())?;
    let answer = state
        .sessions
        .step(&caller.client_id, id, state.clock.now(), |session| {
            session.verify_status()
        })?;
    Ok(Json(answer))
}
