//! Sessions and idempotency keys around the handlers' Prove calls: the glue between gRPC
//! messages and [`crate::callers`]' records.
//!
//! - A start (Unify, Verify) runs once per `client_request_id` ([`Idempotency`]), and its
//!   session is recorded as the caller's.
//! - A status or bind call is let through to Prove only for the session's owner; anyone else
//!   gets what Prove answers for an unknown correlation ID, and Prove sees nothing. The owner's
//!   repeated status call gets the final answer kept from the first, since Prove would refuse it.
//!
//! Answers are stored as the encoded protobuf responses the caller gets, so a replay is the
//! same bytes as the first answer.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use prost::Message;
use tonic::{Request, Status};

use super::status;
use crate::callers::idempotency::Call;
use crate::callers::{Access, CallerName, Flow, Idempotency, SessionSettings, Sessions};
use crate::prove::ProveError;
use crate::store::{Store, StoreError};

/// Prove's message for an unknown, expired or foreign correlation ID (prove-api.md, "Replay").
/// A refusal uses the message Prove last sent with code 8008 instead, once there is one, so
/// that it reads like Prove's answer even if Prove's words change.
const PROVE_UNKNOWN_ID_MESSAGE: &str = "correlation ID is expired or invalid";

/// The caller a call was authenticated as, or the anonymous caller of a gateway that runs open.
pub fn caller_of<T>(request: &Request<T>) -> CallerName {
    request
        .extensions()
        .get::<CallerName>()
        .cloned()
        .unwrap_or_else(CallerName::anonymous)
}

/// A status or bind step on an existing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// UnifyStatus: its final answer is kept and given again.
    UnifyStatus,
    /// UnifyBind: checked for ownership only.
    UnifyBind,
    /// VerifyStatus: its final answer is kept and given again.
    VerifyStatus,
}

impl Step {
    fn flow(self) -> Flow {
        match self {
            Self::UnifyStatus | Self::UnifyBind => Flow::Unify,
            Self::VerifyStatus => Flow::Verify,
        }
    }

    /// Whether the step's final answer is kept for the owner's repeats: the status steps, which
    /// Prove refuses (8003) to answer twice.
    fn replays(self) -> bool {
        matches!(self, Self::UnifyStatus | Self::VerifyStatus)
    }
}

/// A start: who sends it, with which key, and for which flow.
pub struct Start<'a, Req> {
    /// The caller.
    pub caller: &'a CallerName,
    /// The flow the session will belong to.
    pub flow: Flow,
    /// The method, as idempotency keys are per method.
    pub method: &'a str,
    /// The caller's request (its `client_request_id` is the key; its encoding the fingerprint).
    pub request: &'a Req,
    /// The request's `client_request_id`.
    pub client_request_id: &'a str,
    /// The caller's deadline.
    pub deadline: Option<tokio::time::Instant>,
}

/// Session ownership and idempotency for both services; cheap to clone.
#[derive(Clone)]
pub struct SessionGuard {
    sessions: Sessions,
    starts: Arc<Idempotency<ProveError>>,
    unknown_message: Arc<Mutex<String>>,
}

impl SessionGuard {
    /// Session records and idempotency keys in `store`.
    pub fn new(store: Store, settings: &SessionSettings) -> Self {
        Self {
            sessions: Sessions::new(store.clone(), settings),
            starts: Arc::new(Idempotency::new(store)),
            unknown_message: Arc::new(Mutex::new(PROVE_UNKNOWN_ID_MESSAGE.to_owned())),
        }
    }

    /// Runs `prove`, the start's call to Prove, unless the caller's key already has an answer;
    /// then records the session as the caller's. `correlation_id` reads the session's ID from
    /// the answer.
    pub async fn start<Req, Resp>(
        &self,
        start: Start<'_, Req>,
        prove: impl Future<Output = Result<Resp, ProveError>> + Send + 'static,
        correlation_id: fn(&Resp) -> &str,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let request = start.request.encode_to_vec();
        let call = Call {
            caller: start.caller,
            method: start.method,
            client_request_id: start.client_request_id,
            request: &request,
            deadline: start.deadline,
        };
        let answer = self
            .starts
            .once(call, async move { prove.await.map(|r| r.encode_to_vec()) })
            .await
            .map_err(|refusal| {
                if let crate::callers::idempotency::Refusal::Store(error) = &refusal {
                    store_failed(error);
                }
                status::from_idempotency(&refusal)
            })?;
        let answer = Resp::decode(answer.as_slice()).map_err(|_| {
            let error = StoreError::new("a stored answer could not be read");
            store_failed(&error);
            status::store_unavailable(&error)
        })?;
        // Recorded for every answer, a replayed one too: the first call's record may have
        // failed to be written (the store was down), and a second write changes nothing.
        self.sessions
            .started(start.caller, start.flow, correlation_id(&answer))
            .await
            .map_err(|error| {
                store_failed(&error);
                status::store_unavailable(&error)
            })?;
        Ok(answer)
    }

