//! The HTTP side: Prove's JSON models, OAuth tokens, the client and its typed error.
//!
//! Nothing here knows gRPC; `crate::grpc` converts to and from these types.

pub mod auth;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod models;
pub mod secret;
pub mod settings;

pub use client::{CallContext, MAX_BODY_BYTES, Product, ProveClient};
pub use endpoint::Endpoint;
pub use error::ProveError;
pub use secret::{ClientSecret, SecretFile};
pub use settings::{Credentials, Upstream};
