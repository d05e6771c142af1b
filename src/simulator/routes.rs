//! Prove's HTTP surface: the axum router for `/token` and the `/v3` Unify and Verify endpoints,
//! the middleware every request passes (recording; for `/v3` the token, rate limit and faults),
//! and the `/token` handler. The `/v3` handlers are in [`v3`](super::v3).
//!
//! Routing answers, where Prove's docs only name causes: an unknown path is 404, a wrong method
//! on a known path is 403 (Prove lists "incorrect HTTP method" as a cause of 403), and
//! `/v3/token` is 403 (its documented cause: appending /v3 to the token URL). These carry no
//! `code`, only a `message`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Form, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, post};
use axum::{Json, extract::rejection::FormRejection};

use super::conn::ConnKill;
use super::error::{ApiError, CodeTag};
use super::faults::FaultKind;
use super::models::TokenResponse;
use super::records::{RecordId, RecordedRequest};
use super::v3::{unify, unify_bind, unify_status, verify, verify_status};
use super::{Product, Shared};

type AppState = Arc<Shared>;

/// Bodies are buffered for the records before routing; anything near this is far beyond Prove's
/// 4 KB limit and is refused as such.
const MAX_BUFFERED: usize = 64 * 1024;

/// Who is calling: the client behind the bearer token, set by [`v3_gate`].
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub client_id: String,
    pub product: Product,
}

/// The fault a request got, a response extension read by [`record`].
#[derive(Debug, Clone, Copy)]
struct FaultTag(FaultKind);

/// The whole simulated API, control endpoints included.
pub(crate) fn router(state: AppState) -> Router {
    let gate = middleware::from_fn_with_state(Arc::clone(&state), v3_gate);
    let v3 = |route: MethodRouter<AppState>| route.route_layer(gate.clone()).fallback(forbidden);
    Router::new()
        .route("/token", post(token).fallback(forbidden))
        .route("/v3/token", any(forbidden))
        .route("/v3/unify", v3(post(unify)))
        .route("/v3/unify-status", v3(post(unify_status)))
        .route("/v3/unify-bind", v3(post(unify_bind)))
        .route("/v3/verify", v3(post(verify)))
        .route("/v3/verify-status", v3(post(verify_status)))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), record))
        .merge(super::control::router())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn forbidden() -> ApiError {
    ApiError::forbidden()
}

/// Records every request when its head arrives, then completes the record with the body once
/// it has arrived and with the answer once it is sent. A request whose caller hangs up first
/// (this future is dropped) keeps its record, unanswered.
async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let arrived = RecordedRequest::arrived(
        parts.method.as_str(),
        &path,
        &parts.headers,
        state.clock.now(),
    );
    let id = state.records.push(arrived);
    let response = match axum::body::to_bytes(body, MAX_BUFFERED).await {
        Err(_) => ApiError::malformed("request body is larger than 4 KB").into_response(),
        Ok(bytes) => {
            // /token's form holds the client secret; it is never kept.
            if path != "/token"
                && let Ok(json) = serde_json::from_slice(&bytes)
            {
                state.records.update(id, |r| r.body = Some(json));
            }
            parts.extensions.insert(id);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    let fault = response.extensions().get::<FaultTag>().map(|t| t.0);
    let code = response.extensions().get::<CodeTag>().map(|t| t.0);
    let status = (fault != Some(FaultKind::Drop)).then(|| response.status().as_u16());
    let answered_at = state.clock.now();
    state.records.update(id, |r| {
        r.fault = fault;
        r.status = status;
        r.code = code;
        r.answered_at = Some(answered_at);
        r.answered = Some(tokio::time::Instant::now());
    });
    response
}

/// Notes the caller's client ID in the request's record as soon as it is known.
fn note_client(state: &Shared, id: Option<&RecordId>, client_id: &str) {
    if let Some(&id) = id {
        state
            .records
            .update(id, |r| r.client_id = Some(client_id.to_owned()));
    }
}

/// What every `/v3` request passes before its handler: bearer token (401 / 8002), rate limit
/// (429 / 8018), latency, then the drawn fault, if any, instead of the handler.
async fn v3_gate(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = state.clock.now();
    let caller = match state.tokens.client_for(request.headers(), now) {
        Ok(client_id) => match state.product_of(&client_id) {
            Some(product) => Caller { client_id, product },
            None => return ApiError::unauthorized("invalid access token").into_response(),
        },
        Err(error) => return error.into_response(),
    };
    note_client(&state, request.extensions().get(), &caller.client_id);
    let decision = state.limiter.check(&caller.client_id, now);
    let latency = state.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = if decision.is_some_and(|d| !d.allowed) {
        ApiError::rate_limited().into_response()
    } else {
        match state.faults.draw() {
            None => {
                request.extensions_mut().insert(caller.clone());
                next.run(request).await
            }
            Some(kind) => {
                let mut response = match kind {
                    FaultKind::Drop => {
                        conn.kill();
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                    FaultKind::Error => ApiError::internal().into_response(),
                    FaultKind::Malformed => malformed_answer(),
                };
                response.extensions_mut().insert(FaultTag(kind));
                response
            }
        }
    };
    if let Some(decision) = decision {
        decision.write_headers(response.headers_mut());
    }
    response
}

/// A 200 that claims JSON but is cut off mid-object, like a truncated upstream answer.
fn malformed_answer() -> Response {
    let mut response = r#"{"success":"pending","correlationId":"8d1c"#.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /token`: OAuth client credentials, form-encoded.
async fn token(
    State(state): State<AppState>,
    record: Option<Extension<RecordId>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return ApiError::malformed("request body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let client_id = form.get("client_id").cloned();
    if let Some(client_id) = &client_id {
        note_client(&state, record.as_ref().map(|r| &r.0), client_id);
    }
    let decision = client_id
        .as_deref()
        .and_then(|id| state.limiter.check(id, state.clock.now()));
    let mut response = if decision.is_some_and(|d| !d.allowed) {
        ApiError::rate_limited().into_response()
    } else {
        match issue_token(&state, &form) {
            Ok(answer) => Json(answer).into_response(),
            Err(error) => error.into_response(),
        }
    };
    if let Some(decision) = decision {
        decision.write_headers(response.headers_mut());
    }
    response
}

fn issue_token(state: &Shared, form: &HashMap<String, String>) -> Result<TokenResponse, ApiError> {
    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    };
    let client_id = field("client_id")?;
    let client_secret = field("client_secret")?;
    let grant_type = field("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(ApiError::unauthorized("unsupported grant_type"));
    }
    let known = state
        .credentials
        .lock()
        .iter()
        .any(|c| &c.client_id == client_id && &c.client_secret == client_secret);
    if !known {
        return Err(ApiError::unauthorized("invalid client credentials"));
    }
    let access_token = state
        .tokens
        .issue(client_id, state.clock.now(), state.token_ttl);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.token_ttl.as_secs(),
    })
}
