//! Everything that can go wrong on the way to Prove and back, as data.
//!
//! Callers branch on variants, never on message text. `grpc::status` is the one place that turns
//! these into gRPC statuses.

use std::time::Duration;

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
    /// The gateway's own rate limiter could not admit the call before the deadline or the
    /// configured maximum wait.
    #[error("rate limiter cannot admit the call within {limit}")]
    RateLimited {
        /// When a retry could succeed.
        retry_after: Duration,
        /// Which of the two limits the wait ran into.
        limit: WaitLimit,
    },
    /// Too many calls are already waiting for the rate limiter.
    #[error("too many calls waiting for the rate limiter")]
    Overloaded {
        /// A hint for when to retry.
        retry_after: Duration,
    },
    /// The caller's deadline ran out, or an attempt timed out.
    #[error("Prove did not answer in time{}", if *.sent { " (request sent; outcome unknown)" } else { "" })]
    Timeout {
        /// Whether the request may have reached Prove.
        sent: bool,
    },
    /// Prove could not be reached: connection refused or reset before an answer.
    #[error("Prove is unreachable: {0}")]
    Unavailable(String),
    /// The connection failed after the request was sent: Prove may have acted on it, so the
    /// outcome is unknown and the request is not retried blindly.
    #[error("connection to Prove lost after sending: {0}")]
    ConnectionLost(String),
    /// Prove's answer could not be understood.
    #[error("Prove's answer could not be understood: {0}")]
    BadResponse(String),
    /// The gateway could not build the request (a URL that cannot be joined, a body that cannot
    /// be encoded): its own fault, found before anything was sent. Repeating it gives the same
    /// result, so it is never retried.
    #[error("the gateway could not build the request to Prove: {0}")]
    Request(String),
}

/// The limit a wait for the gateway's rate limiter ran into: the nearer of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitLimit {
    /// The caller's deadline.
    #[error("its deadline")]
    Deadline,
    /// The configured maximum wait (`PROVE_RATE_LIMIT_MAX_WAIT`).
    #[error("the maximum wait")]
    MaxWait,
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
