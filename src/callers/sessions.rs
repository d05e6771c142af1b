//! Which caller started each session, and the session's final outcome once its status step gave
//! one.
//!
//! Prove knows a session's correlation ID but not which of the gateway's callers started it:
//! without this record any caller holding an ID could read another's outcome (phone number,
//! Prove ID). A record is written when a start succeeds and lives for Prove's session window, 15
//! minutes; a status or bind call is let through only for the record's owner. The record also
//! keeps the final status answer, because Prove answers a repeated status step with 403/8003: a
//! response lost on its way back would lose the outcome for good.
//!
//! Answers are opaque bytes here (the gRPC layer encodes them); this module knows neither gRPC
//! nor Prove.

use std::time::Duration;

use prost::Message;

use super::CallerName;
use super::session_settings::{SessionSettings, UnknownSessions};
use crate::store::{Key, Namespace, Store, StoreError, Ttl};

/// Prove's session window: a correlation ID expires 15 minutes after the start answered.
pub const SESSION_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Which product's flow a session is: a status answer kept for one is never replayed to the
/// other's status call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Unified Authentication (Unify, UnifyStatus, UnifyBind).
    Unify,
    /// Verified Users (Verify, VerifyStatus).
    Verify,
}

impl Flow {
    fn tag(self) -> u32 {
        match self {
            Self::Unify => 1,
            Self::Verify => 2,
        }
    }
}

/// What a caller may do with a correlation ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The caller started the session. `outcome` is the final status answer kept from an
    /// earlier status call of the same flow, to give again instead of asking Prove.
    Owner {
        /// The kept answer, encoded.
        outcome: Option<Vec<u8>>,
    },
    /// No record, and unknown sessions are forwarded: Prove decides.
    Unrecorded,
    /// Another caller's session, or one without a record while unknown sessions are refused:
    /// the caller must get exactly what an unknown correlation ID gets, and Prove sees nothing.
    Refused,
}

/// The stored record of one session (protobuf-encoded, so a field can be added later without
/// making the records of a running fleet unreadable).
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    /// The caller that started the session.
    #[prost(string, tag = "1")]
    owner: String,
    /// [`Flow::tag`] of the session.
    #[prost(uint32, tag = "2")]
    flow: u32,
    /// The final status answer, once there is one.
    #[prost(bytes = "vec", optional, tag = "3")]
    outcome: Option<Vec<u8>>,
}

/// The session records.
#[derive(Debug, Clone)]
pub struct Sessions {
    store: Store,
    unknown: UnknownSessions,
}

fn key(correlation_id: &str) -> Key {
    Key::new(Namespace::Session, correlation_id)
}

impl Sessions {
    /// Session records in `store`.
    pub fn new(store: Store, settings: &SessionSettings) -> Self {
        Self {
            store,
            unknown: settings.unknown,
        }
    }

    /// Records that `caller` started session `correlation_id` of `flow`, for the session window.
    /// An existing record is left alone: Prove issues each ID once, and the first owner keeps it.
    pub async fn started(
        &self,
        caller: &CallerName,
        flow: Flow,
        correlation_id: &str,
    ) -> Result<(), StoreError> {
        let record = Record {
            owner: caller.as_str().to_owned(),
            flow: flow.tag(),
            outcome: None,
        };
        let written = self
            .store
            .set_if_absent(
                &key(correlation_id),
                &record.encode_to_vec(),
                SESSION_WINDOW,
            )
            .await?;
        if !written {
            tracing::warn!(
                correlation_id,
                "a session was started with a correlation ID that already has a record; the first owner keeps it"
            );
        }
        Ok(())
    }

    /// What `caller` may do with `correlation_id` in a call of `flow`. A store failure is an
    /// error, never a pass: the ownership check is not skipped because it could not be made.
    pub async fn access(
        &self,
        caller: &CallerName,
        flow: Flow,
        correlation_id: &str,
    ) -> Result<Access, StoreError> {
        let Some(bytes) = self.store.get(&key(correlation_id)).await? else {
            return Ok(match self.unknown {
                UnknownSessions::Refuse => Access::Refused,
                UnknownSessions::Forward => Access::Unrecorded,
            });
        };
        let Ok(record) = Record::decode(bytes.as_slice()) else {
            // Not a record this gateway wrote: nobody can be shown to own it.
            tracing::warn!(
                correlation_id,
                "a session record could not be read; refused"
            );
            return Ok(Access::Refused);
        };
        if record.owner != caller.as_str() {
            return Ok(Access::Refused);
        }
        let outcome = record.outcome.filter(|_| record.flow == flow.tag());
        Ok(Access::Owner { outcome })
    }

