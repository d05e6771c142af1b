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
        let method = super::metrics::method_label(request.uri().path());
        let (service, _) = method.split_once('/').unwrap_or((method, ""));
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        // Both generations of the RPC semantic conventions: `rpc.system.name`, the
        // fully-qualified `rpc.method` and the status name (v1.37+), and `rpc.system`,
        // `rpc.service` and the numeric `rpc.grpc.status_code` that most backends still read.
        let span = tracing::info_span!(
            "rpc",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system.name = "grpc",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.response.status_code = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            prove.correlation_id = tracing::field::Empty,
        );
        // Must happen before the span is entered, or tracing-opentelemetry refuses it.
        let _ = span.set_parent(parent);
        let future = self.inner.call(request);
        let started = Instant::now();
        let scope = RefCell::new(super::RpcScope {
            span: span.clone(),
            correlation_id: None,
        });
        let instrumented = span.clone();
        Box::pin(super::RPC.scope(scope, async move {
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
            span.record("rpc.grpc.status_code", code);
            if is_server_error(code) {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", name);
            }
            super::metrics::rpc_finished(method, name, elapsed);
            let correlation_id = super::current_correlation_id().unwrap_or_default();
            span.in_scope(|| {
                tracing::info!(
                    method,
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

/// The codes the gRPC semantic conventions count as a server span error: the server's fault,
/// not the caller's (INVALID_ARGUMENT, NOT_FOUND and the like leave the status unset).
fn is_server_error(code: i32) -> bool {
    // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}
