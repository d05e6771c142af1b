//! Property tests of the local rate limiter on tokio's paused clock: over generated rates,
//! bursts, queue bounds, arrivals, deadlines, cancellations, Prove's pauses and stalls of the
//! machine, the sends it admits never exceed the rate in any second, no caller goes during a
//! pause it could know of, and the queue bound is exact.
//!
//! Each property runs a fixed number of small cases (10,000 in all) on one current-thread
//! runtime whose clock only moves when every task waits, so a case of a few simulated seconds
//! takes well under a millisecond, and the results do not depend on the machine's load.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use parking_lot::Mutex;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prove_gateway::config::OutboundSettings;
use prove_gateway::resilience::Error as LimiterError;
use prove_gateway::resilience::{LocalRateLimiter, RateLimiter};
use tokio::time::Instant;

/// One caller: when it asks, its deadline, and when it stops waiting (the RPC is cancelled).
#[derive(Debug, Clone)]
struct Caller {
    arrives_ms: u64,
    deadline_ms: Option<u64>,
    gives_up_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Scenario {
    rps: u32,
    burst: u32,
    queue: usize,
    max_wait_ms: u64,
    callers: Vec<Caller>,
    /// Prove's pauses: when the answer arrives, and how long it asks to wait.
    pauses: Vec<(u64, u64)>,
    /// Moments the machine stalls: the clock jumps ahead, and every waiter due meanwhile wakes
    /// late, all at once.
    stalls: Vec<(u64, u64)>,
}

/// What happened, in the order it happened (one thread: the log's order is the real one).
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A caller joined the queue; `waiting` is the queue's length just after.
    Queued {
        waiting: usize,
    },
    Sent {
        at: Instant,
    },
    /// Refused because the queue was full; `waiting` is the queue's length then.
    Shed {
        waiting: usize,
    },
    Refused,
    GaveUp,
    Paused {
        until: Instant,
    },
}

fn caller(span_ms: u64) -> impl Strategy<Value = Caller> {
    (
        0..span_ms,
        proptest::option::of(1..3_000u64),
        proptest::option::weighted(0.2, 1..2_000u64),
    )
        .prop_map(|(arrives_ms, deadline_ms, gives_up_ms)| Caller {
            arrives_ms,
            deadline_ms,
            gives_up_ms,
        })
}

/// Scenarios of up to `callers` callers arriving within `span_ms`, with up to `pauses` pauses
/// and `stalls` stalls.
fn scenarios(
    callers: usize,
    span_ms: u64,
    queue: std::ops::RangeInclusive<usize>,
    pauses: usize,
    stalls: usize,
) -> impl Strategy<Value = Scenario> {
    (
        1..=30u32,
        1..=3u32,
        queue,
        50..=5_000u64,
        proptest::collection::vec(caller(span_ms), 1..=callers),
        proptest::collection::vec((0..span_ms, 1..2_500u64), 0..=pauses),
        proptest::collection::vec((0..span_ms, 1..300u64), 0..=stalls),
    )
        .prop_map(
            |(rps, burst, queue, max_wait_ms, callers, pauses, stalls)| Scenario {
                rps,
                burst,
                queue,
                max_wait_ms,
                callers,
                pauses,
                stalls,
            },
        )
}

