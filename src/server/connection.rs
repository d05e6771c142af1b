//! One client connection: HTTP/2 with a cap on concurrent streams and keepalive pings, closed
//! when it does not complete the handshake in time, when it has been idle too long, or when the
//! server drains. The stream is a TCP connection or the TLS session on one: everything here
//! sees the HTTP/2 bytes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::edge::ConnectionState;
use super::settings::ConnectionSettings;

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
const PREFACE_LEN: usize = 24;

/// The HTTP/2 settings every connection gets.
pub(super) fn http2_builder(limits: &ConnectionSettings) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    builder
}

/// Serves `stream` until it closes. It must have sent the HTTP/2 preface by `handshake_by`
/// (the TLS handshake, if any, counts against the same time). `draining` asks it to finish
/// (GOAWAY: calls in flight go on, new ones are refused).
pub(super) async fn serve<IO, S, B>(
    stream: IO,
    service: S,
    state: ConnectionState,
    http2: &http2::Builder<TokioExecutor>,
    limits: &ConnectionSettings,
    handshake_by: Instant,
    draining: &CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let received = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(CountingReads {
        inner: stream,
        received: received.clone(),
    });
    let connection = http2.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(connection);
    let handshake = tokio::time::sleep_until(handshake_by);
    tokio::pin!(handshake);
    let idle = state.idle_for(limits.idle_timeout);
    tokio::pin!(idle);
    let mut handshake_checked = false;
    let mut closing = false;
    loop {
        tokio::select! {
            served = &mut connection => {
                if let Err(error) = served {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut handshake, if !handshake_checked => {
                if received.load(Ordering::Relaxed) < PREFACE_LEN {
                    // Nothing to say GOAWAY to: an HTTP/2 client sends the preface first.
                    tracing::debug!("no HTTP/2 preface within PROVE_GATEWAY_HANDSHAKE_TIMEOUT: closing");
                    return;
                }
                handshake_checked = true;
            }
            () = &mut idle, if !closing => {
                tracing::debug!("idle for PROVE_GATEWAY_IDLE_TIMEOUT: closing");
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = draining.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// No Nagle delay for small gRPC frames, and TCP keepalive probes after the keepalive interval
/// of silence, which also find peers gone before HTTP/2 could ping them.
pub(super) fn tune(stream: &TcpStream, limits: &ConnectionSettings) {
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(limits.keepalive_interval)
        .with_interval(limits.keepalive_interval);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "cannot set TCP keepalive");
    }
}

/// A stream that counts the bytes read from it, up to the preface's length: enough to tell
/// whether the handshake began.
struct CountingReads<IO> {
    inner: IO,
    received: Arc<AtomicUsize>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for CountingReads<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 && self.received.load(Ordering::Relaxed) < PREFACE_LEN {
            self.received.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for CountingReads<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
