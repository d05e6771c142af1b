//! Traces, logs and metrics seen from outside, the way an operator's collector, log pipeline and
//! Prometheus see them: a real OTLP/gRPC receiver in this process collects the exported spans,
//! the JSON log lines go to an in-memory sink, and `/metrics` is scraped over HTTP.
//!
//! The tracing subscriber and the metrics recorder are process-wide and can be installed only
//! once, so this is its own test binary, every test runs on one shared runtime (the exporter's
//! connection lives on it), and [`world`] sets telemetry up once for all of them. Each test
//! starts its own gateway and simulator and finds its own spans by trace ID and its own log lines
//! by correlation ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prove_gateway::config::{Credentials, LogFormat, Settings, Upstream};
use prove_gateway::grpc::pb::unify_service_client::UnifyServiceClient;
use prove_gateway::grpc::pb::{PossessionType, UnifyRequest, UnifyStatusRequest};
use prove_gateway::simulator::{self, Faults, PossessionAction, Simulator, SimulatorConfig};
use prove_gateway::telemetry::{self, metrics::METRICS};
use tonic::transport::Channel;

const PHONE: &str = "2001004014";
const SERVICE_NAME: &str = "prove-gateway-observability-test";

// ---------------------------------------------------------------------------------------------
// The world: one runtime, one OTLP receiver, one log sink, one metrics endpoint.

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
    logs: LogSink,
    guard: telemetry::Guard,
    metrics: SocketAddr,
}

/// Runs a test body on the shared runtime.
fn run<F: std::future::Future>(test: F) -> F::Output {
    RUNTIME.block_on(test)
}

