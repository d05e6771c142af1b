//! Logs, traces and metrics: set up once at start ([`init`], [`serve_metrics`]), used through the
//! small functions below so the rest of the code never touches exporters or metric names.
//!
//! Personal data never reaches any of them: spans, events, log lines and metric labels carry the
//! correlation ID, endpoint paths, gRPC method names and status codes, never request or response
//! bodies, phone numbers, names, e-mail addresses, tokens or secrets. `docs/observability.md`
//! lists every span attribute, log field and metric.
//!
//! Two filters decide what goes where (see [`init_with_writer`]):
//! - the log lines follow `PROVE_GATEWAY_LOG` (an EnvFilter);
//! - the trace export has its own fixed filter, so a quiet log level does not silence traces:
//!   this crate's spans at `info`, the outbound path's events ([`OUTBOUND_TARGET`]: rate-limit
//!   waits, retries) at any level, and other events of this crate at `warn` and above.

use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub(crate) mod log_throttle;
pub mod metrics;
mod rpc_layer;
pub mod settings;

pub use metrics::serve_metrics;
pub use rpc_layer::GrpcTraceLayer;
pub use settings::{LOG_FILTER, LogFormat, OtelSettings, SERVICE_NAME, Sampler, TelemetrySettings};

/// Target of the outbound path's events (rate-limit waits and rejections, retries). They become
/// span events on the RPC's span whatever `PROVE_GATEWAY_LOG` says, and log lines when it lets
/// them through (`PROVE_GATEWAY_LOG=info,prove_gateway::outbound=debug` shows the waits too).
pub const OUTBOUND_TARGET: &str = "prove_gateway::outbound";

/// Keeps the tracer provider alive; [`Guard::shutdown`] flushes spans before exit.
#[derive(Default)]
pub struct Guard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Guard {
    /// Exports the spans ended so far without stopping export. Blocking inside the SDK, so it
    /// runs off the async workers.
    pub async fn force_flush(&self) -> anyhow::Result<()> {
        let Some(provider) = self.provider.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await?
            .map_err(|e| anyhow::anyhow!("trace export flush: {e}"))
    }

    /// Flushes and stops trace export. Blocking, so it runs off the async workers.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the W3C trace-context and baggage propagators (for incoming calls; requests to Prove
/// carry the trace context only, see [`inject_trace_context`]), the log subscriber writing to
/// stdout and the tracing layer, which exports over OTLP when an endpoint is configured. Call
/// once, inside the Tokio runtime (the OTLP/gRPC exporter needs it).
pub fn init(settings: impl Into<TelemetrySettings>) -> anyhow::Result<Guard> {
    init_with_writer(settings, std::io::stdout)
}

/// [`init`], with the log lines going to `writer` instead of stdout (tests capture them).
///
/// The OpenTelemetry layer is installed even without an export endpoint: the gateway's spans
/// then still carry the caller's trace context on to Prove in `traceparent`, they are just not
/// exported.
pub fn init_with_writer<W>(
    settings: impl Into<TelemetrySettings>,
    writer: W,
) -> anyhow::Result<Guard>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let settings = settings.into();
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let log_filter =
        EnvFilter::try_new(&settings.log).map_err(|e| anyhow::anyhow!("PROVE_GATEWAY_LOG: {e}"))?;
    let provider = crate::telemetry_otlp::provider(&settings.otel)?;
    let otel_layer = {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("prove-gateway"))
            .with_filter(filter_fn(exported).with_max_level_hint(LevelFilter::DEBUG))
    };
    let log_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_writer(writer)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(otel_layer)
        .with(log_layer.with_filter(log_filter))
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(Guard {
        provider: Some(provider),
    })
}

/// The trace export's filter (see the module docs): this crate's spans at `info` and above, its
/// outbound events at any level, its other events at `warn` and above. The per-RPC log line is
/// not repeated as a span event: the span already carries the same fields.
fn exported(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    if !(target == "prove_gateway" || target.starts_with("prove_gateway::")) {
        return false;
    }
    if meta.is_span() {
        *meta.level() <= Level::INFO
    } else {
        target == OUTBOUND_TARGET || *meta.level() <= Level::WARN
    }
}

/// Plain text logs at `info`, for the standalone simulator.
pub fn init_plain_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("info"))
        .try_init();
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into the headers of an
/// outgoing request, so the trace continues at Prove.
///
/// Only the trace context: the caller's W3C `baggage` is extracted with it (the global
/// propagator reads both), but it is free-form and can carry personal data, and Prove is a
/// third party. It stays with the gateway's own telemetry.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    let context = tracing::Span::current().context();
    TraceContextPropagator::new()
        .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
}

