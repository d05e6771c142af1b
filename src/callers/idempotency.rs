//! Idempotent starts: a Unify or Verify sent again by the same caller with the same
//! `client_request_id` gets the first call's answer (the same session, the same auth token)
//! instead of a second session and a second SMS.
//!
//! How a call with a key runs:
//! - Calls with the same key on this replica share one *flight*: the first starts it, the
//!   others wait for its result, whatever it is, without polling.
//! - The flight runs on a task of its own, so a caller that hangs up (its deadline, a lost
//!   connection) does not cancel it: the answer is still stored for the retry that follows.
//! - In the store, the flight first sets a *pending* marker if the key has no entry (atomic,
//!   so across replicas one call wins). It calls Prove, then replaces the marker by the answer,
//!   kept for the session window. A failed call removes its marker: only a success is replayed,
//!   and after a failure the same key may go to Prove again.
//! - A flight that finds another replica's marker polls the store until the answer is there or
//!   the marker is gone (the call failed: this one goes itself), within the caller's deadline.
//!   The marker lives only as long as its call can, so a replica that died mid-call holds the
//!   key for no longer than that.
//! - Every entry holds a digest of the request: the same key with different fields is refused.
//!
//! Answers and requests are opaque bytes here; the gRPC layer encodes them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::CallerName;
use super::sessions::SESSION_WINDOW;
use crate::store::{Key, Namespace, Store, StoreError, Ttl};

/// Longest a pending marker lives: a call without a deadline can retry at Prove for about a
/// minute (five 10-second attempts and their backoff), and a marker must not outlive its call
/// by much, or the duplicates of a call whose replica died wait for nothing.
const PENDING_MAX: Duration = Duration::from_secs(90);
/// How long a marker outlives its caller's deadline: the time to store the answer after it.
const PENDING_MARGIN: Duration = Duration::from_secs(1);
/// How often a flight looks again at another replica's pending call.
const POLL: Duration = Duration::from_millis(25);

/// Why a call with a key got no answer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal<E> {
    /// The key was used before, within the session window, for a request with other fields.
    KeyReused,
    /// The store could not answer; nothing was sent to Prove.
    Store(StoreError),
    /// The first call (this one, or the one it waited for) failed with this error.
    Failed(E),
    /// The caller's deadline passed while another replica's call with the key was pending.
    DeadlineExceeded,
}

/// One call that may carry a key.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Who calls; keys are the caller's own.
    pub caller: &'a CallerName,
    /// The method, so that one key used for a Unify and a Verify names two calls.
    pub method: &'a str,
    /// The caller's `client_request_id`; empty: no key, the call just runs.
    pub client_request_id: &'a str,
    /// The request, encoded; its digest tells a repeat from a reuse of the key.
    pub request: &'a [u8],
    /// The caller's deadline.
    pub deadline: Option<Instant>,
}

/// What the store holds for a key (protobuf-encoded).
#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    /// SHA-256 of the encoded request.
    #[prost(bytes = "vec", tag = "1")]
    fingerprint: Vec<u8>,
    /// The pending call's own marker (unique per call), while it runs; empty once answered.
    #[prost(string, tag = "2")]
    pending: String,
    /// The first successful answer.
    #[prost(bytes = "vec", optional, tag = "3")]
    answer: Option<Vec<u8>>,
}

type Outcome<E> = Result<Vec<u8>, Refusal<E>>;

/// The calls with one key running on this replica, and their result once there is one.
struct Flight<E> {
    fingerprint: Vec<u8>,
    result: watch::Receiver<Option<Outcome<E>>>,
}

/// Idempotency keys over a store. `E` is the error of the calls it runs.
pub struct Idempotency<E> {
    store: Store,
    flights: Arc<Mutex<HashMap<Key, Arc<Flight<E>>>>>,
}

impl<E> std::fmt::Debug for Idempotency<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so that no two different lists of parts hash alike.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

/// The store key of `call`: a digest, so that no caller text ends up in a key name and every
/// key has the same length.
fn key_of(call: &Call<'_>) -> Key {
    let digest = sha256(&[
        call.caller.as_str().as_bytes(),
        call.method.as_bytes(),
        call.client_request_id.as_bytes(),
    ]);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Key::new(Namespace::Idempotency, &hex)
}

/// How long a marker for a call ending at `deadline` may live.
fn pending_ttl(deadline: Option<Instant>) -> Duration {
    deadline
        .map(|d| d.saturating_duration_since(Instant::now()) + PENDING_MARGIN)
        .unwrap_or(PENDING_MAX)
        .min(PENDING_MAX)
}

