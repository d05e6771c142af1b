//! Several replicas share Prove's 25 requests per second through a real `redis-server`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prove_gateway::config::OutboundSettings;
use prove_gateway::simulator::{self, SimulatorConfig};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::helpers::{TestApp, mobile_unify as unify, spawn_gateway};

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    child,
                    url: format!("redis://127.0.0.1:{port}"),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let redis = Redis::start().await;
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
    let mut app = spawn_gateway(sim.clone(), |s| {
        s.outbound = shared(&format!("redis://127.0.0.1:{port}"));
    })
    .await;
    app.unify
        .unify(unify())
        .await
        .expect("served without Redis");
    assert_eq!(sim.records().count_status("/v3/unify", 200), 1);
}
