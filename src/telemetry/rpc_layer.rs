//! The server-side tracing layer: one span per RPC, parented on the caller's trace context, plus
//! the RPC metrics and the one log line per RPC.
//!
//! The log line is short (method, code, caller, latency, correlation ID; not the span's fields
//! again): it is the audit line of the call. Every call of an authenticated caller gets its
//! line. Failed calls without one (refused credentials, an open gateway's anonymous calls) write
//! a few lines a second at most per method and code: a flood of refused calls wrote 280,000
//! lines in 8 s. Metrics and spans still count every call.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::time::Instant;
use tonic::Code;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::body_end::{BodyEnd, WatchBody};
use super::caller::RpcCaller;
use super::log_throttle::LogThrottle;
use super::metrics::code_name;

/// Log lines a second at most for failed calls of one method and code.
const FAILED_LINES_PER_SECOND: usize = 5;

/// Which failed calls' log lines pass, by method and code.
type FailedLines = parking_lot::Mutex<HashMap<(&'static str, &'static str), LogThrottle>>;

/// Layer for [`GrpcTrace`]; goes first on the server so the span covers everything below. Build
/// one per server and clone it for each connection: clones share the cap on log lines.
#[derive(Debug, Clone, Default)]
pub struct GrpcTraceLayer {
    failed_lines: Arc<FailedLines>,
}

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace {
            inner,
            failed_lines: self.failed_lines.clone(),
        }
    }
}

/// See [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
    failed_lines: Arc<FailedLines>,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: http_body::Body,
{
    type Response = http::Response<WatchBody<R, RpcEnd>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = super::metrics::method_label(request.uri().path());
        let (service, _) = method.split_once('/').unwrap_or((method, ""));
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        // Both generations of the RPC semantic conventions: `rpc.system.name`, the
        // fully-qualified `rpc.method` and the status name (v1.37+), and `rpc.system`,
        // `rpc.service` and the numeric `rpc.grpc.status_code` that most backends still read.
        let span = tracing::info_span!(
            "rpc",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system.name = "grpc",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.response.status_code = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            prove.correlation_id = tracing::field::Empty,
            caller = tracing::field::Empty,
        );
        // Filled in below, by the access check, once the caller is known.
        let caller = RpcCaller::default();
        request.extensions_mut().insert(caller.clone());
        // Must happen before the span is entered, or tracing-opentelemetry refuses it.
        let _ = span.set_parent(parent);
        let future = self.inner.call(request);
        let started = Instant::now();
        let instrumented = span.clone();
        let failed_lines = self.failed_lines.clone();
        Box::pin(super::scope::scope(span.clone(), async move {
            let result = future.instrument(instrumented).await;
            let finish = Finish {
                method,
                span,
                started,
                failed_lines,
                caller,
                // Read now: the body is sent outside the RPC's scope.
                correlation_id: super::scope::current_correlation_id().unwrap_or_default(),
            };
            match result {
                Ok(response) => {
                    // An error before any message travels "trailers-only", with grpc-status in
                    // the headers; otherwise the status comes in the trailers, after the
                    // messages, and the call is recorded when they go out.
                    let in_headers = response
                        .headers()
                        .get("grpc-status")
                        .map(|v| Code::from_bytes(v.as_bytes()));
                    let pending = match in_headers {
                        Some(code) => {
                            finish.record(code);
                            None
                        }
                        None => Some(finish),
                    };
                    Ok(response.map(|body| WatchBody::new(body, RpcEnd(pending))))
                }
                Err(error) => {
                    finish.record(Code::Unknown);
                    Err(error)
                }
            }
        }))
    }
}

/// Watches an answer's body for the status in its trailers, and records the call then.
pub struct RpcEnd(Option<Finish>);

impl BodyEnd for RpcEnd {
    fn trailers(&mut self, trailers: &mut http::HeaderMap) {
        if let Some(finish) = self.0.take() {
            // Trailers without a status are a broken answer: the caller sees no OK either.
            let code = trailers
                .get("grpc-status")
                .map_or(Code::Unknown, |v| Code::from_bytes(v.as_bytes()));
            finish.record(code);
        }
    }

    fn end(&mut self, finished: bool) {
        if let Some(finish) = self.0.take() {
            // Over without trailers: no status was sent (UNKNOWN), or the body never finished
            // because the caller reset the stream or the connection went away (CANCELLED, as
            // gRPC servers count a call its client gave up on).
            finish.record(if finished {
                Code::Unknown
            } else {
                Code::Cancelled
            });
        }
    }
}

/// Everything needed to record a call once its status is known.
struct Finish {
    method: &'static str,
    span: tracing::Span,
    started: Instant,
    failed_lines: Arc<FailedLines>,
    caller: RpcCaller,
    correlation_id: String,
}

