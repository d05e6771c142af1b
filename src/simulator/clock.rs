//! The simulator's notion of "now": a [`Clock`] trait with a real [`SystemClock`] and a
//! [`ManualClock`] that tests advance by hand; a [`TokioClock`] follows tokio's pausable clock.
//!
//! Everything that expires (OAuth tokens after `token_ttl`, sessions after 15 minutes, OTP and
//! Instant Link windows) and the rate limiter's one-second windows read time through this trait,
//! so a test can cross an expiry instantly instead of sleeping. Wall-clock `SystemTime` (not a
//! monotonic instant) is used because Prove's answers carry Unix epoch seconds
//! (`X-RateLimit-Reset`) and a manual clock must be able to produce those too.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// A source of the current time for the simulator.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Share it as `Arc<ManualClock>` between the test and
/// [`SimulatorConfig::clock`](super::SimulatorConfig::clock).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A manual clock frozen at the current wall-clock time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A manual clock frozen at `start`.
    pub fn starting_at(start: SystemTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: SystemTime) {
        *self.now.lock() = to;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock()
    }
}

/// Wall-clock time that advances with tokio's clock: the wall time at creation plus the tokio
/// time elapsed since. Under `tokio::time::pause()` / `advance()` it moves with the test's virtual
/// time, so token expiry in the simulator and timers in the gateway (which use tokio time) stay in
/// step.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: SystemTime,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at the current wall-clock time. Call it inside the runtime whose clock it follows.
    pub fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.origin.elapsed()
    }
}

/// Seconds since the Unix epoch; 0 for times before it (only reachable with a manual clock).
pub(crate) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Time elapsed from `earlier` to `later`; zero if a manual clock went backwards.
pub(crate) fn elapsed(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}