    /// Keeps `outcome`, the final status answer of `caller`'s session `correlation_id` of
    /// `flow`, with its record (for the rest of the record's life). Nothing is kept for a
    /// session without a record, of another caller or flow, or that already has an outcome.
    pub async fn keep_outcome(
        &self,
        caller: &CallerName,
        flow: Flow,
        correlation_id: &str,
        outcome: &[u8],
    ) -> Result<(), StoreError> {
        let key = key(correlation_id);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(());
        };
        let Ok(mut record) = Record::decode(bytes.as_slice()) else {
            return Ok(());
        };
        if record.owner != caller.as_str() || record.flow != flow.tag() || record.outcome.is_some()
        {
            return Ok(());
        }
        record.outcome = Some(outcome.to_vec());
        // Replaced only if nobody changed the record since it was read: of two status answers
        // racing here, the first kept stays.
        self.store
            .replace(&key, &bytes, &record.encode_to_vec(), Ttl::Keep)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn caller(name: &str) -> CallerName {
        CallerName(Arc::from(name))
    }

    fn sessions(unknown: UnknownSessions) -> Sessions {
        Sessions::new(Store::in_memory(100), &SessionSettings { unknown })
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_caller_that_started_a_session_may_use_it() {
        let sessions = sessions(UnknownSessions::Forward);
        sessions
            .started(&caller("a"), Flow::Unify, ID)
            .await
            .unwrap();
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Owner { outcome: None }
        );
        // Refused, not forwarded, although unknown sessions are forwarded: a recorded session
        // of another caller is never unknown.
        assert_eq!(
            sessions
                .access(&caller("b"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
        assert_eq!(
            sessions
                .access(&CallerName::anonymous(), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_correlation_id_without_a_record_follows_the_policy() {
        let refuse = sessions(UnknownSessions::Refuse);
        assert_eq!(
            refuse.access(&caller("a"), Flow::Unify, ID).await.unwrap(),
            Access::Refused
        );
        let forward = sessions(UnknownSessions::Forward);
        assert_eq!(
            forward
                .access(&caller("a"), Flow::Verify, ID)
                .await
                .unwrap(),
            Access::Unrecorded
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_lives_for_the_session_window_only() {
        let sessions = sessions(UnknownSessions::Refuse);
        sessions
            .started(&caller("a"), Flow::Unify, ID)
            .await
            .unwrap();
        tokio::time::advance(SESSION_WINDOW - Duration::from_millis(1)).await;
        assert!(matches!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Owner { .. }
        ));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_owner_keeps_a_correlation_id() {
        let sessions = sessions(UnknownSessions::Refuse);
        sessions
            .started(&caller("a"), Flow::Unify, ID)
            .await
            .unwrap();
        sessions
            .started(&caller("b"), Flow::Unify, ID)
            .await
            .unwrap();
        assert_eq!(
            sessions
                .access(&caller("b"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_owners_outcome_is_kept_once_for_its_own_flow() {
        let sessions = sessions(UnknownSessions::Refuse);
        sessions
            .started(&caller("a"), Flow::Unify, ID)
            .await
            .unwrap();
        // Another caller's or another flow's answer is not kept.
        sessions
            .keep_outcome(&caller("b"), Flow::Unify, ID, b"theirs")
            .await
            .unwrap();
        sessions
            .keep_outcome(&caller("a"), Flow::Verify, ID, b"verify")
            .await
            .unwrap();
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Owner { outcome: None }
        );
        sessions
            .keep_outcome(&caller("a"), Flow::Unify, ID, b"first")
            .await
            .unwrap();
        sessions
            .keep_outcome(&caller("a"), Flow::Unify, ID, b"second")
            .await
            .unwrap();
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Owner {
                outcome: Some(b"first".to_vec())
            }
        );
        // Never replayed to the other flow's status call, nor shown to another caller.
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Verify, ID)
                .await
                .unwrap(),
            Access::Owner { outcome: None }
        );
        assert_eq!(
            sessions
                .access(&caller("b"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keeping_an_outcome_does_not_lengthen_the_session() {
        let sessions = sessions(UnknownSessions::Refuse);
        sessions
            .started(&caller("a"), Flow::Unify, ID)
            .await
            .unwrap();
        tokio::time::advance(SESSION_WINDOW / 2).await;
        sessions
            .keep_outcome(&caller("a"), Flow::Unify, ID, b"answer")
            .await
            .unwrap();
        tokio::time::advance(SESSION_WINDOW / 2).await;
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_for_a_session_without_a_record_is_not_kept() {
        let sessions = sessions(UnknownSessions::Forward);
        sessions
            .keep_outcome(&caller("a"), Flow::Unify, ID, b"answer")
            .await
            .unwrap();
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Unrecorded
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_the_gateway_did_not_write_is_refused() {
        let store = Store::in_memory(10);
        store
            .set(&key(ID), b"\xff\xff not protobuf", SESSION_WINDOW)
            .await
            .unwrap();
        let sessions = Sessions::new(
            store,
            &SessionSettings {
                unknown: UnknownSessions::Forward,
            },
        );
        assert_eq!(
            sessions
                .access(&caller("a"), Flow::Unify, ID)
                .await
                .unwrap(),
            Access::Refused
        );
    }
}
