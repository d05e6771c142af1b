//! Installing the telemetry once at start: the propagators, the log subscriber and the tracing
//! layer that exports over OTLP ([`super::otlp`]).
//!
//! Two filters decide what goes where (see [`init_with_writer`]):
//! - the log lines follow `PROVE_GATEWAY_LOG` (an EnvFilter);
//! - the trace export has its own fixed filter, so a quiet log level does not silence traces:
//!   this crate's spans at `info`, the outbound path's events ([`OUTBOUND_TARGET`]: rate-limit
//!   waits, retries) at any level, and other events of this crate at `warn` and above.

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::outbound::OUTBOUND_TARGET;
use super::settings::{LogFormat, TelemetrySettings};

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
    let provider = super::otlp::provider(&settings.otel)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;

    #[test]
    fn without_an_export_endpoint_the_trace_context_still_reaches_prove() {
        use opentelemetry::propagation::TextMapPropagator as _;
        use opentelemetry::trace::TracerProvider as _;
        let otel = super::super::OtelSettings::default();
        assert!(otel.endpoint.is_none());
        let provider = super::super::otlp::provider(&otel).unwrap();
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
            let attempt = crate::telemetry::attempt_span("/v3/unify", 1);
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
