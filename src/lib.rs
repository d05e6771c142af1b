//! prove-gateway: Prove's Unified Authentication and Verified Users APIs behind one gRPC contract.
//!
//! # Layout
//!
//! The layers run one way: each module uses only the ones listed below it, and a request travels
//! down the list and its answer back up (`tests/architecture.rs` enforces the order).
//!
//! - `main` (the binary): parses the command line and starts the server or the simulator.
//! - [`server`]: listener, health, reflection, graceful shutdown; starts the embedded simulator.
//! - [`grpc`]: both services: validation, protobuf ↔ Prove JSON, the one mapping to gRPC status.
//! - [`prove`]: the HTTP client for Prove: OAuth tokens per product, JSON models, `ProveError`.
//! - [`resilience`]: outbound transport as tower layers: rate limit, retry, per-attempt timeout.
//! - [`store`]: a key-value store with expiry shared by the layers above: in process, or Redis.
//! - [`telemetry`]: logs, traces and metrics; plain labels, no domain type.
//! - [`callers`] (beside `prove`, used by `grpc`): who may call, and what each caller owns.
//!
//! Beside the layers:
//!
//! - [`config`]: the root: builds each module's settings from flags and env; none imports it.
//! - [`simulator`]: a Prove sandbox over HTTP, the default upstream; shares nothing with the rest.

pub mod callers;
pub mod config;
pub mod grpc;
pub mod prove;
pub mod resilience;
pub mod server;
pub mod simulator;
pub mod store;
pub mod telemetry;
