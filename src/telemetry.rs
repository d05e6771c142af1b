//! Logs, traces and metrics: set up once at start ([`init`]), used through the small functions
//! below so the rest of the code never touches exporters or metric names.
//!
//! Personal data never reaches any of them: spans carry the correlation ID, endpoint paths and
//! status codes, never request bodies, phone numbers, names or tokens.

use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};
use crate::prove::ProveError;
use crate::resilience::Endpoint;

/// Keeps the tracer provider alive; [`Guard::shutdown`] flushes spans before exit.
#[derive(Default)]
pub struct Guard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Guard {
    /// Flushes and stops trace export. Blocking, so it runs off the async workers.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the W3C trace-context and baggage propagators, the log subscriber and, when an
/// endpoint is configured, the OTLP trace exporter. Call once, inside the Tokio runtime (the
/// OTLP/gRPC exporter needs it).
pub fn init(settings: &Settings) -> anyhow::Result<Guard> {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let filter =
        EnvFilter::try_new(&settings.log).map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_LOG: {e}"))?;
    let provider = crate::telemetry_otlp::provider(&settings.otel)?;
    let otel_layer = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(p.tracer("prove-gateway"))
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    match settings.log_format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(Guard { provider })
}

/// Plain text logs at `info`, for the standalone simulator.
pub fn init_plain_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("info"))
        .try_init();
}

/// Writes the current span's trace context (`traceparent`, `tracestate`, `baggage`) into the
/// headers of an outgoing request, so the trace continues at Prove.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

tokio::task_local! {
    /// The correlation ID of the RPC being served, once known; read by the attempt spans and by
    /// the RPC's log line.
    static CORRELATION_ID: std::cell::RefCell<Option<String>>;
}

/// Puts the Prove correlation ID on the current RPC span as soon as it is known, and keeps it
/// for the attempt spans and the RPC's log line.
pub fn record_correlation_id(id: &str) {
    tracing::Span::current().record("prove.correlation_id", id);
    let _ = CORRELATION_ID.try_with(|cell| *cell.borrow_mut() = Some(id.to_owned()));
}

/// The correlation ID of the RPC being served, when known.
pub fn current_correlation_id() -> Option<String> {
    CORRELATION_ID
        .try_with(|cell| cell.borrow().clone())
        .ok()
        .flatten()
}

/// Starts the Prometheus endpoint (`GET /metrics`) on `listen`; `None` leaves it off.
pub fn serve_metrics(listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let Some(listen) = listen else {
        return Ok(());
    };
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets(&LATENCY_BUCKETS)
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .install()
        .map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_METRICS_LISTEN {listen}: {e}"))
}

/// Histogram buckets in seconds: from a fast local answer to a slow Prove with retries.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

mod rpc_layer;
pub use rpc_layer::GrpcTraceLayer;

/// The span of one HTTP attempt at Prove; its context goes out in `traceparent`.
pub fn attempt_span(endpoint: Endpoint, attempt: u32) -> tracing::Span {
    let span = tracing::info_span!(
        "prove.request",
        otel.name = %format!("POST {}", endpoint.path()),
        otel.kind = "client",
        http.request.method = "POST",
        url.path = endpoint.path(),
        http.request.resend_count = attempt.saturating_sub(1),
        http.response.status_code = tracing::field::Empty,
        prove.correlation_id = tracing::field::Empty,
    );
    if let Some(id) = current_correlation_id() {
        span.record("prove.correlation_id", id.as_str());
    }
    span
}

/// Records the outcome of one HTTP attempt: on its span, and in the Prove request metrics.
pub fn attempt_finished(
    span: &tracing::Span,
    endpoint: Endpoint,
    status: Option<u16>,
    elapsed: Duration,
) {
    let status_label = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    metrics::counter!(
        "prove_gateway_prove_requests_total",
        "endpoint" => endpoint.path(),
        "status" => status_label.clone()
    )
    .increment(1);
    metrics::histogram!(
        "prove_gateway_prove_request_duration_seconds",
        "endpoint" => endpoint.path(),
        "status" => status_label
    )
    .record(elapsed.as_secs_f64());
}

/// A rate-limit permit was granted after `waited`.
pub fn rate_limit_waited(waited: Duration) {
    metrics::histogram!("prove_gateway_ratelimit_wait_seconds").record(waited.as_secs_f64());
    if !waited.is_zero() {
        tracing::debug!(wait_ms = waited.as_millis() as u64, "rate_limit.wait");
    }
}

/// A call was refused by the rate limiter.
pub fn rate_limit_rejected(error: &ProveError) {
    let reason = match error {
        ProveError::Overloaded { .. } => "queue_full",
        _ => "deadline",
    };
    metrics::counter!("prove_gateway_ratelimit_rejections_total", "reason" => reason).increment(1);
    tracing::info!(reason, "rate_limit.rejected");
}

/// A retry of `endpoint` will be attempt number `attempt`, after `delay`.
pub fn retry_scheduled(endpoint: Endpoint, attempt: u32, delay: Duration) {
    metrics::counter!("prove_gateway_retries_total", "endpoint" => endpoint.path()).increment(1);
    tracing::info!(
        endpoint = endpoint.path(),
        attempt,
        delay_ms = delay.as_millis() as u64,
        "retry.scheduled"
    );
}

/// A retry was not made, because of the deadline or the retry budget.
pub fn retry_skipped(endpoint: Endpoint, reason: &'static str) {
    metrics::counter!("prove_gateway_retries_skipped_total", "reason" => reason).increment(1);
    tracing::info!(endpoint = endpoint.path(), reason, "retry.skipped");
}

/// A token request was answered with `status` (0: no answer).
pub fn token_fetched(status: u16) {
    metrics::counter!("prove_gateway_token_fetches_total", "status" => status.to_string())
        .increment(1);
}
