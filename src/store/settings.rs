//! The store's settings: where records live, and how many this process may hold.

use secrecy::SecretString;

/// Default most records the in-process store holds. Prove allows 25 requests per second per
/// product, so in one 15-minute session window a gateway can start at most 2 × 25 × 900 = 45,000
/// sessions, each with one ownership record and at most one idempotency record: 90,000. A
/// record is a few hundred bytes (a status answer at most a few KiB), so this stays in the tens
/// of megabytes.
pub const CAPACITY: usize = 100_000;

/// Where the store keeps its records (each is documented on its flag in `config`).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The Redis every replica shares; `None` keeps records in this process. It may hold a
    /// password.
    pub redis_url: Option<SecretString>,
    /// Most records the in-process store holds; the ones closest to expiry go first.
    pub capacity: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            capacity: CAPACITY,
        }
    }
}
