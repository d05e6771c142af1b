//! The simulator-only endpoints under `/_simulator/`, for tests in other languages and for people
//! driving the standalone simulator with curl. They need no token, are never rate limited,
//! faulted or recorded.
//!
//! | endpoint | does |
//! |---|---|
//! | `POST /_simulator/possession` | `{"correlationId","action":"authenticate"\|"otp"\|"instant_link","otp"}`: the end user's device completes possession; 204, or 404 unknown / 410 expired / 409 not applicable / 400 bad body |
//! | `GET`, `PUT /_simulator/faults` | `{"errorRate","latencyMs","dropRate","malformedRate","seed"}` (absent = 0 / none) |
//! | `GET`, `PUT /_simulator/rate-limit` | `{"rps": 25}`; 0 disables |
//! | `GET /_simulator/records` | `{"total", "requests": [{method, path, status, code, fault, atMs, answeredAtMs, inFlight, clientId, traceparent, ...}]}` |
//! | `DELETE /_simulator/records` | clears the log; 204 |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::error::SimulatorError;
use super::faults::{Faults, FaultsJson};
use super::records::RecordsJson;
use super::sessions::PossessionAction;

type AppState = Arc<Shared>;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/_simulator/possession", post(possession))
        .route("/_simulator/faults", get(get_faults).put(put_faults))
        .route(
            "/_simulator/rate-limit",
            get(get_rate_limit).put(put_rate_limit),
        )
        .route(
            "/_simulator/records",
            get(get_records).delete(delete_records),
        )
}

/// `{"message": …}` with a status; control errors are not Prove errors, so no `code`.
fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

fn bad_body(rejection: &JsonRejection) -> Response {
    problem(StatusCode::BAD_REQUEST, rejection.body_text())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PossessionJson {
    correlation_id: String,
    action: String,
    #[serde(default)]
    otp: Option<String>,
}

async fn possession(
    State(state): State<AppState>,
    body: Result<Json<PossessionJson>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return bad_body(&rejection),
    };
    let action = match (body.action.as_str(), body.otp) {
        ("authenticate", _) => PossessionAction::Authenticate,
        ("instant_link", _) => PossessionAction::InstantLink,
        ("otp", Some(otp)) => PossessionAction::Otp(otp),
        ("otp", None) => return problem(StatusCode::BAD_REQUEST, "action otp needs \"otp\""),
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "action must be authenticate, otp or instant_link",
            );
        }
    };
    match state
        .sessions
        .complete_possession(&body.correlation_id, &action, state.clock.now())
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            let status = match error {
                SimulatorError::UnknownSession => StatusCode::NOT_FOUND,
                SimulatorError::SessionExpired => StatusCode::GONE,
                _ => StatusCode::CONFLICT,
            };
            problem(status, error.to_string())
        }
    }
}

async fn get_faults(State(state): State<AppState>) -> Json<FaultsJson> {
    Json(FaultsJson::from(&state.faults.get()))
}

async fn put_faults(
    State(state): State<AppState>,
    body: Result<Json<FaultsJson>, JsonRejection>,
) -> Response {
    let faults = match body {
        Ok(Json(body)) => Faults::from(body),
        Err(rejection) => return bad_body(&rejection),
    };
    if let Err(message) = faults.validate() {
        return problem(StatusCode::BAD_REQUEST, message);
    }
    let answer = FaultsJson::from(&faults);
    state.faults.set(faults);
    Json(answer).into_response()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitJson {
    rps: u32,
}

async fn get_rate_limit(State(state): State<AppState>) -> Json<RateLimitJson> {
    Json(RateLimitJson {
        rps: state.limiter.rps(),
    })
}

async fn put_rate_limit(
    State(state): State<AppState>,
    body: Result<Json<RateLimitJson>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(body)) => {
            state.limiter.set_rps(body.rps);
            Json(body).into_response()
        }
        Err(rejection) => bad_body(&rejection),
    }
}

async fn get_records(State(state): State<AppState>) -> Json<RecordsJson> {
    Json(RecordsJson::from(&state.records.snapshot()))
}

async fn delete_records(State(state): State<AppState>) -> StatusCode {
    state.records.clear();
    StatusCode::NO_CONTENT
}
