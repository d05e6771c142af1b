//! Starting a gateway in front of a simulator the test controls, and small assertion helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use prove_gateway::config::{Credentials, OutboundSettings, Settings, Upstream};
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::grpc::pb::verify_service_client::VerifyServiceClient;
use prove_gateway::grpc::pb::{PossessionType, UnifyRequest};
use prove_gateway::simulator::{self, Simulator, SimulatorConfig};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A gateway on a loopback port, its simulator, and clients for both services.
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
            Some(server) => server.await.expect("server task"),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::for_tests(addr);
    settings.upstream = Upstream::Prove {
        base_url: sim.base_url().parse().unwrap(),
        unify: credentials(
            simulator::SIM_UNIFY_CLIENT_ID,
            simulator::SIM_UNIFY_CLIENT_SECRET,
        ),
        verify: credentials(
            simulator::SIM_VERIFY_CLIENT_ID,
            simulator::SIM_VERIFY_CLIENT_SECRET,
        ),
    };
    configure(&mut settings);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(prove_gateway::server::run(settings, listener, async {
        let _ = rx.await;
    }));
    let channel = connect(addr).await;
    TestApp {
        addr,
        unify: UnifyServiceClient::new(channel.clone()),
        verify: VerifyServiceClient::new(channel.clone()),
        channel,
        sim,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn credentials(id: &str, secret: &str) -> Credentials {
    Credentials {
        client_id: id.to_owned(),
        client_secret: secret.to_owned().into(),
    }
}

/// Connects to `addr`, retrying briefly while the server starts.
pub async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    for _ in 0..100 {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gateway at {addr} did not accept connections");
}

/// A request carrying a `grpc-timeout`.
pub fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The ErrorInfo reason and domain of a status, and its metadata.
pub fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .expect("every error carries an ErrorInfo")
}

/// The `prove.gateway.v1.ProveError` detail of a status, if any.
pub fn prove_error(status: &tonic::Status) -> Option<prove_gateway::grpc::pb::ProveError> {
    use prost::Message;
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url == "type.googleapis.com/prove.gateway.v1.ProveError")
        .and_then(|any| prove_gateway::grpc::pb::ProveError::decode(any.value.as_slice()).ok())
}

/// A Unify request for `phone` with `possession`.
pub fn unify_request(possession: PossessionType, phone: &str) -> UnifyRequest {
    UnifyRequest {
        possession_type: possession as i32,
        phone_number: phone.into(),
        ..Default::default()
    }
}

/// The everyday Unify request: mobile possession for the full-flow sandbox user.
pub fn mobile_unify() -> UnifyRequest {
    unify_request(PossessionType::Mobile, "2001004014")
}

/// The log lines of one test only: a subscriber installed as this thread's default for as long
/// as the capture lives. On tokio's default (current-thread) test runtime every task of the
/// test, the gateway's and the simulator's included, runs on this thread, and no other test's
/// lines can mix in (a global subscriber would collect every test of the binary).
pub struct LogCapture {
    buffer: std::sync::Arc<parking_lot::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Captures everything the gateway and simulator log (TRACE), and INFO from dependencies,
    /// with each event's span fields and a line for each span's close (so span fields show up
    /// even where no event was logged).
    pub fn start() -> Self {
        let buffer = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || CaptureWriter(buffer.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,prove_gateway=trace",
            ))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock()).into_owned()
    }

    /// Waits until a captured line contains `needle`, for at most ten seconds.
    pub async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while !self.text().contains(needle) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "no log line with {needle:?}:\n{}",
            self.text()
        );
    }
}

struct CaptureWriter(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
