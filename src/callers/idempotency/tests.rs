//! Idempotency keys on the in-process store, with tokio's paused clock: one replica's flights,
//! and two instances over one store standing in for two replicas.
#![allow(clippy::unwrap_used)]

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
