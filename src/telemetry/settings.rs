//! The settings of logs and trace export. `config` fills them from flags and the standard
//! OpenTelemetry variables; the defaults live here once.

/// Default log filter.
pub const LOG_FILTER: &str = "info";
/// Default `service.name` on exported traces.
pub const SERVICE_NAME: &str = "prove-gateway";

/// Format of the log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The trace sampler, named as in the OpenTelemetry specification (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// A ratio of traces (`OTEL_TRACES_SAMPLER_ARG`).
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// As the caller decided; every trace without a caller's decision.
    #[default]
    ParentbasedAlwaysOn,
    /// As the caller decided; no trace without a caller's decision.
    ParentbasedAlwaysOff,
    /// As the caller decided; a ratio of traces without a caller's decision.
    #[value(name = "parentbased_traceidratio")]
    ParentbasedTraceIdRatio,
}

/// Trace export settings (the standard OpenTelemetry variables).
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// OTLP/gRPC endpoint; `None` turns export off.
    pub endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// The sampler.
    pub sampler: Sampler,
    /// Sampler argument (a ratio).
    pub sampler_arg: Option<f64>,
}

impl Default for OtelSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: SERVICE_NAME.into(),
            sampler: Sampler::default(),
            sampler_arg: None,
        }
    }
}

/// Everything [`crate::telemetry::init`] needs.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// Log line format.
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax.
    pub log: String,
    /// Trace export.
    pub otel: OtelSettings,
}

impl From<&TelemetrySettings> for TelemetrySettings {
    fn from(settings: &TelemetrySettings) -> Self {
        settings.clone()
    }
}
