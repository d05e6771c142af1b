//! OAuth client-credentials as Prove's `/token` does it: checking a client's credentials, issuing
//! opaque bearer tokens that expire after the configured TTL, and resolving a request's
//! `Authorization: Bearer` header back to the client ID. Also mints the fake JWT `authToken`s the
//! client SDK would receive.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use parking_lot::Mutex;
use rand::RngCore;

use super::clock::epoch_secs;
use super::error::ApiError;

#[derive(Debug)]
struct Issued {
    client_id: String,
    expires_at: SystemTime,
}

/// Tokens issued so far, keyed by the token string.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    tokens: Mutex<HashMap<String, Issued>>,
}

impl TokenStore {
    /// Issues a fresh random token for `client_id` valid for `ttl` from `now`. Expired tokens
    /// are dropped here, so a long-running simulator does not grow without bound.
    pub fn issue(&self, client_id: &str, now: SystemTime, ttl: Duration) -> String {
        let token = random_token();
        let mut tokens = self.tokens.lock();
        tokens.retain(|_, issued| issued.expires_at > now);
        tokens.insert(
            token.clone(),
            Issued {
                client_id: client_id.to_owned(),
                expires_at: now + ttl,
            },
        );
        token
    }

    /// The client ID behind the request's bearer token, or 401 / 8002.
    pub fn client_for(&self, headers: &HeaderMap, now: SystemTime) -> Result<String, ApiError> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let tokens = self.tokens.lock();
        match tokens.get(token) {
            Some(issued) if issued.expires_at > now => Ok(issued.client_id.clone()),
            Some(_) => Err(ApiError::unauthorized("access token has expired")),
            None => Err(ApiError::unauthorized("invalid access token")),
        }
    }
}

/// 32 random bytes, base64url: opaque like Prove's tokens, unguessable like any bearer token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64url(&bytes)
}

/// A JWT-shaped `authToken` for the client SDK. The signature is random bytes: nothing verifies
/// it, but clients that split or decode the token see the usual three parts and an `exp`.
pub(crate) fn fake_jwt(correlation_id: &str, expires_at: SystemTime) -> String {
    let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": "prove-simulator",
        "sub": correlation_id,
        "exp": epoch_secs(expires_at),
    });
    let payload = base64url(claims.to_string().as_bytes());
    let mut signature = [0u8; 32];
    rand::rng().fill_bytes(&mut signature);
    format!("{header}.{payload}.{}", base64url(&signature))
}

/// Unpadded base64url (RFC 4648 section 5), small enough not to need a crate.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors_without_padding() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
