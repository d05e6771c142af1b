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
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// A stand-in for Prove: counts its calls, answers each with its number, and can be held
    /// until the test lets it answer, or made to fail.
    #[derive(Clone)]
    struct Upstream {
        calls: Arc<AtomicUsize>,
        gate: Arc<Semaphore>,
        fail: bool,
    }

    impl Upstream {
        fn open() -> Self {
            let upstream = Self::held();
            upstream.release(1000);
            upstream
        }

        fn held() -> Self {
            Self {
                calls: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
                fail: false,
            }
        }

        fn failing() -> Self {
            Self {
                fail: true,
                ..Self::open()
            }
        }

        fn release(&self, n: usize) {
            self.gate.add_permits(n);
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn call(&self) -> impl Future<Output = Result<Vec<u8>, String>> + Send + 'static {
            let this = self.clone();
            async move {
                let n = this.calls.fetch_add(1, Ordering::SeqCst) + 1;
                this.gate.acquire().await.unwrap().forget();
                if this.fail {
                    Err(format!("failure {n}"))
                } else {
                    Ok(format!("answer {n}").into_bytes())
                }
            }
        }
    }

    fn caller(name: &str) -> CallerName {
        CallerName(Arc::from(name))
    }

    fn call<'a>(caller: &'a CallerName, id: &'a str, request: &'a [u8]) -> Call<'a> {
        Call {
            caller,
            method: "Unify",
            client_request_id: id,
            request,
            deadline: None,
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_gets_the_first_answer_without_a_second_call() {
        let keys = Idempotency::new(Store::in_memory(100));
        let upstream = Upstream::open();
        let a = caller("a");
        let first = keys.once(call(&a, "k", b"req"), upstream.call()).await;
        let again = keys.once(call(&a, "k", b"req"), upstream.call()).await;
        assert_eq!(first, Ok(b"answer 1".to_vec()));
        assert_eq!(again, first);
        assert_eq!(upstream.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_key_every_call_runs() {
        let keys = Idempotency::new(Store::in_memory(100));
        let upstream = Upstream::open();
        let a = caller("a");
        keys.once(call(&a, "", b"req"), upstream.call())
            .await
            .unwrap();
        let second = keys.once(call(&a, "", b"req"), upstream.call()).await;
        assert_eq!(second, Ok(b"answer 2".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_belong_to_their_caller_and_method() {
        let keys = Idempotency::new(Store::in_memory(100));
        let upstream = Upstream::open();
        let (a, b) = (caller("a"), caller("b"));
        keys.once(call(&a, "k", b"req"), upstream.call())
            .await
            .unwrap();
        let other_caller = keys.once(call(&b, "k", b"req"), upstream.call()).await;
        assert_eq!(other_caller, Ok(b"answer 2".to_vec()));
        let other_method = Call {
            method: "Verify",
            ..call(&a, "k", b"req")
        };
        assert_eq!(
            keys.once(other_method, upstream.call()).await,
            Ok(b"answer 3".to_vec())
        );
        // Parts are not merely concatenated: caller "a" with key "bk" is not caller "ab" with "k".
        let (ab, k) = (caller("ab"), "k");
        let shifted = keys.once(call(&ab, k, b"req"), upstream.call()).await;
        let unshifted = keys.once(call(&a, "bk", b"req"), upstream.call()).await;
        assert_ne!(shifted, unshifted);
        assert_eq!(upstream.calls(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_repeats_wait_for_the_first_and_share_its_answer() {
        let keys = Arc::new(Idempotency::new(Store::in_memory(100)));
        let upstream = Upstream::held();
        let a = caller("a");
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (keys, upstream, a) = (keys.clone(), upstream.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                keys.once(call(&a, "k", b"req"), upstream.call()).await
            }));
        }
        settle().await;
        assert_eq!(upstream.calls(), 1, "the repeats wait");
        upstream.release(1);
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(b"answer 1".to_vec()));
        }
        assert_eq!(upstream.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_key_with_other_fields_is_refused_while_pending_and_after() {
        let keys = Arc::new(Idempotency::new(Store::in_memory(100)));
        let upstream = Upstream::held();
        let a = caller("a");
        let first = {
            let (keys, upstream, a) = (keys.clone(), upstream.clone(), a.clone());
            tokio::spawn(async move { keys.once(call(&a, "k", b"req"), upstream.call()).await })
        };
        settle().await;
        assert_eq!(
            keys.once(call(&a, "k", b"other"), upstream.call()).await,
            Err(Refusal::KeyReused)
        );
        upstream.release(1);
        first.await.unwrap().unwrap();
        assert_eq!(
            keys.once(call(&a, "k", b"other"), upstream.call()).await,
            Err(Refusal::KeyReused)
        );
        assert_eq!(upstream.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_shared_with_waiting_repeats_and_is_not_replayed() {
        let keys = Arc::new(Idempotency::new(Store::in_memory(100)));
        let upstream = Upstream {
            gate: Arc::new(Semaphore::new(0)),
            ..Upstream::failing()
        };
        let a = caller("a");
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (keys, upstream, a) = (keys.clone(), upstream.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                keys.once(call(&a, "k", b"req"), upstream.call()).await
            }));
        }
        settle().await;
        upstream.release(10);
        for task in tasks {
            assert_eq!(
                task.await.unwrap(),
                Err(Refusal::Failed("failure 1".into()))
            );
        }
        // The next repeat goes again: after a failure the key is free.
        let healthy = Upstream::open();
        assert_eq!(
            keys.once(call(&a, "k", b"req"), healthy.call()).await,
            Ok(b"answer 1".to_vec())
        );
        assert_eq!(upstream.calls() + healthy.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_replayed_for_the_session_window_only() {
        let keys = Idempotency::new(Store::in_memory(100));
        let upstream = Upstream::open();
        let a = caller("a");
        keys.once(call(&a, "k", b"req"), upstream.call())
            .await
            .unwrap();
        tokio::time::advance(SESSION_WINDOW - Duration::from_millis(1)).await;
        keys.once(call(&a, "k", b"req"), upstream.call())
            .await
            .unwrap();
        assert_eq!(upstream.calls(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        let later = keys.once(call(&a, "k", b"other"), upstream.call()).await;
        assert_eq!(later, Ok(b"answer 2".to_vec()), "expired: a new call");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_hangs_up_does_not_cancel_the_first_call() {
        let keys = Arc::new(Idempotency::new(Store::in_memory(100)));
        let upstream = Upstream::held();
        let a = caller("a");
        let hung_up = tokio::time::timeout(
            Duration::from_millis(10),
            keys.once(call(&a, "k", b"req"), upstream.call()),
        )
        .await;
        assert!(hung_up.is_err());
        upstream.release(1);
        settle().await;
        assert_eq!(
            keys.once(call(&a, "k", b"req"), upstream.call()).await,
            Ok(b"answer 1".to_vec())
        );
        assert_eq!(upstream.calls(), 1);
    }

    /// Two replicas: two instances over one store, each with its own flights.
    #[tokio::test(start_paused = true)]
    async fn a_replica_waits_for_anothers_pending_call_and_replays_its_answer() {
        let store = Store::in_memory(100);
        let one = Arc::new(Idempotency::new(store.clone()));
        let two = Idempotency::new(store);
        let upstream = Upstream::held();
        let a = caller("a");
        let first = {
            let (one, upstream, a) = (one.clone(), upstream.clone(), a.clone());
            tokio::spawn(async move { one.once(call(&a, "k", b"req"), upstream.call()).await })
        };
        settle().await;
        let release = {
            let upstream = upstream.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                upstream.release(1);
            }
        };
        let (second, ()) = tokio::join!(two.once(call(&a, "k", b"req"), upstream.call()), release);
        assert_eq!(second, Ok(b"answer 1".to_vec()));
        assert_eq!(first.await.unwrap(), second);
        assert_eq!(upstream.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_another_replica_ends_at_the_callers_deadline() {
        let store = Store::in_memory(100);
        let one = Arc::new(Idempotency::new(store.clone()));
        let two = Idempotency::new(store);
        let upstream = Upstream::held();
        let a = caller("a");
        let _first = {
            let (one, upstream, a) = (one.clone(), upstream.clone(), a.clone());
            tokio::spawn(async move { one.once(call(&a, "k", b"req"), upstream.call()).await })
        };
        settle().await;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(2);
        let second = two
            .once(
                Call {
                    deadline: Some(deadline),
                    ..call(&a, "k", b"req")
                },
                upstream.call(),
            )
            .await;
        assert_eq!(second, Err(Refusal::DeadlineExceeded));
        assert!(Instant::now() <= deadline, "answered by the deadline");
        assert!(Instant::now() + POLL >= deadline, "and not long before it");
        assert_eq!(upstream.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn after_another_replicas_call_failed_a_waiting_replica_calls_itself() {
        let store = Store::in_memory(100);
        let one = Arc::new(Idempotency::new(store.clone()));
        let two = Idempotency::new(store);
        let failing = Upstream {
            gate: Arc::new(Semaphore::new(0)),
            ..Upstream::failing()
        };
        let a = caller("a");
        let first = {
            let (one, failing, a) = (one.clone(), failing.clone(), a.clone());
            tokio::spawn(async move { one.once(call(&a, "k", b"req"), failing.call()).await })
        };
        settle().await;
        let healthy = Upstream::open();
        let release = {
            let failing = failing.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                failing.release(1);
            }
        };
        let (second, ()) = tokio::join!(two.once(call(&a, "k", b"req"), healthy.call()), release);
        assert_eq!(
            first.await.unwrap(),
            Err(Refusal::Failed("failure 1".into()))
        );
        assert_eq!(second, Ok(b"answer 1".to_vec()));
        assert_eq!(healthy.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_marker_lives_until_shortly_after_its_callers_deadline_and_never_long() {
        let now = Instant::now();
        assert_eq!(
            pending_ttl(Some(now + Duration::from_secs(5))),
            Duration::from_secs(5) + PENDING_MARGIN
        );
        assert_eq!(pending_ttl(Some(now)), PENDING_MARGIN);
        assert_eq!(pending_ttl(None), PENDING_MAX);
        assert_eq!(
            pending_ttl(Some(now + Duration::from_secs(3600))),
            PENDING_MAX
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_marker_left_by_a_dead_replica_expires_and_the_key_goes_again() {
        let store = Store::in_memory(100);
        let a = caller("a");
        let request = b"req";
        // What a replica that died mid-call leaves: its pending marker.
        let marker = Entry {
            fingerprint: sha256(&[request]),
            pending: "dead".into(),
            answer: None,
        };
        store
            .set(
                &key_of(&call(&a, "k", request)),
                &marker.encode_to_vec(),
                PENDING_MAX,
            )
            .await
            .unwrap();
        let keys = Idempotency::new(store);
        let upstream = Upstream::open();
        let started = Instant::now();
        let answer = keys.once(call(&a, "k", request), upstream.call()).await;
        assert_eq!(answer, Ok(b"answer 1".to_vec()));
        assert!(Instant::now() >= started + PENDING_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_entry_is_a_store_error_not_a_call() {
        let store = Store::in_memory(100);
        let a = caller("a");
        store
            .set(&key_of(&call(&a, "k", b"req")), b"\xff\xff", PENDING_MAX)
            .await
            .unwrap();
        let keys = Idempotency::new(store);
        let upstream = Upstream::open();
        let answer = keys.once(call(&a, "k", b"req"), upstream.call()).await;
        assert!(matches!(answer, Err(Refusal::Store(_))), "{answer:?}");
        assert_eq!(upstream.calls(), 0);
    }
}
