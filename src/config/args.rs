//! The command line: every flag, its environment variable and its default.
//!
//! The defaults are the constants of the modules that own the settings, so `--help` shows the
//! same values the code falls back to. Secrets are parsed straight into `SecretString`, so the
//! derived `Debug` of these structs prints `[REDACTED]` for them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use humantime::Duration as HumanDuration;
use secrecy::SecretString;

use crate::callers::UnknownSessions;
use crate::resilience::settings as defaults;
use crate::server::settings as server;
use crate::store::settings as store;
use crate::telemetry::{self, LogFormat, Sampler};

use super::profile::Profile;

/// Default address of the standalone simulator.
pub const SIMULATOR_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// Default rate limit of the standalone simulator: Prove's own, 25 per second per client.
pub const SIMULATOR_RATE_LIMIT_RPS: u32 = 25;
/// Default lifetime of the standalone simulator's tokens: Prove's, an hour.
pub const SIMULATOR_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The command line of the `prove-gateway` binary.
#[derive(Debug, Parser)]
#[command(
    name = "prove-gateway",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run something other than the gateway.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of the gateway (the default command).
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

impl Cli {
    /// Parses the command line and the environment as `Cli::parse` does (printing help or the
    /// error and exiting), and records which settings were stated (see [`Stated`]).
    pub fn parse_stated() -> Self {
        let matches = Self::command().get_matches();
        Self::from_stated_matches(&matches).unwrap_or_else(|error| error.exit())
    }

    /// [`Cli::parse_stated`] of `argv`, with clap's error returned instead of printed.
    pub fn try_parse_stated_from<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(argv)?;
        Self::from_stated_matches(&matches)
    }

    fn from_stated_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut cli = Self::from_arg_matches(matches)?;
        cli.gateway.stated = Stated(
            matches
                .ids()
                .filter(|id| {
                    !matches!(
                        matches.value_source(id.as_str()),
                        None | Some(ValueSource::DefaultValue)
                    )
                })
                .map(|id| id.as_str().to_owned())
                .collect(),
        );
        Ok(cli)
    }
}

/// The gateway's settings that were given (as a flag or an environment variable) rather than
/// left at their defaults, by clap's id (the field's name). The production profile needs the
/// difference: it replaces some defaults with its own and refuses to guess others, and a
/// default shown in `--help` must stay the development one.
#[derive(Debug, Clone, Default)]
pub struct Stated(BTreeSet<String>);

impl Stated {
    /// Whether the setting of field `id` was given.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// Subcommands besides the gateway itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Prove simulator alone, for example to point another gateway or a test at it.
    Simulator(SimulatorArgs),
}

/// Settings of `prove-gateway simulator`.
#[derive(Debug, Clone, Args)]
pub struct SimulatorArgs {
    /// Address the simulator's HTTP server listens on.
    #[arg(long, env = "PROVE_SIMULATOR_LISTEN", default_value_t = SIMULATOR_LISTEN)]
    pub listen: SocketAddr,
    /// Requests per second each client ID may make before the simulator answers 429 (0: no limit).
    #[arg(long, env = "PROVE_SIMULATOR_RATE_LIMIT_RPS", default_value_t = SIMULATOR_RATE_LIMIT_RPS)]
    pub rate_limit_rps: u32,
    /// Lifetime of the OAuth tokens the simulator issues.
    #[arg(long, env = "PROVE_SIMULATOR_TOKEN_TTL", default_value_t = SIMULATOR_TOKEN_TTL.into(), value_parser = duration)]
    pub token_ttl: HumanDuration,
}

