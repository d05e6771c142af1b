//! The one test fixture: a gateway in front of a simulator the test controls, and a throwaway
//! redis-server. Used by `tests/api`, `tests/observability` and `benches/gateway.rs`.
//!
//! A plain module that each target includes with `#[path]` (not a dev-only crate): a crate of
//! its own would need a workspace or a path dev-dependency that depends back on this package,
//! and the simulator may yet become a workspace member of its own; a module needs neither. The
//! price is that each target compiles it and uses only part of it, hence the `dead_code` allow.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod callers;
pub mod certs;
pub mod redis;
