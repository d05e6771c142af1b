//! The in-process engine: a map with per-record expiry and a bound on the number of records.
//!
//! A plain map rather than a cache crate such as `moka`: a cache may decline to admit a new
//! entry when it is full (moka's TinyLFU admission keeps frequently read entries instead), and
//! here a record that is silently not kept is a session whose owner is forgotten or a start
//! that is sent to Prove twice. This map always keeps the newest record, and when full it drops
//! the record closest to its expiry: the session with the least time left to use. The bound
//! keeps memory fixed under a flood of starts; at Prove's 25 requests per second per product the
//! default holds every session and key of the 15-minute window (see `settings.rs`).
//!
//! Expired records are dropped as the expiry index passes them, on every operation, so no task
//! sweeps in the background. Times are tokio's, so tests can pause the clock.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{Key, Ttl};

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<Key, Record>,
    /// Every record by its expiry; the sequence number tells apart records expiring together.
    by_expiry: BTreeMap<(Instant, u64), Key>,
    next_seq: u64,
}

#[derive(Debug)]
struct Record {
    value: Vec<u8>,
    expires: Instant,
    seq: u64,
}

impl Inner {
    /// Drops every record whose expiry has come.
    fn sweep(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.records.remove(&key);
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Record> {
        let record = self.records.remove(key)?;
        self.by_expiry.remove(&(record.expires, record.seq));
        Some(record)
    }

    /// Stores `value` under `key` until `expires`, making room first when full.
    fn insert(&mut self, key: &Key, value: &[u8], expires: Instant, capacity: usize) {
        if self.remove(key).is_none()
            && self.records.len() >= capacity
            && let Some((_, oldest)) = self.by_expiry.pop_first()
        {
            self.records.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires, seq), key.clone());
        self.records.insert(
            key.clone(),
            Record {
                value: value.to_vec(),
                expires,
                seq,
            },
        );
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// How many records are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.inner.lock().records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live value of `key`.
    pub fn get(&self, key: &Key) -> Option<Vec<u8>> {
        let mut inner = self.inner.lock();
        inner.sweep(Instant::now());
        inner.records.get(key).map(|r| r.value.clone())
    }

    /// Sets `key` for `ttl`.
    pub fn set(&self, key: &Key, value: &[u8], ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.sweep(now);
        inner.insert(key, value, now + ttl, self.capacity);
    }

    /// Sets `key` for `ttl` unless it holds a live record.
    pub fn set_if_absent(&self, key: &Key, value: &[u8], ttl: Duration) -> bool {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.sweep(now);
        if inner.records.contains_key(key) {
            return false;
        }
        inner.insert(key, value, now + ttl, self.capacity);
        true
    }

    /// Replaces `key`'s value if it is `expected`.
    pub fn replace(&self, key: &Key, expected: &[u8], value: &[u8], ttl: Ttl) -> bool {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.sweep(now);
        let Some(record) = inner.records.get(key) else {
            return false;
        };
        if record.value != expected {
            return false;
        }
        let expires = match ttl {
            Ttl::Keep => record.expires,
            Ttl::For(ttl) => now + ttl,
        };
        inner.insert(key, value, expires, self.capacity);
        true
    }

    /// Removes `key` if its value is `expected`.
    pub fn remove_if(&self, key: &Key, expected: &[u8]) -> bool {
        let mut inner = self.inner.lock();
        inner.sweep(Instant::now());
        if inner.records.get(key).is_some_and(|r| r.value == expected) {
            inner.remove(key);
            return true;
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::super::Namespace;
    use super::*;

    fn key(id: &str) -> Key {
        Key::new(Namespace::Session, id)
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_record_lives_exactly_its_ttl() {
        let store = MemoryStore::new(10);
        store.set(&key("a"), b"1", MINUTE);
        tokio::time::advance(MINUTE - Duration::from_millis(1)).await;
        assert_eq!(store.get(&key("a")), Some(b"1".to_vec()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(store.get(&key("a")), None);
        assert!(store.is_empty(), "the expired record is swept, not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn set_if_absent_refuses_a_live_record_and_takes_an_expired_ones_place() {
        let store = MemoryStore::new(10);
        assert!(store.set_if_absent(&key("a"), b"first", MINUTE));
        assert!(!store.set_if_absent(&key("a"), b"second", MINUTE));
        assert_eq!(store.get(&key("a")), Some(b"first".to_vec()));
        tokio::time::advance(MINUTE).await;
        assert!(store.set_if_absent(&key("a"), b"third", MINUTE));
        assert_eq!(store.get(&key("a")), Some(b"third".to_vec()));
    }

    #[test]
    fn of_many_threads_setting_one_key_if_absent_exactly_one_wins() {
        let store = Arc::new(MemoryStore::new(10));
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16u8)
                .map(|i| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        usize::from(store.set_if_absent(&key("race"), &[i], MINUTE))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn replace_needs_the_expected_value_and_keeps_or_renews_the_ttl() {
        let store = MemoryStore::new(10);
        store.set(&key("a"), b"v1", MINUTE);
        assert!(!store.replace(&key("a"), b"other", b"v2", Ttl::Keep));
        assert!(!store.replace(&key("absent"), b"v1", b"v2", Ttl::Keep));
        tokio::time::advance(MINUTE / 2).await;
        assert!(store.replace(&key("a"), b"v1", b"v2", Ttl::Keep));
        assert_eq!(store.get(&key("a")), Some(b"v2".to_vec()));
        // Kept: the record still ends a minute after it was first set.
        tokio::time::advance(MINUTE / 2).await;
        assert_eq!(store.get(&key("a")), None);

        store.set(&key("b"), b"v1", MINUTE);
        tokio::time::advance(MINUTE / 2).await;
        assert!(store.replace(&key("b"), b"v1", b"v2", Ttl::For(MINUTE)));
        tokio::time::advance(MINUTE / 2).await;
        assert_eq!(store.get(&key("b")), Some(b"v2".to_vec()), "renewed");
        tokio::time::advance(MINUTE / 2).await;
        assert_eq!(store.get(&key("b")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn remove_if_removes_only_the_expected_value() {
        let store = MemoryStore::new(10);
        store.set(&key("a"), b"mine", MINUTE);
        assert!(!store.remove_if(&key("a"), b"theirs"));
        assert_eq!(store.get(&key("a")), Some(b"mine".to_vec()));
        assert!(store.remove_if(&key("a"), b"mine"));
        assert_eq!(store.get(&key("a")), None);
        assert!(!store.remove_if(&key("a"), b"mine"));
    }

    #[tokio::test(start_paused = true)]
    async fn when_full_the_record_closest_to_expiry_goes_first() {
        let store = MemoryStore::new(3);
        store.set(&key("long"), b"1", 3 * MINUTE);
        store.set(&key("short"), b"2", MINUTE);
        store.set(&key("middle"), b"3", 2 * MINUTE);
        // Overwriting a key that is held does not evict anything.
        store.set(&key("middle"), b"3", 2 * MINUTE);
        assert_eq!(store.len(), 3);
        store.set(&key("new"), b"4", MINUTE / 2);
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(&key("short")), None, "the soonest to expire went");
        for kept in ["long", "middle", "new"] {
            assert!(store.get(&key(kept)).is_some(), "{kept}");
        }
        // The newest record is always kept, even when it is itself the soonest to expire.
        assert!(store.set_if_absent(&key("newest"), b"5", Duration::from_secs(1)));
        assert!(store.get(&key("newest")).is_some());
        assert_eq!(store.get(&key("new")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_records_make_room_before_any_live_one_is_dropped() {
        let store = MemoryStore::new(2);
        store.set(&key("expiring"), b"1", MINUTE);
        store.set(&key("live"), b"2", 10 * MINUTE);
        tokio::time::advance(MINUTE).await;
        store.set(&key("new"), b"3", 5 * MINUTE);
        assert!(store.get(&key("live")).is_some());
        assert!(store.get(&key("new")).is_some());
    }
}
