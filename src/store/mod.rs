//! A small key-value store with per-key expiry, shared by the layers above: which caller owns a
//! session, and the first answer to an idempotent call.
//!
//! One type, [`Store`], over two engines:
//! - [`memory`] (the default): this process only, bounded by a number of records;
//! - [`redis`] when `PROVE_GATEWAY_REDIS_URL` is set: every replica sees the same records.
//!
//! Values are bytes (callers encode their own records); keys are namespaced ([`Key`]). Every
//! operation can fail only with [`StoreError`], a value: the callers above decide what a
//! failure means for their call (the gRPC layer answers UNAVAILABLE), and nothing here panics or
//! pretends a failed read found nothing.

pub mod memory;
pub mod redis;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

pub use settings::StoreSettings;

/// What a record's key belongs to: the first part of its name, so that one Redis can hold the
/// gateway's records next to others' (and the limiter's) without collisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// Who started a session, and its final outcome (`pg:session:<correlation ID>`).
    Session,
    /// The first answer to a call with a `client_request_id` (`pg:idem:<digest>`).
    Idempotency,
}

impl Namespace {
    fn prefix(self) -> &'static str {
        match self {
            Self::Session => "pg:session:",
            Self::Idempotency => "pg:idem:",
        }
    }
}

/// The name of one record: its namespace and its ID within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// The key of record `id` in `namespace`.
    pub fn new(namespace: Namespace, id: &str) -> Self {
        Self(format!("{}{id}", namespace.prefix()))
    }

    /// The full name, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a record replaced by [`Store::replace`] lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// As long as the record it replaces had left.
    Keep,
    /// This long from now.
    For(Duration),
}

/// The store could not answer (Redis down, slow or refusing). The detail is for logs; it names
/// no key and no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session store is unavailable: {detail}")]
pub struct StoreError {
    /// What went wrong, in the engine's words.
    pub detail: String,
}

impl StoreError {
    pub(crate) fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

/// The store, cheap to clone: every clone uses the same records.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Memory(Arc<memory::MemoryStore>),
    Redis(redis::RedisStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The Redis URL may hold a password: only the engine's kind is printed.
        let kind = match self.engine {
            Engine::Memory(_) => "memory",
            Engine::Redis(_) => "redis",
        };
        f.debug_struct("Store").field("engine", &kind).finish()
    }
}

impl Store {
    /// The store the settings ask for: Redis when a URL is set, else this process's memory. The
    /// Redis connection is made lazily, so the gateway starts while Redis is down (its calls
    /// that need the store then fail until Redis is back).
    pub fn new(settings: &StoreSettings) -> Result<Self, StoreError> {
        Ok(match &settings.redis_url {
            Some(url) => Self {
                engine: Engine::Redis(redis::RedisStore::new(url)?),
            },
            None => Self::in_memory(settings.capacity),
        })
    }

    /// A store in this process's memory holding at most `capacity` records.
    pub fn in_memory(capacity: usize) -> Self {
        Self {
            engine: Engine::Memory(Arc::new(memory::MemoryStore::new(capacity))),
        }
    }

    /// Whether the records are shared with other replicas.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Redis(_))
    }

    /// The value of `key`, or `None` when it is absent or expired.
    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.engine {
            Engine::Memory(m) => Ok(m.get(key)),
            Engine::Redis(r) => r.get(key).await,
        }
    }

    /// Sets `key` to `value` for `ttl`, whatever it held before.
    pub async fn set(&self, key: &Key, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Memory(m) => {
                m.set(key, value, ttl);
                Ok(())
            }
            Engine::Redis(r) => r.set(key, value, ttl).await,
        }
    }

    /// Sets `key` to `value` for `ttl` only if it holds nothing (or only an expired record);
    /// `true` when this call set it. Atomic: of two concurrent callers exactly one gets `true`.
    pub async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Memory(m) => Ok(m.set_if_absent(key, value, ttl)),
            Engine::Redis(r) => r.set_if_absent(key, value, ttl).await,
        }
    }

    /// Replaces `key`'s value with `value` only if it still is `expected`; `true` when it did.
    /// Atomic across replicas: the read-modify-write of a record (adding an outcome, finishing a
    /// pending call) cannot lose a concurrent change.
    pub async fn replace(
        &self,
        key: &Key,
        expected: &[u8],
        value: &[u8],
        ttl: Ttl,
    ) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Memory(m) => Ok(m.replace(key, expected, value, ttl)),
            Engine::Redis(r) => r.replace(key, expected, value, ttl).await,
        }
    }

    /// Removes `key` only if its value still is `expected`; `true` when it did.
    pub async fn remove_if(&self, key: &Key, expected: &[u8]) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Memory(m) => Ok(m.remove_if(key, expected)),
            Engine::Redis(r) => r.remove_if(key, expected).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_in_their_namespace() {
        assert_eq!(
            Key::new(Namespace::Session, "abc").as_str(),
            "pg:session:abc"
        );
        assert_eq!(
            Key::new(Namespace::Idempotency, "abc").as_str(),
            "pg:idem:abc"
        );
    }

    #[test]
    fn the_debug_output_names_the_engine_not_the_url() {
        let store = Store::in_memory(1);
        assert_eq!(format!("{store:?}"), r#"Store { engine: "memory" }"#);
        assert!(!store.is_shared());
    }
}
