//! Property tests: any answer Prove could send (any status, any bytes, any headers, absurd
//! `Retry-After` and `X-RateLimit-*` values included) is decoded or classified without a panic,
//! into the right error class. 10,000 generated answers in all; failures are not persisted, so
//! a run depends on nothing but the code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::time::Instant;

use super::super::models::TokenResponse;
use super::decode;
use crate::prove::Endpoint;
use crate::prove::ProveError;
use crate::resilience::OutboundResponse;
use crate::resilience::rate_limit::{pause_from, retry_after};
use crate::resilience::retry::retryable;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// A body: random bytes, a valid token answer, or an error body with any code and message.
#[derive(Debug, Clone)]
enum Body {
    Bytes(Vec<u8>),
    Token(String, String, u64),
    Error(String),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Token(token, kind, expires_in) => serde_json::json!({
                "access_token": token, "token_type": kind, "expires_in": expires_in,
            })
            .to_string()
            .into_bytes(),
            Self::Error(json) => json.clone().into_bytes(),
        }
    }
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256).prop_map(Body::Bytes),
        ("\\PC{0,40}", "[Bb]earer|mac|\\PC{0,8}", any::<u64>())
            .prop_map(|(t, k, e)| Body::Token(t, k, e)),
        (any::<i64>(), "\\PC{0,40}").prop_map(|(code, message)| Body::Error(
            serde_json::json!({ "code": code, "message": message }).to_string()
        )),
        "\\{\"code\": ?(-?[0-9]{1,25}|\"[0-9]+\"|null|1e99)(, \"message\": \"[a-z ]*\")?\\}"
            .prop_map(Body::Error),
    ]
}

/// A header value as Prove's rate-limit headers could come: numbers of any size and sign,
/// HTTP dates from 1970 to 9999, and printable garbage.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(u64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just("18446744073709551616".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..=253_402_300_799)
            .prop_map(|secs| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))),
        (-100_000i64..100_000).prop_map(|delta| {
            let now = SystemTime::now();
            let at = if delta >= 0 {
                now + Duration::from_secs(delta.unsigned_abs())
            } else {
                now - Duration::from_secs(delta.unsigned_abs())
            };
            httpdate::fmt_http_date(at)
        }),
        "[ -~]{0,40}",
        Just(" 0 ".to_owned()),
        Just("1.5".to_owned()),
    ]
}

fn headers() -> impl Strategy<Value = ::http::HeaderMap> {
    let name = prop_oneof![
        Just("retry-after"),
        Just("x-ratelimit-remaining"),
        Just("x-ratelimit-reset"),
        Just("content-type"),
    ];
    prop::collection::vec((name, header_value()), 0..5).prop_map(|pairs| {
        let mut headers = ::http::HeaderMap::new();
        for (name, value) in pairs {
            // Printable ASCII is always a valid header value; trailing spaces are trimmed by
            // HTTP parsers, and kept here on purpose.
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        headers
    })
}

fn answer() -> impl Strategy<Value = (u16, ::http::HeaderMap, Body)> {
    (100u16..=599, headers(), body())
}

fn response(status: u16, headers: &::http::HeaderMap, body: &Body) -> OutboundResponse {
    OutboundResponse {
        status,
        headers: headers.clone(),
        body: body.bytes().into(),
    }
}

/// Whether two readings of the same `Retry-After` agree: an HTTP date is read against the clock,
/// which moves between the two readings.
fn same_wait(a: Option<Duration>, b: Option<Duration>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.abs_diff(b) <= Duration::from_secs(1),
        _ => false,
    }
}

proptest! {
    #![proptest_config(config(6_000))]

    /// 2xx with the documented JSON is Ok, 2xx with anything else is BadResponse, and any
    /// other status is an Api error with that status and Prove's Retry-After.
    #[test]
    fn any_answer_decodes_into_its_class((status, headers, body) in answer()) {
        let decoded = decode::<TokenResponse>(Endpoint::Token, response(status, &headers, &body));
        if (200..300).contains(&status) {
            match (&body, &decoded) {
                (Body::Token(token, kind, expires_in), Ok(parsed)) => {
                    prop_assert_eq!(&parsed.access_token, token);
                    prop_assert_eq!(&parsed.token_type, kind);
                    prop_assert_eq!(parsed.expires_in, *expires_in);
                }
                (Body::Token(..), Err(error)) => {
                    return Err(TestCaseError::fail(format!("valid JSON refused: {error:?}")));
                }
                (_, Ok(_)) => prop_assert!(
                    serde_json::from_slice::<TokenResponse>(&body.bytes()).is_ok()
                ),
                (_, Err(error)) => {
                    prop_assert!(matches!(error, ProveError::BadResponse(_)), "{:?}", error);
                }
            }
        } else {
            match &decoded {
                Err(ProveError::Api { status: got, retry_after: wait, .. }) => {
                    prop_assert_eq!(*got, status);
                    prop_assert!(same_wait(*wait, retry_after(&headers)), "{:?}", wait);
                }
                other => {
                    return Err(TestCaseError::fail(format!("HTTP {status}: {other:?}")));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(4_000))]

    /// The retry policy's check and Retry-After read any answer without a panic; 429 and
    /// Prove's transient 5xx (500, 502, 503, 504) are retryable, nothing else.
    #[test]
    fn any_answer_is_classified_without_a_panic((status, headers, body) in answer()) {
        let response = response(status, &headers, &body);
        let wait = retry_after(&headers);
        // Delta seconds are digits only (RFC 9110: no sign), and no pause is believed for
        // longer than a minute (the limiter's longest pause).
        let delta = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        if let Some(secs) = delta {
            prop_assert_eq!(wait, Some(Duration::from_secs(secs.min(60))));
        }
        let retryable = retryable(&Ok(response));
        prop_assert_eq!(retryable.is_some(), matches!(status, 429 | 500 | 502 | 503 | 504));
        if let Some(prove_wait) = retryable {
            prop_assert!(same_wait(prove_wait, wait), "{:?} {:?}", prove_wait, wait);
        }
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// The limiter's pause reads any answer without a panic: a 429 always pauses, and a pause
    /// never ends in the past.
    #[test]
    fn any_answer_pauses_the_limiter_without_a_panic((status, headers, body) in answer()) {
        let now = Instant::now();
        let pause = pause_from(&response(status, &headers, &body));
        if status == 429 {
            prop_assert!(pause.is_some(), "a 429 always pauses");
        }
        if let Some(until) = pause {
            prop_assert!(until >= now);
        }
    }
}
