//! The OTLP/gRPC trace exporter, configured by the standard OpenTelemetry variables.

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use crate::telemetry::{OtelSettings, Sampler as Named};

/// The tracer provider: sampling as configured, exporting in batches to `settings.endpoint`, or
/// not exporting at all when no endpoint is set (its spans still carry trace context through to
/// Prove).
pub fn provider(settings: &OtelSettings) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler(settings))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        );
    if let Some(endpoint) = &settings.endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

fn sampler(settings: &OtelSettings) -> Sampler {
    let ratio = settings.sampler_arg.unwrap_or(1.0);
    match settings.sampler {
        Named::AlwaysOn => Sampler::AlwaysOn,
        Named::AlwaysOff => Sampler::AlwaysOff,
        Named::TraceIdRatio => Sampler::TraceIdRatioBased(ratio),
        Named::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        Named::ParentbasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        Named::ParentbasedTraceIdRatio => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}
