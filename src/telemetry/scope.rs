//! The per-RPC scope: a task-local the server layer ([`super::GrpcTraceLayer`]) sets for each
//! call, so code deep in the call (the handler, the attempt spans) can reach the RPC's span and
//! its correlation ID without passing them down.

/// What the RPC being served knows about itself: its span, and its correlation ID once known.
struct RpcScope {
    span: tracing::Span,
    correlation_id: Option<String>,
}

tokio::task_local! {
    /// Set by the server layer for each RPC; read by the attempt spans and the RPC's log line.
    static RPC: std::cell::RefCell<RpcScope>;
}

/// Runs `future` (one RPC) with `span` as its scope.
pub(super) fn scope<F: std::future::Future>(
    span: tracing::Span,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    let scope = RpcScope {
        span,
        correlation_id: None,
    };
    RPC.scope(std::cell::RefCell::new(scope), future)
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
