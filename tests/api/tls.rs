//! TLS and mTLS on the gRPC port, over real sockets: certificates made by the test (rcgen),
//! mounted as Kubernetes mounts a secret and rotated by a symlink swap; tonic clients with
//! `ClientTlsConfig` make the calls, and a bare rustls client looks at the handshake itself
//! (which alert refused it, which certificate the server presented).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use prove_gateway::config::{Settings, TlsSettings};
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::simulator::{self, Simulator, SimulatorConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::support::app::upstream;
use crate::helpers::support::certs::{Ca, Leaf, SecretDir};
use crate::helpers::{LogCapture, mobile_unify};

/// How often the gateway under test reads its TLS files again (the default is 10 s).
const RELOAD: Duration = Duration::from_millis(50);

/// A gateway with TLS on its gRPC port, its simulator, and the mounted secret it reads.
struct TlsGateway {
    addr: SocketAddr,
    health_addr: SocketAddr,
    sim: Simulator,
    secret: SecretDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a gateway serving `server`'s certificate, requiring client certificates from
/// `client_ca` when given, with a plaintext health port; `configure` adjusts the rest.
async fn start(
    server: &Leaf,
    client_ca: Option<&Ca>,
    configure: impl FnOnce(&mut Settings),
) -> anyhow::Result<TlsGateway> {
    let sim = simulator::spawn(SimulatorConfig {
        rate_limit_rps: 0,
        ..SimulatorConfig::default()
    })
    .await?;
    let secret = SecretDir::new(server, &client_ca.map(Ca::pem).unwrap_or_default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (addr, health_addr) = (listener.local_addr()?, health.local_addr()?);
    let mut settings = Settings::for_tests(addr);
    settings.upstream = upstream(&sim)?;
    settings.outbound.rate_limit_rps = 10_000;
    settings.tls = Some(TlsSettings {
        cert_file: secret.path("tls.crt"),
        key_file: secret.path("tls.key"),
        client_ca_file: client_ca.map(|_| secret.path("ca.crt")),
        reload_interval: RELOAD,
    });
    configure(&mut settings);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(prove_gateway::server::run_with_health_listener(
        settings,
        listener,
        Some(health),
        async {
            let _ = rx.await;
        },
    ));
    let gateway = TlsGateway {
        addr,
        health_addr,
        sim,
        secret,
        shutdown: Some(tx),
        server,
    };
    // Serving once the health port answers: the files were read, and a test may now replace
    // them.
    let mut health = HealthClient::new(crate::helpers::connect(health_addr).await);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(gateway)
}

/// A tonic channel to the TLS port, trusting `ca`, presenting `client` when given.
async fn tls_channel(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await
}

/// One Unify over a new TLS connection: its connection and call errors as one text.
async fn unify_over_new_connection(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<&Leaf>,
) -> Result<(), String> {
    let channel = tls_channel(addr, ca, client)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    UnifyServiceClient::new(channel)
        .unify(mobile_unify())
        .await
        .map(|_| ())
        .map_err(|status| format!("call: {status:?}"))
}

/// What a bare rustls client saw of a handshake with the gateway.
struct Handshake {
    /// The server's certificate.
    served: Vec<u8>,
    alpn: Option<Vec<u8>>,
}

/// Shakes hands with the gateway as a bare rustls client (trusting `ca`, presenting `client`
/// when given), sends the HTTP/2 preface and reads the server's first bytes: with TLS 1.3 a
/// refused client certificate shows only there, as the alert the server sends instead.
async fn handshake(addr: SocketAddr, ca: &Ca, client: Option<&Leaf>) -> Result<Handshake, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some(client) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(client.der.clone())],
                PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (served, alpn) = {
        let (_, session) = tls.get_ref();
        let served = session.peer_certificates().unwrap()[0].to_vec();
        (served, session.alpn_protocol().map(<[u8]>::to_vec))
    };
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 9];
    match tls.read(&mut first).await {
        Ok(0) => Err("closed without a word".into()),
        Ok(_) => Ok(Handshake { served, alpn }),
        Err(e) => Err(e.to_string()),
    }
}

