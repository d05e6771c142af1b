//! mTLS and the callers file together, end to end (issue 15): the gateway is configured from
//! its flags as an operator configures it (`PROVE_GATEWAY_TLS_*`, `PROVE_GATEWAY_CLIENT_CA_FILE`,
//! `PROVE_GATEWAY_CALLERS_FILE`), so mTLS and the unknown-sessions default come from `config`,
//! not from the test. Each caller is a client certificate made here (rcgen) on its own tonic
//! connection; what reached Prove is read from the simulator's records.

use std::net::SocketAddr;

use clap::Parser as _;
use prove_gateway::config::{Cli, Settings};
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::grpc::pb::verify_service_client::VerifyServiceClient;
use prove_gateway::grpc::pb::{
    PossessionType, UnifyBindRequest, UnifyOutcome, UnifyStatusRequest, VerifyRequest,
    VerifyStatusRequest,
};
use prove_gateway::simulator::{self, PossessionAction, Simulator, SimulatorConfig};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::support::app::upstream;
use crate::helpers::support::callers::{CallersMount, token_sha256, with_token};
use crate::helpers::support::certs::{Ca, Leaf, SecretDir};
use crate::helpers::{LogCapture, error_info, mobile_unify};

const CHECKOUT: &str = "spiffe://corp/ns/shop/sa/checkout";
const AUDIT: &str = "spiffe://corp/ns/risk/sa/audit";
const STRANGER: &str = "spiffe://corp/ns/shop/sa/stranger";
const UNIFY_SERVICE: &str = "prove.gateway.v1.UnifyService/*";
const VERIFY_SERVICE: &str = "prove.gateway.v1.VerifyService/*";

/// A gateway serving mTLS on its gRPC port (plaintext health beside it), its simulator, the
/// CA that signs every certificate here, and the files it reads.
struct MtlsGateway {
    addr: SocketAddr,
    sim: Simulator,
    ca: Ca,
    _secret: SecretDir,
    _callers: Option<CallersMount>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for MtlsGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One callers-file entry authenticated by the certificate `identity` and, when given, by
/// bearer `token` (which mTLS must ignore).
fn entry(name: &str, identity: &str, token: Option<&str>, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    let tokens = token
        .map(|t| format!("    token_sha256: [\"{}\"]\n", token_sha256(t)))
        .unwrap_or_default();
    format!(
        "  - name: {name}\n    identities: [\"{identity}\"]\n{tokens}    allow: [{}]\n",
        allow.join(", ")
    )
}

/// Starts a gateway with mTLS (a fresh CA) and, when given, the callers file `callers`. The
/// settings come from the flags an operator sets; only what ties them to this test's
/// simulator and ports is changed after.
async fn start(callers: Option<String>) -> MtlsGateway {
    let ca = Ca::new("corp CA");
    let secret = SecretDir::new(&ca.server(), &ca.pem());
    let callers = callers.map(|content| CallersMount::new(&content));
    let path = |p: std::path::PathBuf| p.display().to_string();
    let mut argv = vec![
        "prove-gateway".to_owned(),
        format!("--tls-cert-file={}", path(secret.path("tls.crt"))),
        format!("--tls-key-file={}", path(secret.path("tls.key"))),
        format!("--client-ca-file={}", path(secret.path("ca.crt"))),
    ];
    if let Some(mount) = &callers {
        argv.push(format!("--callers-file={}", path(mount.path())));
    }
    let cli = Cli::try_parse_from(argv).expect("the flags parse");
    let mut settings = Settings::from_args(cli.gateway).expect("the flags make settings");
    assert!(settings.callers.mtls, "a client CA turns mTLS on");

    let sim = simulator::spawn(SimulatorConfig {
        rate_limit_rps: 0,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, health_addr) = (listener.local_addr().unwrap(), health.local_addr().unwrap());
    settings.listen = addr;
    settings.metrics_listen = None;
    settings.upstream = upstream(&sim).unwrap();
    settings.outbound.rate_limit_rps = 10_000;
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(prove_gateway::server::run_with_health_listener(
        settings,
        listener,
        Some(health),
        async {
            let _ = rx.await;
        },
    ));
    // Serving once the plaintext health port answers: the TLS and callers files were read.
    HealthClient::new(crate::helpers::connect(health_addr).await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    MtlsGateway {
        addr,
        sim,
        ca,
        _secret: secret,
        _callers: callers,
        shutdown: Some(tx),
    }
}

/// A caller: its own mTLS connection, presenting its certificate.
#[derive(Clone)]
struct Client {
    unify: UnifyServiceClient<Channel>,
    verify: VerifyServiceClient<Channel>,
}

impl MtlsGateway {
    /// A client certificate for `identity`, signed by the gateway's client CA.
    fn certificate(&self, identity: &str) -> Leaf {
        self.ca.client(identity)
    }

    /// A new connection presenting `certificate`.
    async fn connect(&self, certificate: &Leaf) -> Client {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca.pem()))
            .domain_name("localhost")
            .identity(Identity::from_pem(
                &certificate.cert_pem,
                &certificate.key_pem,
            ));
        let channel = Endpoint::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .expect("a certificate of the client CA completes the handshake");
        Client {
            unify: UnifyServiceClient::new(channel.clone()),
            verify: VerifyServiceClient::new(channel),
        }
    }

    /// A new connection as `identity`.
    async fn caller(&self, identity: &str) -> Client {
        self.connect(&self.certificate(identity)).await
    }

    /// Requests that reached Prove's product endpoints (token requests aside).
    fn prove_calls(&self) -> usize {
        let records = self.sim.records();
        records
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v3/"))
            .count()
    }
}

fn verify_request() -> VerifyRequest {
    VerifyRequest {
        possession_type: PossessionType::Mobile as i32,
        phone_number: "2001004011".into(),
        first_name: "Sheilakathryn".into(),
        last_name: "Butrimovich".into(),
        final_target_url: "https://www.example.com".into(),
        ..Default::default()
    }
}

fn status_request(id: &str) -> UnifyStatusRequest {
    UnifyStatusRequest {
        correlation_id: id.to_owned(),
        ..Default::default()
    }
}

fn assert_refused(status: &tonic::Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = error_info(status);
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "prove-gateway");
}