/// What the RPC being served knows about itself: its span, and its correlation ID once known.
struct RpcScope {
    span: tracing::Span,
    correlation_id: Option<String>,
}

tokio::task_local! {
    /// Set by the server layer for each RPC; read by the attempt spans and the RPC's log line.
    static RPC: std::cell::RefCell<RpcScope>;
}

/// Puts the Prove correlation ID on the RPC's span as soon as it is known, and keeps it for the
/// attempt spans that follow and for the RPC's log line. Outside an RPC it marks the current
/// span only.
pub fn record_correlation_id(id: &str) {
    let in_rpc = RPC.try_with(|cell| {
        let mut scope = cell.borrow_mut();
        scope.span.record("prove.correlation_id", id);
        scope.correlation_id = Some(id.to_owned());
    });
    if in_rpc.is_err() {
        tracing::Span::current().record("prove.correlation_id", id);
    }
}

/// The correlation ID of the RPC being served, when known.
pub fn current_correlation_id() -> Option<String> {
    RPC.try_with(|cell| cell.borrow().correlation_id.clone())
        .ok()
        .flatten()
}

/// Masks all but the last two digits of a phone number (`"2001004014"` → `"********14"`), for
/// the rare message that must point at a number. Prefer not mentioning numbers at all: the
/// gateway itself never logs one.
pub fn mask_phone(phone: &str) -> String {
    let count = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 2 < count { '*' } else { c })
        .collect()
}