/// Polls `check` every 20 ms until it holds, for at most 30 s (a bound for a broken build, not
/// a timing assertion: a reload takes one 50 ms poll).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn clients_without_a_valid_certificate_are_refused_at_the_handshake() {
    let ca = Ca::new("corp CA");
    let other = Ca::new("other CA");
    let gateway = start(&ca.server(), Some(&ca), |_| {}).await.unwrap();
    let spiffe = "spiffe://corp/ns/shop/sa/checkout";
    let from_other_ca = other.client(spiffe);
    let expired = ca.expired_client(spiffe);
    for (case, client, alert) in [
        ("no certificate", None, "CertificateRequired"),
        ("another CA's", Some(&from_other_ca), "UnknownCA"),
        ("expired", Some(&expired), "CertificateExpired"),
    ] {
        let refused = handshake(gateway.addr, &ca, client).await;
        let Err(error) = refused else {
            panic!("{case}: the handshake succeeded")
        };
        assert!(error.contains(alert), "{case}: {error}");
        let called = unify_over_new_connection(gateway.addr, &ca, client).await;
        assert!(called.is_err(), "{case}: a call went through");
    }
    assert_eq!(
        gateway.sim.records().total(),
        0,
        "Prove saw a request from a refused client"
    );
}

#[tokio::test]
async fn a_client_with_a_valid_certificate_completes_a_unify_over_h2() {
    let ca = Ca::new("corp CA");
    let server = ca.server();
    let gateway = start(&server, Some(&ca), |_| {}).await.unwrap();
    let client = ca.client("spiffe://corp/ns/shop/sa/checkout");
    let seen = handshake(gateway.addr, &ca, Some(&client)).await.unwrap();
    assert_eq!(seen.served, server.der);
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    unify_over_new_connection(gateway.addr, &ca, Some(&client))
        .await
        .unwrap();
    assert_eq!(gateway.sim.records().count("/v3/unify"), 1);
}

