//! The accept loop: a cap on open connections, and a back-off when `accept` itself fails.
//!
//! A connection beyond `PROVE_GATEWAY_MAX_CONNECTIONS` is accepted and closed at once, so its
//! client fails fast (and can try another replica) instead of waiting in the kernel's backlog.
//! When `accept` fails for lack of file descriptors or memory, trying again at once only spins
//! (93% CPU in the review, logging nothing): the loop waits instead, from 5 ms doubling to 1 s,
//! and says so at WARN, a line a second at most.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::telemetry::log_throttle::LogThrottle;

/// How long to wait after `accept` failed: 5 ms, doubling per failure up to 1 s; back to 5 ms
/// after the next success.
#[derive(Debug, Default)]
pub(super) struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// The wait after one more failure.
    pub(super) fn failed(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures);
        self.failures = self.failures.saturating_add(1);
        Self::FIRST.saturating_mul(factor).min(Self::MAX)
    }

    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Errors that concern one connection only (it was reset before we took it): the next
/// `accept` can succeed at once.
fn concerns_one_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// Accepts connections until `stop` is cancelled, handing each one, with the slot it holds
/// until it closes, to `serve`.
pub(super) async fn accept_until(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &CancellationToken,
    mut serve: impl FnMut(TcpStream, OwnedSemaphorePermit),
) {
    let mut backoff = AcceptBackoff::default();
    let mut refused_log = LogThrottle::new(1);
    let mut failed_log = LogThrottle::new(1);
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff.succeeded();
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => serve(stream, slot),
                    Err(_) => {
                        // Dropping the stream closes it. The peer's address is personal data:
                        // not logged.
                        drop(stream);
                        if let Some(suppressed) = refused_log.admit(Instant::now()) {
                            tracing::warn!(
                                suppressed,
                                "connection refused: PROVE_GATEWAY_MAX_CONNECTIONS connections are open"
                            );
                        }
                    }
                }
            }
            Err(error) if concerns_one_connection(&error) => {}
            Err(error) => {
                let wait = backoff.failed();
                if let Some(suppressed) = failed_log.admit(Instant::now()) {
                    tracing::warn!(
                        %error,
                        retry_in_ms = wait.as_millis() as u64,
                        suppressed,
                        "accepting connections failed; backing off"
                    );
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// File descriptors kept free beyond the connection cap: the listeners, connections to Prove and
/// Redis, the embedded simulator, the trace exporter.
const FD_RESERVE: u64 = 64;

/// Raises the soft open-file limit to the hard one, so the connection cap, not the default soft
/// limit (often 1024), decides how many clients are served; warns when the cap does not fit.
pub fn raise_open_file_limit(max_connections: u32) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(open_files = limit, "open-file limit");
            if u64::from(max_connections).saturating_add(FD_RESERVE) > limit {
                tracing::warn!(
                    open_files = limit,
                    max_connections,
                    "PROVE_GATEWAY_MAX_CONNECTIONS does not fit the open-file limit: accepting \
                     will fail before the cap is reached; lower it or raise the limit"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_backoff_doubles_from_5_ms_to_1_s_and_resets_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<u128> = (0..10).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            assert_eq!(backoff.failed(), Duration::from_secs(1), "stays at 1 s");
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_millis(5));
    }

    #[test]
    fn only_errors_of_one_connection_skip_the_backoff() {
        use std::io::{Error, ErrorKind};
        assert!(concerns_one_connection(&Error::from(
            ErrorKind::ConnectionAborted
        )));
        // EMFILE ("too many open files") and ENOMEM concern every connection to come.
        assert!(!concerns_one_connection(&Error::from_raw_os_error(24)));
        assert!(!concerns_one_connection(&Error::from(
            ErrorKind::OutOfMemory
        )));
    }
}
