//! Connections the simulator can cut: a TCP listener whose streams carry a kill switch, so the
//! drop fault can close a connection without sending any answer, the way a crashing upstream or
//! a load balancer reset looks to a client.
//!
//! axum answers every request it routes, so "no answer" has to happen below HTTP: the handler
//! flips the switch (reachable through `ConnectInfo<ConnKill>`), the stream then fails every
//! read and write, hyper gives the connection up, and with `SO_LINGER=0` the socket closes with a
//! reset. On HTTP/2 this cuts every stream of the connection, like the real thing.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener handing out [`KillableStream`]s.
#[derive(Debug)]
pub(crate) struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        // Answers are small; without NODELAY, Nagle plus delayed ACKs can add ~40 ms per call.
        let _ = stream.set_nodelay(true);
        let stream = KillableStream {
            inner: stream,
            killed: Arc::new(AtomicBool::new(false)),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails all I/O once its [`ConnKill`] is triggered.
#[derive(Debug)]
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    /// The error to report once killed; also arms the reset on close.
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::Acquire) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection dropped by the simulator's drop fault",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The kill switch of the connection a request arrived on.
#[derive(Debug, Clone)]
pub(crate) struct ConnKill(Arc<AtomicBool>);

impl ConnKill {
    /// Makes the connection fail from its next read or write on.
    pub fn kill(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnKill {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Self(Arc::clone(&stream.io().killed))
    }
}
