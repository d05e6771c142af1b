//! Configuration: the one place that reads flags, environment variables and secret files.
//!
//! Every setting is a command-line flag with an environment variable of the same meaning;
//! `prove-gateway --help` lists them with their defaults. The environment names are a public
//! interface: the Helm chart and the README use them. [`Settings::from_args`] turns the raw
//! arguments into checked settings, or a [`ConfigError`] that names the bad setting without
//! printing any secret.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use url::Url;

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
    #[arg(long, env = "PROVE_SIMULATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Requests per second each client ID may make before the simulator answers 429 (0: no limit).
    #[arg(long, env = "PROVE_SIMULATOR_RATE_LIMIT_RPS", default_value_t = 25)]
    pub rate_limit_rps: u32,
    /// Lifetime of the OAuth tokens the simulator issues.
    #[arg(long, env = "PROVE_SIMULATOR_TOKEN_TTL", default_value = "1h", value_parser = parse_duration)]
    pub token_ttl: Duration,
}

/// Format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Raw settings of the gateway, as clap parses them from flags and the environment.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Address of the gRPC server (services, health and reflection share it).
    #[arg(long, env = "PROVE_GATEWAY_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(
        long,
        env = "PROVE_GATEWAY_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,
    /// How long calls in flight may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "PROVE_GATEWAY_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// After SIGTERM, keep accepting calls this long while health already answers NOT_SERVING,
    /// so load balancers and Kubernetes endpoints stop sending before new calls are refused.
    #[arg(long, env = "PROVE_GATEWAY_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Most client connections open at once; a connection beyond it is closed as soon as it is
    /// accepted. Keep it below the open-file limit (the gateway raises its soft limit to the hard
    /// one at start).
    #[arg(long, env = "PROVE_GATEWAY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: u32,
    /// Most calls (HTTP/2 streams) open at once on one connection; the client waits for a free one.
    #[arg(
        long,
        env = "PROVE_GATEWAY_MAX_CONCURRENT_STREAMS",
        default_value_t = 100
    )]
    pub max_concurrent_streams: u32,
    /// A connection that sent nothing for this long gets an HTTP/2 PING (and TCP keepalive
    /// probes start after the same idle time), so dead peers are found.
    #[arg(long, env = "PROVE_GATEWAY_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    #[arg(long, env = "PROVE_GATEWAY_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,
    /// How long a new connection may take to send the HTTP/2 preface before it is closed.
    #[arg(long, env = "PROVE_GATEWAY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// A connection with no call open for this long is closed (gracefully, with GOAWAY).
    #[arg(long, env = "PROVE_GATEWAY_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Log line format.
    #[arg(
        long,
        env = "PROVE_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (for example `info,prove_gateway=debug`).
    #[arg(long, env = "PROVE_GATEWAY_LOG", default_value = "info")]
    pub log: String,

    /// Prove API: a URL, or one of uat-us, prod-us, uat-eu, prod-eu. Unset: the embedded simulator.
    #[arg(long, env = "PROVE_BASE_URL")]
    pub prove_base_url: Option<String>,
    /// Address of the embedded simulator when PROVE_BASE_URL is unset (port 0: any free port;
    /// the address is logged at start).
    #[arg(
        long,
        env = "PROVE_GATEWAY_SIMULATOR_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub simulator_listen: SocketAddr,
    /// OAuth client ID for both products (overridden per product below).
    #[arg(long, env = "PROVE_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// File holding the OAuth client ID (a mounted Kubernetes Secret).
    #[arg(long, env = "PROVE_CLIENT_ID_FILE")]
    pub client_id_file: Option<PathBuf>,
    /// OAuth client secret for both products.
    #[arg(long, env = "PROVE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
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
    #[arg(long, env = "PROVE_UNIFY_CLIENT_SECRET", hide_env_values = true)]
    pub unify_client_secret: Option<String>,
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
    #[arg(long, env = "PROVE_VERIFY_CLIENT_SECRET", hide_env_values = true)]
    pub verify_client_secret: Option<String>,
    /// File holding the Verified Users client secret.
    #[arg(long, env = "PROVE_VERIFY_CLIENT_SECRET_FILE")]
    pub verify_client_secret_file: Option<PathBuf>,

    /// Time allowed to open a connection to Prove.
    #[arg(long, env = "PROVE_CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time allowed for one HTTP attempt at Prove (the caller's deadline bounds the whole call).
    #[arg(long, env = "PROVE_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Requests per second sent to Prove, token requests included (Prove allows 25).
    #[arg(long, env = "PROVE_RATE_LIMIT_RPS", default_value_t = 25)]
    pub rate_limit_rps: u32,
    /// Requests that may go out back to back before the rate applies. Above 1 a burst can put
    /// more than the rate into one of Prove's one-second windows, so keep 1 unless Prove agrees.
    #[arg(long, env = "PROVE_RATE_LIMIT_BURST", default_value_t = 1)]
    pub rate_limit_burst: u32,
    /// Longest a call waits for the rate limiter before RESOURCE_EXHAUSTED.
    #[arg(long, env = "PROVE_RATE_LIMIT_MAX_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub rate_limit_max_wait: Duration,
    /// Most calls that may wait for the rate limiter at once; more are shed at once.
    #[arg(long, env = "PROVE_RATE_LIMIT_QUEUE", default_value_t = 2048)]
    pub rate_limit_queue: usize,
    /// Redis URL of a limiter shared by all replicas. Unset: each replica limits itself.
    #[arg(long, env = "PROVE_RATE_LIMIT_REDIS_URL", hide_env_values = true)]
    pub rate_limit_redis_url: Option<String>,
    /// Most HTTP attempts per Prove request (1: no retries).
    #[arg(long, env = "PROVE_RETRY_MAX_ATTEMPTS", default_value_t = 5)]
    pub retry_max_attempts: u32,
    /// First backoff before a retry; it doubles per attempt, with full jitter.
    #[arg(long, env = "PROVE_RETRY_BASE_DELAY", default_value = "100ms", value_parser = parse_duration)]
    pub retry_base_delay: Duration,
    /// Longest backoff between two attempts.
    #[arg(long, env = "PROVE_RETRY_MAX_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub retry_max_delay: Duration,

    /// OTLP/gRPC endpoint for traces (for example http://otel-collector:4317). Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// Service name on exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "prove-gateway")]
    pub otel_service_name: String,
    /// Trace sampler: always_on, always_off, traceidratio, parentbased_always_on,
    /// parentbased_always_off or parentbased_traceidratio.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        default_value = "parentbased_always_on"
    )]
    pub otel_traces_sampler: String,
    /// Argument of the sampler, the ratio for the traceidratio samplers (0.0 to 1.0).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG")]
    pub otel_traces_sampler_arg: Option<String>,
}

