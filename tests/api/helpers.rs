//! The shared fixture (`tests/support`) under the names the API tests use, and small assertion
//! helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use prove_gateway::grpc::pb::{PossessionType, UnifyRequest};

// Included here rather than in `main.rs`, so the fixture joins this target through this file.
#[path = "../support/mod.rs"]
pub mod support;

pub use support::app::{
    TestApp, connect, credentials, spawn_app, spawn_app_configured, spawn_app_with, spawn_gateway,
};
pub use support::redis::Redis;

/// A request carrying a `grpc-timeout`.
pub fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The ErrorInfo reason and domain of a status, and its metadata.
pub fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .expect("every error carries an ErrorInfo")
}

/// The `prove.gateway.v1.ProveError` detail of a status, if any.
pub fn prove_error(status: &tonic::Status) -> Option<prove_gateway::grpc::pb::ProveError> {
    use prost::Message;
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url == "type.googleapis.com/prove.gateway.v1.ProveError")
        .and_then(|any| prove_gateway::grpc::pb::ProveError::decode(any.value.as_slice()).ok())
}

/// A Unify request for `phone` with `possession`.
pub fn unify_request(possession: PossessionType, phone: &str) -> UnifyRequest {
    UnifyRequest {
        possession_type: possession as i32,
        phone_number: phone.into(),
        ..Default::default()
    }
}

/// The everyday Unify request: mobile possession for the full-flow sandbox user.
pub fn mobile_unify() -> UnifyRequest {
    unify_request(PossessionType::Mobile, "2001004014")
}