/// The span of one HTTP attempt at Prove (kind CLIENT); its context goes out in `traceparent`.
pub fn attempt_span(endpoint: &'static str, attempt: u32) -> tracing::Span {
    let span = tracing::info_span!(
        "prove.request",
        otel.name = %format!("POST {endpoint}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        url.path = endpoint,
        http.request.resend_count = attempt.saturating_sub(1),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        prove.attempt = attempt,
        prove.correlation_id = tracing::field::Empty,
    );
    if let Some(id) = current_correlation_id() {
        span.record("prove.correlation_id", id.as_str());
    }
    span
}

/// Records the outcome of one HTTP attempt (`status` `None`: no answer): on its span, and in the
/// Prove request metrics.
pub fn attempt_finished(
    span: &tracing::Span,
    endpoint: &'static str,
    status: Option<u16>,
    elapsed: Duration,
) {
    let status_label = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    // HTTP client semantic conventions: 4xx and 5xx and no answer at all are errors.
    if status.is_none_or(|s| s >= 400) {
        span.record("otel.status_code", "ERROR");
        span.record(
            "error.type",
            status.map_or("_OTHER", |_| status_label.as_str()),
        );
    }
    metrics::prove_request(endpoint, status_label, elapsed);
}

/// A rate-limit permit was granted after `waited`; a real wait becomes a `rate_limit.wait` span
/// event on the RPC's span.
pub fn rate_limit_waited(waited: Duration) {
    metrics::rate_limit_waited(waited);
    if !waited.is_zero() {
        tracing::debug!(
            target: OUTBOUND_TARGET,
            wait_ms = waited.as_millis() as u64,
            "rate_limit.wait"
        );
    }
}

/// The shared limiter's Redis could not answer; this replica's own limiter decided instead.
pub fn rate_limit_redis_failed(error: &dyn std::fmt::Display) {
    metrics::rate_limit_redis_error();
    tracing::warn!(
        target: "prove_gateway::outbound",
        %error,
        "shared rate limiter unavailable; using this replica's own limiter"
    );
}

/// A call was refused by the rate limiter. The event is at `debug`: the RPC's own log line
/// already says the call failed and why, and a flood of refusals would otherwise write two
/// lines each. It still becomes a span event (the export takes outbound events at any level).
pub fn rate_limit_rejected(reason: &'static str) {
    metrics::rate_limit_rejected(reason);
    tracing::debug!(target: OUTBOUND_TARGET, reason, "rate_limit.rejected");
}

/// A retry of `endpoint` will be attempt number `attempt`, after `delay`.
pub fn retry_scheduled(endpoint: &'static str, attempt: u32, delay: Duration) {
    metrics::retry_scheduled(endpoint);
    tracing::info!(
        target: OUTBOUND_TARGET,
        endpoint,
        attempt,
        delay_ms = delay.as_millis() as u64,
        "retry.scheduled"
    );
}

/// A retry was not made, because of the deadline, the retry budget, or a `Retry-After` longer
/// than the retry layer ever waits.
pub fn retry_skipped(endpoint: &'static str, reason: &'static str) {
    metrics::retry_skipped(endpoint, reason);
    tracing::info!(
        target: OUTBOUND_TARGET,
        endpoint,
        reason,
        "retry.skipped"
    );
}

/// A token request was answered with `status` (0: no answer).
pub fn token_fetched(status: u16) {
    metrics::token_fetched(status);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_an_export_endpoint_the_trace_context_still_reaches_prove() {
        use opentelemetry::propagation::TextMapPropagator as _;
        use opentelemetry::trace::TracerProvider as _;
        let otel = OtelSettings::default();
        assert!(otel.endpoint.is_none());
        let provider = crate::telemetry_otlp::provider(&otel).unwrap();
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_filter(filter_fn(exported)),
        );
        let propagator = TraceContextPropagator::new();
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            format!("00-{trace_id}-00f067aa0ba902b7-01")
                .parse()
                .unwrap(),
        );
        let parent = propagator.extract(&opentelemetry_http::HeaderExtractor(&incoming));
        let mut outgoing = http::HeaderMap::new();
        tracing::subscriber::with_default(subscriber, || {
            let rpc = tracing::info_span!("rpc");
            let _ = rpc.set_parent(parent);
            let _rpc = rpc.enter();
            let attempt = attempt_span("/v3/unify", 1);
            let _attempt = attempt.enter();
            let context = tracing::Span::current().context();
            propagator.inject_context(
                &context,
                &mut opentelemetry_http::HeaderInjector(&mut outgoing),
            );
        });
        let sent = outgoing["traceparent"].to_str().unwrap();
        assert!(sent.starts_with(&format!("00-{trace_id}-")), "{sent}");
        assert!(
            !sent.contains("00f067aa0ba902b7"),
            "a span of the gateway's own: {sent}"
        );
    }

    #[test]
    fn phone_numbers_keep_only_their_last_two_digits() {
        assert_eq!(mask_phone("2001004014"), "********14");
        assert_eq!(mask_phone("+447968900002"), "***********02");
        assert_eq!(mask_phone("12"), "12");
        assert_eq!(mask_phone(""), "");
    }

    /// Records the level and target of every event.
    #[derive(Default)]
    struct Events(parking_lot::Mutex<Vec<(String, Level, String)>>);

    impl tracing::Subscriber for Events {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut message = Message(String::new());
            event.record(&mut message);
            let meta = event.metadata();
            self.0
                .lock()
                .push((meta.target().to_owned(), *meta.level(), message.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_rejected_call_adds_only_a_debug_event_to_the_per_rpc_log_line() {
        let events = std::sync::Arc::new(Events::default());
        tracing::subscriber::with_default(events.clone(), || {
            rate_limit_rejected("queue_full");
        });
        let events = events.0.lock();
        assert_eq!(
            *events,
            [(
                OUTBOUND_TARGET.to_owned(),
                Level::DEBUG,
                "rate_limit.rejected".to_owned()
            )]
        );
    }

    #[test]
    fn the_export_filter_takes_spans_and_outbound_events_of_this_crate_only() {
        // Metadata is only built by the macros: a subscriber that records the filter's decision
        // for each callsite it is shown.
        #[derive(Default)]
        struct Seen(parking_lot::Mutex<Vec<(&'static str, Level, bool, bool)>>);
        impl tracing::Subscriber for Seen {
            fn register_callsite(
                &self,
                meta: &'static tracing::Metadata<'static>,
            ) -> tracing::subscriber::Interest {
                // Tests running at the same time register their callsites with every live
                // subscriber, this one included: only this test's own are counted.
                if meta.module_path() == Some(module_path!()) {
                    self.0.lock().push((
                        meta.target(),
                        *meta.level(),
                        meta.is_span(),
                        exported(meta),
                    ));
                }
                tracing::subscriber::Interest::never()
            }
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                false
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let seen = std::sync::Arc::new(Seen::default());
        tracing::subscriber::with_default(seen.clone(), || {
            tracing::debug!(target: OUTBOUND_TARGET, "wait");
            tracing::info!("a log line");
            tracing::warn!("a warning");
            let _span = tracing::info_span!("span");
            let _debug_span = tracing::debug_span!("debug span");
            tracing::info!(target: "h2::proto", "other crate");
            let _other = tracing::info_span!(target: "hyper::client", "other span");
        });
        let seen = seen.0.lock();
        let decisions: Vec<bool> = seen.iter().map(|s| s.3).collect();
        assert_eq!(
            decisions,
            [true, false, true, true, false, false, false],
            "{seen:?}"
        );
    }
}
