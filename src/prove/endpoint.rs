//! Prove's API surface: the endpoints the gateway calls, and their paths.

/// The Prove endpoints the gateway calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /token` (no `/v3` prefix).
    Token,
    /// `POST /v3/unify`.
    Unify,
    /// `POST /v3/unify-status`.
    UnifyStatus,
    /// `POST /v3/unify-bind`.
    UnifyBind,
    /// `POST /v3/verify`.
    Verify,
    /// `POST /v3/verify-status`.
    VerifyStatus,
}

impl Endpoint {
    /// Every endpoint, for registering their metric series before any traffic.
    pub const ALL: [Endpoint; 6] = [
        Self::Token,
        Self::Unify,
        Self::UnifyStatus,
        Self::UnifyBind,
        Self::Verify,
        Self::VerifyStatus,
    ];

    /// The path on Prove's host; also the low-cardinality label of metrics and spans, which is
    /// all the outbound path is told about the endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Self::Token => "/token",
            Self::Unify => "/v3/unify",
            Self::UnifyStatus => "/v3/unify-status",
            Self::UnifyBind => "/v3/unify-bind",
            Self::Verify => "/v3/verify",
            Self::VerifyStatus => "/v3/verify-status",
        }
    }
}