/// Raw settings of the gateway, as clap parses them from flags and the environment.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// `development` runs as configured, on the embedded simulator when PROVE_BASE_URL is
    /// unset. `production` refuses to start without a Prove host over https, TLS on the gRPC
    /// port, authenticated callers and a stated PROVE_GATEWAY_METRICS_LISTEN, and turns JSON
    /// logs on and reflection off unless they are set.
    #[arg(long, env = "PROVE_GATEWAY_PROFILE", value_enum, default_value_t = Profile::default())]
    pub profile: Profile,
    /// Address of the gRPC server (services, health and reflection share it).
    #[arg(long, env = "PROVE_GATEWAY_LISTEN", default_value_t = server::LISTEN)]
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (`/metrics`). The production profile has no
    /// default: it must be set.
    #[arg(long, env = "PROVE_GATEWAY_METRICS_LISTEN", default_value_t = server::METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
    /// How long calls in flight may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "PROVE_GATEWAY_DRAIN_TIMEOUT", default_value_t = server::DRAIN_TIMEOUT.into(), value_parser = duration)]
    pub drain_timeout: HumanDuration,
    /// After SIGTERM, keep accepting calls this long while health already answers NOT_SERVING,
    /// so load balancers and Kubernetes endpoints stop sending before new calls are refused.
    #[arg(long, env = "PROVE_GATEWAY_SHUTDOWN_DELAY", default_value_t = server::SHUTDOWN_DELAY.into(), value_parser = duration)]
    pub shutdown_delay: HumanDuration,
    /// Most client connections open at once; a connection beyond it is closed as soon as it is
    /// accepted. Keep it below the open-file limit (the gateway raises its soft limit to the hard
    /// one at start).
    #[arg(long, env = "PROVE_GATEWAY_MAX_CONNECTIONS", default_value_t = server::MAX_CONNECTIONS)]
    pub max_connections: u32,
    /// Most calls (HTTP/2 streams) open at once on one connection; the client waits for a free one.
    #[arg(
        long,
        env = "PROVE_GATEWAY_MAX_CONCURRENT_STREAMS",
        default_value_t = server::MAX_CONCURRENT_STREAMS
    )]
    pub max_concurrent_streams: u32,
    /// A connection that sent nothing for this long gets an HTTP/2 PING (and TCP keepalive
    /// probes start after the same idle time), so dead peers are found.
    #[arg(long, env = "PROVE_GATEWAY_KEEPALIVE_INTERVAL", default_value_t = server::KEEPALIVE_INTERVAL.into(), value_parser = duration)]
    pub keepalive_interval: HumanDuration,
    /// How long a PING may go unanswered before the connection is closed.
    #[arg(long, env = "PROVE_GATEWAY_KEEPALIVE_TIMEOUT", default_value_t = server::KEEPALIVE_TIMEOUT.into(), value_parser = duration)]
    pub keepalive_timeout: HumanDuration,
    /// How long a new connection may take to send the HTTP/2 preface before it is closed.
    #[arg(long, env = "PROVE_GATEWAY_HANDSHAKE_TIMEOUT", default_value_t = server::HANDSHAKE_TIMEOUT.into(), value_parser = duration)]
    pub handshake_timeout: HumanDuration,
    /// A connection with no call open for this long is closed (gracefully, with GOAWAY).
    #[arg(long, env = "PROVE_GATEWAY_IDLE_TIMEOUT", default_value_t = server::IDLE_TIMEOUT.into(), value_parser = duration)]
    pub idle_timeout: HumanDuration,
    /// PEM certificate chain of the gRPC port (server certificate first). With
    /// PROVE_GATEWAY_TLS_KEY_FILE, the port speaks TLS only. Read again when it changes.
    #[arg(long, env = "PROVE_GATEWAY_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of PROVE_GATEWAY_TLS_CERT_FILE.
    #[arg(long, env = "PROVE_GATEWAY_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to: set, every client must
    /// present a valid certificate from it (mTLS), and callers are identified by their
    /// certificates, not by bearer tokens. Needs the TLS certificate and key.
    #[arg(long, env = "PROVE_GATEWAY_CLIENT_CA_FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// How often the TLS files are read again; a rotated certificate is served from the next
    /// handshake on, a broken one is ignored with a warning.
    #[arg(long, env = "PROVE_GATEWAY_TLS_RELOAD_INTERVAL", default_value_t = server::TLS_RELOAD_INTERVAL.into(), value_parser = duration)]
    pub tls_reload_interval: HumanDuration,
    /// Address of a plaintext listener serving only grpc.health.v1 (kubelet's gRPC probes
    /// cannot do TLS). Unset: health is served on the gRPC port only.
    #[arg(long, env = "PROVE_GATEWAY_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Serve the gRPC reflection services (v1 and v1alpha) that grpcurl uses; false turns
    /// them off. The production profile's default is false.
    #[arg(
        long,
        env = "PROVE_GATEWAY_REFLECTION",
        default_value_t = server::REFLECTION,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub reflection: bool,
    /// Log line format. The production profile's default is json.
    #[arg(
        long,
        env = "PROVE_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::default()
    )]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (for example `info,prove_gateway=debug`).
    #[arg(long, env = "PROVE_GATEWAY_LOG", default_value = telemetry::LOG_FILTER)]
    pub log: String,

    /// Prove API: a URL, or one of uat-us, prod-us, uat-eu, prod-eu. Unset: the embedded simulator.
    #[arg(long, env = "PROVE_BASE_URL")]
    pub prove_base_url: Option<String>,
    /// Address of the embedded simulator when PROVE_BASE_URL is unset (port 0: any free port;
    /// the address is logged at start).
    #[arg(
        long,
        env = "PROVE_GATEWAY_SIMULATOR_LISTEN",
        default_value_t = server::SIMULATOR_LISTEN
    )]
    pub simulator_listen: SocketAddr,
    /// OAuth client ID for both products (overridden per product below).
    #[arg(long, env = "PROVE_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// File holding the OAuth client ID (a mounted Kubernetes Secret).
    #[arg(long, env = "PROVE_CLIENT_ID_FILE")]
    pub client_id_file: Option<PathBuf>,
    /// OAuth client secret for both products.
    #[arg(long, env = "PROVE_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub client_secret: Option<SecretString>,
    /// File holding the OAuth client secret.
    #[arg(long, env = "PROVE_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// OAuth client ID of the Unified Authentication project (UnifyService).
    #[arg(long, env = "PROVE_UNIFY_CLIENT_ID", hide_env_values = true)]
    pub unify_client_id: Option<String>,
    /// File holding the Unified Authentication client ID.
    #[arg(long, env = "PROVE_UNIFY_CLIENT_ID_FILE")]
    pub unify_client_id_file: Option<PathBuf>,
    /// OAuth client secret of the Unified Authentication project.
    #[arg(long, env = "PROVE_UNIFY_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub unify_client_secret: Option<SecretString>,
    /// File holding the Unified Authentication client secret.
    #[arg(long, env = "PROVE_UNIFY_CLIENT_SECRET_FILE")]
    pub unify_client_secret_file: Option<PathBuf>,
    /// OAuth client ID of the Verified Users project (VerifyService).
    #[arg(long, env = "PROVE_VERIFY_CLIENT_ID", hide_env_values = true)]
    pub verify_client_id: Option<String>,
    /// File holding the Verified Users client ID.
    #[arg(long, env = "PROVE_VERIFY_CLIENT_ID_FILE")]
    pub verify_client_id_file: Option<PathBuf>,
    /// OAuth client secret of the Verified Users project.
    #[arg(long, env = "PROVE_VERIFY_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub verify_client_secret: Option<SecretString>,
    /// File holding the Verified Users client secret.
    #[arg(long, env = "PROVE_VERIFY_CLIENT_SECRET_FILE")]
    pub verify_client_secret_file: Option<PathBuf>,

    /// Time allowed to open a connection to Prove.
    #[arg(long, env = "PROVE_CONNECT_TIMEOUT", default_value_t = defaults::CONNECT_TIMEOUT.into(), value_parser = duration)]
    pub connect_timeout: HumanDuration,
    /// Time allowed for one HTTP attempt at Prove (the caller's deadline bounds the whole call).
    #[arg(long, env = "PROVE_REQUEST_TIMEOUT", default_value_t = defaults::REQUEST_TIMEOUT.into(), value_parser = duration)]
    pub request_timeout: HumanDuration,
    /// Requests per second sent to Prove, token requests included (Prove allows 25).
    #[arg(long, env = "PROVE_RATE_LIMIT_RPS", default_value_t = defaults::RATE_LIMIT_RPS)]
    pub rate_limit_rps: u32,
    /// Requests that may go out back to back before the rate applies. Above 1 a burst can put
    /// more than the rate into one of Prove's one-second windows, so keep 1 unless Prove agrees.
    #[arg(long, env = "PROVE_RATE_LIMIT_BURST", default_value_t = defaults::RATE_LIMIT_BURST)]
    pub rate_limit_burst: u32,
    /// Longest a call waits for the rate limiter before RESOURCE_EXHAUSTED.
    #[arg(long, env = "PROVE_RATE_LIMIT_MAX_WAIT", default_value_t = defaults::RATE_LIMIT_MAX_WAIT.into(), value_parser = duration)]
    pub rate_limit_max_wait: HumanDuration,
    /// Most calls that may wait for the rate limiter at once; more are shed at once.
    #[arg(long, env = "PROVE_RATE_LIMIT_QUEUE", default_value_t = defaults::RATE_LIMIT_QUEUE)]
    pub rate_limit_queue: usize,
    /// Older name of PROVE_GATEWAY_REDIS_URL, still accepted (the limiter was its first user).
    #[arg(long, env = "PROVE_RATE_LIMIT_REDIS_URL", hide_env_values = true, value_parser = secret)]
    pub rate_limit_redis_url: Option<SecretString>,
    /// Redis shared by all replicas: for the rate limiter, session owners and idempotency keys.
    /// Unset: each replica limits itself and keeps its records in memory.
    #[arg(long, env = "PROVE_GATEWAY_REDIS_URL", hide_env_values = true, value_parser = secret)]
    pub redis_url: Option<SecretString>,
    /// Most session records and idempotency keys a replica keeps in memory (without Redis); the
    /// ones closest to expiry go first.
    #[arg(long, env = "PROVE_GATEWAY_STORE_CAPACITY", default_value_t = store::CAPACITY)]
    pub store_capacity: usize,
    /// A status or bind call for a correlation ID the gateway has no record of: `refuse` (answer
    /// as Prove answers an unknown ID) or `forward` (to Prove). Default: refuse when callers are
    /// authenticated, forward when the gateway runs open.
    #[arg(long, env = "PROVE_GATEWAY_UNKNOWN_SESSIONS", value_enum)]
    pub unknown_sessions: Option<UnknownSessions>,
    /// Most HTTP attempts per Prove request (1: no retries).
    #[arg(long, env = "PROVE_RETRY_MAX_ATTEMPTS", default_value_t = defaults::RETRY_MAX_ATTEMPTS)]
    pub retry_max_attempts: u32,
    /// First backoff before a retry; it doubles per attempt, with full jitter.
    #[arg(long, env = "PROVE_RETRY_BASE_DELAY", default_value_t = defaults::RETRY_BASE_DELAY.into(), value_parser = duration)]
    pub retry_base_delay: HumanDuration,
    /// Longest backoff between two attempts.
    #[arg(long, env = "PROVE_RETRY_MAX_DELAY", default_value_t = defaults::RETRY_MAX_DELAY.into(), value_parser = duration)]
    pub retry_max_delay: HumanDuration,

    /// YAML file of the callers that may call and the methods each may call, with their
    /// certificate identities and hashed bearer tokens; read again when it changes. Unset
    /// without mTLS: the gateway runs open.
    #[arg(long, env = "PROVE_GATEWAY_CALLERS_FILE")]
    pub callers_file: Option<PathBuf>,

    /// OTLP/gRPC endpoint for traces (for example http://otel-collector:4317). Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// Service name on exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = telemetry::SERVICE_NAME)]
    pub otel_service_name: String,
    /// Trace sampler.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        value_enum,
        default_value_t = Sampler::default()
    )]
    pub otel_traces_sampler: Sampler,
    /// Argument of the sampler, the ratio for the traceidratio samplers (0.0 to 1.0).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG")]
    pub otel_traces_sampler_arg: Option<String>,

    /// Which of the settings above were given; filled by [`Cli::parse_stated`].
    #[arg(skip)]
    pub stated: Stated,
}

/// Parses durations such as `250ms`, `20s` or `1m`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e} (use a duration such as 250ms, 20s or 1m)"))
}

/// [`parse_duration`] for clap, keeping a type whose `Display` shows the default in `--help`.
fn duration(raw: &str) -> Result<HumanDuration, String> {
    parse_duration(raw).map(HumanDuration::from)
}

/// A secret, wrapped before anything else sees it.
fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}
