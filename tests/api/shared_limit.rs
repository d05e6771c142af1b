//! Several replicas share Prove's 25 requests per second through a real `redis-server`.

use std::net::TcpListener;
use std::time::Duration;

use prove_gateway::config::OutboundSettings;
use prove_gateway::resilience::Error as LimiterError;
use prove_gateway::resilience::{RateLimiter, RedisRateLimiter};
use prove_gateway::simulator::{self, SimulatorConfig};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::helpers::{Redis, TestApp, mobile_unify as unify, spawn_gateway};

fn shared(url: &str) -> OutboundSettings {
    OutboundSettings {
        rate_limit_redis_url: Some(SecretString::from(url.to_owned())),
        rate_limit_max_wait: Duration::from_secs(30),
        ..OutboundSettings::default()
    }
}

async fn calls(app: &TestApp, n: usize) -> usize {
    let calls = (0..n).map(|_| {
        let mut client = app.unify.clone();
        async move { client.unify(unify()).await.is_ok() }
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_budget_and_never_trip_proves_limit() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let a = spawn_gateway(sim.clone(), |s| s.outbound = shared(&redis.url)).await;
    let b = spawn_gateway(sim.clone(), |s| s.outbound = shared(&redis.url)).await;

    let started = Instant::now();
    let (ok_a, ok_b) = tokio::join!(calls(&a, 100), calls(&b, 100));
    let elapsed = started.elapsed();

    assert_eq!(ok_a + ok_b, 200);
    let records = sim.records();
    assert_eq!(
        records
            .requests()
            .iter()
            .filter(|r| r.status == Some(429))
            .count(),
        0
    );
    // 202 requests (two tokens) at one shared 24.5 per second take about eight seconds; two
    // separate limiters would have sent them in four.
    assert!(elapsed >= Duration::from_secs(7), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_falls_back_to_the_local_limiter() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let app = spawn_gateway(sim.clone(), |s| {
        s.outbound = shared(&format!("redis://127.0.0.1:{port}"));
    })
    .await;

    // Fifty calls at once with Redis down: served, and still held to the rate by the local
    // limiter, not sent as fast as they come.
    assert_eq!(calls(&app, 50).await, 50, "served without Redis");

    let records = sim.records();
    assert_eq!(records.count_status("/v3/unify", 200), 50);
    assert_eq!(
        records
            .requests()
            .iter()
            .filter(|r| r.status == Some(429))
            .count(),
        0
    );
    // 51 requests (the token and 50 calls) at 24.5 per second span about 2.04 s; without a
    // limiter they all arrive within a few tens of milliseconds. 1.5 s leaves half a second
    // for jitter either way.
    let first = records.requests().first().unwrap().received;
    let last = records.requests().last().unwrap().received;
    eprintln!("Redis down: 51 requests spread over {:?}", last - first);
    assert!(
        last - first >= Duration::from_millis(1500),
        "51 requests within {:?}",
        last - first
    );
}

/// A replica's shared limiter on `redis` at `rps` requests per second.
fn replica(redis: &Redis, rps: u32, queue: usize) -> RedisRateLimiter {
    let settings = OutboundSettings {
        rate_limit_rps: rps,
        rate_limit_queue: queue,
        ..shared(&redis.url)
    };
    RedisRateLimiter::new(&SecretString::from(redis.url.clone()), &settings).unwrap()
}

/// The most of `times` that fall within any one second.
fn most_in_one_second(times: &[Instant]) -> usize {
    let mut times = times.to_vec();
    times.sort();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn two_hundred_callers_on_a_shared_queue_of_ten_get_ten_places() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    // At 5 per second the first waiter leaves the queue after 200 ms, long after all 200 have
    // asked: at 1,000 per second one left within a millisecond on a loaded machine and a late
    // asker took its place (11 admitted).
    let limiter = replica(&redis, 5, 10);
    limiter.acquire("k", None).await.unwrap(); // from now on every caller must wait

    // All 200 ask before any of them hears back from Redis.
    let results = futures::future::join_all((0..200).map(|_| limiter.acquire("k", None))).await;

    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let shed = results
        .iter()
        .filter(|r| matches!(r, Err(LimiterError::Overloaded { .. })))
        .count();
    assert_eq!((admitted, shed), (10, 190), "{:?}", results.last());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_from_another_replica_holds_callers_already_queued() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let a = std::sync::Arc::new(replica(&redis, 20, 100));
    let b = replica(&redis, 20, 100);
    a.acquire("k", None).await.unwrap();
    // Five callers queue on replica A, 51 ms apart.
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move {
                a.acquire("k", None).await.unwrap();
                Instant::now()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Replica B's call got a 429 with Retry-After: 1.
    let pause_end = Instant::now() + Duration::from_secs(1);
    b.pause("k", pause_end).await;

    let mut admitted = Vec::new();
    for caller in callers {
        admitted.push(caller.await.unwrap());
    }
    admitted.sort();
    eprintln!(
        "pause from another replica: first send {:?} after its end, gaps {:?}",
        admitted[0] - pause_end,
        admitted.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
    for t in &admitted {
        // Redis's clock and tokio's agree to microseconds over a second; 1 ms of slack.
        assert!(
            *t + Duration::from_millis(1) >= pause_end,
            "admitted {:?} before the pause ended",
            pause_end - *t
        );
    }
    // 51 ms apart by schedule; a burst at the pause's end would send them all within
    // microseconds of it. Only the burst is asserted: a machine stalled for longer than an
    // interval wakes two waiters late together wherever they stand in the queue (seen once,
    // 490 ms after the pause's end, with four other builds running), which the sliding window
    // bounds and the late-wake-up test covers. The slack covers a Redis round trip's jitter.
    let at_the_end = admitted
        .iter()
        .filter(|t| **t < pause_end + Duration::from_millis(40))
        .count();
    assert!(
        at_the_end <= 1,
        "{at_the_end} sent at the pause's end: {admitted:?}"
    );
}

#[tokio::test]
async fn late_wakeups_never_put_more_than_the_rate_into_one_second_of_the_shared_limit() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let limiter = std::sync::Arc::new(replica(&redis, 5, 100));
    let started = Instant::now();
    limiter.acquire("k", None).await.unwrap();
    // Nine callers reserve slots 204 ms apart, over the next two seconds.
    let callers: Vec<_> = (0..9)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter.acquire("k", None).await.unwrap();
                Instant::now()
            })
        })
        .collect();
    // The callers' reservations are made in Redis, out of the test's sight: let them get there.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A stalled machine: this runtime's only thread does nothing for two seconds, so every
    // waiter wakes late, at once.
    std::thread::sleep(Duration::from_secs(2));

    let mut sent = vec![started];
    for caller in callers {
        sent.push(caller.await.unwrap());
    }
    let most = most_in_one_second(&sent);
    eprintln!("late wake-ups on the shared limiter: at most {most} sends in one second");
    assert!(most <= 5, "{most} sends within one second at 5 per second");
}

