//! The Prometheus metrics: one catalogue ([`METRICS`]) of names, label sets and help texts, used
//! to describe them at start, to pre-register their series, by the recording functions below,
//! and by the tests that check `docs/observability.md` and the Grafana dashboard against what
//! `/metrics` serves.
//!
//! Every label has a small, fixed set of values: method names come from the contract, handed over
//! at start ([`register_methods`]; anything else is `other`), endpoints are Prove's paths (also
//! handed over, [`register_endpoints`]), codes and statuses come from the protocols.

use std::time::Duration;

use parking_lot::RwLock;
use tonic::Code;

/// Counter: RPCs served, by `method`, gRPC `code` and `caller`.
pub const RPC_REQUESTS: &str = "prove_gateway_rpc_requests_total";
/// Histogram: RPC latency in seconds, by `method`, `code` and `caller`.
pub const RPC_DURATION: &str = "prove_gateway_rpc_duration_seconds";
/// Counter: HTTP attempts at Prove, by `endpoint` and HTTP `status` (`error`: no answer).
pub const PROVE_REQUESTS: &str = "prove_gateway_prove_requests_total";
/// Histogram: latency of one HTTP attempt at Prove in seconds, by `endpoint` and `status`.
pub const PROVE_DURATION: &str = "prove_gateway_prove_request_duration_seconds";
/// Counter: retries sent to Prove, by `endpoint`.
pub const RETRIES: &str = "prove_gateway_retries_total";
/// Counter: retries not made, by `endpoint` and `reason` (`deadline`, `budget`, `retry_after`).
pub const RETRIES_SKIPPED: &str = "prove_gateway_retries_skipped_total";
/// Histogram: time waited for a rate-limit permit in seconds (zero waits included).
pub const RATE_LIMIT_WAIT: &str = "prove_gateway_rate_limit_wait_seconds";
/// The `reason`s of [`RETRIES_SKIPPED`].
pub const RETRY_SKIP_REASONS: [&str; 3] = ["deadline", "budget", "retry_after"];
/// Counter: calls the rate limiter refused, by `reason` (`deadline`, `max_wait`, `queue_full`).
pub const RATE_LIMIT_REJECTIONS: &str = "prove_gateway_rate_limit_rejections_total";
/// The `reason`s of [`RATE_LIMIT_REJECTIONS`].
pub const RATE_LIMIT_REJECTION_REASONS: [&str; 3] = ["deadline", "max_wait", "queue_full"];
/// Counter: permits the shared (Redis) limiter could not decide, so the local one did.
pub const RATE_LIMIT_REDIS_ERRORS: &str = "prove_gateway_rate_limit_redis_errors_total";
/// Counter: OAuth token requests, by HTTP `status` (`error`: no answer).
pub const TOKEN_FETCHES: &str = "prove_gateway_token_fetches_total";
/// Gauge: 1 while the embedded simulator answers in place of Prove, else 0.
pub const SIMULATED: &str = "prove_gateway_simulated";

/// Whether a metric is a counter, a gauge or a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic counter (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram (`_bucket`, `_sum`, `_count`), with [`LATENCY_BUCKETS`].
    Histogram,
}

/// One metric the gateway exports.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The Prometheus name.
    pub name: &'static str,
    /// Counter or histogram.
    pub kind: Kind,
    /// Its label names, in order.
    pub labels: &'static [&'static str],
    /// The HELP text.
    pub help: &'static str,
}

