//! The gRPC server: both services, `grpc.health.v1`, reflection (v1 and v1alpha, so grpcurl and
//! ghz work without .proto files), connection limits, and graceful shutdown.
//!
//! tonic provides the services and their routing; the accept loop and the HTTP/2 connections
//! are the gateway's own ([`listener`], [`connection`]), because tonic's loop has no cap on
//! connections and no per-connection hook to close one that never completes its handshake or
//! sits idle.
//!
//! Shutdown, in order: health turns NOT_SERVING (so load balancers and Kubernetes stop sending);
//! after the optional shutdown delay (calls are still served meanwhile, for load balancers that
//! are slow to notice) the listener closes and every connection gets an HTTP/2 GOAWAY, which
//! refuses new calls; calls in flight get up to the drain timeout to finish, except a call whose
//! request message is still incomplete a moment later, which is answered at once; then [`run`]
//! returns and the process exits 0.
//!
//! With TLS configured the gRPC port speaks only TLS ([`tls`]), and `grpc.health.v1` can also be
//! served in plaintext on a port of its own ([`health`]) for kubelet's probes.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::callers::Callers;
use crate::grpc::access::AccessLayer;
use crate::grpc::pb::unify_service_server::UnifyServiceServer;
use crate::grpc::pb::verify_service_server::VerifyServiceServer;
use crate::grpc::{self, UnifyApi, VerifyApi};
use crate::prove::{Credentials, ProveClient, Upstream};
use crate::resilience::{self, http::build_client};
use crate::simulator;

mod connection;
mod edge;
mod health;
mod listener;
mod per_connection;
pub mod settings;
mod simulated;
mod tls;

pub use listener::raise_open_file_limit;
pub use settings::{ConnectionSettings, Settings, TlsSettings};

/// Once draining began, how long a call whose request message is still arriving may take to
/// complete it before it is cut (a stalled client must not hold shutdown for the drain timeout).
const INCOMPLETE_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The Prove client and, in simulator mode, the embedded simulator it talks to (kept alive as
/// long as the server runs).
async fn connect_upstream(
    settings: &Settings,
) -> anyhow::Result<(ProveClient, Option<simulator::Simulator>)> {
    let (base_url, unify, verify, embedded) = match &settings.upstream {
        Upstream::Prove {
            base_url,
            unify,
            verify,
        } => (base_url.clone(), unify.clone(), verify.clone(), None),
        Upstream::Simulator { listen } => {
            let config = simulator::SimulatorConfig {
                listen: *listen,
                ..simulator::SimulatorConfig::default()
            };
            let sim = simulator::spawn(config)
                .await
                .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_SIMULATOR_LISTEN {listen}: {e}"))?;
            // WARN, in words an operator who never read the docs understands: a deployment
            // that lost its PROVE_BASE_URL lands here.
            tracing::warn!(
                url = %sim.base_url(),
                "answers are SIMULATED: no person is verified and no SMS is sent; no \
                 PROVE_BASE_URL is set, so the embedded Prove simulator answers every call \
                 (responses carry prove-gateway-simulated: true). Set PROVE_BASE_URL and its \
                 credentials for Prove, and PROVE_GATEWAY_PROFILE=production to forbid this"
            );
            let creds = |id: &str, secret: &str| Credentials {
                client_id: id.to_owned(),
                client_secret: secret.to_owned().into(),
            };
            (
                url::Url::parse(&sim.base_url())?,
                creds(
                    simulator::SIM_UNIFY_CLIENT_ID,
                    simulator::SIM_UNIFY_CLIENT_SECRET,
                ),
                creds(
                    simulator::SIM_VERIFY_CLIENT_ID,
                    simulator::SIM_VERIFY_CLIENT_SECRET,
                ),
                Some(sim),
            )
        }
    };
    let client = build_client(settings.outbound.connect_timeout)?;
    let limiter = resilience::limiter(&settings.outbound)
        .map_err(|e| anyhow::anyhow!("PROVE_RATE_LIMIT_REDIS_URL: {e}"))?;
    let outbound = resilience::outbound_stack(client, base_url, limiter, &settings.outbound);
    crate::telemetry::metrics::set_simulated(embedded.is_some());
    Ok((ProveClient::new(outbound, unify, verify), embedded))
}

/// Marks every service, and the server as a whole (service name ""), as `status`.
async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(
            <UnifyServiceServer<UnifyApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <VerifyServiceServer<VerifyApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Serves on `listener` (and on `PROVE_GATEWAY_HEALTH_LISTEN`, when set) until `shutdown`
/// completes, then drains (see the module docs).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let health_listener = match settings.health_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_HEALTH_LISTEN {addr}: {e}"))?,
        ),
        None => None,
    };
    run_with_health_listener(settings, listener, health_listener, shutdown).await
}

