//! The store's two engines keep one contract: the in-process map (its expiry and eviction are
//! unit-tested on a paused clock in `src/store/memory.rs`) and Redis, here against a real
//! `redis-server`, where expiry is Redis's own and is polled for rather than slept on.

use std::time::Duration;

use prove_gateway::store::{Key, Namespace, Store, StoreSettings, Ttl};
use secrecy::SecretString;

use crate::helpers::Redis;

fn key(id: &str) -> Key {
    Key::new(Namespace::Session, id)
}

fn redis_store(url: &str) -> Store {
    Store::new(&StoreSettings {
        redis_url: Some(SecretString::from(url.to_owned())),
        capacity: 1,
    })
    .unwrap()
}

/// Waits until `key` is gone, for at most five seconds.
async fn until_expired(store: &Store, key: &Key) {
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while store.get(key).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "{key:?} did not expire");
}

/// The operations' contract, the same for both engines.
async fn contract(store: &Store) {
    const MINUTE: Duration = Duration::from_secs(60);
    assert_eq!(store.get(&key("a")).await.unwrap(), None);
    store.set(&key("a"), b"1", MINUTE).await.unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b"1".to_vec()));

    assert!(!store.set_if_absent(&key("a"), b"2", MINUTE).await.unwrap());
    assert!(store.set_if_absent(&key("b"), b"2", MINUTE).await.unwrap());
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b"1".to_vec()));

    assert!(
        !store
            .replace(&key("a"), b"x", b"3", Ttl::Keep)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace(&key("none"), b"1", b"3", Ttl::Keep)
            .await
            .unwrap()
    );
    assert!(
        store
            .replace(&key("a"), b"1", b"3", Ttl::Keep)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(b"3".to_vec()));

    assert!(!store.remove_if(&key("a"), b"1").await.unwrap());
    assert!(store.remove_if(&key("a"), b"3").await.unwrap());
    assert_eq!(store.get(&key("a")).await.unwrap(), None);

    // Bytes, not text: any value comes back as it went in.
    let binary = [0u8, 255, 10, 13, 0];
    store.set(&key("bin"), &binary, MINUTE).await.unwrap();
    assert_eq!(store.get(&key("bin")).await.unwrap(), Some(binary.to_vec()));

    // Expiry: of a set, of a set-if-absent, and a kept TTL that is really kept.
    store
        .set(&key("short"), b"1", Duration::from_millis(100))
        .await
        .unwrap();
    until_expired(store, &key("short")).await;
    assert!(
        store
            .set_if_absent(&key("short"), b"2", Duration::from_millis(100))
            .await
            .unwrap()
    );
    assert!(
        store
            .replace(&key("short"), b"2", b"3", Ttl::Keep)
            .await
            .unwrap()
    );
    until_expired(store, &key("short")).await;
    store
        .set(&key("renewed"), b"1", Duration::from_millis(100))
        .await
        .unwrap();
    assert!(
        store
            .replace(&key("renewed"), b"1", b"2", Ttl::For(MINUTE))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.get(&key("renewed")).await.unwrap(),
        Some(b"2".to_vec()),
        "a renewed TTL outlives the first one"
    );
}

#[tokio::test]
async fn the_in_process_engine_keeps_the_contract() {
    contract(&Store::in_memory(100)).await;
}

#[tokio::test]
async fn the_redis_engine_keeps_the_contract() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let store = redis_store(&redis.url);
    assert!(store.is_shared());
    contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_replicas_racing_to_set_one_key_exactly_one_wins() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    // Twenty stores, each with its own connection, as twenty replicas would have.
    let stores: Vec<Store> = (0..20).map(|_| redis_store(&redis.url)).collect();
    let races = stores.iter().enumerate().map(|(i, store)| async move {
        store
            .set_if_absent(&key("race"), &[i as u8], Duration::from_secs(60))
            .await
            .unwrap()
    });
    let won: Vec<bool> = futures::future::join_all(races).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1);
    let winner = won.iter().position(|w| *w).unwrap();
    assert_eq!(
        stores[0].get(&key("race")).await.unwrap(),
        Some(vec![winner as u8])
    );
}

#[tokio::test]
async fn a_stopped_redis_is_an_error_value_not_an_empty_answer() {
    let Some(mut redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let store = redis_store(&redis.url);
    store
        .set(&key("a"), b"1", Duration::from_secs(60))
        .await
        .unwrap();
    redis.stop();
    let error = store.get(&key("a")).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the session store is unavailable")
    );
    assert!(
        store
            .set_if_absent(&key("b"), b"1", Duration::from_secs(60))
            .await
            .is_err()
    );
}
