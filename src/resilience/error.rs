//! What can go wrong on the outbound path before an answer comes back, as data.
//!
//! These are failures of the transport and of the gateway's own limits: any HTTP answer, even
//! an error status, is a success at this layer. `prove::ProveError` wraps this type, and
//! `grpc::status` is the one place that turns it into a gRPC status.

use std::time::Duration;

/// A failed attempt (or a call refused before any attempt) on the outbound path.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
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
        /// Whether the request may have reached the upstream.
        sent: bool,
    },
    /// The upstream could not be reached: connection refused or reset before an answer. Nothing
    /// was acted on, so this alone is safe to retry.
    #[error("Prove is unreachable: {0}")]
    Unreachable(String),
    /// The connection failed after the request was sent: the upstream may have acted on it, so
    /// the outcome is unknown and the request is not retried blindly.
    #[error("connection to Prove lost after sending: {0}")]
    ConnectionLost(String),
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

impl Error {
    /// The low-cardinality `reason` a refusal by the rate limiter is counted under (one of
    /// telemetry's pre-registered rejection reasons). Only the limiter's two refusals are
    /// counted; anything else reads as a missed deadline.
    pub fn rejection_reason(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "queue_full",
            Self::RateLimited {
                limit: WaitLimit::MaxWait,
                ..
            } => "max_wait",
            _ => "deadline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::RATE_LIMIT_REJECTION_REASONS;

    #[test]
    fn a_refusal_for_the_maximum_wait_is_counted_as_max_wait() {
        let refused = |limit| Error::RateLimited {
            retry_after: Duration::from_secs(1),
            limit,
        };
        let shed = Error::Overloaded {
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(refused(WaitLimit::MaxWait).rejection_reason(), "max_wait");
        assert_eq!(refused(WaitLimit::Deadline).rejection_reason(), "deadline");
        assert_eq!(shed.rejection_reason(), "queue_full");
        for error in [
            refused(WaitLimit::MaxWait),
            refused(WaitLimit::Deadline),
            shed,
        ] {
            assert!(
                RATE_LIMIT_REJECTION_REASONS.contains(&error.rejection_reason()),
                "{error:?} is counted under a reason that is not pre-registered"
            );
        }
    }
}
