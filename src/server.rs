//! The tonic server: both services, `grpc.health.v1`, reflection (v1 and v1alpha, so grpcurl and
//! ghz work without .proto files), and graceful shutdown.
//!
//! Shutdown, in order: health turns NOT_SERVING (so load balancers and Kubernetes stop sending);
//! after the optional shutdown delay (calls are still served meanwhile, for load balancers that
//! are slow to notice) the listener closes and HTTP/2 GOAWAY refuses new calls; calls in flight
//! get up to the drain timeout to finish; then [`run`] returns and the process exits 0.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::{Credentials, Settings, Upstream};
use crate::grpc::pb::unify_service_server::UnifyServiceServer;
use crate::grpc::pb::verify_service_server::VerifyServiceServer;
use crate::grpc::{self, UnifyApi, VerifyApi};
use crate::prove::ProveClient;
use crate::resilience::{self, http::build_client};
use crate::simulator;

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
            tracing::info!(
                url = %sim.base_url(),
                "no PROVE_BASE_URL: using the embedded Prove simulator"
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

/// Serves on `listener` until `shutdown` completes, then drains (see the module docs).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (prove, embedded) = connect_upstream(&settings).await?;
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::Serving).await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // The error details (google.rpc.ErrorInfo, RetryInfo, BadRequest) too, so grpcurl can
        // decode them.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown_delay = settings.shutdown_delay;
    let signal = async move {
        shutdown.await;
        set_health(&reporter, ServingStatus::NotServing).await;
        tracing::info!(
            delay_ms = shutdown_delay.as_millis() as u64,
            "shutdown requested: NOT_SERVING; refusing new calls after the delay"
        );
        tokio::time::sleep(shutdown_delay).await;
        tracing::info!("refusing new calls; draining calls in flight");
        let _ = draining_tx.send(());
    };

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = Server::builder()
        .layer(crate::telemetry::GrpcTraceLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(UnifyServiceServer::new(UnifyApi::new(prove.clone())))
        .add_service(VerifyServiceServer::new(VerifyApi::new(prove)))
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);

    let drain_timeout = settings.drain_timeout;
    let drain_deadline = async move {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = &mut server => served?,
        () = drain_deadline => {
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
