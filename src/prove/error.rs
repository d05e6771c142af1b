//! Everything that can go wrong on the way to Prove and back, as data.
//!
//! Callers branch on variants, never on message text. `grpc::status` is the one place that turns
//! these into gRPC statuses.

use std::time::Duration;

use crate::resilience;
/// Kept at its old path: tests and callers name it as `prove::error::WaitLimit`.
pub use crate::resilience::WaitLimit;

/// A failed Prove call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProveError {
    /// Prove answered with an error status and (usually) its `{code, message}` body.
    #[error("Prove answered HTTP {status}{}: {message}", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Api {
        /// HTTP status of the answer.
        status: u16,
        /// Prove's `code`, when the body had one.
        code: Option<i64>,
        /// Prove's `message`, or a short description when the body had none.
        message: String,
        /// Prove's `Retry-After`, on 429 and 503 answers.
        retry_after: Option<Duration>,
    },
    /// No answer came back: the outbound path (rate limiter, timeouts, the connection) failed,
    /// or the request could not be built. Its message is the transport error's own.
    #[error(transparent)]
    Transport(#[from] resilience::Error),
    /// Prove's answer could not be understood.
    #[error("Prove's answer could not be understood: {0}")]
    BadResponse(String),
}

impl ProveError {
    /// Prove's error code, when Prove sent one.
    pub fn prove_code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// The HTTP status Prove answered with, when it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