/// Every metric the gateway exports; `docs/observability.md` documents exactly these.
pub const METRICS: &[Metric] = &[
    Metric {
        name: RPC_REQUESTS,
        kind: Kind::Counter,
        labels: &["method", "code", "caller"],
        help: "gRPC calls served, by method, gRPC status code and caller",
    },
    Metric {
        name: RPC_DURATION,
        kind: Kind::Histogram,
        labels: &["method", "code", "caller"],
        help: "gRPC call latency in seconds, by method, gRPC status code and caller",
    },
    Metric {
        name: PROVE_REQUESTS,
        kind: Kind::Counter,
        labels: &["endpoint", "status"],
        help: "HTTP attempts at Prove, by endpoint and HTTP status (error: no answer)",
    },
    Metric {
        name: PROVE_DURATION,
        kind: Kind::Histogram,
        labels: &["endpoint", "status"],
        help: "Latency of one HTTP attempt at Prove in seconds, by endpoint and HTTP status",
    },
    Metric {
        name: RETRIES,
        kind: Kind::Counter,
        labels: &["endpoint"],
        help: "Retries of a Prove request, by endpoint",
    },
    Metric {
        name: RETRIES_SKIPPED,
        kind: Kind::Counter,
        labels: &["endpoint", "reason"],
        help: "Retryable Prove answers not retried, by endpoint and reason (deadline, budget, retry_after)",
    },
    Metric {
        name: RATE_LIMIT_WAIT,
        kind: Kind::Histogram,
        labels: &[],
        help: "Time waited for a rate-limit permit in seconds, zero waits included",
    },
    Metric {
        name: RATE_LIMIT_REJECTIONS,
        kind: Kind::Counter,
        labels: &["reason"],
        help: "Calls the rate limiter refused, by reason (deadline, max_wait, queue_full)",
    },
    Metric {
        name: RATE_LIMIT_REDIS_ERRORS,
        kind: Kind::Counter,
        labels: &[],
        help: "Rate-limit decisions the shared Redis limiter could not make (the local limiter decided)",
    },
    Metric {
        name: TOKEN_FETCHES,
        kind: Kind::Counter,
        labels: &["status"],
        help: "OAuth token requests to Prove, by HTTP status (error: no answer)",
    },
    Metric {
        name: SIMULATED,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 while the embedded simulator answers in place of Prove (no person is verified), else 0",
    },
];

