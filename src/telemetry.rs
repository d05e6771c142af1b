//! Logs, traces and metrics: set up once at start ([`init`], [`serve_metrics`]), used through the
//! small functions re-exported here so the rest of the code never touches exporters or metric
//! names.
//!
//! Telemetry is the bottom layer: it imports no type of the gateway's domain. Callers hand it
//! plain labels (endpoint paths, reasons, method names, `tonic::Code`s); the server hands the
//! metrics the contract's methods at start ([`metrics::register_methods`]).
//!
//! Personal data never reaches any of them: spans, events, log lines and metric labels carry the
//! correlation ID, endpoint paths, gRPC method names and status codes, never request or response
//! bodies, phone numbers, names, e-mail addresses, tokens or secrets. `docs/observability.md`
//! lists every span attribute, log field and metric.
//!
//! # Layout
//!
//! - [`setup`]: installing the propagators, the log subscriber and the trace export, and the
//!   filters that decide what goes to the logs and what to the traces; [`otlp`] builds the
//!   OTLP exporter and the sampler.
//! - [`rpc_layer`]: the per-RPC server layer: the server span, the RPC metrics and the one log
//!   line per RPC (capped for failures by [`log_throttle`]), recorded once the call's gRPC
//!   status is known, from the response headers or from its trailers ([`body_end`]).
//! - [`caller`]: the per-RPC caller slot: the caller's label, filled in by the access check
//!   below the RPC layer, read by the span, the metrics and the log line.
//! - [`scope`]: the per-RPC scope (a task-local): the RPC's span and correlation ID, reachable
//!   from anywhere inside the call.
//! - [`outbound`]: the outbound path's telemetry: attempt spans and the trace context sent to
//!   Prove, rate-limit waits and refusals, retries, token fetches.
//! - [`metrics`]: the metric catalogue, the `/metrics` endpoint, and the recording functions.

mod body_end;
mod caller;
pub(crate) mod log_throttle;
pub mod metrics;
mod otlp;
mod outbound;
mod rpc_layer;
mod scope;
pub mod settings;
mod setup;

pub use body_end::{BodyEnd, WatchBody};
pub use caller::{NO_CALLER, RpcCaller};
pub use metrics::serve_metrics;
pub use outbound::{
    OUTBOUND_TARGET, attempt_finished, attempt_span, inject_trace_context, rate_limit_redis_failed,
    rate_limit_rejected, rate_limit_waited, retry_scheduled, retry_skipped, token_fetched,
};
pub use rpc_layer::GrpcTraceLayer;
pub use scope::{current_correlation_id, record_correlation_id};
pub use settings::{LOG_FILTER, LogFormat, OtelSettings, SERVICE_NAME, Sampler, TelemetrySettings};
pub use setup::{Guard, init, init_plain_logs, init_with_writer};