/// A startup setting that cannot be used. The message names the setting, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value the gateway cannot use.
    #[error("{name}: {reason}")]
    Invalid {
        /// The environment variable of the setting.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret file could not be read.
    #[error("{name}: cannot read {path}: {source}")]
    File {
        /// The environment variable naming the file.
        name: &'static str,
        /// The file.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// One OAuth client-credentials pair (one Prove product project).
#[derive(Clone)]
pub struct Credentials {
    /// The OAuth client ID. Not secret, but not logged either.
    pub client_id: String,
    /// The OAuth client secret; only `expose_secret` reveals it.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// Where Prove calls go.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The embedded simulator, started with the gateway on this address.
    Simulator {
        /// Where the simulator listens.
        listen: SocketAddr,
    },
    /// A Prove API host with one credential pair per product.
    Prove {
        /// Base URL, without `/v3`; the token endpoint is `{base}/token`.
        base_url: Url,
        /// Credentials of the Unified Authentication project.
        unify: Credentials,
        /// Credentials of the Verified Users project.
        verify: Credentials,
    },
}

/// Limits of the outbound path to Prove.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// See [`GatewayArgs::connect_timeout`].
    pub connect_timeout: Duration,
    /// See [`GatewayArgs::request_timeout`].
    pub request_timeout: Duration,
    /// See [`GatewayArgs::rate_limit_rps`].
    pub rate_limit_rps: u32,
    /// See [`GatewayArgs::rate_limit_burst`].
    pub rate_limit_burst: u32,
    /// See [`GatewayArgs::rate_limit_max_wait`].
    pub rate_limit_max_wait: Duration,
    /// See [`GatewayArgs::rate_limit_queue`].
    pub rate_limit_queue: usize,
    /// See [`GatewayArgs::rate_limit_redis_url`].
    pub rate_limit_redis_url: Option<SecretString>,
    /// See [`GatewayArgs::retry_max_attempts`].
    pub retry_max_attempts: u32,
    /// See [`GatewayArgs::retry_base_delay`].
    pub retry_base_delay: Duration,
    /// See [`GatewayArgs::retry_max_delay`].
    pub retry_max_delay: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            rate_limit_rps: 25,
            rate_limit_burst: 1,
            rate_limit_max_wait: Duration::from_secs(5),
            rate_limit_queue: 2048,
            rate_limit_redis_url: None,
            retry_max_attempts: 5,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
        }
    }
}

