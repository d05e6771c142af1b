//! The identity of a client certificate reaches every request of its connection, over a real
//! socket: the server's own accept loop with an echo route in place of the gRPC services (no
//! service reads the identity yet; the access layer will).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::sync::CancellationToken;

use super::Tls;
use crate::callers::PeerIdentity;
use crate::server::settings::{Settings, TlsSettings};

#[path = "../../../tests/support/certs.rs"]
mod certs;

use certs::{Ca, Leaf, SecretDir};

/// A route answering with the `PeerIdentity` in its request's extensions, or `none`.
fn echo_identity() -> tonic::service::Routes {
    let router = axum::Router::new().route(
        "/identity",
        axum::routing::get(|request: axum::extract::Request| async move {
            match request.extensions().get::<PeerIdentity>() {
                Some(peer) => peer.0.to_string(),
                None => "none".to_owned(),
            }
        }),
    );
    tonic::service::Routes::from(router)
}

/// An HTTP/2 connection over TLS presenting `client`.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: &Leaf,
) -> h2::client::SendRequest<Bytes> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(client.der.clone())],
        PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    send
}

/// The identity the server saw on one request of `connection`.
async fn identity_seen(connection: &mut h2::client::SendRequest<Bytes>) -> String {
    let request = http::Request::get("https://localhost/identity")
        .body(())
        .unwrap();
    let (answer, _) = connection.send_request(request, true).unwrap();
    let mut body = answer.await.unwrap().into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn each_connection_s_requests_carry_the_identity_of_its_certificate() {
    let ca = Ca::new("corp CA");
    let secret = SecretDir::new(&ca.server(), &ca.pem());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings::for_tests(addr);
    let stop = CancellationToken::new();
    let tls = Tls::start(
        &TlsSettings {
            cert_file: secret.path("tls.crt"),
            key_file: secret.path("tls.key"),
            client_ca_file: Some(secret.path("ca.crt")),
            reload_interval: std::time::Duration::from_secs(60),
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let (draining, cut) = (CancellationToken::new(), CancellationToken::new());
    let server = {
        let (draining, cut) = (draining.clone(), cut.clone());
        tokio::spawn(async move {
            super::super::serve(
                listener,
                Some(tls),
                echo_identity(),
                // Open: the identity reaches the service as the connection found it.
                crate::grpc::access::AccessLayer::new(crate::callers::Callers::open()),
                &settings,
                &draining,
                &cut,
            )
            .await;
        })
    };

    let checkout = ca.client("spiffe://corp/ns/shop/sa/checkout");
    let billing = ca.client_with(
        vec![rcgen::SanType::DnsName("billing.corp".try_into().unwrap())],
        "billing-cn",
    );
    let nobody = ca.client_with(Vec::new(), "");
    let mut first = connect(addr, &ca, &checkout).await;
    let mut second = connect(addr, &ca, &billing).await;
    let mut third = connect(addr, &ca, &nobody).await;
    for _ in 0..2 {
        assert_eq!(
            identity_seen(&mut first).await,
            "spiffe://corp/ns/shop/sa/checkout"
        );
        assert_eq!(identity_seen(&mut second).await, "billing.corp");
        assert_eq!(identity_seen(&mut third).await, "none");
    }
    draining.cancel();
    cut.cancel();
    drop((first, second, third));
    server.await.unwrap();
    stop.cancel();
}
