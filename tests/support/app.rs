//! A gateway (`server::run`, in this process) on a loopback listener it keeps, in front of a
//! simulator serving over real HTTP, and gRPC clients for both services.

use std::net::SocketAddr;
use std::time::Duration;

use prove_gateway::config::{Credentials, OutboundSettings, Settings, Upstream};
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::grpc::pb::verify_service_client::VerifyServiceClient;
use prove_gateway::simulator::{self, Simulator, SimulatorConfig};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A gateway on a loopback port, its simulator, and clients for both services. Dropping it
/// stops the gateway as SIGTERM would.
pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    pub sim: Simulator,
    pub unify: UnifyServiceClient<Channel>,
    pub verify: VerifyServiceClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Stops the gateway as SIGTERM would and waits for it to finish draining.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A gateway with default limits in front of a default simulator.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(SimulatorConfig::default(), OutboundSettings::default()).await
}

/// A gateway with `outbound` limits in front of a simulator built from `sim`.
pub async fn spawn_app_with(sim: SimulatorConfig, outbound: OutboundSettings) -> TestApp {
    spawn_app_configured(sim, |settings| settings.outbound = outbound).await
}

/// A gateway whose settings `configure` adjusts, in front of a simulator built from `sim`.
pub async fn spawn_app_configured(
    sim: SimulatorConfig,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let sim = simulator::spawn(sim).await.expect("simulator starts");
    spawn_gateway(sim, configure).await
}

/// A gateway (one more replica) in front of an existing simulator.
pub async fn spawn_gateway(sim: Simulator, configure: impl FnOnce(&mut Settings)) -> TestApp {
    try_spawn_gateway(sim, configure)
        .await
        .expect("the gateway starts")
}

/// [`spawn_gateway`], with its failures as errors (the bench reports them instead of panicking).
pub async fn try_spawn_gateway(
    sim: Simulator,
    configure: impl FnOnce(&mut Settings),
) -> anyhow::Result<TestApp> {
    // The gateway gets the bound listener itself: no window in which another process could
    // take the port between choosing and binding it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut settings = Settings::for_tests(addr);
    settings.upstream = upstream(&sim)?;
    configure(&mut settings);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(prove_gateway::server::run(settings, listener, async {
        let _ = rx.await;
    }));
    let channel = try_connect(addr).await?;
    Ok(TestApp {
        addr,
        unify: UnifyServiceClient::new(channel.clone()),
        verify: VerifyServiceClient::new(channel.clone()),
        channel,
        sim,
        shutdown: Some(tx),
        server: Some(server),
    })
}

/// Prove at the simulator's address, with the simulator's credentials for both products.
pub fn upstream(sim: &Simulator) -> anyhow::Result<Upstream> {
    Ok(Upstream::Prove {
        base_url: sim.base_url().parse()?,
        unify: credentials(
            simulator::SIM_UNIFY_CLIENT_ID,
            simulator::SIM_UNIFY_CLIENT_SECRET,
        ),
        verify: credentials(
            simulator::SIM_VERIFY_CLIENT_ID,
            simulator::SIM_VERIFY_CLIENT_SECRET,
        ),
    })
}

pub fn credentials(id: &str, secret: &str) -> Credentials {
    Credentials {
        client_id: id.to_owned(),
        client_secret: secret.to_owned().into(),
    }
}

/// Connects to `addr`, retrying briefly while the server starts.
pub async fn connect(addr: SocketAddr) -> Channel {
    try_connect(addr)
        .await
        .expect("the gateway accepts connections")
}

/// [`connect`], with a refusal after 100 tries 20 ms apart as an error.
pub async fn try_connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let mut last = None;
    for _ in 0..100 {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("gateway at {addr} did not accept connections: {last:?}")
}
