//! Telemetry of the outbound path to Prove: the attempt spans and the trace context they carry
//! to Prove, rate-limit waits and refusals, retries, token fetches.
//!
//! Everything here takes plain labels (`&'static str` endpoint paths and reasons), so the
//! outbound path's own types never reach telemetry.

use std::time::Duration;

use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics;
use super::scope::current_correlation_id;

/// Target of the outbound path's events (rate-limit waits and rejections, retries). They become
/// span events on the RPC's span whatever `PROVE_GATEWAY_LOG` says, and log lines when it lets
/// them through (`PROVE_GATEWAY_LOG=info,prove_gateway::outbound=debug` shows the waits too).
pub const OUTBOUND_TARGET: &str = "prove_gateway::outbound";

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

/// The span of one HTTP attempt at Prove (kind CLIENT) at `endpoint` (its path on Prove's host);
/// its context goes out in `traceparent`.
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
        target: OUTBOUND_TARGET,
        %error,
        "shared rate limiter unavailable; using this replica's own limiter"
    );
}

/// A call was refused by the rate limiter, for `reason` (one of
/// [`metrics::RATE_LIMIT_REJECTION_REASONS`]). The event is at `debug`: the RPC's own log line
/// already says the call failed and why, and a flood of refusals would otherwise write two lines
/// each. It still becomes a span event (the export takes outbound events at any level).
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
mod tests {
    use tracing::Level;

    use super::*;

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
}
