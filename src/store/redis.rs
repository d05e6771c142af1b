//! The Redis engine: the same operations on one Redis that every replica shares.
//!
//! Each operation is one command, so each is atomic on the server: `SET … NX PX` for
//! set-if-absent, and two short Lua scripts for what must read before it writes (replace and
//! remove only while the value is still the one the caller read), which no other replica can
//! interleave with. Expiry is Redis's own (`PX`), so replica clocks never disagree about it.
//!
//! Unlike the rate limiter, which falls back to a local limit when Redis fails, a failure here is
//! an error for the caller: a local fallback would not know the sessions other replicas started
//! and would hand them to whoever asked.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use super::{Key, StoreError, Ttl};

/// Replaces KEYS[1] with ARGV[2] if it holds ARGV[1]. ARGV[3]: the new TTL in milliseconds, or
/// 0 to keep the current one. Returns 1 when replaced.
const REPLACE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
return 1
";

/// Deletes KEYS[1] if it holds ARGV[1]. Returns 1 when deleted.
const REMOVE_IF: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// The Redis engine; clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    redis: ConnectionManager,
    replace: redis::Script,
    remove_if: redis::Script,
}

/// A TTL in whole milliseconds, at least one (`PX 0` is an error in Redis).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn failed(error: redis::RedisError) -> StoreError {
    // The error's text names the command's failure (refused, timed out), never the URL.
    StoreError::new(error.to_string())
}

impl RedisStore {
    /// A store on the Redis at `url`, connected on first use and re-connected after failures.
    pub fn new(url: &SecretString) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.expose_secret())
            .map_err(|_| StoreError::new("the Redis URL is not valid"))?;
        let config = ConnectionManagerConfig::new()
            // A call waits for the store before it can go to Prove: a Redis that does not answer
            // within a second is treated as down rather than holding every call.
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let redis = ConnectionManager::new_lazy_with_config(client, config).map_err(failed)?;
        Ok(Self {
            redis,
            replace: redis::Script::new(REPLACE),
            remove_if: redis::Script::new(REMOVE_IF),
        })
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        redis::cmd("GET")
            .arg(key.as_str())
            .query_async(&mut self.redis.clone())
            .await
            .map_err(failed)
    }

    pub async fn set(&self, key: &Key, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(key.as_str())
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut self.redis.clone())
            .await
            .map_err(failed)
    }

    pub async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        // `OK` when set, nil when the key exists.
        let set: Option<String> = redis::cmd("SET")
            .arg(key.as_str())
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(set.is_some())
    }

    pub async fn replace(
        &self,
        key: &Key,
        expected: &[u8],
        value: &[u8],
        ttl: Ttl,
    ) -> Result<bool, StoreError> {
        let ttl = match ttl {
            Ttl::Keep => 0,
            Ttl::For(ttl) => millis(ttl),
        };
        let replaced: i64 = self
            .replace
            .key(key.as_str())
            .arg(expected)
            .arg(value)
            .arg(ttl)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(replaced == 1)
    }

    pub async fn remove_if(&self, key: &Key, expected: &[u8]) -> Result<bool, StoreError> {
        let removed: i64 = self
            .remove_if
            .key(key.as_str())
            .arg(expected)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(failed)?;
        Ok(removed == 1)
    }
}
