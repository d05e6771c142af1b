//! The cost of the trust boundary (issue 15): the same Unify at c=1 through two gateway
//! processes started in the same run, one plaintext and open, one with TLS, mTLS and a callers
//! file that lists the bench's client certificate. Each is measured over one connection
//! established before the measurement, so the figures are per call after the handshake: record
//! layer encryption, the access check (identity lookup, allow list) and the caller's session
//! record.

use std::time::Duration;

use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::fast_sim::FastSimulator;
use super::load::{Run, Target, closed_loop, connect};
use super::process::{GatewayProcess, Upstream, free_port};
use crate::fixture::callers::CallersMount;
use crate::fixture::certs::{Ca, Leaf, SecretDir};

/// The bench's identity, as its client certificate's SPIFFE URI SAN names it.
const IDENTITY: &str = "spiffe://prove-gateway.bench/ns/bench/sa/load";

/// What the phase needs of the plan.
pub struct Timing {
    pub warmup: Duration,
    pub rounds: u32,
    pub round: Duration,
    pub max_calls: usize,
}

/// The pooled c=1 runs of both gateways, sorted.
pub struct Cost {
    pub plaintext: Run,
    pub mtls: Run,
}

/// Neither limiter acts: the same settings as the latency phase.
const NO_LIMIT: [(&str, &str); 2] = [
    ("PROVE_RATE_LIMIT_RPS", "1000000"),
    ("PROVE_RATE_LIMIT_QUEUE", "100000"),
];

/// Starts both gateways in front of one simulator and measures c=1 Unify latency through each,
/// in interleaved rounds (plaintext, mTLS, plaintext, ...), so that background load falls on
/// both alike.
pub async fn measure(timing: &Timing) -> anyhow::Result<Cost> {
    // The same simulator as the latency phase.
    let fast = FastSimulator::spawn().await?;
    let sim = &fast.sim;
    let url = sim.base_url();

    let mut plaintext = GatewayProcess::spawn(Upstream::Url(&url), &NO_LIMIT)?;
    plaintext.wait_serving(Duration::from_secs(20)).await?;
    let plaintext_target = Target::Grpc(UnifyServiceClient::new(connect(plaintext.addr).await?));

    // The certificates and the callers file live in a temporary directory, laid out as the
    // chart mounts them; they go when the phase ends.
    let ca = Ca::new("prove-gateway bench CA");
    let secret = SecretDir::new(&ca.server(), &ca.pem());
    let callers = CallersMount::new(&format!(
        "callers:\n  - name: bench\n    identities: [\"{IDENTITY}\"]\n    allow: [\"prove.gateway.v1.UnifyService/*\"]\n"
    ));
    let client = ca.client(IDENTITY);
    let health = free_port()?;
    let (cert, key, client_ca, callers_file, health_listen) = (
        secret.path("tls.crt").display().to_string(),
        secret.path("tls.key").display().to_string(),
        secret.path("ca.crt").display().to_string(),
        callers.path().display().to_string(),
        health.to_string(),
    );
    let mut mtls = GatewayProcess::spawn(
        Upstream::Url(&url),
        &[
            NO_LIMIT[0],
            NO_LIMIT[1],
            ("PROVE_GATEWAY_TLS_CERT_FILE", &cert),
            ("PROVE_GATEWAY_TLS_KEY_FILE", &key),
            ("PROVE_GATEWAY_CLIENT_CA_FILE", &client_ca),
            ("PROVE_GATEWAY_CALLERS_FILE", &callers_file),
            // Health in plaintext on its own port: the gRPC port asks for a certificate.
            ("PROVE_GATEWAY_HEALTH_LISTEN", &health_listen),
        ],
    )?;
    mtls.wait_serving_on(health, Duration::from_secs(20))
        .await?;
    let mtls_target = Target::Grpc(UnifyServiceClient::new(
        connect_mtls(mtls.addr, &ca, &client).await?,
    ));
    // One call each before timing anything: a refused certificate or an unlisted identity
    // stops the phase instead of being measured as fast errors.
    for (name, target) in [("plaintext", &plaintext_target), ("mTLS", &mtls_target)] {
        if !target.clone().call().await {
            anyhow::bail!("the {name} gateway did not serve the bench's Unify");
        }
    }

    for target in [&plaintext_target, &mtls_target] {
        closed_loop(target, 1, timing.warmup / 4, timing.max_calls).await;
    }
    let (mut p, mut m) = (Run::default(), Run::default());
    for _ in 0..timing.rounds {
        p.absorb(closed_loop(&plaintext_target, 1, timing.round, timing.max_calls).await);
        m.absorb(closed_loop(&mtls_target, 1, timing.round, timing.max_calls).await);
    }

    plaintext.stop();
    mtls.stop();
    fast.shutdown().await;
    Ok(Cost {
        plaintext: p.sorted(),
        mtls: m.sorted(),
    })
}

/// One HTTP/2 connection to the gateway's TLS port, trusting `ca`, presenting `client`;
/// retried briefly while the server starts.
async fn connect_mtls(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: &Leaf,
) -> anyhow::Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost")
        .identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(500));
    let mut last = None;
    for _ in 0..50 {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow::anyhow!(
        "cannot connect over mTLS to {addr}: {last:?}"
    ))
}