/// `checkout` may call UnifyService, `audit` VerifyService; both by certificate only.
fn checkout_and_audit(checkout_token: Option<&str>) -> String {
    format!(
        "callers:\n{}{}",
        entry("checkout", CHECKOUT, checkout_token, &[UNIFY_SERVICE]),
        entry("audit", AUDIT, None, &[VERIFY_SERVICE]),
    )
}

#[tokio::test]
async fn a_listed_certificate_gets_its_methods_and_the_rest_is_refused_before_prove() {
    let gateway = start(Some(checkout_and_audit(None))).await;
    let mut checkout = gateway.caller(CHECKOUT).await;
    let mut audit = gateway.caller(AUDIT).await;

    let started = checkout
        .unify
        .unify(mobile_unify())
        .await
        .expect("checkout's certificate may call Unify")
        .into_inner();
    assert!(!started.correlation_id.is_empty());
    audit
        .verify
        .verify(verify_request())
        .await
        .expect("audit's certificate may call Verify");
    assert_eq!(gateway.prove_calls(), 2);

    // audit is listed for VerifyService/* only.
    let denied = audit.unify.unify(mobile_unify()).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
    assert_eq!(error_info(&denied).metadata["caller"], "audit");
    assert_eq!(
        error_info(&denied).metadata["method"],
        "prove.gateway.v1.UnifyService/Unify"
    );
    // checkout is listed for UnifyService/* only.
    let denied = checkout.verify.verify(verify_request()).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
    assert_eq!(error_info(&denied).metadata["caller"], "checkout");

    // A certificate the CA signed, whose identity the file does not list: the handshake
    // succeeds (the CA vouches for it), the call is unauthenticated.
    let mut stranger = gateway.caller(STRANGER).await;
    let refused = stranger.unify.unify(mobile_unify()).await.unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "CALLER_UNAUTHENTICATED");
    let refused = stranger.verify.verify(verify_request()).await.unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "CALLER_UNAUTHENTICATED");

    assert_eq!(
        gateway.prove_calls(),
        2,
        "Prove saw none of the refused calls"
    );
    // Nor later: an allowed call after them goes through the same limiter, behind anything
    // they might have sent, and is the only new request Prove sees.
    checkout.unify.unify(mobile_unify()).await.unwrap();
    assert_eq!(gateway.sim.records().count("/v3/unify"), 2);
    assert_eq!(gateway.sim.records().count("/v3/verify"), 1);
    assert_eq!(gateway.prove_calls(), 3);
}

