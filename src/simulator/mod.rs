//! An embedded Prove simulator: Prove's OAuth `/token` and the `/v3` Unified Authentication and
//! Verified Users endpoints, served over real HTTP on loopback, with Prove's sandbox test users,
//! session rules, error codes, rate limit and injectable faults.
//!
//! It is "the other side of the wire" for the gateway's tests and for running the gateway
//! without Prove credentials: it has its own wire models and shares no types with the gateway's
//! client. Behaviour, test numbers and every decision the docs leave open are in `README.md`
//! next to this file.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use prove_gateway::simulator::{self, SimulatorConfig};
//! let sim = simulator::spawn(SimulatorConfig::default()).await?;
//! let base = sim.base_url(); // "http://127.0.0.1:PORT"; token URL is base + "/token"
//! # let _ = base;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Files: `routes.rs` (router, middleware, `/token`), `v3.rs` (the `/v3` handlers), `control.rs` (`/_simulator/*`),
//! `models.rs` (wire JSON), `validate.rs` (request rules), `sandbox.rs` (test users),
//! `sessions.rs` (state machine, expiry), `auth.rs` (tokens), `rate_limit.rs`, `faults.rs`,
//! `records.rs`, `conn.rs` (droppable connections), `clock.rs`, `error.rs`.

mod auth;
mod clock;
mod conn;
mod control;
mod error;
mod faults;
mod models;
mod rate_limit;
mod records;
mod routes;
mod sandbox;
mod sessions;
mod v3;
mod validate;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use error::SimulatorError;
pub use faults::{FaultKind, Faults};
pub use records::{MAX_RECORDS, RecordedRequest, Records};
pub use sessions::PossessionAction;

use auth::TokenStore;
use faults::FaultInjector;
use rate_limit::RateLimiter;
use records::Recorder;
use sessions::SessionStore;

/// Client ID of the built-in Unify sandbox credentials.
pub const SIM_UNIFY_CLIENT_ID: &str = "sim-unify-client";
/// Client secret of the built-in Unify sandbox credentials.
pub const SIM_UNIFY_CLIENT_SECRET: &str = "sim-unify-secret";
/// Client ID of the built-in Verified Users sandbox credentials.
pub const SIM_VERIFY_CLIENT_ID: &str = "sim-verify-client";
/// Client secret of the built-in Verified Users sandbox credentials.
pub const SIM_VERIFY_CLIENT_SECRET: &str = "sim-verify-secret";

/// How long graceful shutdown waits for in-flight requests before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The Prove product a set of credentials (and a sandbox test user) belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// Unified Authentication: `/v3/unify`, `/v3/unify-status`, `/v3/unify-bind`.
    Unify,
    /// Verified Users: `/v3/verify`, `/v3/verify-status`.
    Verify,
}

/// OAuth client credentials the simulator accepts on `/token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub client_id: String,
    pub client_secret: String,
    /// Which test users these credentials may use (8009 for the others).
    pub product: Product,
}

impl Credential {
    /// A credential for `product`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        product: Product,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            product,
        }
    }

    /// The well-known sandbox credentials: `sim-unify-client` / `sim-unify-secret` (Unify) and
    /// `sim-verify-client` / `sim-verify-secret` (Verify).
    pub fn default_set() -> Vec<Credential> {
        vec![
            Self::new(SIM_UNIFY_CLIENT_ID, SIM_UNIFY_CLIENT_SECRET, Product::Unify),
            Self::new(
                SIM_VERIFY_CLIENT_ID,
                SIM_VERIFY_CLIENT_SECRET,
                Product::Verify,
            ),
        ]
    }
}

/// Everything the simulator can be started with.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Where to listen; default `127.0.0.1:0` (a free port, see [`Simulator::addr`]).
    pub listen: SocketAddr,
    /// Accepted credentials; default [`Credential::default_set`].
    pub credentials: Vec<Credential>,
    /// Lifetime of issued access tokens (`expires_in`); default 3600 s like Prove.
    pub token_ttl: Duration,
    /// Requests per second per client ID; default 25 like Prove; 0 disables the limit.
    pub rate_limit_rps: u32,
    /// Injected faults; default none.
    pub faults: Faults,
    /// Time source for token and session expiry and the rate-limit window; default the wall
    /// clock. Pass an `Arc<ManualClock>` to control expiry from a test.
    pub clock: Arc<dyn Clock>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: Credential::default_set(),
            token_ttl: Duration::from_secs(3600),
            rate_limit_rps: 25,
            faults: Faults::none(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// State shared by all handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    clock: Arc<dyn Clock>,
    /// Changed by [`Simulator::set_credentials`], as Prove's portal rotates a client secret.
    credentials: Mutex<Vec<Credential>>,
    token_ttl: Duration,
    tokens: TokenStore,
    limiter: RateLimiter,
    faults: FaultInjector,
    sessions: SessionStore,
    records: Recorder,
}

