//! TLS on the gRPC port, and mTLS when a client CA is configured.
//!
//! rustls (with aws-lc-rs, the provider reqwest already uses) does the handshake, inside each
//! connection's task and under the handshake timeout, so a client that never finishes it holds
//! its connection slot no longer than that and never holds up the accept loop. The certificate
//! and the client CA are re-read from disk while the server runs ([`reload`]). With mTLS, the
//! caller's identity is read from its verified certificate once, at the handshake; the server
//! then puts it in the extensions of every request of that connection.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::NoServerSessionStorage;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::callers::{PeerIdentity, identity};
use crate::server::settings::TlsSettings;

mod files;
mod reload;

/// Accepts TLS connections with the current certificate.
#[derive(Clone)]
pub(super) struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    mutual: bool,
}

impl Tls {
    /// Reads the files, fails naming the variable of one that cannot be used, and keeps reading
    /// them every reload interval until `stop`.
    pub(super) async fn start(
        settings: &TlsSettings,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let paths = files::Paths::from(settings);
        let reading = paths.clone();
        let contents = tokio::task::spawn_blocking(move || reading.read()).await??;
        let material = paths.parse(&contents, &provider)?;

        let cert = Arc::new(reload::CurrentCert::new(material.key));
        let verifier = material
            .client_verifier
            .map(|verifier| Arc::new(reload::CurrentVerifier::new(verifier)));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = match &verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
            None => builder.with_no_client_auth(),
        }
        .with_cert_resolver(cert.clone());
        // gRPC is HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: a resumed session skips the client certificate check, so a
        // certificate expired or a CA rotated out since would still get in. gRPC connections
        // are long-lived; a full handshake each is cheap.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;

        tokio::spawn(reload::poll_files(
            paths,
            provider,
            reload::Watch::new(contents),
            cert,
            verifier.clone(),
            settings.reload_interval,
            stop,
        ));
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mutual: verifier.is_some(),
        })
    }

    /// Runs the handshake on `stream`; with mTLS, also returns the identity the client's
    /// certificate proves (`None` when it names nobody).
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<PeerIdentity>)> {
        let stream = self.acceptor.accept(stream).await?;
        let peer = if self.mutual {
            let (_, session) = stream.get_ref();
            session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| identity::of_certificate(cert))
        } else {
            None
        };
        Ok((stream, peer))
    }
}

#[cfg(test)]
mod tests;
