//! Prove's per-client rate limit: 429 / 8018 with `X-RateLimit-*` and `Retry-After`, the headers
//! on admitted answers too, one-second windows, and run-time changes.

use std::time::{Duration, UNIX_EPOCH};

use prove_gateway::simulator::{Product, SIM_UNIFY_CLIENT_ID, SIM_UNIFY_CLIENT_SECRET};

use crate::helpers::{Answer, TestSim, start_with};

const ANY_ID: &str = "00000000-0000-4000-8000-000000000000";

fn header_u64(answer: &Answer, name: &str) -> u64 {
    answer
        .header(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

async fn limited(rps: u32) -> TestSim {
    start_with(|c| c.rate_limit_rps = rps).await
}

#[tokio::test]
async fn requests_above_the_limit_get_429_8018_with_rate_limit_headers() {
    let sim = limited(3).await;
    let token = sim.token(Product::Verify).await; // /token counts for the Verify client
    let now = sim.clock.now_epoch_secs();
    let first = sim.verify_status(&token, ANY_ID).await;
    first.assert_error(403, 8008);
    assert_eq!(header_u64(&first, "x-ratelimit-limit"), 3);
    assert_eq!(header_u64(&first, "x-ratelimit-remaining"), 1);
    assert_eq!(header_u64(&first, "x-ratelimit-reset"), now + 1);
    assert!(first.header("retry-after").is_none());

    sim.verify_status(&token, ANY_ID)
        .await
        .assert_error(403, 8008);
    let refused = sim.verify_status(&token, ANY_ID).await;
    assert_eq!(
        refused.assert_error(429, 8018),
        "Rate limit exceeded. Please wait before making more requests."
    );
    assert_eq!(header_u64(&refused, "x-ratelimit-limit"), 3);
    assert_eq!(header_u64(&refused, "x-ratelimit-remaining"), 0);
    assert_eq!(header_u64(&refused, "x-ratelimit-reset"), now + 1);
    assert!(header_u64(&refused, "retry-after") >= 1);
}

#[tokio::test]
async fn successful_answers_carry_rate_limit_headers() {
    let sim = limited(25).await;
    let token = sim.token(Product::Unify).await;
    let answer = sim
        .post(
            "/v3/unify",
            &token,
            &serde_json::json!({"possessionType": "mobile", "phoneNumber": "2001004014"}),
        )
        .await;
    answer.assert_ok();
    assert_eq!(header_u64(&answer, "x-ratelimit-limit"), 25);
    assert_eq!(header_u64(&answer, "x-ratelimit-remaining"), 23);
    assert!(answer.header("x-ratelimit-reset").is_some());
}

#[tokio::test]
async fn the_window_is_one_second() {
    let sim = limited(1).await;
    let token = sim.token(Product::Unify).await;
    sim.unify_status(&token, ANY_ID)
        .await
        .assert_error(429, 8018);
    sim.clock.advance(Duration::from_secs(1));
    sim.unify_status(&token, ANY_ID)
        .await
        .assert_error(403, 8008);
}

#[tokio::test]
async fn the_limit_is_per_client_id() {
    let sim = limited(2).await;
    let unify = sim.token(Product::Unify).await;
    sim.unify_status(&unify, ANY_ID).await;
    sim.unify_status(&unify, ANY_ID)
        .await
        .assert_error(429, 8018);
    let verify = sim.token(Product::Verify).await;
    sim.verify_status(&verify, ANY_ID)
        .await
        .assert_error(403, 8008);
}

#[tokio::test]
async fn token_requests_count_against_the_client_limit() {
    let sim = limited(1).await;
    sim.token(Product::Unify).await;
    let answer = sim
        .token_request(&[
            ("client_id", SIM_UNIFY_CLIENT_ID),
            ("client_secret", SIM_UNIFY_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .await;
    answer.assert_error(429, 8018);
    assert!(answer.header("retry-after").is_some());
}

#[tokio::test]
async fn the_limit_can_change_at_run_time_and_zero_disables_it() {
    let sim = limited(1).await;
    let token = sim.token(Product::Unify).await;
    sim.unify_status(&token, ANY_ID)
        .await
        .assert_error(429, 8018);
    sim.sim.set_rate_limit(0);
    let answer = sim.unify_status(&token, ANY_ID).await;
    answer.assert_error(403, 8008);
    assert!(answer.header("x-ratelimit-limit").is_none());
    sim.sim.set_rate_limit(50);
    let answer = sim.unify_status(&token, ANY_ID).await;
    assert_eq!(header_u64(&answer, "x-ratelimit-limit"), 50);
}

/// The manual clock's Unix second.
trait EpochSecs {
    fn now_epoch_secs(&self) -> u64;
}

impl EpochSecs for prove_gateway::simulator::ManualClock {
    fn now_epoch_secs(&self) -> u64 {
        use prove_gateway::simulator::Clock;
        self.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }
}

#[tokio::test]
async fn a_throttle_refuses_everything_with_retry_after_counting_down() {
    let sim = limited(25).await;
    let token = sim.token(Product::Verify).await;
    sim.sim.throttle(Duration::from_secs(2));
    let refused = sim.verify_status(&token, ANY_ID).await;
    refused.assert_error(429, 8018);
    assert_eq!(header_u64(&refused, "retry-after"), 2);
    sim.clock.advance(Duration::from_millis(1500));
    let refused = sim.verify_status(&token, ANY_ID).await;
    assert_eq!(header_u64(&refused, "retry-after"), 1);
    sim.clock.advance(Duration::from_millis(600));
    sim.verify_status(&token, ANY_ID)
        .await
        .assert_error(403, 8008);
}