#[tokio::test]
async fn with_mtls_a_bearer_token_neither_replaces_nor_widens_the_certificate() {
    let logs = LogCapture::start();
    // checkout has a token as well; with mTLS only its certificate may count.
    let token = "checkout-tok-3e8a61d0c4";
    let gateway = start(Some(checkout_and_audit(Some(token)))).await;
    let stranger_certificate = gateway.certificate(STRANGER);
    let mut stranger = gateway.connect(&stranger_certificate).await;
    let mut audit = gateway.caller(AUDIT).await;
    // The capture is this thread's subscriber; tests on other threads may have registered
    // the audit line's callsite while none was enabled for it, and tracing caches that.
    tracing::callsite::rebuild_interest_cache();

    // An unlisted certificate with a listed token: still unauthenticated.
    let refused = stranger
        .unify
        .unify(with_token(mobile_unify(), token))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "CALLER_UNAUTHENTICATED");
    assert!(!refused.message().contains(token), "{refused:?}");
    // audit's certificate with checkout's token: still audit, still not allowed Unify.
    let denied = audit
        .unify
        .unify(with_token(mobile_unify(), token))
        .await
        .unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
    assert_eq!(error_info(&denied).metadata["caller"], "audit");
    assert_eq!(gateway.prove_calls(), 0, "Prove saw no request");

    // The certificate alone is enough for what it is allowed.
    audit.verify.verify(verify_request()).await.unwrap();
    assert_eq!(gateway.prove_calls(), 1);

    // Neither the token, its digest, nor the client's private key reached a log line.
    // The audit line is written as the answer's body ends, which may be after the client has
    // it: wait for the lines of audit's two calls (a caller's lines are never throttled).
    logs.wait_for(r#"code="PERMISSION_DENIED" caller="audit""#)
        .await;
    logs.wait_for(r#"code="OK" caller="audit""#).await;
    let text = logs.text();
    assert!(!text.contains(token), "the token was logged:\n{text}");
    assert!(
        !text.contains(&token_sha256(token)),
        "its digest was logged"
    );
    assert!(!text.contains("Bearer "), "{text}");
    let key_body = stranger_certificate.key_pem.lines().nth(1).unwrap();
    assert!(!text.contains(key_body), "the client key was logged");
}

/// `b`'s three reads of `id`: UnifyStatus, UnifyBind and VerifyStatus, each refused.
async fn reads(b: &mut Client, id: &str) -> Vec<tonic::Status> {
    let status = b.unify.unify_status(status_request(id)).await.unwrap_err();
    let bind = b
        .unify
        .unify_bind(UnifyBindRequest {
            correlation_id: id.to_owned(),
            phone_number: "2001004014".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let verify = b
        .verify
        .verify_status(VerifyStatusRequest {
            correlation_id: id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    vec![status, bind, verify]
}

/// Asserts `foreign` (another caller's session) cannot be told from `unknown` (an ID nobody
/// started): the same code, message, reason, domain and metadata but the ID each names.
fn assert_indistinguishable(foreign: &[tonic::Status], unknown: &[tonic::Status]) {
    assert_eq!(foreign.len(), unknown.len());
    for (ours, theirs) in foreign.iter().zip(unknown) {
        // Prove's own answer to an unknown ID, so in Prove's domain.
        assert_eq!(ours.code(), Code::FailedPrecondition, "{ours:?}");
        assert_eq!(error_info(ours).reason, "INVALID_CORRELATION_ID");
        assert_eq!(ours.code(), theirs.code());
        assert_eq!(ours.message(), theirs.message());
        let but_the_id = |status: &tonic::Status| {
            let mut info = error_info(status);
            info.metadata.remove("correlationId");
            (info.reason, info.domain, info.metadata)
        };
        assert_eq!(but_the_id(ours), but_the_id(theirs));
    }
}

#[tokio::test]
async fn caller_b_reading_caller_as_session_by_certificate_gets_what_an_unknown_id_gets() {
    let all = [UNIFY_SERVICE, VERIFY_SERVICE];
    let a_identity = "spiffe://corp/ns/shop/sa/a";
    let b_identity = "spiffe://corp/ns/shop/sa/b";
    let gateway = start(Some(format!(
        "callers:\n{}{}",
        entry("a", a_identity, None, &all),
        entry("b", b_identity, None, &all)
    )))
    .await;
    let mut a = gateway.caller(a_identity).await;
    let mut b = gateway.caller(b_identity).await;
    let id = a
        .unify
        .unify(mobile_unify())
        .await
        .unwrap()
        .into_inner()
        .correlation_id;
    gateway
        .sim
        .complete_possession(&id, PossessionAction::Authenticate)
        .unwrap();
    gateway.sim.reset_records();

    let unknown = reads(&mut b, &uuid::Uuid::new_v4().to_string()).await;
    let foreign = reads(&mut b, &id).await;
    assert_indistinguishable(&foreign, &unknown);
    assert_eq!(gateway.sim.records().total(), 0, "Prove saw no request");

    // A's own read goes through; B still gets nothing, not even the outcome now kept.
    let answer = a.unify.unify_status(status_request(&id)).await.unwrap();
    assert_eq!(answer.get_ref().success(), UnifyOutcome::Success);
    assert_indistinguishable(&reads(&mut b, &id).await, &unknown);
    assert_eq!(gateway.sim.records().count("/v3/unify-status"), 1);
    assert_eq!(gateway.prove_calls(), 1);
}

#[tokio::test]
async fn without_a_callers_file_twenty_certificates_are_twenty_callers_owning_their_sessions() {
    const CALLERS: usize = 20;
    let gateway = start(None).await;
    let mut clients = Vec::new();
    for i in 0..CALLERS {
        clients.push(
            gateway
                .caller(&format!("spiffe://corp/ns/shop/sa/caller-{i}"))
                .await,
        );
    }
    // Every verified certificate is a caller allowed every method: all start at once.
    let ids: Vec<String> = futures::future::join_all(clients.iter().map(|client| {
        let mut unify = client.unify.clone();
        async move { unify.unify(mobile_unify()).await.unwrap().into_inner() }
    }))
    .await
    .into_iter()
    .map(|answer| answer.correlation_id)
    .collect();
    for id in &ids {
        gateway
            .sim
            .complete_possession(id, PossessionAction::Authenticate)
            .unwrap();
    }
    gateway.sim.reset_records();

    // Each caller reads its neighbour's session, all at once: each read is the unknown-ID
    // answer, and none reaches Prove.
    let random = uuid::Uuid::new_v4().to_string();
    let unknown = reads(&mut clients[0].clone(), &random).await;
    let neighbours = |offset: usize| {
        futures::future::join_all((0..CALLERS).map(|i| {
            let mut client = clients[i].clone();
            let id = ids[(i + offset) % CALLERS].clone();
            async move { reads(&mut client, &id).await }
        }))
    };
    for foreign in neighbours(1).await {
        assert_indistinguishable(&foreign, &unknown);
    }
    assert_eq!(gateway.sim.records().total(), 0, "Prove saw no request");

    // Each owner reads its own, all at once, and gets its outcome.
    let own = futures::future::join_all((0..CALLERS).map(|i| {
        let mut unify = clients[i].unify.clone();
        let id = ids[i].clone();
        async move { unify.unify_status(status_request(&id)).await }
    }))
    .await;
    for answer in own {
        assert_eq!(answer.unwrap().get_ref().success(), UnifyOutcome::Success);
    }
    assert_eq!(gateway.sim.records().count("/v3/unify-status"), CALLERS);
    // The kept outcomes stay their owners' too.
    for foreign in neighbours(CALLERS - 1).await {
        assert_indistinguishable(&foreign, &unknown);
    }
    assert_eq!(gateway.prove_calls(), CALLERS);
}