impl Finish {
    /// Records the call's outcome on its span (which then ends), in the RPC metrics and in its
    /// log line.
    fn record(self, code: Code) {
        let Self {
            method,
            span,
            started,
            failed_lines,
            caller,
            correlation_id,
        } = self;
        let name = code_name(code);
        let elapsed = started.elapsed();
        let (caller, authenticated) = caller.label();
        span.record("caller", &*caller);
        span.record("rpc.response.status_code", name);
        span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", name);
        }
        super::metrics::rpc_finished(method, caller.clone(), code, elapsed);
        // Outside the span: inside, each line repeated the span's fields twice (`span`,
        // `spans`), 800 bytes where 200 say it all.
        let latency_ms = elapsed.as_micros() as f64 / 1000.0;
        let suppressed = if code == Code::Ok || authenticated {
            Some(0)
        } else {
            failed_lines
                .lock()
                .entry((method, name))
                .or_insert_with(|| LogThrottle::new(FAILED_LINES_PER_SECOND as u32))
                .admit(Instant::now())
        };
        match suppressed {
            None => {}
            Some(0) => tracing::info!(
                method,
                code = name,
                caller = &*caller,
                latency_ms,
                correlation_id = %correlation_id,
                "rpc"
            ),
            Some(suppressed) => tracing::info!(
                method,
                code = name,
                caller = &*caller,
                latency_ms,
                correlation_id = %correlation_id,
                suppressed,
                "rpc"
            ),
        }
    }
}

