//! Traces, logs and metrics seen from outside, the way an operator's collector, log pipeline and
//! Prometheus see them: a real OTLP/gRPC receiver in this process collects the exported spans,
//! the JSON log lines go to an in-memory sink, and `/metrics` is scraped over HTTP.
//!
//! The tracing subscriber and the metrics recorder are process-wide and can be installed only
//! once, so this is its own test binary, and [`world`] sets telemetry up once for all of its
//! tests, on one runtime that outlives them all (the exporter's connection lives on it). Each
//! test starts its own gateway and simulator (the shared fixture, `tests/support`) on a runtime
//! of its own, whose threads write their log lines to the test's own capture ([`logs`]), and
//! finds its own spans by trace ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod callers;
mod dashboard;
mod logs;
mod metrics;
mod traces;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use parking_lot::Mutex;
use prove_gateway::config::{LogFormat, Settings};
use prove_gateway::grpc::pb::{PossessionType, UnifyRequest, UnifyStatusRequest};
use prove_gateway::simulator::{self, Faults, PossessionAction, SimulatorConfig};
use prove_gateway::telemetry::{self, metrics::METRICS};

use crate::logs::{LogSink, own_logs};
use crate::support::app::TestApp;
use crate::traces::{Collector, attr, find, span_text, spans_of};

const PHONE: &str = "2001004014";
const SERVICE_NAME: &str = "prove-gateway-observability-test";

// ---------------------------------------------------------------------------------------------
// The world: one runtime, one OTLP receiver, one log sink, one metrics endpoint.

/// Where the world lives: the OTLP receiver, the exporter's connection and `/metrics`. Never
/// dropped, so they serve every test.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

static WORLD: tokio::sync::OnceCell<World> = tokio::sync::OnceCell::const_new();

struct World {
    spans: Collector,
    guard: telemetry::Guard,
    metrics: SocketAddr,
}

/// Runs a test body on a runtime of its own (two workers, as before the split), after setting
/// the world up on the shared one. Every thread of the test's runtime, and the test's own
/// thread, which polls the body, write their log lines to the test's capture: the gateway and
/// the simulator of this test run only there, so no other test's line can reach it.
fn run<F: std::future::Future>(test: F) -> F::Output {
    RUNTIME.block_on(world());
    let capture = logs::Capture::default();
    let for_threads = capture.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            logs::claim(Some(for_threads.clone()));
        })
        .build()
        .unwrap();
    let before = logs::claim(Some(capture));
    let output = runtime.block_on(test);
    logs::claim(before);
    output
}

/// Telemetry for the whole binary, installed by whichever test gets here first. Only ever
/// initialised on [`RUNTIME`] (see [`run`]); a test reads it once it is there.
async fn world() -> &'static World {
    WORLD
        .get_or_init(|| async {
            let spans = Collector::default();
            let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let receiver_addr = receiver.local_addr().unwrap();
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(spans.clone()))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(receiver)),
            );
            // The gRPC address is never bound here: each test's gateway gets its own listener.
            let mut settings = Settings::for_tests(SocketAddr::from(([127, 0, 0, 1], 0)));
            settings.log = "info".into();
            settings.log_format = LogFormat::Json;
            settings.otel.endpoint = Some(format!("http://{receiver_addr}"));
            settings.otel.service_name = SERVICE_NAME.into();
            let guard = telemetry::init_with_writer(&settings, LogSink::default()).unwrap();
            let metrics = serve_metrics_on_a_free_port().await;
            World {
                spans,
                guard,
                metrics,
            }
        })
        .await
}

/// Serves `/metrics` on a free loopback port and returns it. The exporter binds the address
/// itself, so it cannot be handed a listener, and a port probed free can be taken by another
/// process before the exporter binds it: retry on that clash. A failed bind installs nothing
/// (the exporter binds before it sets the global recorder), so trying again is safe.
async fn serve_metrics_on_a_free_port() -> SocketAddr {
    let mut clash = None;
    for _ in 0..20 {
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        match telemetry::serve_metrics(Some(addr)) {
            Ok(()) => return addr,
            Err(error) if format!("{error:#}").contains("in use") => clash = Some(error),
            Err(error) => panic!("serving /metrics on {addr}: {error:#}"),
        }
    }
    panic!("no free port for /metrics after 20 tries: {clash:?}");
}

// ---------------------------------------------------------------------------------------------
// A gateway per test.

/// A gateway (the shared fixture) in front of its own simulator, once the world is set up.
async fn spawn_gateway(sim: SimulatorConfig, configure: impl FnOnce(&mut Settings)) -> TestApp {
    world().await;
    support::app::spawn_app_configured(sim, configure).await
}

fn unify_request(phone: &str) -> UnifyRequest {
    UnifyRequest {
        possession_type: PossessionType::Mobile.into(),
        phone_number: phone.into(),
        ..UnifyRequest::default()
    }
}

/// A request carrying the caller's W3C trace context.
fn traced<T>(message: T, trace_id: &str, parent_span_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_span_id}-01")
            .parse()
            .unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "caller=yes".parse().unwrap());
    // Baggage is the caller's, for its own and our telemetry; it holds personal data here on
    // purpose, to show that none of it travels on to Prove.
    request.metadata_mut().insert(
        "baggage",
        format!("email=jane%40example.com,phone={PHONE}")
            .parse()
            .unwrap(),
    );
    request
}

/// A fresh random trace ID (32 hex digits) and span ID (16).
fn new_ids() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace, span)
}

/// What must never leave the gateway in clear: the phone number, the OAuth secret, any bearer
/// token and the session's auth token.
fn assert_nothing_secret(text: &str, what: &str, auth_token: Option<&str>) {
    let mut forbidden = vec![PHONE, simulator::SIM_UNIFY_CLIENT_SECRET, "Bearer "];
    if let Some(token) = auth_token.filter(|t| !t.is_empty()) {
        forbidden.push(token);
    }
    for secret in forbidden {
        assert!(!text.contains(secret), "{what} contains {secret:?}: {text}");
    }
}
