//! Traces: the caller's trace continued through the gateway to Prove, seen by a real OTLP/gRPC
//! receiver; and the spans read back from it.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};

use super::*;

/// An OTLP/gRPC trace receiver that keeps every span it is sent.
#[derive(Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

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
    pub fn spans(&self) -> Vec<(String, Span)> {
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An attribute as text, whatever its type.
pub fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
    let found = attributes.iter().find(|kv| kv.key == key)?;
    Some(match found.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

pub fn attr(span: &Span, key: &str) -> Option<String> {
    value(&span.attributes, key)
}

pub fn kind(span: &Span) -> SpanKind {
    SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified)
}

/// Everything a span could leak through: names, and every attribute and event attribute value.
pub fn span_text(span: &Span) -> String {
    let mut text = format!("{} {:?}", span.name, span.attributes);
    for event in &span.events {
        text.push_str(&format!(" {} {:?}", event.name, event.attributes));
    }
    text
}

/// Flushes the exporter until `done` holds for the spans of `trace_id`, or fails after 10 s.
pub async fn spans_of(trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
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

pub fn find<'a>(spans: &'a [Span], kind_: SpanKind, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| kind(s) == kind_ && s.name == name)
        .collect()
}

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
        // The gateway runs open here: every call is the anonymous caller's.
        assert_eq!(attr(server, "caller").as_deref(), Some("anonymous"));
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
        let logs = own_logs().lines();
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
        assert_nothing_secret(&own_logs().text(), "the logs", Some(&started.auth_token));
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
