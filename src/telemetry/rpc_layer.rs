//! The server-side tracing layer: one span per RPC, parented on the caller's trace context, plus
//! the RPC metrics and the one log line per RPC.

use std::cell::RefCell;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Layer for [`GrpcTrace`]; goes first on the server so the span covers everything below.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// See [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

/// Method label: the gRPC path for our own services, health and reflection; anything else is
/// "other", so a client probing random paths cannot blow up the metric's cardinality.
fn method_label(path: &str) -> String {
    let known = [
        "/prove.gateway.v1.",
        "/grpc.health.v1.",
        "/grpc.reflection.",
    ];
    if known.iter().any(|p| path.starts_with(p)) {
        path.trim_start_matches('/').to_owned()
    } else {
        "other".to_owned()
    }
}

/// gRPC status names, as semantic conventions want them in `rpc.response.status_code`.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system.name = "grpc",
            rpc.system = "grpc",
            rpc.method = %method,
            rpc.response.status_code = tracing::field::Empty,
            prove.correlation_id = tracing::field::Empty,
        );
        // Must happen before the span is entered, or tracing-opentelemetry refuses it.
        let _ = span.set_parent(parent);
        let future = self.inner.call(request);
        let started = Instant::now();
        let instrumented = span.clone();
        Box::pin(super::CORRELATION_ID.scope(RefCell::new(None), async move {
            let result = future.instrument(instrumented).await;
            // Errors travel "trailers-only", with grpc-status in the headers; a response
            // without it carries OK in its trailers.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            let name = code_name(code);
            let elapsed = started.elapsed();
            span.record("rpc.response.status_code", name);
            if code != 0 {
                span.record("otel.status_code", "ERROR");
            }
            metrics::counter!(
                "prove_gateway_rpc_requests_total",
                "method" => method.clone(),
                "code" => name
            )
            .increment(1);
            metrics::histogram!(
                "prove_gateway_rpc_duration_seconds",
                "method" => method.clone(),
                "code" => name
            )
            .record(elapsed.as_secs_f64());
            let correlation_id = super::current_correlation_id().unwrap_or_default();
            span.in_scope(|| {
                tracing::info!(
                    method = %method,
                    code = name,
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    correlation_id = %correlation_id,
                    "rpc"
                );
            });
            result
        }))
    }
}