    /// Runs `prove`, a status or bind call on session `correlation_id`, if `caller` may; gives
    /// the owner's kept answer instead where there is one. `is_final` says whether an answer is
    /// one Prove would not give again.
    pub async fn step<Resp>(
        &self,
        caller: &CallerName,
        step: Step,
        correlation_id: &str,
        prove: impl Future<Output = Result<Resp, ProveError>>,
        is_final: fn(&Resp) -> bool,
    ) -> Result<Resp, Status>
    where
        Resp: Message + Default,
    {
        let flow = step.flow();
        let access = self
            .sessions
            .access(caller, flow, correlation_id)
            .await
            .map_err(|error| {
                store_failed(&error);
                status::store_unavailable(&error)
            })?;
        let owner = match access {
            Access::Refused => {
                let message = self.unknown_message.lock().clone();
                return Err(status::unknown_session(correlation_id, &message));
            }
            Access::Owner {
                outcome: Some(kept),
            } if step.replays() => match Resp::decode(kept.as_slice()) {
                Ok(answer) => return Ok(answer),
                // Unreadable: Prove is asked instead, as if nothing had been kept.
                Err(_) => true,
            },
            Access::Owner { .. } => true,
            Access::Unrecorded => false,
        };
        let answer = prove.await.map_err(|error| {
            self.learn(&error, correlation_id);
            status::from_prove(&error, Some(correlation_id))
        })?;
        if owner && step.replays() && is_final(&answer) {
            let kept = self
                .sessions
                .keep_outcome(caller, flow, correlation_id, &answer.encode_to_vec())
                .await;
            if let Err(error) = kept {
                // The caller has its answer; only a repeat of it would miss the kept copy.
                tracing::warn!(%error, "a session's final answer could not be kept");
            }
        }
        Ok(answer)
    }

    /// Remembers Prove's own message for an unknown correlation ID, for the refusals to copy:
    /// never one that names the ID it was about, which would show one caller's session to
    /// another.
    fn learn(&self, error: &ProveError, correlation_id: &str) {
        if let ProveError::Api {
            code: Some(8008),
            message,
            ..
        } = error
            && !message.contains(correlation_id)
        {
            let mut known = self.unknown_message.lock();
            if *known != *message {
                message.clone_into(&mut known);
            }
        }
    }
}

/// Logs a store failure once, where the call meets it (the caller's status does not carry it).
fn store_failed(error: &StoreError) {
    tracing::warn!(%error, "the session store failed; the call is answered UNAVAILABLE");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::callers::UnknownSessions;
    use crate::grpc::pb::UnifyStatusResponse;

    use super::*;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const OTHER: &str = "9b2e61a4-3c1d-4f7e-8a55-0d6c2b1e9f30";

    fn invalid_id(message: &str) -> ProveError {
        ProveError::Api {
            status: 403,
            code: Some(8008),
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// A refused call's message, on a guard that refuses unknown sessions.
    async fn refusal(guard: &SessionGuard) -> String {
        let never = async { unreachable!("a refused call does not reach Prove") };
        let status = guard
            .step::<UnifyStatusResponse>(
                &CallerName::anonymous(),
                Step::UnifyStatus,
                OTHER,
                never,
                |_| true,
            )
            .await
            .unwrap_err();
        status.message().to_owned()
    }

    #[tokio::test]
    async fn refusals_copy_proves_own_words_for_an_unknown_id_but_never_an_id() {
        let forward = SessionSettings {
            unknown: UnknownSessions::Forward,
        };
        let refuse = SessionSettings {
            unknown: UnknownSessions::Refuse,
        };
        let store = Store::in_memory(10);
        let learning = SessionGuard::new(store.clone(), &forward);
        let guard = SessionGuard {
            sessions: Sessions::new(store, &refuse),
            ..learning.clone()
        };
        assert!(refusal(&guard).await.ends_with(PROVE_UNKNOWN_ID_MESSAGE));

        // Prove's words change: the refusals follow.
        let prove = async { Err::<UnifyStatusResponse, _>(invalid_id("session not found")) };
        let _ = learning
            .step(
                &CallerName::anonymous(),
                Step::UnifyStatus,
                ID,
                prove,
                |_| true,
            )
            .await;
        assert!(refusal(&guard).await.ends_with(": session not found"));

        // A message naming the ID it was about is not copied into answers about other IDs.
        let naming =
            async { Err::<UnifyStatusResponse, _>(invalid_id(&format!("session {ID} not found"))) };
        let _ = learning
            .step(
                &CallerName::anonymous(),
                Step::UnifyStatus,
                ID,
                naming,
                |_| true,
            )
            .await;
        let message = refusal(&guard).await;
        assert!(!message.contains(ID), "{message}");
        assert!(message.ends_with(": session not found"), "{message}");

        // Other errors teach nothing.
        let other = async {
            Err::<UnifyStatusResponse, _>(ProveError::Api {
                status: 403,
                code: Some(8003),
                message: "step called out of order".into(),
                retry_after: None,
            })
        };
        let _ = learning
            .step(
                &CallerName::anonymous(),
                Step::UnifyStatus,
                ID,
                other,
                |_| true,
            )
            .await;
        assert!(refusal(&guard).await.ends_with(": session not found"));
    }
}