/// Telemetry for the whole binary, installed by whichever test gets here first.
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
            let logs = LogSink::default();
            let guard = telemetry::init_with_writer(&settings, logs.clone()).unwrap();
            let metrics = serve_metrics_on_a_free_port().await;
            World {
                spans,
                logs,
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

/// An OTLP/gRPC trace receiver that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Every span received so far, with the `service.name` of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for request in self.0.lock().iter() {
            for resource_spans in &request.resource_spans {
                let service = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|r| value(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

/// Log lines, captured as the gateway writes them.
#[derive(Clone, Default)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogSink {
    /// Every line so far, parsed: the format is JSON, one object per line.
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().clone()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// A gateway per test.

struct Gateway {
    sim: Simulator,
    unify: UnifyServiceClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn spawn_gateway(sim: SimulatorConfig, configure: impl FnOnce(&mut Settings)) -> Gateway {
    world().await;
    let sim = simulator::spawn(sim).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let credentials = |id: &str, secret: &str| Credentials {
        client_id: id.into(),
        client_secret: secret.to_owned().into(),
    };
    let mut settings = Settings::for_tests(addr);
    settings.upstream = Upstream::Prove {
        base_url: sim.base_url().parse().unwrap(),
        unify: credentials(
            simulator::SIM_UNIFY_CLIENT_ID,
            simulator::SIM_UNIFY_CLIENT_SECRET,
        ),
        verify: credentials(
            simulator::SIM_VERIFY_CLIENT_ID,
            simulator::SIM_VERIFY_CLIENT_SECRET,
        ),
    };
    configure(&mut settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(prove_gateway::server::run(settings, listener, async {
        let _ = stopped.await;
    }));
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(connected) = endpoint.connect().await {
            channel = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Gateway {
        sim,
        unify: UnifyServiceClient::new(channel.expect("the gateway accepts connections")),
        stop: Some(stop),
    }
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

// ---------------------------------------------------------------------------------------------
// Reading spans.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An attribute as text, whatever its type.
fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
    let found = attributes.iter().find(|kv| kv.key == key)?;
    Some(match found.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

fn attr(span: &Span, key: &str) -> Option<String> {
    value(&span.attributes, key)
}

fn kind(span: &Span) -> SpanKind {
    SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified)
}

/// Everything a span could leak through: names, and every attribute and event attribute value.
fn span_text(span: &Span) -> String {
    let mut text = format!("{} {:?}", span.name, span.attributes);
    for event in &span.events {
        text.push_str(&format!(" {} {:?}", event.name, event.attributes));
    }
    text
}

/// Flushes the exporter until `done` holds for the spans of `trace_id`, or fails after 10 s.
async fn spans_of(trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let world = world().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        world.guard.force_flush().await.unwrap();
        let spans: Vec<Span> = world
            .spans
            .spans()
            .into_iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace_id)
            .map(|(service, s)| {
                assert_eq!(service, SERVICE_NAME, "OTEL_SERVICE_NAME on the resource");
                s
            })
            .collect();
        if done(&spans) {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans of trace {trace_id} never complete: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(spans: &'a [Span], kind_: SpanKind, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| kind(s) == kind_ && s.name == name)
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Traces and logs.

#[test]
fn a_trace_runs_from_the_caller_through_the_gateway_to_prove_with_the_correlation_id() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let (trace_id, caller_span) = new_ids();

        let started = app
            .unify
            .unify(traced(unify_request(PHONE), &trace_id, &caller_span))
            .await
            .unwrap()
            .into_inner();
        let id = started.correlation_id.clone();
        app.sim
            .complete_possession(&id, PossessionAction::Otp("1234".into()))
            .unwrap();
        let (_, status_caller_span) = new_ids();
        app.unify
            .unify_status(traced(
                UnifyStatusRequest {
                    correlation_id: id.clone(),
                    client_request_id: "req-1".into(),
                },
                &trace_id,
                &status_caller_span,
            ))
            .await
            .unwrap();

        let unify_rpc = "prove.gateway.v1.UnifyService/Unify";
        let status_rpc = "prove.gateway.v1.UnifyService/UnifyStatus";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, unify_rpc).len() == 1
                && find(spans, SpanKind::Server, status_rpc).len() == 1
                && find(spans, SpanKind::Client, "POST /v3/unify").len() == 1
                && find(spans, SpanKind::Client, "POST /v3/unify-status").len() == 1
        })
        .await;

        // The server span continues the caller's trace, under the caller's span.
        let server = find(&spans, SpanKind::Server, unify_rpc)[0];
        assert_eq!(hex(&server.parent_span_id), caller_span);
        assert_eq!(attr(server, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(attr(server, "rpc.system.name").as_deref(), Some("grpc"));
        assert_eq!(
            attr(server, "rpc.service").as_deref(),
            Some("prove.gateway.v1.UnifyService")
        );
        assert_eq!(attr(server, "rpc.method").as_deref(), Some(unify_rpc));
        assert_eq!(
            attr(server, "rpc.response.status_code").as_deref(),
            Some("OK")
        );
        assert_eq!(attr(server, "rpc.grpc.status_code").as_deref(), Some("0"));
        // Unify learns its correlation ID from Prove's answer.
        assert_eq!(
            attr(server, "prove.correlation_id").as_deref(),
            Some(id.as_str())
        );

        // The attempt is a CLIENT child of the server span, and the very span Prove was told
        // about in `traceparent`.
        let attempt = find(&spans, SpanKind::Client, "POST /v3/unify")[0];
        assert_eq!(attempt.parent_span_id, server.span_id);
        assert_eq!(
            attr(attempt, "http.request.method").as_deref(),
            Some("POST")
        );
        assert_eq!(attr(attempt, "url.path").as_deref(), Some("/v3/unify"));
        assert_eq!(
            attr(attempt, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(attr(attempt, "prove.attempt").as_deref(), Some("1"));
        assert_eq!(
            attr(attempt, "prove.correlation_id").as_deref(),
            Some(id.as_str())
        );
        let records = app.sim.records();
        let sent = records
            .last("/v3/unify")
            .unwrap()
            .traceparent
            .clone()
            .expect("traceparent reaches Prove");
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts.len(), 4, "{sent}");
        assert_eq!(parts[1], trace_id, "Prove sees the caller's trace");
        assert_eq!(parts[2], hex(&attempt.span_id), "under the attempt span");
        assert_eq!(parts[3], "01", "sampled");
        assert_eq!(
            records.last("/v3/unify").unwrap().tracestate.as_deref(),
            Some("caller=yes"),
            "tracestate travels on"
        );
        // Prove is a third party: the caller's baggage stays with the gateway.
        for request in records.requests() {
            assert_eq!(
                request.baggage, None,
                "baggage reached Prove at {}",
                request.path
            );
        }

        // The token request of the first call is an attempt of the same RPC.
        let token = find(&spans, SpanKind::Client, "POST /token");
        assert_eq!(token.len(), 1);
        assert_eq!(token[0].parent_span_id, server.span_id);

        // UnifyStatus knows its correlation ID from the request, before calling Prove.
        let server = find(&spans, SpanKind::Server, status_rpc)[0];
        assert_eq!(hex(&server.parent_span_id), status_caller_span);
        assert_eq!(
            attr(server, "prove.correlation_id").as_deref(),
            Some(id.as_str())
        );
        let attempt = find(&spans, SpanKind::Client, "POST /v3/unify-status")[0];
        assert_eq!(attempt.parent_span_id, server.span_id);
        assert_eq!(
            attr(attempt, "prove.correlation_id").as_deref(),
            Some(id.as_str())
        );
        let sent = records
            .last("/v3/unify-status")
            .unwrap()
            .traceparent
            .clone()
            .unwrap();
        assert!(
            sent.contains(&format!("{trace_id}-{}", hex(&attempt.span_id))),
            "{sent}"
        );

        // Nothing personal or secret on any span, event or attribute.
        for span in &spans {
            assert_nothing_secret(&span_text(span), "a span", Some(&started.auth_token));
        }

        // One JSON log line per RPC, with method, code, latency and correlation ID.
        let logs = world().await.logs.lines();
        let rpc_lines: Vec<&serde_json::Value> = logs
            .iter()
            .filter(|l| l["message"] == "rpc" && l["correlation_id"] == id.as_str())
            .collect();
        let methods: BTreeSet<&str> = rpc_lines
            .iter()
            .map(|l| l["method"].as_str().unwrap())
            .collect();
        assert_eq!(rpc_lines.len(), 2, "{rpc_lines:#?}");
        assert_eq!(methods, BTreeSet::from([unify_rpc, status_rpc]));
        for line in &rpc_lines {
            assert_eq!(line["level"], "INFO");
            assert_eq!(line["code"], "OK");
            assert!(line["latency_ms"].as_f64().unwrap() > 0.0, "{line}");
        }
        assert_nothing_secret(
            &world().await.logs.text(),
            "the logs",
            Some(&started.auth_token),
        );
    });
}

#[test]
fn a_failed_rpc_is_logged_and_its_span_is_marked_without_the_phone_number() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let (trace_id, caller_span) = new_ids();
        let mut request = unify_request(PHONE);
        request.possession_type = PossessionType::Desktop.into(); // needs final_target_url
        let status = app
            .unify
            .unify(traced(request, &trace_id, &caller_span))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let unknown = app
            .unify
            .unify(traced(unify_request("2001000000"), &trace_id, &caller_span))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);

        let rpc = "prove.gateway.v1.UnifyService/Unify";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, rpc).len() == 2
        })
        .await;
        for server in find(&spans, SpanKind::Server, rpc) {
            // Caller errors are not server errors: the span status stays unset.
            let code = server.status.as_ref().map_or(0, |s| s.code);
            assert_eq!(code, StatusCode::Unset as i32, "{server:#?}");
            assert_nothing_secret(&span_text(server), "a span", None);
            assert!(!span_text(server).contains("2001000000"));
        }
        let codes: BTreeSet<String> = find(&spans, SpanKind::Server, rpc)
            .iter()
            .map(|s| attr(s, "rpc.response.status_code").unwrap())
            .collect();
        assert_eq!(
            codes,
            BTreeSet::from(["INVALID_ARGUMENT".into(), "NOT_FOUND".into()])
        );
        let text = world().await.logs.text();
        assert!(text.contains(r#""code":"INVALID_ARGUMENT""#));
        assert_nothing_secret(&text, "the logs", None);
        assert!(!text.contains("2001000000"));
    });
}

#[test]
fn rate_limit_waits_and_retries_are_events_on_the_rpc_span() {
    run(async {
        // Prove fails every /v3 call with a 500, so each is tried three times; the gateway's
        // limiter allows 4 requests per second, so the token, the first attempt and both retries
        // wait for it.
        let sim = SimulatorConfig {
            faults: Faults {
                error_rate: 1.0,
                ..Faults::none()
            },
            ..SimulatorConfig::default()
        };
        let mut app = spawn_gateway(sim, |settings| {
            settings.outbound.rate_limit_rps = 4;
            settings.outbound.retry_max_attempts = 3;
        })
        .await;
        let (trace_id, caller_span) = new_ids();
        let status = app
            .unify
            .unify(traced(unify_request(PHONE), &trace_id, &caller_span))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);

        let rpc = "prove.gateway.v1.UnifyService/Unify";
        let spans = spans_of(&trace_id, |spans| {
            find(spans, SpanKind::Server, rpc).len() == 1
                && find(spans, SpanKind::Client, "POST /v3/unify").len() == 3
        })
        .await;
        let server = find(&spans, SpanKind::Server, rpc)[0];
        let events = |name: &str| -> Vec<&opentelemetry_proto::tonic::trace::v1::span::Event> {
            server.events.iter().filter(|e| e.name == name).collect()
        };
        let retries = events("retry.scheduled");
        assert_eq!(retries.len(), 2, "{:#?}", server.events);
        for (retry, attempt) in retries.iter().zip(["2", "3"]) {
            assert_eq!(
                value(&retry.attributes, "endpoint").as_deref(),
                Some("/v3/unify")
            );
            assert_eq!(
                value(&retry.attributes, "attempt").as_deref(),
                Some(attempt)
            );
            assert!(value(&retry.attributes, "delay_ms").is_some());
        }
        let waits = events("rate_limit.wait");
        assert!(waits.len() >= 2, "{:#?}", server.events);
        for wait in waits {
            let ms: u64 = value(&wait.attributes, "wait_ms").unwrap().parse().unwrap();
            assert!(ms <= 1000, "{ms}");
        }
        // UNAVAILABLE is the server side's failure: the span is an error.
        assert_eq!(
            server.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        assert_eq!(attr(server, "error.type").as_deref(), Some("UNAVAILABLE"));

        // Each attempt has its own CLIENT span, numbered, with Prove's 500.
        let mut attempts: Vec<String> = find(&spans, SpanKind::Client, "POST /v3/unify")
            .iter()
            .map(|a| {
                assert_eq!(a.parent_span_id, server.span_id);
                assert_eq!(attr(a, "http.response.status_code").as_deref(), Some("500"));
                assert_eq!(
                    a.status.as_ref().map(|s| s.code),
                    Some(StatusCode::Error as i32)
                );
                attr(a, "prove.attempt").unwrap()
            })
            .collect();
        attempts.sort();
        assert_eq!(attempts, ["1", "2", "3"]);
        // And Prove saw each attempt under its own span.
        let parents: BTreeSet<String> = app
            .sim
            .records()
            .for_path("/v3/unify")
            .map(|r| r.traceparent.clone().unwrap())
            .collect();
        assert_eq!(parents.len(), 3);
        for span in &spans {
            assert_nothing_secret(&span_text(span), "a span", None);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Metrics, their documentation and the dashboard.

/// A scrape of `/metrics`: family types, and every sample's name and label names.
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<(String, BTreeSet<String>)>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap();
                let name = line[..end].to_owned();
                let labels = if line[end..].starts_with('{') {
                    label_names(&line[end + 1..])
                } else {
                    BTreeSet::new()
                };
                samples.push((name, labels));
            }
        }
        Self { types, samples }
    }

    fn has_sample(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _)| n == name)
    }

    /// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and `_count`
    /// series belong to the histogram.
    fn family<'a>(&self, name: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && self.types.get(base).is_some_and(|t| t == "histogram")
            {
                return base;
            }
        }
        name
    }
}