#[tokio::test]
async fn a_shared_wait_past_the_maximum_wait_is_refused_as_max_wait() {
    use prove_gateway::resilience::WaitLimit;
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let settings = OutboundSettings {
        rate_limit_rps: 1,
        rate_limit_max_wait: Duration::from_millis(500),
        ..shared(&redis.url)
    };
    let limiter = RedisRateLimiter::new(&SecretString::from(redis.url.clone()), &settings).unwrap();
    limiter.acquire("k", None).await.unwrap();
    let far = Some(Instant::now() + Duration::from_secs(60));
    let err = limiter.acquire("k", far).await.unwrap_err();
    assert!(
        matches!(
            err,
            LimiterError::RateLimited {
                limit: WaitLimit::MaxWait,
                ..
            }
        ),
        "{err:?}"
    );
    let near = Some(Instant::now() + Duration::from_millis(100));
    let err = limiter.acquire("k", near).await.unwrap_err();
    assert!(
        matches!(
            err,
            LimiterError::RateLimited {
                limit: WaitLimit::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A Redis command's answer, straight from `redis` (what the limiter's scripts left there).
async fn redis_query<T: redis::FromRedisValue>(redis: &Redis, command: &redis::Cmd) -> T {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

/// The key's theoretical arrival time in Redis: each reservation moves it on.
async fn shared_tat(redis: &Redis, key: &str) -> Option<String> {
    let tat = format!("prove-gateway:ratelimit:{{{key}}}:tat");
    redis_query(redis, redis::cmd("GET").arg(tat)).await
}

/// How many scripts Redis has run so far (`EVALSHA`, and `EVAL` when a script was not loaded).
async fn scripts_run(redis: &Redis) -> u64 {
    let stats: String = redis_query(redis, redis::cmd("INFO").arg("commandstats")).await;
    stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_from_another_replica_past_a_waiters_deadline_refuses_it_before_the_deadline() {
    use prove_gateway::resilience::WaitLimit;
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let a = std::sync::Arc::new(replica(&redis, 1, 100));
    let b = replica(&redis, 1, 100);
    a.acquire("k", None).await.unwrap();
    let before = shared_tat(&redis, "k").await;
    // The next slot is 1.02 s away and this caller may wait 3 s: it queues on replica A.
    let deadline = Instant::now() + Duration::from_secs(3);
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let result = a.acquire("k", Some(deadline)).await;
            (result, Instant::now())
        })
    };
    // Its reservation is made in Redis, out of the test's sight: wait until the TAT moved.
    while shared_tat(&redis, "k").await == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Replica B's call got a 429 with Retry-After: 10: the queued slot moves past the deadline.
    b.pause("k", Instant::now() + Duration::from_secs(10)).await;

    let (result, answered) = waiter.await.unwrap();
    assert!(
        matches!(
            result,
            Err(LimiterError::RateLimited {
                limit: WaitLimit::Deadline,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        answered < deadline,
        "refused only {:?} after the deadline",
        answered - deadline
    );
}

#[tokio::test]
async fn a_queued_caller_sleeps_until_its_slot_instead_of_asking_redis_again_and_again() {
    let Some(redis) = Redis::start().await else {
        return; // redis-server is not installed: skipped, and said so once
    };
    let limiter = replica(&redis, 1, 100);
    limiter.acquire("k", None).await.unwrap();
    let before = scripts_run(&redis).await;
    // A wait of 1.02 s: one script to reserve the slot, one to be admitted at it (and one
    // more if the timer woke a hair early). Polling Redis through the wait would run
    // thousands.
    limiter.acquire("k", None).await.unwrap();
    let ran = scripts_run(&redis).await - before;
    assert!(
        (2..=4).contains(&ran),
        "{ran} scripts for one queued caller"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_logged_as_a_warning_when_the_local_limiter_takes_over() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let logs = crate::helpers::LogCapture::start();
    let url = format!("redis://127.0.0.1:{port}");
    let limiter = RedisRateLimiter::new(&SecretString::from(url.clone()), &shared(&url)).unwrap();
    limiter.acquire("k", None).await.unwrap();
    logs.wait_for("shared rate limiter unavailable").await;
    assert!(logs.text().contains("WARN"), "{}", logs.text());
}
