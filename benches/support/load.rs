//! The load generator (a Rust stand-in for ghz): the two ways a service can make a Unify call,
//! and a closed loop that keeps a fixed number of calls in flight for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::grpc::pb::{PossessionType, UnifyRequest};
use prove_gateway::simulator;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};

/// The sandbox user every call uses (Unify, passes; answers `pending`).
pub const PHONE: &str = "2001004014";

/// The gRPC request through the gateway.
pub fn unify_request() -> UnifyRequest {
    UnifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: PHONE.to_owned(),
        ..UnifyRequest::default()
    }
}

/// A tonic channel to `addr`, retrying briefly while the server starts.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(200));
    let mut last = None;
    for _ in 0..100 {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow::anyhow!("cannot connect to {addr}: {last:?}"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UnifyJson<'a> {
    possession_type: &'a str,
    phone_number: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct UnifyAnswer {
    success: String,
    correlation_id: String,
    auth_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// The direct path a service would take without the gateway: reqwest (built exactly like the
/// gateway's own client), a bearer token from `/token`, JSON to `/v3/unify`, JSON back.
#[derive(Clone)]
pub struct Direct {
    client: reqwest::Client,
    unify_url: Arc<str>,
    bearer: Arc<str>,
}

impl Direct {
    /// Fetches a token for the simulator's Unify client and keeps it.
    pub async fn new(base_url: &str) -> anyhow::Result<Self> {
        let client = prove_gateway::resilience::http::build_client(Duration::from_secs(3))?;
        let token: TokenAnswer = client
            .post(format!("{base_url}/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", simulator::SIM_UNIFY_CLIENT_ID),
                ("client_secret", simulator::SIM_UNIFY_CLIENT_SECRET),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Self {
            client,
            unify_url: format!("{base_url}/v3/unify").into(),
            bearer: token.access_token.into(),
        })
    }

    /// One Unify call; `true` when it answered 200 with a body that parses.
    pub async fn unify(&self) -> bool {
        let sent = self
            .client
            .post(&*self.unify_url)
            .bearer_auth(&self.bearer)
            .header(ACCEPT, "application/json")
            .json(&UnifyJson {
                possession_type: "mobile",
                phone_number: PHONE,
            })
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                response.json::<UnifyAnswer>().await.is_ok()
            }
            _ => false,
        }
    }
}

/// What a closed loop calls.
#[derive(Clone)]
pub enum Target {
    /// UnifyService/Unify over gRPC (the gateway, or the bare tonic server).
    Grpc(UnifyServiceClient<Channel>),
    /// POST /v3/unify straight at the simulator.
    Direct(Direct),
}

impl Target {
    /// One call; `true` on success.
    pub async fn call(&mut self) -> bool {
        match self {
            Self::Grpc(client) => client.unify(unify_request()).await.is_ok(),
            Self::Direct(direct) => direct.unify().await,
        }
    }
}

/// The outcome of one closed-loop run.
#[derive(Debug, Default)]
pub struct Run {
    /// Latency of each successful call.
    pub latencies: Vec<Duration>,
    /// Calls that failed.
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Run {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Appends another run's calls (interleaved rounds of the same measurement).
    pub fn absorb(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    /// Sorts the latencies for [`super::stats::pct`].
    pub fn sorted(mut self) -> Self {
        self.latencies.sort_unstable();
        self
    }
}

/// Keeps `concurrency` calls in flight for `duration` (and at most `max_calls` calls in all):
/// each worker starts its next call as soon as the previous one answers.
pub async fn closed_loop(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    max_calls: usize,
) -> Run {
    let started = Instant::now();
    let end = started + duration;
    let issued = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let mut target = target.clone();
        let issued = Arc::clone(&issued);
        workers.spawn(async move {
            let mut run = Run::default();
            while Instant::now() < end && issued.fetch_add(1, Ordering::Relaxed) < max_calls {
                let t = Instant::now();
                if target.call().await {
                    run.latencies.push(t.elapsed());
                } else {
                    run.errors += 1;
                }
            }
            run
        });
    }
    let mut total = Run::default();
    while let Some(joined) = workers.join_next().await {
        if let Ok(run) = joined {
            total.latencies.extend(run.latencies);
            total.errors += run.errors;
        }
    }
    total.elapsed = started.elapsed();
    total
}