/// Plays `scenario` on the paused clock and returns what happened.
async fn play(scenario: &Scenario) -> Vec<Event> {
    let limiter = Arc::new(LocalRateLimiter::new(&OutboundSettings {
        rate_limit_rps: scenario.rps,
        rate_limit_burst: scenario.burst,
        rate_limit_queue: scenario.queue,
        rate_limit_max_wait: Duration::from_millis(scenario.max_wait_ms),
        ..OutboundSettings::default()
    }));
    let log = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let ms = move |n: u64| start + Duration::from_millis(n);
    let mut tasks = Vec::new();
    for c in scenario.callers.clone() {
        let (limiter, log) = (limiter.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(ms(c.arrives_ms)).await;
            let deadline = c
                .deadline_ms
                .map(|d| Instant::now() + Duration::from_millis(d));
            let mut acquire = limiter.acquire("k", deadline);
            let result = match futures::poll!(&mut acquire) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => {
                    log.lock().push(Event::Queued {
                        waiting: limiter.waiting(),
                    });
                    match c.gives_up_ms {
                        Some(after) => tokio::time::timeout(Duration::from_millis(after), acquire)
                            .await
                            .ok(),
                        None => Some(acquire.await),
                    }
                }
            };
            let event = match result {
                Some(Ok(_)) => Event::Sent { at: Instant::now() },
                Some(Err(LimiterError::Overloaded { .. })) => Event::Shed {
                    waiting: limiter.waiting(),
                },
                Some(Err(_)) => Event::Refused,
                None => Event::GaveUp,
            };
            log.lock().push(event);
        }));
    }
    for (at, length) in scenario.pauses.clone() {
        let (limiter, log) = (limiter.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(ms(at)).await;
            let until = Instant::now() + Duration::from_millis(length);
            limiter.pause("k", until).await;
            log.lock().push(Event::Paused { until });
        }));
    }
    for (at, length) in scenario.stalls.clone() {
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(ms(at)).await;
            tokio::time::advance(Duration::from_millis(length)).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(limiter.waiting(), 0, "every caller left the queue");
    log.lock().clone()
}

/// Runs `cases` scenarios from `strategy` through `check`, on one paused runtime.
fn check_all(
    cases: u32,
    strategy: impl Strategy<Value = Scenario>,
    check: impl Fn(&Scenario, &[Event]) -> Result<(), TestCaseError>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let config = Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    };
    let result = TestRunner::new(config).run(&strategy, |scenario| {
        // Every caller ends within simulated minutes; a hung one would otherwise hang the test.
        let played = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3_600), play(&scenario)).await
        });
        let log = played.map_err(|_| TestCaseError::fail("a caller never finished"))?;
        check(&scenario, &log)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

fn sends(log: &[Event]) -> Vec<Instant> {
    log.iter()
        .filter_map(|e| match e {
            Event::Sent { at } => Some(*at),
            _ => None,
        })
        .collect()
}

#[test]
fn admitted_sends_never_exceed_the_rate_in_any_second() {
    // Stalls make waiters wake late and together: the sliding window must still hold.
    check_all(
        4_000,
        scenarios(24, 2_000, 1..=30, 2, 3),
        |scenario, log| {
            let sent = sends(log); // in time order: the log is
            for (i, first) in sent.iter().enumerate() {
                let in_second = sent[i..]
                    .iter()
                    .take_while(|t| **t < *first + Duration::from_secs(1))
                    .count();
                prop_assert!(
                    in_second <= scenario.rps as usize,
                    "{in_second} sends within a second at {} per second",
                    scenario.rps
                );
            }
            Ok(())
        },
    );
}

#[test]
fn a_pause_holds_every_caller_until_it_ends() {
    check_all(3_000, scenarios(16, 1_500, 1..=20, 3, 1), |_, log| {
        let mut paused_until: Option<Instant> = None;
        for event in log {
            match event {
                Event::Paused { until } => {
                    paused_until = Some(paused_until.map_or(*until, |p| p.max(*until)));
                }
                Event::Sent { at } => {
                    if let Some(until) = paused_until {
                        prop_assert!(
                            *at >= until,
                            "sent {:?} before the end of a pause already known",
                            until - *at
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(())
    });
}

#[test]
fn the_queue_bound_is_exact() {
    // Small queues, many callers, some giving up: the bound is reached and freed often.
    check_all(3_000, scenarios(24, 1_000, 1..=6, 1, 1), |scenario, log| {
        for event in log {
            match event {
                Event::Queued { waiting } => prop_assert!(
                    *waiting <= scenario.queue,
                    "{waiting} waiting on a queue of {}",
                    scenario.queue
                ),
                Event::Shed { waiting } => {
                    prop_assert_eq!(*waiting, scenario.queue, "shed while the queue had room")
                }
                _ => {}
            }
        }
        Ok(())
    });
}
