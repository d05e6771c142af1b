//! The gateway as its own process (`target/release/prove-gateway`, built by `cargo bench` for
//! this bench target): start it, wait for health SERVING, read its resident set, stop it.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use prove_gateway::simulator;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The gateway binary of this package (Cargo sets the variable for benches).
pub const BIN: &str = env!("CARGO_BIN_EXE_prove-gateway");

/// The binary to run: [`BIN`], or `BENCH_GATEWAY_BIN` (to compare another build of the gateway
/// under the same load generator).
pub fn bin() -> String {
    std::env::var("BENCH_GATEWAY_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// A free loopback port (bound and released; the gateway binds it right after).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Where the gateway gets Prove from.
pub enum Upstream<'a> {
    /// No `PROVE_BASE_URL`: the gateway starts its embedded simulator.
    Embedded,
    /// `PROVE_BASE_URL` and the simulator's credentials.
    Url(&'a str),
}

/// A running gateway process; killed on drop.
pub struct GatewayProcess {
    child: Child,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// When it was spawned.
    pub spawned: Instant,
}

impl GatewayProcess {
    /// Starts the gateway with a clean environment: `upstream`, fresh ports, default logging
    /// (info, text, to /dev/null) and `extra` settings.
    pub fn spawn(upstream: Upstream<'_>, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let metrics = free_port()?;
        let bin = bin();
        let mut command = Command::new(&bin);
        command
            .env_clear()
            .env("PROVE_GATEWAY_LISTEN", addr.to_string())
            .env("PROVE_GATEWAY_METRICS_LISTEN", metrics.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Upstream::Url(url) = upstream {
            command
                .env("PROVE_BASE_URL", url)
                .env("PROVE_CLIENT_ID", simulator::SIM_UNIFY_CLIENT_ID)
                .env("PROVE_CLIENT_SECRET", simulator::SIM_UNIFY_CLIENT_SECRET)
                .env("PROVE_VERIFY_CLIENT_ID", simulator::SIM_VERIFY_CLIENT_ID)
                .env(
                    "PROVE_VERIFY_CLIENT_SECRET",
                    simulator::SIM_VERIFY_CLIENT_SECRET,
                );
        }
        command.envs(extra.iter().copied());
        // Diagnostics: `BENCH_GATEWAY_ENV="PROVE_GATEWAY_LOG=warn OTEL_TRACES_SAMPLER=always_off"`
        // adds settings to every gateway process (not used for BENCHMARKS.md's figures).
        if let Ok(more) = std::env::var("BENCH_GATEWAY_ENV") {
            for pair in more.split_whitespace() {
                if let Some((key, value)) = pair.split_once('=') {
                    command.env(key, value);
                }
            }
        }
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}"))?;
        Ok(Self {
            child,
            addr,
            spawned,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `grpc.health.v1.Health/Check` every 5 ms (for at most `limit`) and returns the time
    /// from spawn to the first SERVING answer.
    pub async fn wait_serving(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        self.wait_serving_on(self.addr, limit).await
    }

    /// [`Self::wait_serving`] on the plaintext health port `health` (a gateway with TLS).
    pub async fn wait_serving_on(
        &mut self,
        health: SocketAddr,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let endpoint = Endpoint::from_shared(format!("http://{health}"))?
            .connect_timeout(Duration::from_millis(100))
            .timeout(Duration::from_millis(500));
        let give_up = Instant::now() + limit;
        while Instant::now() < give_up {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the gateway exited during start-up: {status}");
            }
            if let Ok(channel) = endpoint.connect().await {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if answer.is_ok_and(|a| a.get_ref().status == ServingStatus::Serving as i32) {
                    return Ok(self.spawned.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("the gateway did not answer SERVING within {limit:?}")
    }

    /// `VmRSS` and `VmHWM` (peak resident set) in bytes, from `/proc/<pid>/status`.
    pub fn rss(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .ok_or_else(|| anyhow::anyhow!("{name} missing in /proc status"))?;
            let kb: u64 = line
                .trim_start_matches(name)
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()?;
            Ok(kb * 1024)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Kills the process and reaps it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of process `pid` ("self" for this one) from `/proc/<pid>/stat`,
/// in clock ticks of 10 ms (USER_HZ is 100 on Linux).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after_name` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Bytes as MB (10^6, the unit of the target) with one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
