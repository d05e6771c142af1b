//! The shared fixture (`tests/support`) under the names the API tests use, and small assertion
//! helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use prove_gateway::grpc::pb::{PossessionType, UnifyRequest};

// Included here rather than in `main.rs`, so the fixture joins this target through this file.
#[path = "../support/mod.rs"]
pub mod support;

pub use support::app::{
    TestApp, connect, credentials, spawn_app, spawn_app_configured, spawn_app_with, spawn_gateway,
};
pub use support::redis::Redis;

/// A request carrying a `grpc-timeout`.
pub fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The ErrorInfo reason and domain of a status, and its metadata.
pub fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .expect("every error carries an ErrorInfo")
}

/// The `prove.gateway.v1.ProveError` detail of a status, if any.
pub fn prove_error(status: &tonic::Status) -> Option<prove_gateway::grpc::pb::ProveError> {
    use prost::Message;
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url == "type.googleapis.com/prove.gateway.v1.ProveError")
        .and_then(|any| prove_gateway::grpc::pb::ProveError::decode(any.value.as_slice()).ok())
}

/// A Unify request for `phone` with `possession`.
pub fn unify_request(possession: PossessionType, phone: &str) -> UnifyRequest {
    UnifyRequest {
        possession_type: possession as i32,
        phone_number: phone.into(),
        ..Default::default()
    }
}

/// The everyday Unify request: mobile possession for the full-flow sandbox user.
pub fn mobile_unify() -> UnifyRequest {
    unify_request(PossessionType::Mobile, "2001004014")
}

/// The log lines of one test only: a subscriber installed as this thread's default for as long
/// as the capture lives. On tokio's default (current-thread) test runtime every task of the
/// test, the gateway's and the simulator's included, runs on this thread, and no other test's
/// lines can mix in (a global subscriber would collect every test of the binary).
pub struct LogCapture {
    buffer: std::sync::Arc<parking_lot::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Captures everything the gateway and simulator log (TRACE), and INFO from dependencies,
    /// with each event's span fields and a line for each span's close (so span fields show up
    /// even where no event was logged).
    pub fn start() -> Self {
        let buffer = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || CaptureWriter(buffer.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,prove_gateway=trace",
            ))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock()).into_owned()
    }

    /// Waits until a captured line contains `needle`, for at most ten seconds.
    pub async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while !self.text().contains(needle) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "no log line with {needle:?}:\n{}",
            self.text()
        );
    }
}

struct CaptureWriter(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