/// The label names of `a="x",b="y"}...` (values may hold escaped quotes).
fn label_names(mut rest: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    while !rest.starts_with('}') {
        let (name, after) = rest.split_once("=\"").unwrap();
        names.insert(name.trim_start_matches(',').to_owned());
        let mut escaped = false;
        let mut end = 0;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    names
}

/// Metric names in a PromQL expression or a variable query.
fn metric_names(expr: &str) -> Vec<String> {
    let re = regex_lite::Regex::new(r"\bprove_gateway_[a-zA-Z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The metrics table of `docs/observability.md`: name → (kind, label names).
fn documented_metrics() -> HashMap<String, (String, BTreeSet<String>)> {
    let doc = repo_file("docs/observability.md");
    let mut metrics = HashMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `prove_gateway_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let labels: BTreeSet<String> = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "none")
            .collect();
        metrics.insert(name, (cells[2].to_owned(), labels));
    }
    metrics
}

async fn scrape() -> Scrape {
    let url = format!("http://{}/metrics", world().await.metrics);
    let text = reqwest::get(&url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_nothing_secret(&text, "/metrics", None);
    Scrape::parse(&text)
}

#[test]
fn every_documented_metric_is_served_with_its_documented_labels() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        let started = app
            .unify
            .unify(unify_request(PHONE))
            .await
            .unwrap()
            .into_inner();
        let _ = app
            .unify
            .unify_status(UnifyStatusRequest {
                correlation_id: started.correlation_id,
                client_request_id: String::new(),
            })
            .await;
        let _ = app.unify.unify(unify_request("")).await.unwrap_err();

        // The documentation lists exactly the catalogue the code registers.
        let documented = documented_metrics();
        let catalogue: HashMap<String, (String, BTreeSet<String>)> = METRICS
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    telemetry::metrics::Kind::Counter => "counter",
                    telemetry::metrics::Kind::Histogram => "histogram",
                };
                let labels = m.labels.iter().map(|l| (*l).to_owned()).collect();
                (m.name.to_owned(), (kind.to_owned(), labels))
            })
            .collect();
        assert_eq!(documented, catalogue, "docs/observability.md vs METRICS");

        let scrape = scrape().await;
        for (name, (kind, labels)) in &documented {
            assert_eq!(scrape.types.get(name), Some(kind), "# TYPE of {name}");
            let samples: Vec<&BTreeSet<String>> = scrape
                .samples
                .iter()
                .filter(|(n, _)| scrape.family(n) == name)
                .map(|(_, l)| l)
                .collect();
            assert!(!samples.is_empty(), "{name} has no series");
            for sample_labels in samples {
                let mut sample_labels = sample_labels.clone();
                sample_labels.remove("le");
                assert_eq!(&sample_labels, labels, "labels of {name}");
            }
        }
        // Series that must exist at 0 before anything goes wrong, so alerts see 0, not nothing.
        let text = reqwest::get(format!("http://{}/metrics", world().await.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            r#"prove_gateway_rate_limit_rejections_total{reason="queue_full"}"#,
            r#"prove_gateway_retries_skipped_total{endpoint="/v3/verify",reason="budget"}"#,
            r#"prove_gateway_rpc_requests_total{method="prove.gateway.v1.VerifyService/VerifyStatus",code="OK"}"#,
        ] {
            assert!(text.contains(series), "{series} missing");
        }
        assert!(text.contains(
            r#"prove_gateway_rpc_requests_total{method="prove.gateway.v1.UnifyService/Unify",code="INVALID_ARGUMENT"}"#
        ));
    });
}

#[test]
fn every_dashboard_query_names_a_served_series_and_correlation_ids_link_to_traces() {
    run(async {
        let mut app = spawn_gateway(SimulatorConfig::default(), |_| {}).await;
        app.unify.unify(unify_request(PHONE)).await.unwrap();
        let scrape = scrape().await;
        let catalogue: BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();

        let dashboard: serde_json::Value =
            serde_json::from_str(&repo_file("dashboards/prove-gateway.json")).unwrap();
        let mut queries = Vec::new();
        collect_queries(&dashboard, &mut queries);
        let prometheus: Vec<&String> = queries
            .iter()
            .filter(|(source, _)| source == "prometheus")
            .map(|(_, expr)| expr)
            .collect();
        assert!(prometheus.len() >= 8, "{queries:#?}");
        let mut used = BTreeSet::new();
        for expr in prometheus {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "query names no gateway metric: {expr}");
            for name in names {
                assert!(scrape.has_sample(&name), "{name} (in {expr}) is not served");
                let family = scrape.family(&name);
                assert!(catalogue.contains(family), "{family} is not documented");
                used.insert(family.to_owned());
            }
        }
        assert_eq!(
            used,
            catalogue.iter().map(|s| (*s).to_owned()).collect(),
            "the dashboard shows every metric"
        );

        // A correlation ID leads to its traces: a variable, and links to a trace search on
        // the span attribute.
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(variables.contains(&"correlation_id"), "{variables:?}");
        let text = dashboard.to_string();
        assert!(text.contains("span.prove.correlation_id"));
        assert!(text.contains("${correlation_id}") || text.contains("$correlation_id"));
        assert!(
            text.contains("${__value.raw}"),
            "a data link from a log's ID"
        );
    });
}

/// Every (datasource type, query) of the dashboard: panel targets' `expr`, and the queries of
/// template variables. A target without its own datasource inherits its panel's.
fn collect_queries(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    fn source_type(v: &serde_json::Value) -> Option<String> {
        v.get("datasource")
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
    }
    match value {
        serde_json::Value::Object(map) => {
            if let Some(targets) = map.get("targets").and_then(|t| t.as_array()) {
                let panel_source = source_type(value);
                for target in targets {
                    if let Some(expr) = target.get("expr").and_then(|e| e.as_str()) {
                        let source = source_type(target)
                            .or_else(|| panel_source.clone())
                            .expect("every query names its datasource type");
                        out.push((source, expr.to_owned()));
                    }
                }
            }
            if map.get("type").and_then(|t| t.as_str()) == Some("query")
                && let Some(source) = source_type(value)
            {
                let query = match map.get("query") {
                    Some(serde_json::Value::String(q)) => Some(q.clone()),
                    Some(q) => q.get("query").and_then(|q| q.as_str()).map(str::to_owned),
                    None => None,
                };
                if let Some(query) = query {
                    out.push((source, query));
                }
            }
            for child in map.values() {
                collect_queries(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_queries(item, out);
            }
        }
        _ => {}
    }
}