/// The codes the gRPC semantic conventions count as a server span error: the server's fault,
/// not the caller's (INVALID_ARGUMENT, NOT_FOUND and the like leave the status unset).
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use tokio::time::Duration;
    use tonic::Code;
    use tower::{Layer as _, ServiceExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const UNIFY: &str = "/prove.gateway.v1.UnifyService/Unify";
    const VERIFY: &str = "/prove.gateway.v1.VerifyService/Verify";

    /// What the server does at start: the contract's methods become labels.
    fn known_methods() {
        super::super::metrics::register_methods(
            [UNIFY, VERIFY].map(|m| m.trim_start_matches('/').to_owned()),
        );
    }

    /// The JSON log lines written while it is the thread's subscriber, formatted as `init` does.
    #[derive(Clone, Default)]
    struct Lines(Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    impl Lines {
        fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
            let lines = Self::default();
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(lines.clone());
            let guard =
                tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
            (lines, guard)
        }

        /// The `rpc` lines, raw.
        fn rpc(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().clone())
                .unwrap()
                .lines()
                .filter(|l| l.contains(r#""message":"rpc""#))
                .map(str::to_owned)
                .collect()
        }

        fn count(&self, method: &str, code: &str) -> usize {
            self.rpc()
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|l| l["method"] == method.trim_start_matches('/') && l["code"] == code)
                .count()
        }

        fn count_of(&self, caller: &str) -> usize {
            self.rpc()
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|l| l["caller"] == caller)
                .count()
        }
    }

    /// One call of `path` through `layer`, answered with `code`.
    async fn call(layer: &GrpcTraceLayer, path: &'static str, code: Code) {
        call_as(layer, path, code, None).await;
    }

    /// [`call`], from `caller` (its name, and whether it is authenticated) as the access check
    /// below the layer would name it.
    async fn call_as(
        layer: &GrpcTraceLayer,
        path: &'static str,
        code: Code,
        caller: Option<(&'static str, bool)>,
    ) {
        known_methods();
        use http_body_util::BodyExt as _;
        let inner = tower::service_fn(move |request: http::Request<()>| async move {
            if let Some((name, authenticated)) = caller {
                let slot = request.extensions().get::<RpcCaller>().unwrap();
                if authenticated {
                    slot.authenticated(name.into());
                } else {
                    slot.unverified(name.into());
                }
            }
            Ok::<_, Infallible>(if code == Code::Ok {
                // A success: a message, then OK in the trailers.
                streamed(trailers_of(&tonic::Status::ok("")))
            } else {
                // A failure: "trailers-only", the status in the headers.
                tonic::Status::new(code, "refused").into_http::<tonic::body::Body>()
            })
        });
        let request = http::Request::builder().uri(path).body(()).unwrap();
        let response = layer.layer(inner).oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }

    fn trailers_of(status: &tonic::Status) -> http::HeaderMap {
        let mut trailers = http::HeaderMap::new();
        status.add_header(&mut trailers).unwrap();
        trailers
    }

    /// An answer that streams one message and then `trailers`, as tonic sends a status once a
    /// message went out (or any status of a streaming call).
    fn streamed(trailers: http::HeaderMap) -> http::Response<tonic::body::Body> {
        let frames: Vec<Result<http_body::Frame<bytes::Bytes>, tonic::Status>> = vec![
            Ok(http_body::Frame::data(bytes::Bytes::from_static(&[0; 5]))),
            Ok(http_body::Frame::trailers(trailers)),
        ];
        http::Response::new(tonic::body::Body::new(http_body_util::StreamBody::new(
            futures::stream::iter(frames),
        )))
    }

    #[tokio::test]
    async fn a_status_in_the_trailers_is_the_calls_code() {
        use http_body_util::BodyExt as _;
        known_methods();
        let (lines, _guard) = Lines::capture();
        let trailers = trailers_of(&tonic::Status::internal("stream broke"));
        let answer = Arc::new(parking_lot::Mutex::new(Some(streamed(trailers))));
        let inner = tower::service_fn(move |_: http::Request<()>| {
            let answer = answer.lock().take().unwrap();
            async move { Ok::<_, Infallible>(answer) }
        });
        let request = http::Request::builder().uri(UNIFY).body(()).unwrap();
        let response = GrpcTraceLayer::default()
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap();
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "13");
        assert_eq!(lines.count(UNIFY, "INTERNAL"), 1, "{:?}", lines.rpc());
        assert_eq!(lines.count(UNIFY, "OK"), 0, "{:?}", lines.rpc());
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_status_went_out_is_cancelled() {
        use http_body_util::BodyExt as _;
        known_methods();
        let (lines, _guard) = Lines::capture();
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(streamed(trailers_of(&tonic::Status::ok(""))))
        });
        let request = http::Request::builder().uri(VERIFY).body(()).unwrap();
        let response = GrpcTraceLayer::default()
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap();
        assert!(
            lines.rpc().is_empty(),
            "recorded before the status: {:?}",
            lines.rpc()
        );
        let mut body = response.into_body();
        let message = body.frame().await.unwrap().unwrap();
        assert!(message.is_data());
        // The caller resets the stream: the server drops the body before its trailers.
        drop(body);
        assert_eq!(lines.count(VERIFY, "CANCELLED"), 1, "{:?}", lines.rpc());
        assert_eq!(lines.rpc().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_call_is_one_short_line_without_the_span_fields() {
        let (lines, _guard) = Lines::capture();
        call(&GrpcTraceLayer::default(), UNIFY, Code::InvalidArgument).await;
        let rpc = lines.rpc();
        assert_eq!(rpc.len(), 1, "{rpc:?}");
        let line: serde_json::Value = serde_json::from_str(&rpc[0]).unwrap();
        assert_eq!(line["code"], "INVALID_ARGUMENT");
        assert_eq!(line["method"], "prove.gateway.v1.UnifyService/Unify");
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
        // Before: about 830 bytes, the span's fields repeated twice.
        eprintln!("a failed call's line: {} bytes", rpc[0].len());
        assert!(rpc[0].len() < 300, "{} bytes: {}", rpc[0].len(), rpc[0]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_of_an_authenticated_caller_is_logged_and_others_failures_are_capped() {
        let (lines, _guard) = Lines::capture();
        let layer = GrpcTraceLayer::default();
        // All within one instant of the paused clock.
        for _ in 0..40 {
            call_as(
                &layer,
                VERIFY,
                Code::PermissionDenied,
                Some(("checkout", true)),
            )
            .await;
        }
        for _ in 0..40 {
            call_as(
                &layer,
                VERIFY,
                Code::PermissionDenied,
                Some(("anonymous", false)),
            )
            .await;
        }
        for _ in 0..40 {
            call_as(&layer, VERIFY, Code::Unauthenticated, None).await;
        }
        assert_eq!(
            lines.count_of("checkout"),
            40,
            "an audit line for each call"
        );
        // An open gateway's caller and calls with no caller: capped as before (the
        // authenticated caller's lines did not use up the cap of their method and code).
        assert_eq!(lines.count_of("anonymous"), FAILED_LINES_PER_SECOND);
        assert_eq!(lines.count_of("unauthenticated"), FAILED_LINES_PER_SECOND);
        let line: serde_json::Value = serde_json::from_str(lines.rpc().last().unwrap()).unwrap();
        assert_eq!(line["code"], "UNAUTHENTICATED");
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_are_rate_limited_per_method_and_code_and_successes_are_not() {
        let (lines, _guard) = Lines::capture();
        let layer = GrpcTraceLayer::default();
        // All within one instant of the paused clock: a flood.
        for _ in 0..1000 {
            call(&layer, UNIFY, Code::InvalidArgument).await;
        }
        for _ in 0..20 {
            call(&layer, VERIFY, Code::NotFound).await;
        }
        for _ in 0..30 {
            call(&layer, UNIFY, Code::Ok).await;
        }
        assert_eq!(
            lines.count(UNIFY, "INVALID_ARGUMENT"),
            FAILED_LINES_PER_SECOND
        );
        assert_eq!(lines.count(VERIFY, "NOT_FOUND"), FAILED_LINES_PER_SECOND);
        assert_eq!(lines.count(UNIFY, "OK"), 30, "every success keeps its line");

        // A second later the next failure passes and reports how many were left out.
        tokio::time::advance(Duration::from_secs(1)).await;
        call(&layer, UNIFY, Code::InvalidArgument).await;
        let last: serde_json::Value = serde_json::from_str(lines.rpc().last().unwrap()).unwrap();
        assert_eq!(last["code"], "INVALID_ARGUMENT");
        assert_eq!(last["suppressed"], 1000 - FAILED_LINES_PER_SECOND as u64);
    }
}
