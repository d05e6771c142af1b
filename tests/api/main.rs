//! Black-box tests: a real tonic client over a real socket against the gateway, which calls the
//! simulator over real HTTP. One binary for all of them (faster to link).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod connections;
mod errors;
mod health;
mod helpers;
mod idempotency;
mod limiter;
mod metrics_endpoint;
mod mtls_callers;
mod personal_data;
mod profile;
mod protocol_errors;
mod raw;
mod readiness;
mod resilience;
mod rotation;
mod sessions;
mod shared_limit;
mod shutdown;
mod simulated;
mod store;
mod tls;
mod tokens;
mod unify;
mod validation;
mod verify;
