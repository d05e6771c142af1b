//! The server's own settings, and the aggregate of every module's settings that `config` builds
//! and [`crate::server::run`] takes. The server's defaults live here once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::callers::CallersSettings;
use crate::prove::Upstream;
use crate::resilience::OutboundSettings;
use crate::telemetry::{LogFormat, OtelSettings, TelemetrySettings};

/// Default gRPC listen address.
pub const LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 50051);
/// Default metrics listen address.
pub const METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9090);
/// Default embedded simulator address: loopback, any free port.
pub const SIMULATOR_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
/// Default drain timeout after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Default delay between NOT_SERVING and refusing new calls.
pub const SHUTDOWN_DELAY: Duration = Duration::ZERO;
/// Default most client connections open at once.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Default most streams open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Default idle time before an HTTP/2 PING.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Default time a PING may go unanswered.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time for a new connection to send the HTTP/2 preface.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection with no call open stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Default interval at which the TLS files are read again to notice a rotation.
pub const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Default of the reflection services: on, so grpcurl and ghz work without .proto files.
pub const REFLECTION: bool = true;

/// TLS on the gRPC port: the server's certificate and key, and the CA that client certificates
/// must chain to (mTLS) when set. The files are read at start and again every
/// `reload_interval`, so a rotated certificate is served without a restart.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to; `None`: no client
    /// certificates (TLS only).
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are read again.
    pub reload_interval: Duration,
}

/// Limits of the gRPC listener: connections, streams and their timeouts (each is documented on
/// its flag in `config`).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Most client connections open at once.
    pub max_connections: u32,
    /// Most calls open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Idle time before an HTTP/2 PING and TCP keepalive probes.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered.
    pub keepalive_timeout: Duration,
    /// How long a new connection may take to send the HTTP/2 preface.
    pub handshake_timeout: Duration,
    /// How long a connection with no call open stays open.
    pub idle_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Checked settings of the gateway: the server's own and those of the modules it assembles.
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
    /// TLS (and mTLS) on the gRPC port; `None`: plaintext.
    pub tls: Option<TlsSettings>,
    /// Address of a plaintext `grpc.health.v1` listener (for kubelet's probes, which cannot do
    /// TLS); `None`: health is served on the gRPC port only.
    pub health_listen: Option<SocketAddr>,
    /// Whether the reflection services (v1 and v1alpha) are served.
    pub reflection: bool,
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
    /// Who may call.
    pub callers: CallersSettings,
}

impl Settings {
    /// Settings for tests and embedding: the defaults, except that it listens on `listen`, runs
    /// the embedded simulator on any free port, serves no metrics endpoint, logs only warnings,
    /// and drains for 5 s rather than 20 s so a stuck test ends sooner. It runs open (no callers
    /// file, no mTLS), as the defaults do.
    pub fn for_tests(listen: SocketAddr) -> Self {
        Self {
            listen,
            metrics_listen: None,
            drain_timeout: Duration::from_secs(5),
            shutdown_delay: SHUTDOWN_DELAY,
            connections: ConnectionSettings::default(),
            tls: None,
            health_listen: None,
            reflection: REFLECTION,
            log_format: LogFormat::default(),
            log: "warn".into(),
            upstream: Upstream::Simulator {
                listen: SIMULATOR_LISTEN,
            },
            outbound: OutboundSettings::default(),
            otel: OtelSettings::default(),
            callers: CallersSettings::default(),
        }
    }

    /// The part telemetry needs.
    pub fn telemetry(&self) -> TelemetrySettings {
        TelemetrySettings {
            log_format: self.log_format,
            log: self.log.clone(),
            otel: self.otel.clone(),
        }
    }
}

impl From<&Settings> for TelemetrySettings {
    fn from(settings: &Settings) -> Self {
        settings.telemetry()
    }
}