/// Limits of the gRPC listener: connections, streams and their timeouts.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// See [`GatewayArgs::max_connections`].
    pub max_connections: u32,
    /// See [`GatewayArgs::max_concurrent_streams`].
    pub max_concurrent_streams: u32,
    /// See [`GatewayArgs::keepalive_interval`].
    pub keepalive_interval: Duration,
    /// See [`GatewayArgs::keepalive_timeout`].
    pub keepalive_timeout: Duration,
    /// See [`GatewayArgs::handshake_timeout`].
    pub handshake_timeout: Duration,
    /// See [`GatewayArgs::idle_timeout`].
    pub idle_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent_streams: 100,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Trace export settings (the standard OpenTelemetry variables).
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// OTLP/gRPC endpoint; `None` turns export off.
    pub endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Sampler name, as in the OpenTelemetry specification.
    pub sampler: String,
    /// Sampler argument (a ratio).
    pub sampler_arg: Option<f64>,
}

/// Checked settings of the gateway.
#[derive(Debug, Clone)]
pub struct Settings {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Metrics listen address; `None` turns the endpoint off (tests).
    pub metrics_listen: Option<SocketAddr>,
    /// Drain timeout on shutdown.
    pub drain_timeout: Duration,
    /// Delay between NOT_SERVING and refusing new calls.
    pub shutdown_delay: Duration,
    /// Limits of the gRPC listener.
    pub connections: ConnectionSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log: String,
    /// Where Prove calls go.
    pub upstream: Upstream,
    /// Limits of the outbound path.
    pub outbound: OutboundSettings,
    /// Trace export.
    pub otel: OtelSettings,
}

