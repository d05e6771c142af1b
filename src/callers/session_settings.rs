//! The settings of sessions and idempotency keys: what happens to a correlation ID the gateway
//! has no record of.
//!
//! (A file of its own rather than `callers/settings.rs`, which holds the settings of the callers
//! file and its identities.)

/// What the gateway does with a status or bind call for a correlation ID it has no record of
/// (`PROVE_GATEWAY_UNKNOWN_SESSIONS`): one it never saw started, one whose record expired, or
/// one started before a restart when records live in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownSessions {
    /// Answer as Prove answers an unknown correlation ID, without asking Prove: no caller can
    /// reach a session it did not start, at the price of sessions forgotten by a restart.
    Refuse,
    /// Send it to Prove, which knows the session but not the caller.
    Forward,
}

impl UnknownSessions {
    /// The default: `refuse` whenever callers are authenticated (a client certificate or a
    /// callers file), since then sessions have owners to protect; `forward` when the gateway
    /// runs open and every caller is the same anonymous one anyway.
    pub fn default_for(callers_authenticated: bool) -> Self {
        if callers_authenticated {
            Self::Refuse
        } else {
            Self::Forward
        }
    }
}

/// The settings of the session records (config builds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// What a correlation ID without a record gets.
    pub unknown: UnknownSessions,
}

impl Default for SessionSettings {
    /// The settings of a gateway that runs open.
    fn default() -> Self {
        Self {
            unknown: UnknownSessions::default_for(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sessions_are_refused_exactly_when_callers_are_authenticated() {
        assert_eq!(UnknownSessions::default_for(true), UnknownSessions::Refuse);
        assert_eq!(
            UnknownSessions::default_for(false),
            UnknownSessions::Forward
        );
        assert_eq!(SessionSettings::default().unknown, UnknownSessions::Forward);
    }
}
