//! prove-gateway: Prove's Unified Authentication and Verified Users APIs behind one gRPC contract.
//!
//! # Layout
//!
//! A request travels down this list and its answer back up:
//!
//! - [`config`]: the one place configuration lives: flags, environment variables, secret files.
//! - [`server`]: the tonic server: health, reflection, both services, graceful shutdown.
//! - [`grpc`]: the gRPC services. Validation, conversion between protobuf and Prove's JSON, and
//!   the single mapping from Prove's errors to gRPC statuses (`grpc::status`).
//! - [`prove`]: the HTTP client for Prove: OAuth tokens, JSON models, the typed error.
//! - [`resilience`]: the outbound path as tower layers: rate limit, retry, per-attempt timeout.
//! - [`simulator`]: an embedded Prove sandbox over real HTTP, the default upstream.
//! - [`telemetry`]: logs, traces and metrics.

pub mod config;
pub mod grpc;
pub mod prove;
pub mod resilience;
pub mod server;
pub mod simulator;
pub mod telemetry;