impl Settings {
    /// Settings for tests and embedding: listen on `listen`, the embedded simulator, no metrics
    /// endpoint, no trace export, default limits.
    pub fn for_tests(listen: SocketAddr) -> Self {
        Self {
            listen,
            metrics_listen: None,
            drain_timeout: Duration::from_secs(5),
            shutdown_delay: Duration::ZERO,
            connections: ConnectionSettings::default(),
            log_format: LogFormat::Text,
            log: "warn".into(),
            upstream: Upstream::Simulator {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            outbound: OutboundSettings::default(),
            otel: OtelSettings {
                endpoint: None,
                service_name: "prove-gateway".into(),
                sampler: "parentbased_always_on".into(),
                sampler_arg: None,
            },
        }
    }

    /// Checks the raw arguments and resolves the upstream, its credentials and secret files.
    pub fn from_args(args: GatewayArgs) -> Result<Self, ConfigError> {
        let upstream = resolve_upstream(&args)?;
        let connections = connection_settings(&args)?;
        if args.rate_limit_rps == 0 {
            return Err(invalid("PROVE_RATE_LIMIT_RPS", "must be at least 1"));
        }
        if args.rate_limit_burst == 0 {
            return Err(invalid("PROVE_RATE_LIMIT_BURST", "must be at least 1"));
        }
        if args.rate_limit_queue == 0 {
            return Err(invalid("PROVE_RATE_LIMIT_QUEUE", "must be at least 1"));
        }
        if args.retry_max_attempts == 0 {
            return Err(invalid("PROVE_RETRY_MAX_ATTEMPTS", "must be at least 1"));
        }
        if args.retry_base_delay > args.retry_max_delay {
            return Err(invalid(
                "PROVE_RETRY_BASE_DELAY",
                "must not exceed PROVE_RETRY_MAX_DELAY",
            ));
        }
        if let Some(url) = &args.rate_limit_redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid(
                "PROVE_RATE_LIMIT_REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        let sampler_arg = match &args.otel_traces_sampler_arg {
            None => None,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Some(ratio),
                _ => {
                    return Err(invalid(
                        "OTEL_TRACES_SAMPLER_ARG",
                        "must be a number from 0.0 to 1.0",
                    ));
                }
            },
        };
        const SAMPLERS: &[&str] = &[
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ];
        if !SAMPLERS.contains(&args.otel_traces_sampler.as_str()) {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                format!("must be one of {}", SAMPLERS.join(", ")),
            ));
        }
        if let Some(endpoint) = &args.otel_endpoint
            && Url::parse(endpoint).is_err()
        {
            return Err(invalid("OTEL_EXPORTER_OTLP_ENDPOINT", "is not a URL"));
        }
        Ok(Self {
            listen: args.listen,
            metrics_listen: Some(args.metrics_listen),
            drain_timeout: args.drain_timeout,
            shutdown_delay: args.shutdown_delay,
            connections,
            log_format: args.log_format,
            log: args.log,
            upstream,
            outbound: OutboundSettings {
                connect_timeout: args.connect_timeout,
                request_timeout: args.request_timeout,
                rate_limit_rps: args.rate_limit_rps,
                rate_limit_burst: args.rate_limit_burst,
                rate_limit_max_wait: args.rate_limit_max_wait,
                rate_limit_queue: args.rate_limit_queue,
                rate_limit_redis_url: args.rate_limit_redis_url.map(SecretString::from),
                retry_max_attempts: args.retry_max_attempts,
                retry_base_delay: args.retry_base_delay,
                retry_max_delay: args.retry_max_delay,
            },
            otel: OtelSettings {
                endpoint: args.otel_endpoint.filter(|e| !e.trim().is_empty()),
                service_name: args.otel_service_name,
                sampler: args.otel_traces_sampler,
                sampler_arg,
            },
        })
    }
}

/// The listener's limits; zero would refuse every connection or close each at once.
fn connection_settings(args: &GatewayArgs) -> Result<ConnectionSettings, ConfigError> {
    if args.max_connections == 0 {
        return Err(invalid(
            "PROVE_GATEWAY_MAX_CONNECTIONS",
            "must be at least 1",
        ));
    }
    if args.max_concurrent_streams == 0 {
        return Err(invalid(
            "PROVE_GATEWAY_MAX_CONCURRENT_STREAMS",
            "must be at least 1",
        ));
    }
    for (name, value) in [
        ("PROVE_GATEWAY_KEEPALIVE_INTERVAL", args.keepalive_interval),
        ("PROVE_GATEWAY_KEEPALIVE_TIMEOUT", args.keepalive_timeout),
        ("PROVE_GATEWAY_HANDSHAKE_TIMEOUT", args.handshake_timeout),
        ("PROVE_GATEWAY_IDLE_TIMEOUT", args.idle_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(name, "must be longer than 0s"));
        }
    }
    Ok(ConnectionSettings {
        max_connections: args.max_connections,
        max_concurrent_streams: args.max_concurrent_streams,
        keepalive_interval: args.keepalive_interval,
        keepalive_timeout: args.keepalive_timeout,
        handshake_timeout: args.handshake_timeout,
        idle_timeout: args.idle_timeout,
    })
}

/// Prove's hosts by environment name (prove-api.md section 1).
pub fn environment_url(name: &str) -> Option<&'static str> {
    match name {
        "uat-us" => Some("https://platform.uat.proveapis.com"),
        "prod-us" => Some("https://platform.proveapis.com"),
        "uat-eu" => Some("https://platform.uat.eu.proveapis.com"),
        "prod-eu" => Some("https://platform.eu.proveapis.com"),
        _ => None,
    }
}