/// Histogram buckets in seconds: from a fast local answer to a slow Prove with retries.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The methods every gRPC server of the gateway serves besides the contract's: health and
/// reflection. They are not the domain's, so they are known from the start.
const BUILT_IN_METHODS: [&str; 4] = [
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The contract's methods (`service/method`), as registered at start.
static CONTRACT_METHODS: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

/// Prove's endpoint paths, as registered at start.
static ENDPOINTS: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

/// Makes `methods` (`package.Service/Method`, the contract's RPCs) known to the `method` label
/// and exports a zero `OK` series for each. The server calls it at start with the methods read
/// from the contract, so a new RPC is covered without touching telemetry. Calling it again with
/// the same methods changes nothing.
pub fn register_methods(methods: impl IntoIterator<Item = String>) {
    let mut known = CONTRACT_METHODS.write();
    for method in methods {
        if BUILT_IN_METHODS.contains(&method.as_str()) || known.contains(&method.as_str()) {
            continue;
        }
        // A label must live as long as the recorder; each name is leaked once, and the
        // contract has a handful.
        let method: &'static str = Box::leak(method.into_boxed_str());
        known.push(method);
        register_method_series(method);
    }
}

/// Makes Prove's endpoint `paths` known and exports their zero series (successes, retries and
/// every skipped-retry reason). The server calls it at start.
pub fn register_endpoints(paths: impl IntoIterator<Item = &'static str>) {
    let mut known = ENDPOINTS.write();
    for path in paths {
        if !known.contains(&path) {
            known.push(path);
            register_endpoint_series(path);
        }
    }
}

/// The `method` label (and span name) for a request path: `service/method` when the server
/// knows it (health, reflection, or a registered method of the contract), else `other`, so a
/// client probing random paths cannot grow the label set.
pub fn method_label(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    if let Some(method) = BUILT_IN_METHODS.iter().find(|m| **m == path) {
        return method;
    }
    CONTRACT_METHODS
        .read()
        .iter()
        .find(|m| **m == path)
        .copied()
        .unwrap_or("other")
}

/// The name of a gRPC status code, as the `code` label and the semantic conventions'
/// `rpc.response.status_code` want it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Starts the Prometheus endpoint on `listen`, describes every metric and registers a
/// zero-valued series for each documented label set, so that dashboards and alerts see `0`
/// rather than "no data" before the first error. `None` leaves it off.
///
/// The endpoint answers `GET` and `HEAD /metrics` only: other paths are 404 and other methods on
/// `/metrics` 405, so a scanner probing paths learns nothing (the exporter's own listener
/// answered every path and method with the metrics).
///
/// Installs the process-wide metrics recorder: call once, inside the Tokio runtime.
pub fn serve_metrics(listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let Some(listen) = listen else {
        return Ok(());
    };
    let bind_error =
        |e: std::io::Error| anyhow::anyhow!("PROVE_GATEWAY_METRICS_LISTEN {listen}: {e}");
    let listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_error)?;
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    describe();
    register_zero_series();
    tokio::spawn(upkeep(handle.clone()));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, endpoint(handle)).await {
            tracing::warn!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

/// `GET /metrics` (axum answers HEAD from the same route), 405 for other methods there, 404
/// anywhere else.
fn endpoint(handle: metrics_exporter_prometheus::PrometheusHandle) -> axum::Router {
    let scrape = move || {
        let text = handle.render();
        async move {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
        }
    };
    axum::Router::new().route("/metrics", axum::routing::get(scrape))
}

/// The recorder's periodic maintenance (draining histogram samples), which the exporter's own
/// listener used to run; its default period.
async fn upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

fn describe() {
    for metric in METRICS {
        match metric.kind {
            Kind::Counter => ::metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => ::metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => {
                ::metrics::describe_histogram!(metric.name, ::metrics::Unit::Seconds, metric.help)
            }
        }
    }
}

/// The series a dashboard or an alert needs before any traffic: successes per method and per
/// endpoint (those registered so far; later ones get theirs when registered), and every retry and
/// rejection reason. Registering a series without incrementing it exports it at 0.
fn register_zero_series() {
    for method in BUILT_IN_METHODS
        .into_iter()
        .chain(CONTRACT_METHODS.read().iter().copied())
    {
        register_method_series(method);
    }
    for path in ENDPOINTS.read().iter().copied() {
        register_endpoint_series(path);
    }
    let _ = ::metrics::histogram!(RATE_LIMIT_WAIT);
    for reason in RATE_LIMIT_REJECTION_REASONS {
        let _ = ::metrics::counter!(RATE_LIMIT_REJECTIONS, "reason" => reason);
    }
    let _ = ::metrics::counter!(RATE_LIMIT_REDIS_ERRORS);
    let _ = ::metrics::counter!(TOKEN_FETCHES, "status" => "200");
    let _ = ::metrics::gauge!(SIMULATED);
}

/// Whether the embedded simulator answers in place of Prove (set by the server at start).
pub fn set_simulated(simulated: bool) {
    ::metrics::gauge!(SIMULATED).set(if simulated { 1.0 } else { 0.0 });
}

/// The zero series carry the label of calls without a caller: the callers are known only once
/// they call (and change with the callers file), and a sum over callers is what dashboards read.
fn register_method_series(method: &'static str) {
    let caller = super::caller::NO_CALLER;
    let _ =
        ::metrics::counter!(RPC_REQUESTS, "method" => method, "code" => "OK", "caller" => caller);
    let _ =
        ::metrics::histogram!(RPC_DURATION, "method" => method, "code" => "OK", "caller" => caller);
}

fn register_endpoint_series(path: &'static str) {
    let _ = ::metrics::counter!(PROVE_REQUESTS, "endpoint" => path, "status" => "200");
    let _ = ::metrics::histogram!(PROVE_DURATION, "endpoint" => path, "status" => "200");
    let _ = ::metrics::counter!(RETRIES, "endpoint" => path);
    for reason in RETRY_SKIP_REASONS {
        let _ = ::metrics::counter!(RETRIES_SKIPPED, "endpoint" => path, "reason" => reason);
    }
}

/// One RPC of `caller` finished with gRPC `code` after `elapsed`.
pub(super) fn rpc_finished(
    method: &'static str,
    caller: std::sync::Arc<str>,
    code: Code,
    elapsed: Duration,
) {
    let code = code_name(code);
    ::metrics::counter!(RPC_REQUESTS, "method" => method, "code" => code, "caller" => caller.clone())
        .increment(1);
    ::metrics::histogram!(RPC_DURATION, "method" => method, "code" => code, "caller" => caller)
        .record(elapsed.as_secs_f64());
}

pub(super) fn prove_request(path: &'static str, status: String, elapsed: Duration) {
    ::metrics::counter!(PROVE_REQUESTS, "endpoint" => path, "status" => status.clone())
        .increment(1);
    ::metrics::histogram!(PROVE_DURATION, "endpoint" => path, "status" => status)
        .record(elapsed.as_secs_f64());
}

pub(super) fn retry_scheduled(endpoint: &'static str) {
    ::metrics::counter!(RETRIES, "endpoint" => endpoint).increment(1);
}

pub(super) fn retry_skipped(endpoint: &'static str, reason: &'static str) {
    ::metrics::counter!(RETRIES_SKIPPED, "endpoint" => endpoint, "reason" => reason).increment(1);
}

pub(super) fn rate_limit_waited(waited: Duration) {
    ::metrics::histogram!(RATE_LIMIT_WAIT).record(waited.as_secs_f64());
}

pub(super) fn rate_limit_rejected(reason: &'static str) {
    ::metrics::counter!(RATE_LIMIT_REJECTIONS, "reason" => reason).increment(1);
}

pub(super) fn rate_limit_redis_error() {
    ::metrics::counter!(RATE_LIMIT_REDIS_ERRORS).increment(1);
}

pub(super) fn token_fetched(status: u16) {
    let status = if status == 0 {
        "error".to_owned()
    } else {
        status.to_string()
    };
    ::metrics::counter!(TOKEN_FETCHES, "status" => status).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_methods_and_the_built_in_ones_are_known_and_anything_else_is_other() {
        const BIND: &str = "prove.gateway.v1.UnifyService/UnifyBind";
        register_methods([BIND.to_owned()]);
        register_methods([BIND.to_owned()]);
        assert_eq!(
            CONTRACT_METHODS
                .read()
                .iter()
                .filter(|m| **m == BIND)
                .count(),
            1,
            "registered once"
        );
        assert_eq!(method_label(&format!("/{BIND}")), BIND);
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(method_label("/prove.gateway.v1.UnifyService/Nope"), "other");
        assert_eq!(method_label("/prove.gateway.v1.x"), "other");
        assert_eq!(method_label("/"), "other");
    }

    #[test]
    fn every_code_has_its_protocol_name() {
        // tonic's codes are numbered as the protocol's: 0 OK to 16 UNAUTHENTICATED.
        let names: Vec<&str> = (0..=16).map(|n| code_name(Code::from_i32(n))).collect();
        assert_eq!(names[0], "OK");
        assert_eq!(names[4], "DEADLINE_EXCEEDED");
        assert_eq!(names[13], "INTERNAL");
        assert_eq!(names[16], "UNAUTHENTICATED");
        let distinct: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(distinct.len(), 17, "{names:?}");
    }

    #[test]
    fn every_metric_is_prefixed_and_named_for_its_kind() {
        for metric in METRICS {
            assert!(metric.name.starts_with("prove_gateway_"), "{}", metric.name);
            match metric.kind {
                Kind::Counter => assert!(metric.name.ends_with("_total"), "{}", metric.name),
                Kind::Histogram => assert!(metric.name.ends_with("_seconds"), "{}", metric.name),
                // A gauge is a state, not a count or a duration.
                Kind::Gauge => assert!(
                    !metric.name.ends_with("_total") && !metric.name.ends_with("_seconds"),
                    "{}",
                    metric.name
                ),
            }
        }
    }
}