/// [`run`], with the plaintext health listener bound by the caller (tests bind port 0 and keep
/// the socket, as for the gRPC listener).
pub async fn run_with_health_listener(
    settings: Settings,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Ends the certificate reloads and the health port however `run` returns.
    let stopped = CancellationToken::new();
    let _stop_on_return = stopped.clone().drop_guard();
    // Unusable certificate files stop the start here, before anything listens.
    let tls = match &settings.tls {
        Some(tls) => Some(tls::Tls::start(tls, stopped.clone()).await?),
        None => None,
    };
    let callers = Callers::start(&settings.callers)
        .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_CALLERS_FILE {e}"))?;
    let (prove, embedded) = connect_upstream(&settings).await?;
    let store = crate::store::Store::new(&settings.store)
        .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_REDIS_URL: {e}"))?;
    let sessions = grpc::sessions::SessionGuard::new(store, &settings.sessions);
    crate::telemetry::metrics::register_methods(grpc::methods());
    crate::telemetry::metrics::register_endpoints(
        crate::prove::Endpoint::ALL.map(crate::prove::Endpoint::path),
    );
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::Serving).await;
    if let Some(health_listener) = health_listener {
        tokio::spawn(health::serve(
            health_listener,
            health.clone(),
            stopped.clone(),
        ));
    }

    let mut routes = Routes::builder();
    routes.add_service(health);
    if settings.reflection {
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // The error details (google.rpc.ErrorInfo, RetryInfo, BadRequest) too, so grpcurl
            // can decode them.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        routes
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
    }
    routes
        .add_service(UnifyServiceServer::new(UnifyApi::new(
            prove.clone(),
            sessions.clone(),
        )))
        .add_service(VerifyServiceServer::new(VerifyApi::new(prove, sessions)));
    let routes = routes.routes().prepare();

    let draining = CancellationToken::new();
    let cut = CancellationToken::new();
    let access = AccessLayer::new(callers);
    let serving = serve(listener, tls, routes, access, &settings, &draining, &cut);
    tokio::pin!(serving);

    let shutdown_delay = settings.shutdown_delay;
    let drain_timeout = settings.drain_timeout;
    let stopping = async {
        shutdown.await;
        set_health(&reporter, ServingStatus::NotServing).await;
        tracing::info!(
            delay_ms = shutdown_delay.as_millis() as u64,
            "shutdown requested: NOT_SERVING; refusing new calls after the delay"
        );
        tokio::time::sleep(shutdown_delay).await;
        tracing::info!("refusing new calls; draining calls in flight");
        draining.cancel();
        let grace = INCOMPLETE_REQUEST_GRACE.min(drain_timeout);
        tokio::time::sleep(grace).await;
        cut.cancel();
        tokio::time::sleep(drain_timeout.saturating_sub(grace)).await;
    };
    tokio::select! {
        () = &mut serving => {}
        () = stopping => {
            tracing::warn!(
                timeout_ms = drain_timeout.as_millis() as u64,
                "drain timeout passed; calls still in flight are dropped"
            );
        }
    }
    if let Some(sim) = embedded {
        sim.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves connections from `listener` until `draining` is cancelled, then waits for every
/// connection to close.
async fn serve(
    listener: TcpListener,
    tls: Option<tls::Tls>,
    routes: Routes,
    access: AccessLayer,
    settings: &Settings,
    draining: &CancellationToken,
    cut: &CancellationToken,
) {
    let limits = &settings.connections;
    // One slot per open connection; the connection's task holds it until the connection closes.
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let each = per_connection::PerConnection {
        routes,
        access,
        // Only in front of the embedded simulator: with a real upstream the mark cannot appear.
        simulated: matches!(settings.upstream, Upstream::Simulator { .. })
            .then_some(simulated::SimulatedLayer),
        trace: crate::telemetry::GrpcTraceLayer::default(),
        http2: connection::http2_builder(limits),
        limits: limits.clone(),
        draining: draining.clone(),
        cut: cut.clone(),
    };
    listener::accept_until(&listener, &slots, draining, |stream, slot| {
        let (each, tls) = (each.clone(), tls.clone());
        tokio::spawn(async move {
            each.accept(stream, tls).await;
            drop(slot);
        });
    })
    .await;
    // Closing the listening socket makes the kernel refuse new connections at once.
    drop(listener);
    // Every slot back: every connection closed.
    let _ = slots.acquire_many(limits.max_connections).await;
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