/// The ID and secret settings of one credential pair: the shared one or a product's own.
struct PairNames {
    id: &'static str,
    secret: &'static str,
}

const SHARED_PAIR: PairNames = PairNames {
    id: "PROVE_CLIENT_ID",
    secret: "PROVE_CLIENT_SECRET",
};
const UNIFY_PAIR: PairNames = PairNames {
    id: "PROVE_UNIFY_CLIENT_ID",
    secret: "PROVE_UNIFY_CLIENT_SECRET",
};
const VERIFY_PAIR: PairNames = PairNames {
    id: "PROVE_VERIFY_CLIENT_ID",
    secret: "PROVE_VERIFY_CLIENT_SECRET",
};

/// A credential value with the pair it was given in, so that an error about its missing other
/// half names a setting the user actually uses.
type Given = Option<(String, &'static PairNames)>;

fn resolve_upstream(args: &GatewayArgs) -> Result<Upstream, ConfigError> {
    let tag = |value: Option<String>, names: &'static PairNames| value.map(|v| (v, names));
    let general_id = tag(
        value_or_file(
            ("PROVE_CLIENT_ID", &args.client_id),
            ("PROVE_CLIENT_ID_FILE", &args.client_id_file),
        )?,
        &SHARED_PAIR,
    );
    let general_secret = tag(
        value_or_file(
            ("PROVE_CLIENT_SECRET", &args.client_secret),
            ("PROVE_CLIENT_SECRET_FILE", &args.client_secret_file),
        )?,
        &SHARED_PAIR,
    );
    let unify = credentials(
        tag(
            value_or_file(
                ("PROVE_UNIFY_CLIENT_ID", &args.unify_client_id),
                ("PROVE_UNIFY_CLIENT_ID_FILE", &args.unify_client_id_file),
            )?,
            &UNIFY_PAIR,
        )
        .or_else(|| general_id.clone()),
        tag(
            value_or_file(
                ("PROVE_UNIFY_CLIENT_SECRET", &args.unify_client_secret),
                (
                    "PROVE_UNIFY_CLIENT_SECRET_FILE",
                    &args.unify_client_secret_file,
                ),
            )?,
            &UNIFY_PAIR,
        )
        .or_else(|| general_secret.clone()),
    )?;
    let verify = credentials(
        tag(
            value_or_file(
                ("PROVE_VERIFY_CLIENT_ID", &args.verify_client_id),
                ("PROVE_VERIFY_CLIENT_ID_FILE", &args.verify_client_id_file),
            )?,
            &VERIFY_PAIR,
        )
        .or(general_id),
        tag(
            value_or_file(
                ("PROVE_VERIFY_CLIENT_SECRET", &args.verify_client_secret),
                (
                    "PROVE_VERIFY_CLIENT_SECRET_FILE",
                    &args.verify_client_secret_file,
                ),
            )?,
            &VERIFY_PAIR,
        )
        .or(general_secret),
    )?;

    let Some(raw) = args
        .prove_base_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        if unify.is_some() || verify.is_some() {
            return Err(invalid(
                "PROVE_BASE_URL",
                "credentials are set but no Prove host: set uat-us, prod-us, uat-eu, prod-eu or a URL \
                 (unset runs the embedded simulator, which needs no credentials)",
            ));
        }
        return Ok(Upstream::Simulator {
            listen: args.simulator_listen,
        });
    };
    let base_url = parse_base_url(raw)?;
    let unify = unify.ok_or_else(|| {
        invalid(
            "PROVE_UNIFY_CLIENT_ID",
            "Unify credentials are missing: set PROVE_CLIENT_ID and PROVE_CLIENT_SECRET, or the \
             PROVE_UNIFY_ pair (or their _FILE variants)",
        )
    })?;
    let verify = verify.ok_or_else(|| {
        invalid(
            "PROVE_VERIFY_CLIENT_ID",
            "Verify credentials are missing: set PROVE_CLIENT_ID and PROVE_CLIENT_SECRET, or the \
             PROVE_VERIFY_ pair (or their _FILE variants)",
        )
    })?;
    Ok(Upstream::Prove {
        base_url,
        unify,
        verify,
    })
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    let text = environment_url(raw).unwrap_or(raw);
    let url = Url::parse(text).map_err(|_| {
        invalid(
            "PROVE_BASE_URL",
            "must be uat-us, prod-us, uat-eu, prod-eu or an http(s) URL",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            "PROVE_BASE_URL",
            "must be uat-us, prod-us, uat-eu, prod-eu or an http(s) URL",
        ));
    }
    // The token request carries the client secret in its body: in plain http anyone on the path
    // reads it. Only a loopback address (a local simulator or proxy) never leaves the machine.
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(invalid(
            "PROVE_BASE_URL",
            "plain http is allowed only to a loopback address (127.0.0.0/8, ::1, localhost); \
             use https so the client secret is not sent in clear",
        ));
    }
    if url.path().trim_end_matches('/').ends_with("/v3") {
        // The token endpoint has no /v3 prefix; a base ending in /v3 would send it to a 403.
        return Err(invalid(
            "PROVE_BASE_URL",
            "must be the host without /v3 (the gateway adds /v3 to API paths itself)",
        ));
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: 127.0.0.0/8, ::1 or `localhost` (the url crate has
/// already lowercased it). Other names are refused even when they resolve to loopback today.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// Pairs an ID with a secret; one without the other is an error naming the missing half, in
/// the pair the present half was given in (`PROVE_CLIENT_SECRET` alone names `PROVE_CLIENT_ID`).
fn credentials(id: Given, secret: Given) -> Result<Option<Credentials>, ConfigError> {
    match (id, secret) {
        (None, None) => Ok(None),
        (Some((client_id, _)), Some((secret, _))) => Ok(Some(Credentials {
            client_id,
            client_secret: SecretString::from(secret),
        })),
        (Some((_, names)), None) => Err(invalid(
            names.secret,
            "a client ID is set without its client secret",
        )),
        (None, Some((_, names))) => Err(invalid(
            names.id,
            "a client secret is set without its client ID",
        )),
    }
}

/// Reads a setting given either directly or as a file; both at once is ambiguous and refused.
/// Surrounding whitespace (the newline `echo` leaves in a Secret) is trimmed.
fn value_or_file(
    (name, value): (&'static str, &Option<String>),
    (file_name, file): (&'static str, &Option<PathBuf>),
) -> Result<Option<String>, ConfigError> {
    let text = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                name,
                format!("set either {name} or {file_name}, not both"),
            ));
        }
        (Some(value), None) => value.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                name: file_name,
                path: path.display().to_string(),
                source,
            })?
        }
        (None, None) => return Ok(None),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(name, "is empty"));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Parses durations such as `250ms`, `20s` or `1m`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e} (use a duration such as 250ms, 20s or 1m)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["prove-gateway"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("arguments parse");
        Settings::from_args(cli.gateway)
    }

    fn message(err: ConfigError) -> String {
        err.to_string()
    }

    #[test]
    fn no_base_url_and_no_credentials_selects_the_simulator() {
        let settings = parse(&[]).unwrap();
        assert!(matches!(settings.upstream, Upstream::Simulator { .. }));
        assert_eq!(settings.listen.port(), 50051);
        assert_eq!(settings.outbound.rate_limit_rps, 25);
    }

    #[test]
    fn environment_names_resolve_to_prove_hosts() {
        let settings = parse(&[
            "--prove-base-url",
            "uat-eu",
            "--client-id",
            "id",
            "--client-secret",
            "s3cr3t",
        ])
        .unwrap();
        let Upstream::Prove { base_url, .. } = settings.upstream else {
            panic!("expected Prove upstream")
        };
        assert_eq!(base_url.as_str(), "https://platform.uat.eu.proveapis.com/");
    }

    #[test]
    fn per_product_credentials_override_the_shared_pair() {
        let settings = parse(&[
            "--prove-base-url",
            "prod-us",
            "--client-id",
            "shared",
            "--client-secret",
            "shared-secret",
            "--verify-client-id",
            "verify-id",
            "--verify-client-secret",
            "verify-secret",
        ])
        .unwrap();
        let Upstream::Prove { unify, verify, .. } = settings.upstream else {
            panic!("expected Prove upstream")
        };
        assert_eq!(unify.client_id, "shared");
        assert_eq!(verify.client_id, "verify-id");
        assert_eq!(verify.client_secret.expose_secret(), "verify-secret");
    }

    #[test]
    fn secret_files_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id");
        let secret = dir.path().join("secret");
        std::fs::write(&id, "file-id\n").unwrap();
        std::fs::write(&secret, "file-secret\n").unwrap();
        let settings = parse(&[
            "--prove-base-url",
            "https://example.test",
            "--client-id-file",
            id.to_str().unwrap(),
            "--client-secret-file",
            secret.to_str().unwrap(),
        ])
        .unwrap();
        let Upstream::Prove { unify, .. } = settings.upstream else {
            panic!("expected Prove upstream")
        };
        assert_eq!(unify.client_id, "file-id");
        assert_eq!(unify.client_secret.expose_secret(), "file-secret");
    }

    #[test]
    fn a_value_and_its_file_together_are_refused() {
        let err = parse(&[
            "--prove-base-url",
            "uat-us",
            "--client-secret",
            "x",
            "--client-secret-file",
            "/nonexistent",
            "--client-id",
            "id",
        ])
        .unwrap_err();
        assert!(message(err).starts_with("PROVE_CLIENT_SECRET:"));
    }

    #[test]
    fn an_unreadable_secret_file_names_the_variable() {
        let err = parse(&[
            "--prove-base-url",
            "uat-us",
            "--client-id",
            "id",
            "--client-secret-file",
            "/nonexistent/secret",
        ])
        .unwrap_err();
        assert!(message(err).starts_with("PROVE_CLIENT_SECRET_FILE:"));
    }

    #[test]
    fn a_base_url_without_credentials_names_the_missing_setting() {
        let err = parse(&["--prove-base-url", "uat-us"]).unwrap_err();
        assert!(message(err).starts_with("PROVE_UNIFY_CLIENT_ID:"));
    }

    #[test]
    fn a_secret_without_its_id_names_the_id_the_user_would_set() {
        // PROVE_CLIENT_SECRET alone: the missing half is PROVE_CLIENT_ID, not a per-product
        // name the user never used.
        let err = parse(&["--prove-base-url", "uat-us", "--client-secret", "hunter2"]).unwrap_err();
        let text = message(err);
        assert!(text.starts_with("PROVE_CLIENT_ID:"), "{text}");
        assert!(!text.contains("hunter2"));
        // A per-product secret alone names the per-product ID.
        let paired = parse(&[
            "--prove-base-url",
            "uat-us",
            "--verify-client-secret",
            "hunter2",
            "--client-id",
            "id",
            "--client-secret",
            "s",
        ]);
        assert!(
            paired.is_ok(),
            "the shared ID pairs with the per-product secret"
        );
        let err = parse(&[
            "--prove-base-url",
            "uat-us",
            "--unify-client-id",
            "u",
            "--unify-client-secret",
            "us",
            "--verify-client-secret",
            "hunter2",
        ])
        .unwrap_err();
        let text = message(err);
        assert!(text.starts_with("PROVE_VERIFY_CLIENT_ID:"), "{text}");
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn an_id_without_its_secret_names_the_secret_the_user_would_set() {
        let err = parse(&["--prove-base-url", "uat-us", "--client-id", "id"]).unwrap_err();
        let text = message(err);
        assert!(text.starts_with("PROVE_CLIENT_SECRET:"), "{text}");
    }

    /// The settings' outcome for `url` as PROVE_BASE_URL, with credentials set.
    fn with_base_url(url: &str) -> Result<Settings, ConfigError> {
        parse(&[
            "--prove-base-url",
            url,
            "--client-id",
            "id",
            "--client-secret",
            "hunter2",
        ])
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused_without_printing_the_secret() {
        for url in [
            "http://example.com",
            "http://10.0.0.5",
            "http://10.0.0.5:8080/",
            "http://user:hunter2@example.com",
            "http://localhost.example.com",
            "http://[::ffff:10.0.0.5]",
        ] {
            let text = message(with_base_url(url).unwrap_err());
            assert!(text.starts_with("PROVE_BASE_URL:"), "{url}: {text}");
            assert!(text.contains("https"), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{url}: {text}");
        }
    }

    #[test]
    fn plain_http_to_loopback_and_https_anywhere_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST:8080",
            "https://example.com",
            "https://10.0.0.5:8443",
            "uat-us",
        ] {
            let settings = with_base_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(matches!(settings.upstream, Upstream::Prove { .. }), "{url}");
        }
    }

    #[test]
    fn credentials_without_a_base_url_are_refused() {
        let err = parse(&["--client-id", "id", "--client-secret", "s"]).unwrap_err();
        assert!(message(err).starts_with("PROVE_BASE_URL:"));
    }

    #[test]
    fn a_base_url_ending_in_v3_is_refused() {
        let err = parse(&[
            "--prove-base-url",
            "https://platform.proveapis.com/v3",
            "--client-id",
            "id",
            "--client-secret",
            "s",
        ])
        .unwrap_err();
        assert!(message(err).starts_with("PROVE_BASE_URL:"));
    }

    #[test]
    fn an_unknown_environment_name_is_refused() {
        let err = parse(&[
            "--prove-base-url",
            "staging",
            "--client-id",
            "id",
            "--client-secret",
            "s",
        ])
        .unwrap_err();
        assert!(message(err).starts_with("PROVE_BASE_URL:"));
    }

    #[test]
    fn numeric_limits_are_checked() {
        assert!(
            message(parse(&["--rate-limit-rps", "0"]).unwrap_err())
                .starts_with("PROVE_RATE_LIMIT_RPS:")
        );
        assert!(
            message(parse(&["--otel-traces-sampler-arg", "2"]).unwrap_err())
                .starts_with("OTEL_TRACES_SAMPLER_ARG:")
        );
        assert!(
            message(parse(&["--otel-traces-sampler", "sometimes"]).unwrap_err())
                .starts_with("OTEL_TRACES_SAMPLER:")
        );
    }

    #[test]
    fn connection_limits_default_sanely_and_refuse_zero() {
        let limits = parse(&[]).unwrap().connections;
        assert_eq!(limits.max_connections, 1024);
        assert_eq!(limits.max_concurrent_streams, 100);
        assert_eq!(limits.keepalive_interval, Duration::from_secs(60));
        assert_eq!(limits.keepalive_timeout, Duration::from_secs(20));
        assert_eq!(limits.handshake_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(300));
        for (flag, name) in [
            ("--max-connections", "PROVE_GATEWAY_MAX_CONNECTIONS"),
            (
                "--max-concurrent-streams",
                "PROVE_GATEWAY_MAX_CONCURRENT_STREAMS",
            ),
        ] {
            let text = message(parse(&[flag, "0"]).unwrap_err());
            assert!(text.starts_with(&format!("{name}:")), "{text}");
        }
        for (flag, name) in [
            ("--keepalive-interval", "PROVE_GATEWAY_KEEPALIVE_INTERVAL"),
            ("--keepalive-timeout", "PROVE_GATEWAY_KEEPALIVE_TIMEOUT"),
            ("--handshake-timeout", "PROVE_GATEWAY_HANDSHAKE_TIMEOUT"),
            ("--idle-timeout", "PROVE_GATEWAY_IDLE_TIMEOUT"),
        ] {
            let text = message(parse(&[flag, "0s"]).unwrap_err());
            assert!(text.starts_with(&format!("{name}:")), "{text}");
        }
        let custom = parse(&["--idle-timeout", "90s", "--max-connections", "10"])
            .unwrap()
            .connections;
        assert_eq!(custom.idle_timeout, Duration::from_secs(90));
        assert_eq!(custom.max_connections, 10);
    }

    #[test]
    fn durations_accept_human_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn debug_output_of_credentials_hides_the_secret() {
        let creds = Credentials {
            client_id: "id".into(),
            client_secret: SecretString::from("hunter2".to_owned()),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
