//! The simulator the latency phases call: no rate limit, and a clock that jumps so its cost
//! stays the same in every round.
//!
//! Every /v3/unify starts a session, and the simulator sweeps its whole session map on each
//! start (sessions live 15 minutes), so at thousands of calls per second it slows down as the
//! run goes on. Its clock therefore jumps 16 minutes every 50 ms: each sweep sees at most 50 ms
//! of sessions. Tokens live 10 years of that clock.

use std::sync::Arc;
use std::time::Duration;

use prove_gateway::simulator::{self, ManualClock, Simulator, SimulatorConfig};

/// A running simulator and the task that moves its clock.
pub struct FastSimulator {
    pub sim: Simulator,
    ticker: tokio::task::JoinHandle<()>,
}

impl FastSimulator {
    pub async fn spawn() -> anyhow::Result<Self> {
        let clock = Arc::new(ManualClock::new());
        let sim = simulator::spawn(SimulatorConfig {
            rate_limit_rps: 0,
            token_ttl: Duration::from_secs(10 * 365 * 24 * 3600),
            clock: clock.clone(),
            ..SimulatorConfig::default()
        })
        .await?;
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                clock.advance(Duration::from_secs(16 * 60));
            }
        });
        Ok(Self { sim, ticker })
    }

    pub async fn shutdown(self) {
        self.ticker.abort();
        self.sim.shutdown().await;
    }
}
