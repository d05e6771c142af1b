//! `grpc.health.v1` alone, in plaintext, on its own port.
//!
//! Kubelet's gRPC probes cannot do TLS, so with TLS on the gRPC port they need this one. It
//! serves the same health service as the gRPC port, so the NOT_SERVING of a shutdown shows here
//! too, and it answers until the server has drained. tonic's own server is enough here: the
//! connection limits of the gRPC port guard a port that clients reach, this one only the kubelet.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Serves `health` on `listener` until `stop`.
pub(super) async fn serve<S>(listener: TcpListener, health: S, stop: CancellationToken)
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let served = tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "the health port (PROVE_GATEWAY_HEALTH_LISTEN) stopped");
    }
}
