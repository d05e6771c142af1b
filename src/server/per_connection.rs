//! What happens to one accepted connection before HTTP/2: the TLS handshake when TLS is on (under
//! the handshake timeout, in the connection's own task), then the per-connection service stack:
//! the caller's certificate identity into every request's extensions, tracing, the edge, the
//! simulator's mark, and the access check (who is calling, and may they call this method).

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::settings::ConnectionSettings;
use super::{connection, edge, simulated, tls};
use crate::callers::PeerIdentity;

/// What every connection's task needs.
#[derive(Clone)]
pub(super) struct PerConnection {
    pub(super) routes: Routes,
    pub(super) access: crate::grpc::access::AccessLayer,
    /// The `prove-gateway-simulated` mark, only in front of the embedded simulator.
    pub(super) simulated: Option<simulated::SimulatedLayer>,
    pub(super) trace: crate::telemetry::GrpcTraceLayer,
    pub(super) http2: hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>,
    pub(super) limits: ConnectionSettings,
    pub(super) draining: CancellationToken,
    pub(super) cut: CancellationToken,
}

impl PerConnection {
    /// Serves one accepted connection, after its TLS handshake when `tls` is set. The handshake
    /// and the HTTP/2 preface share the handshake timeout.
    pub(super) async fn accept(&self, stream: tokio::net::TcpStream, tls: Option<tls::Tls>) {
        connection::tune(&stream, &self.limits);
        let handshake_by = Instant::now() + self.limits.handshake_timeout;
        let Some(tls) = tls else {
            return self.serve(stream, None, handshake_by).await;
        };
        let handshake = tokio::select! {
            () = self.draining.cancelled() => return,
            done = tokio::time::timeout_at(handshake_by, tls.handshake(stream)) => done,
        };
        match handshake {
            Ok(Ok((stream, peer))) => self.serve(stream, peer, handshake_by).await,
            // A client without a valid certificate, a port scanner, a plaintext client.
            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed: closing"),
            Err(_) => {
                tracing::debug!("no TLS handshake within PROVE_GATEWAY_HANDSHAKE_TIMEOUT: closing");
            }
        }
    }

    /// Serves HTTP/2 on `stream`; `peer`, the identity the client certificate proved, goes into
    /// the extensions of each of its requests (found once, at the handshake).
    async fn serve<IO>(&self, stream: IO, peer: Option<PeerIdentity>, handshake_by: Instant)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let state = edge::ConnectionState::new(self.cut.clone());
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                if let Some(peer) = &peer {
                    request.extensions_mut().insert(peer.clone());
                }
                request
            })
            .layer(self.trace.clone())
            .layer(edge::EdgeLayer::new(state.clone()))
            .option_layer(self.simulated)
            .layer(self.access.clone())
            .service(self.routes.clone());
        connection::serve(
            stream,
            service,
            state,
            &self.http2,
            &self.limits,
            handshake_by,
            &self.draining,
        )
        .await;
    }
}
