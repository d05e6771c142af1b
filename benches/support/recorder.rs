//! A `metrics` recorder for the bench process: the gateway's own Prometheus recorder (same
//! buckets as `serve_metrics`, so recording costs what it costs in production), with every value
//! of the rate-limit wait histogram also kept in memory, so its percentiles are exact.

use std::sync::Arc;
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use parking_lot::Mutex;

/// The wait histogram's name; it was `prove_gateway_ratelimit_wait_seconds` before the metrics
/// catalogue renamed it, so both are accepted.
fn is_wait_histogram(name: &str) -> bool {
    matches!(
        name,
        "prove_gateway_rate_limit_wait_seconds" | "prove_gateway_ratelimit_wait_seconds"
    )
}

/// The values recorded into the wait histogram since the last [`WaitSamples::take`].
#[derive(Clone, Default)]
pub struct WaitSamples(Arc<Mutex<Vec<f64>>>);

impl WaitSamples {
    /// Takes the samples recorded so far (and forgets them), sorted.
    pub fn take(&self) -> Vec<Duration> {
        let values = std::mem::take(&mut *self.0.lock());
        let mut waits: Vec<Duration> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Duration::from_secs_f64)
            .collect();
        waits.sort_unstable();
        waits
    }
}

struct Tee {
    inner: PrometheusRecorder,
    waits: WaitSamples,
}

struct TeeHistogram {
    inner: Histogram,
    waits: WaitSamples,
}

impl HistogramFn for TeeHistogram {
    fn record(&self, value: f64) {
        self.inner.record(value);
        self.waits.0.lock().push(value);
    }
}

impl Recorder for Tee {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.inner.register_histogram(key, metadata);
        if is_wait_histogram(key.name()) {
            Histogram::from_arc(Arc::new(TeeHistogram {
                inner,
                waits: self.waits.clone(),
            }))
        } else {
            inner
        }
    }
}

/// Installs the recorder globally (once per process) and runs the Prometheus upkeep every 5 s
/// on the current runtime, as `serve_metrics` does.
pub fn install() -> anyhow::Result<WaitSamples> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .build_recorder();
    let handle = recorder.handle();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    });
    let waits = WaitSamples::default();
    metrics::set_global_recorder(Tee {
        inner: recorder,
        waits: waits.clone(),
    })
    .map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    Ok(waits)
}