#[tokio::test]
async fn tls_without_client_certificates_serves_any_client_and_refuses_plaintext() {
    let ca = Ca::new("corp CA");
    let gateway = start(&ca.server(), None, |_| {}).await.unwrap();
    unify_over_new_connection(gateway.addr, &ca, None)
        .await
        .unwrap();
    let plaintext = Endpoint::from_shared(format!("http://{}", gateway.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let call = UnifyServiceClient::new(channel).unify(mobile_unify()).await;
        assert!(call.is_err(), "a plaintext call was served on the TLS port");
    }
    assert_eq!(gateway.sim.records().count("/v3/unify"), 1);
}

/// Each caller's calls: made, and failed (with the first failure).
#[derive(Default)]
struct Tally {
    calls: AtomicUsize,
    failed: AtomicUsize,
    first_failure: parking_lot::Mutex<Option<String>>,
}

#[tokio::test]
async fn a_certificate_rotated_on_disk_while_20_callers_call_drops_no_call() {
    let ca = Ca::new("corp CA");
    let (old, new) = (ca.server(), ca.server());
    let mut gateway = start(&old, Some(&ca), |_| {}).await.unwrap();
    let ca = Arc::new(ca);
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = (0..20).map(|_| Arc::default()).collect();
    let mut callers = Vec::new();
    for (i, tally) in tallies.iter().enumerate() {
        let (ca, stop, tally, addr) = (ca.clone(), stop.clone(), tally.clone(), gateway.addr);
        let client = ca.client(&format!("spiffe://corp/ns/shop/sa/caller-{i}"));
        // Half the callers keep one connection, half open a new one for every call.
        let keeps_its_connection = i % 2 == 0;
        callers.push(tokio::spawn(async move {
            let mut kept = None;
            while !stop.load(Ordering::Relaxed) {
                if keeps_its_connection && kept.is_none() {
                    match tls_channel(addr, &ca, Some(&client)).await {
                        Ok(channel) => kept = Some(channel),
                        Err(error) => {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            tally
                                .first_failure
                                .lock()
                                .get_or_insert(format!("{error:?}"));
                            continue;
                        }
                    }
                }
                let outcome = match &kept {
                    Some(channel) => UnifyServiceClient::new(channel.clone())
                        .unify(mobile_unify())
                        .await
                        .map(|_| ())
                        .map_err(|status| format!("call: {status:?}")),
                    None => unify_over_new_connection(addr, &ca, Some(&client)).await,
                };
                tally.calls.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = outcome {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    tally.first_failure.lock().get_or_insert(error);
                }
            }
        }));
    }
    eventually("every caller calls", async || {
        tallies.iter().all(|t| t.calls.load(Ordering::Relaxed) >= 2)
    })
    .await;

    gateway.secret.rotate(&new, &ca.pem());
    eventually("a new handshake presents the new certificate", async || {
        handshake(gateway.addr, &ca, Some(&ca.client("spiffe://corp/probe")))
            .await
            .is_ok_and(|seen| seen.served == new.der)
    })
    .await;
    // Every caller goes on past the rotation: each has called twice more since it was seen.
    let so_far: Vec<usize> = tallies
        .iter()
        .map(|t| t.calls.load(Ordering::Relaxed))
        .collect();
    eventually("every caller calls after the rotation", async || {
        tallies
            .iter()
            .zip(&so_far)
            .all(|(t, before)| t.calls.load(Ordering::Relaxed) >= before + 2)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }

    let calls: usize = tallies
        .iter()
        .map(|t| t.calls.load(Ordering::Relaxed))
        .sum();
    let failed: usize = tallies
        .iter()
        .map(|t| t.failed.load(Ordering::Relaxed))
        .sum();
    let first = tallies.iter().find_map(|t| t.first_failure.lock().clone());
    assert_eq!(
        failed, 0,
        "{failed} of {calls} calls failed, first: {first:?}"
    );
    assert_eq!(gateway.sim.records().count("/v3/unify"), calls);
    // The old certificate is no longer presented to anyone.
    let seen = handshake(gateway.addr, &ca, Some(&ca.client("spiffe://corp/probe")))
        .await
        .unwrap();
    assert_eq!(seen.served, new.der);
}

#[tokio::test]
async fn a_broken_replacement_keeps_the_old_certificate_with_one_warning_each() {
    let logs = LogCapture::start();
    let ca = Ca::new("corp CA");
    let (old, new) = (ca.server(), ca.server());
    let mut gateway = start(&old, Some(&ca), |_| {}).await.unwrap();
    let client = ca.client("spiffe://corp/ns/shop/sa/checkout");
    let warnings = || {
        logs.text()
            .lines()
            .filter(|line| line.contains("WARN") && line.contains("TLS files"))
            .count()
    };

    // A key that does not match the certificate.
    let stranger = ca.server();
    gateway
        .secret
        .swap(&new.cert_pem, &stranger.key_pem, &ca.pem());
    logs.wait_for("error=PROVE_GATEWAY_TLS_KEY_FILE").await;
    let seen = handshake(gateway.addr, &ca, Some(&client)).await.unwrap();
    assert_eq!(seen.served, old.der, "the old certificate is served");
    unify_over_new_connection(gateway.addr, &ca, Some(&client))
        .await
        .unwrap();

    // A half-written certificate: a second, different breakage, warned about once more. The
    // count proves the first one was warned about once, over every poll in between.
    let half = &new.cert_pem[..new.cert_pem.len() / 2];
    gateway.secret.swap(half, &new.key_pem, &ca.pem());
    logs.wait_for("error=PROVE_GATEWAY_TLS_CERT_FILE").await;
    assert_eq!(warnings(), 1 + 1, "{}", logs.text());
    let seen = handshake(gateway.addr, &ca, Some(&client)).await.unwrap();
    assert_eq!(seen.served, old.der);

    // Fixed: the new certificate is served.
    gateway.secret.rotate(&new, &ca.pem());
    eventually("the fixed certificate is served", async || {
        handshake(gateway.addr, &ca, Some(&client))
            .await
            .is_ok_and(|seen| seen.served == new.der)
    })
    .await;
    assert_eq!(warnings(), 2, "{}", logs.text());
    assert!(!gateway.server.is_finished(), "the gateway is still up");
    // The key never reaches the logs.
    for key in [&old.key_pem, &new.key_pem, &stranger.key_pem] {
        let body = key.lines().nth(1).unwrap();
        assert!(!logs.text().contains(body));
    }
}

/// How a gateway reading `secret` (with mTLS) fails to start.
async fn start_error(secret: &SecretDir) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = Settings::for_tests(listener.local_addr().unwrap());
    settings.tls = Some(TlsSettings {
        cert_file: secret.path("tls.crt"),
        key_file: secret.path("tls.key"),
        client_ca_file: Some(secret.path("ca.crt")),
        reload_interval: RELOAD,
    });
    let started = prove_gateway::server::run(settings, listener, std::future::pending()).await;
    match started {
        Ok(()) => panic!("the gateway served"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn unusable_files_at_start_stop_it_naming_the_variable() {
    let ca = Ca::new("corp CA");
    let server = ca.server();
    let stranger = ca.server();
    let key_body = stranger.key_pem.lines().nth(1).unwrap().to_owned();

    let unmatched = SecretDir::new(
        &Leaf {
            key_pem: stranger.key_pem.clone(),
            ..server.clone()
        },
        &ca.pem(),
    );
    let error = start_error(&unmatched).await;
    assert!(error.starts_with("PROVE_GATEWAY_TLS_KEY_FILE"), "{error}");
    assert!(!error.contains(&key_body), "{error}");

    let no_cert = SecretDir::new(&server, &ca.pem());
    std::fs::remove_file(no_cert.path("tls.crt")).unwrap();
    let error = start_error(&no_cert).await;
    assert!(error.starts_with("PROVE_GATEWAY_TLS_CERT_FILE"), "{error}");

    let mut bad_ca = SecretDir::new(&server, &ca.pem());
    bad_ca.swap(&server.cert_pem, &server.key_pem, "not a certificate");
    let error = start_error(&bad_ca).await;
    assert!(error.starts_with("PROVE_GATEWAY_CLIENT_CA_FILE"), "{error}");
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_holds_its_slot_only_for_the_timeout() {
    let ca = Ca::new("corp CA");
    let gateway = start(&ca.server(), Some(&ca), |settings| {
        settings.connections.max_connections = 2;
        settings.connections.handshake_timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    let client = ca.client("spiffe://corp/ns/shop/sa/checkout");
    // A client that connects and sends nothing holds one of the two slots.
    let mut stalled = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    // The other serves meanwhile: the stalled handshake does not hold up the accept loop.
    let kept = tls_channel(gateway.addr, &ca, Some(&client)).await.unwrap();
    UnifyServiceClient::new(kept.clone())
        .unify(mobile_unify())
        .await
        .unwrap();
    // The gateway closes the stalled one (a read sees the end; 30 s bounds a broken build)...
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(30), stalled.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the stalled connection was not closed: {closed:?}"
    );
    // ...and its slot serves a new connection while the kept one still holds the other.
    unify_over_new_connection(gateway.addr, &ca, Some(&client))
        .await
        .unwrap();
    UnifyServiceClient::new(kept)
        .unify(mobile_unify())
        .await
        .unwrap();
}

#[tokio::test]
async fn health_answers_in_plaintext_on_its_own_port_through_shutdown() {
    let ca = Ca::new("corp CA");
    let mut gateway = start(&ca.server(), Some(&ca), |settings| {
        // Long enough to observe NOT_SERVING while the gateway still runs.
        settings.shutdown_delay = Duration::from_secs(60);
    })
    .await
    .unwrap();
    let plain = crate::helpers::connect(gateway.health_addr).await;
    let mut health = HealthClient::new(plain.clone());
    let check = HealthCheckRequest {
        service: String::new(),
    };
    let answer = health.check(check.clone()).await.unwrap().into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);
    // Health only: the services are not on this port.
    let status = UnifyServiceClient::new(plain)
        .unify(mobile_unify())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(gateway.sim.records().total(), 0);

    let _ = gateway.shutdown.take().unwrap().send(());
    eventually("the health port answers NOT_SERVING", async || {
        health
            .check(check.clone())
            .await
            .is_ok_and(|answer| answer.into_inner().status() == ServingStatus::NotServing)
    })
    .await;
}

#[tokio::test]
async fn reflection_off_leaves_both_reflection_services_unimplemented() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::{v1, v1alpha};
    let app = crate::helpers::spawn_app_configured(SimulatorConfig::default(), |settings| {
        settings.reflection = false;
    })
    .await;
    let list = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers =
        v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone())
            .server_reflection_info(tokio_stream::iter([list]))
            .await
            .map(|answers| answers.into_inner());
    let v1_outcome = match &mut answers {
        Ok(stream) => stream.next().await.unwrap().map(|_| ()),
        Err(status) => Err(status.clone()),
    };
    assert_eq!(
        v1_outcome.unwrap_err().code(),
        tonic::Code::Unimplemented,
        "v1"
    );
    let list = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone())
            .server_reflection_info(tokio_stream::iter([list]))
            .await
            .map(|answers| answers.into_inner());
    let alpha_outcome = match &mut answers {
        Ok(stream) => stream.next().await.unwrap().map(|_| ()),
        Err(status) => Err(status.clone()),
    };
    assert_eq!(
        alpha_outcome.unwrap_err().code(),
        tonic::Code::Unimplemented,
        "v1alpha"
    );
    // Health stays.
    let answer = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);
}
