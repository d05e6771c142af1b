//! Prove's rate-limit signals in its answers: `Retry-After` on a 429, and
//! `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`. The values come from the network, so
//! nothing here trusts them: absurd numbers are cut or ignored, never used in arithmetic that
//! can overflow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::MAX_PAUSE;
use crate::resilience::OutboundResponse;

/// Reads Prove's rate-limit signals from an answer: when to resume sending, if at all.
///
/// A 429 pauses for `Retry-After` (seconds or an HTTP date; one second when absent);
/// `X-RateLimit-Remaining: 0` pauses until `X-RateLimit-Reset` (Unix seconds).
pub fn pause_from(response: &OutboundResponse) -> Option<Instant> {
    let now = Instant::now();
    if response.status == 429 {
        let wait = retry_after(&response.headers).unwrap_or(Duration::from_secs(1));
        return now.checked_add(wait);
    }
    let remaining = header_str(&response.headers, "x-ratelimit-remaining")?;
    if remaining.trim() != "0" {
        return None;
    }
    let reset = whole_seconds(header_str(&response.headers, "x-ratelimit-reset")?.trim())?;
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let wait = reset.checked_sub(since_epoch)?;
    // A reset further away than the longest pause is not a per-second window (clock skew, or
    // garbage): don't stall on it.
    (!wait.is_zero() && wait <= MAX_PAUSE).then(|| now.checked_add(wait))?
}

/// Parses `Retry-After`: delta seconds or an HTTP date (RFC 9110), cut to [`MAX_PAUSE`]. Delta
/// seconds too large for a `u64` still mean "a long time" (as RFC 9111 reads an overflowing
/// `max-age`), so they are cut as well; anything that is neither is ignored.
pub fn retry_after(headers: &::http::HeaderMap) -> Option<Duration> {
    let raw = header_str(headers, "retry-after")?.trim();
    let wait = match whole_seconds(raw) {
        Some(seconds) => seconds,
        None => httpdate::parse_http_date(raw)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_PAUSE))
}

/// `1*DIGIT` seconds, saturating at `u64::MAX`. Rust's own parser would also take `+3`.
fn whole_seconds(raw: &str) -> Option<Duration> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_secs(raw.parse().unwrap_or(u64::MAX)))
}

fn header_str<'h>(headers: &'h ::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let mut headers = ::http::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        let later = SystemTime::now() + Duration::from_secs(30);
        headers.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let parsed = retry_after(&headers).unwrap();
        assert!(parsed > Duration::from_secs(28) && parsed <= Duration::from_secs(30));
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> OutboundResponse {
        let mut map = ::http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                ::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        OutboundResponse {
            status,
            headers: map,
            body: bytes::Bytes::new(),
        }
    }

    /// Numbers too large for any clock, as Prove (or something in between) might send them.
    const ABSURD: [&str; 4] = [
        "18446744073709551615", // u64::MAX
        "18446744073709551616", // u64::MAX + 1
        "9223372036854775808",  // i64::MAX + 1
        "99999999999999999999999999999999",
    ];

    /// Not numbers, or numbers Retry-After does not allow.
    const GARBAGE: [&str; 10] = [
        "-1",
        "-18446744073709551616",
        "+3",
        "1.5",
        "1e9",
        "0x10",
        "",
        "soon",
        "Fri, 32 Dec 2025 25:61:61 GMT",
        "\u{1F600}",
    ];

    #[test]
    fn absurd_retry_afters_are_cut_to_the_longest_pause() {
        for raw in ABSURD.iter().chain(&["Fri, 31 Dec 9999 23:59:59 GMT"]) {
            let headers = answer(429, &[("retry-after", raw)]).headers;
            assert_eq!(retry_after(&headers), Some(MAX_PAUSE), "{raw}");
        }
    }

    #[test]
    fn garbage_retry_afters_are_ignored_and_past_dates_mean_now() {
        for raw in GARBAGE {
            let headers = answer(429, &[("retry-after", raw)]).headers;
            assert_eq!(retry_after(&headers), None, "{raw:?}");
        }
        let mut headers = ::http::HeaderMap::new();
        let not_utf8 = ::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
        headers.insert("retry-after", not_utf8);
        assert_eq!(retry_after(&headers), None);
        let headers = answer(429, &[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]).headers;
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_an_absurd_retry_after_pauses_for_the_longest_pause() {
        for raw in ABSURD {
            let until = pause_from(&answer(429, &[("retry-after", raw)]));
            assert_eq!(until, Some(Instant::now() + MAX_PAUSE), "{raw}");
        }
        for raw in GARBAGE {
            let until = pause_from(&answer(429, &[("retry-after", raw)]));
            assert_eq!(
                until,
                Some(Instant::now() + Duration::from_secs(1)),
                "{raw:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_or_garbage_rate_limit_resets_pause_nothing() {
        let far_future = (u64::from(u32::MAX) * 4).to_string(); // the year 2514
        for raw in ABSURD
            .iter()
            .chain(&GARBAGE)
            .chain(&[far_future.as_str(), "0"])
        {
            let headers = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", *raw)];
            assert_eq!(pause_from(&answer(200, &headers)), None, "{raw:?}");
        }
    }

    #[test]
    fn remaining_zero_pauses_until_reset() {
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2;
        let mut headers = ::http::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let response = OutboundResponse {
            status: 200,
            headers,
            body: bytes::Bytes::new(),
        };
        let until = pause_from(&response).unwrap();
        assert!(until > Instant::now() + Duration::from_millis(900));
    }
}