impl Shared {
    fn product_of(&self, client_id: &str) -> Option<Product> {
        self.credentials
            .lock()
            .iter()
            .find(|c| c.client_id == client_id)
            .map(|c| c.product)
    }
}

/// A running simulator. Cheap to clone; all clones control the same server.
///
/// Shutdown: call [`Simulator::shutdown`] to stop gracefully and wait; or drop every clone, which
/// signals the same graceful stop without waiting for it. Ending the tokio runtime also ends it.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `config.listen` and serves the simulator on a background task of the current tokio
/// runtime. Fails if the address cannot be bound or the faults are out of range.
pub async fn spawn(config: SimulatorConfig) -> io::Result<Simulator> {
    config
        .faults
        .validate()
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        clock: config.clock,
        credentials: Mutex::new(config.credentials),
        token_ttl: config.token_ttl,
        tokens: TokenStore::default(),
        limiter: RateLimiter::new(config.rate_limit_rps),
        faults: FaultInjector::new(config.faults),
        sessions: SessionStore::default(),
        records: Recorder::default(),
    });
    let app =
        routes::router(Arc::clone(&shared)).into_make_service_with_connect_info::<conn::ConnKill>();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = axum::serve(conn::KillableListener(listener), app).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move { server.await });
    Ok(Simulator {
        inner: Arc::new(Inner {
            addr,
            shared,
            stop: Mutex::new(Some(stop)),
            task: Mutex::new(Some(task)),
        }),
    })
}

impl Simulator {
    /// The bound address (the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://ADDR`, the value to use as Prove's host (`/token` and `/v3/...` hang off it).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Replaces the injected faults (restarting the seeded sequence, if any). Rates outside
    /// `0.0..=1.0` are clamped.
    pub fn set_faults(&self, mut faults: Faults) {
        for rate in [
            &mut faults.error_rate,
            &mut faults.drop_rate,
            &mut faults.malformed_rate,
        ] {
            *rate = if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            };
        }
        self.inner.shared.faults.set(faults);
    }

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.inner.shared.faults.get()
    }

    /// Sets requests per second per client ID; 0 disables the limit.
    pub fn set_rate_limit(&self, rps: u32) {
        self.inner.shared.limiter.set_rps(rps);
    }

    /// Answers every `/v3` and `/token` request with 429 for `duration`, `Retry-After` counting
    /// down to its end: Prove asking for a pause longer than its one-second window.
    pub fn throttle(&self, duration: Duration) {
        let shared = &self.inner.shared;
        shared.limiter.throttle(shared.clock.now() + duration);
    }

    /// Replaces the credentials `/token` accepts, as a rotation in Prove's portal does: a
    /// secret no longer listed is refused from the next token request on, while the tokens
    /// already issued stay valid until they expire.
    pub fn set_credentials(&self, credentials: Vec<Credential>) {
        *self.inner.shared.credentials.lock() = credentials;
    }

    /// A snapshot of the requests received so far (the most recent [`MAX_RECORDS`]).
    pub fn records(&self) -> Records {
        self.inner.shared.records.snapshot()
    }

    /// Forgets the requests received so far.
    pub fn reset_records(&self) {
        self.inner.shared.records.clear();
    }

    /// Plays the end user's device for session `correlation_id`: the client SDK's
    /// `Authenticate()`, an OTP entry (`"1234"` passes; mobile only; within 2 minutes of the
    /// session start) or an Instant Link click (desktop only; within 3 minutes). A failing
    /// action is not an error: it makes the status step answer failure.
    pub fn complete_possession(
        &self,
        correlation_id: &str,
        action: PossessionAction,
    ) -> Result<(), SimulatorError> {
        let shared = &self.inner.shared;
        shared
            .sessions
            .complete_possession(correlation_id, &action, shared.clock.now())
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s, then cuts them)
    /// and waits for the server task to end. Other clones of this handle stay valid but talk to
    /// a stopped server.
    pub async fn shutdown(self) {
        if let Some(stop) = self.inner.stop.lock().take() {
            let _ = stop.send(());
        }
        let task = self.inner.task.lock().take();
        if let Some(mut task) = task
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// Runs the simulator until `shutdown` completes, then stops it gracefully: the body of the
/// `prove-gateway simulator --listen ADDR` subcommand. Logs the address and the client IDs it
/// accepts (never the secrets, which are the documented `SIM_*_CLIENT_SECRET` constants unless
/// configured otherwise).
pub async fn run_standalone(
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let client_ids: Vec<String> = config
        .credentials
        .iter()
        .map(|c| format!("{} ({:?})", c.client_id, c.product))
        .collect();
    let simulator = spawn(config).await?;
    tracing::info!(
        addr = %simulator.addr(),
        base_url = %simulator.base_url(),
        clients = %client_ids.join(", "),
        "Prove simulator listening"
    );
    shutdown.await;
    tracing::info!("Prove simulator shutting down");
    simulator.shutdown().await;
    Ok(())
}