impl<E: Clone + Send + Sync + 'static> Idempotency<E> {
    /// Idempotency keys kept in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            flights: Arc::default(),
        }
    }

    /// Runs `first` for `call`, unless the caller already ran the call with its key: then the
    /// first answer, without running `first`. `first` runs on a task of its own (see the module
    /// docs), so it must own what it uses.
    pub async fn once<F>(&self, call: Call<'_>, first: F) -> Outcome<E>
    where
        F: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
    {
        if call.client_request_id.is_empty() {
            return first.await.map_err(Refusal::Failed);
        }
        let key = key_of(&call);
        let fingerprint = sha256(&[call.request]);
        let mut result = {
            let mut flights = self.flights.lock();
            match flights.get(&key) {
                Some(flight) if flight.fingerprint != fingerprint => {
                    return Err(Refusal::KeyReused);
                }
                Some(flight) => flight.result.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(
                        key.clone(),
                        Arc::new(Flight {
                            fingerprint: fingerprint.clone(),
                            result: rx.clone(),
                        }),
                    );
                    let flights = Arc::clone(&self.flights);
                    let store = self.store.clone();
                    let deadline = call.deadline;
                    let flight = async move {
                        let outcome = fly(&store, &key, fingerprint, deadline, first).await;
                        tx.send_replace(Some(outcome));
                        flights.lock().remove(&key);
                    };
                    // In the first caller's span, so that its call to Prove is traced as part
                    // of that caller's RPC.
                    tokio::spawn(flight.instrument(tracing::Span::current()));
                    rx
                }
            }
        };
        let outcome = result.wait_for(Option::is_some).await;
        match outcome.as_deref() {
            Ok(Some(outcome)) => outcome.clone(),
            // Only if the flight's task died (a panic, the runtime shutting down).
            _ => Err(Refusal::Store(StoreError::new(
                "the first call with this key ended without an answer",
            ))),
        }
    }
}

/// One flight: the store's answer for the key if it has one, else `first`'s (see module docs).
async fn fly<E, F>(
    store: &Store,
    key: &Key,
    fingerprint: Vec<u8>,
    deadline: Option<Instant>,
    first: F,
) -> Outcome<E>
where
    F: Future<Output = Result<Vec<u8>, E>>,
{
    let marker = Entry {
        fingerprint: fingerprint.clone(),
        pending: uuid::Uuid::new_v4().to_string(),
        answer: None,
    }
    .encode_to_vec();
    loop {
        if store
            .set_if_absent(key, &marker, pending_ttl(deadline))
            .await
            .map_err(Refusal::Store)?
        {
            return finish(store, key, &marker, fingerprint, first.await).await;
        }
        // Another call holds the key: its answer, a reuse, or its pending call to wait for.
        let Some(bytes) = store.get(key).await.map_err(Refusal::Store)? else {
            // Gone between the two steps (it failed, or expired): try to take it again.
            continue;
        };
        let Ok(entry) = Entry::decode(bytes.as_slice()) else {
            return Err(Refusal::Store(StoreError::new(
                "an idempotency entry could not be read",
            )));
        };
        if entry.fingerprint != fingerprint {
            return Err(Refusal::KeyReused);
        }
        if let Some(answer) = entry.answer {
            return Ok(answer);
        }
        if deadline.is_some_and(|d| Instant::now() + POLL >= d) {
            return Err(Refusal::DeadlineExceeded);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stores a successful answer in place of this call's marker, or removes the marker after a
/// failure. A store failure here is logged, not returned: the call itself has its answer.
async fn finish<E>(
    store: &Store,
    key: &Key,
    marker: &[u8],
    fingerprint: Vec<u8>,
    result: Result<Vec<u8>, E>,
) -> Outcome<E> {
    match result {
        Ok(answer) => {
            let done = Entry {
                fingerprint,
                pending: String::new(),
                answer: Some(answer.clone()),
            };
            match store
                .replace(key, marker, &done.encode_to_vec(), Ttl::For(SESSION_WINDOW))
                .await
            {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "an idempotent call's marker expired before its answer came: a repeat may go to Prove again"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "an idempotent call's answer could not be stored: a repeat may go to Prove again"
                ),
            }
            Ok(answer)
        }
        Err(error) => {
            if let Err(store_error) = store.remove_if(key, marker).await {
                tracing::warn!(
                    error = %store_error,
                    "a failed idempotent call's marker could not be removed: repeats wait for it to expire"
                );
            }
            Err(Refusal::Failed(error))
        }
    }
}

#[cfg(test)]
mod tests;
