//! Configuration: the one place that reads flags, environment variables and secret files.
//!
//! Every setting is a command-line flag with an environment variable of the same meaning;
//! `prove-gateway --help` lists them with their defaults. The environment names are a public
//! interface: the Helm chart and the README use them. [`Settings::from_args`] turns the raw
//! arguments into checked settings, or a [`ConfigError`] that names the bad setting without
//! printing any secret.

use url::Url;

mod args;
mod profile;
mod secrets;
mod sessions;
mod upstream;

pub use args::{Cli, Command, GatewayArgs, SimulatorArgs, Stated, parse_duration};
pub use profile::Profile;
pub use upstream::environment_url;

pub use crate::callers::CallersSettings;
pub use crate::prove::{Credentials, Upstream};
pub use crate::resilience::OutboundSettings;
pub use crate::server::{ConnectionSettings, Settings, TlsSettings};
pub use crate::telemetry::{LogFormat, OtelSettings, Sampler};

/// A startup setting that cannot be used. The message names the setting, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value the gateway cannot use.
    #[error("{name}: {reason}")]
    Invalid {
        /// The environment variable of the setting.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret file could not be read.
    #[error("{name}: cannot read {path}: {source}")]
    File {
        /// The environment variable naming the file.
        name: String,
        /// The file.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The production profile refuses to start: every missing or unsafe setting at once.
    #[error(
        "PROVE_GATEWAY_PROFILE=production refuses to start; set or fix {}:{}",
        if .0.len() == 1 { "this setting" } else { "these settings" },
        .0.iter().map(|e| format!("\n  - {e}")).collect::<String>()
    )]
    Refused(Vec<ConfigError>),
}

impl ConfigError {
    /// The environment variable the error is about (the first one, for a refusal).
    pub fn setting(&self) -> &str {
        match self {
            Self::Invalid { name, .. } | Self::File { name, .. } => name,
            Self::Refused(all) => all.first().map_or("PROVE_GATEWAY_PROFILE", Self::setting),
        }
    }
}

pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Checks the raw arguments and resolves the upstream, its credentials and secret files.
    /// In production, every setting the profile requires is checked first and all the missing
    /// ones are named at once, with the first other error, if any, after them.
    pub fn from_args(mut args: GatewayArgs) -> Result<Self, ConfigError> {
        if args.profile == Profile::Development {
            return Self::build(args);
        }
        let mut refused = profile::refusals(&args);
        profile::apply_production_defaults(&mut args);
        match Self::build(args) {
            Ok(settings) if refused.is_empty() => return Ok(settings),
            Ok(_) => {}
            // The same setting refused twice (a missing base URL with credentials set, plain
            // http to a remote host) is named once, with the profile's reason.
            Err(error) if refused.iter().any(|r| r.setting() == error.setting()) => {}
            Err(error) => refused.push(error),
        }
        Err(ConfigError::Refused(refused))
    }

    fn build(args: GatewayArgs) -> Result<Self, ConfigError> {
        let upstream = upstream::resolve_upstream(&args)?;
        let connections = connection_settings(&args)?;
        let tls = tls_settings(&args)?;
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
        if *args.retry_base_delay > *args.retry_max_delay {
            return Err(invalid(
                "PROVE_RETRY_BASE_DELAY",
                "must not exceed PROVE_RETRY_MAX_DELAY",
            ));
        }
        let redis_url = sessions::redis_url(&args)?;
        let store = sessions::store(&args, redis_url.clone())?;
        let session_settings = sessions::sessions(&args);
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
        if let Some(endpoint) = &args.otel_endpoint
            && Url::parse(endpoint).is_err()
        {
            return Err(invalid("OTEL_EXPORTER_OTLP_ENDPOINT", "is not a URL"));
        }
        Ok(Self {
            listen: args.listen,
            metrics_listen: Some(args.metrics_listen),
            drain_timeout: *args.drain_timeout,
            shutdown_delay: *args.shutdown_delay,
            connections,
            tls,
            health_listen: args.health_listen,
            reflection: args.reflection,
            log_format: args.log_format,
            log: args.log,
            upstream,
            outbound: OutboundSettings {
                connect_timeout: *args.connect_timeout,
                request_timeout: *args.request_timeout,
                rate_limit_rps: args.rate_limit_rps,
                rate_limit_burst: args.rate_limit_burst,
                rate_limit_max_wait: *args.rate_limit_max_wait,
                rate_limit_queue: args.rate_limit_queue,
                rate_limit_redis_url: redis_url,
                retry_max_attempts: args.retry_max_attempts,
                retry_base_delay: *args.retry_base_delay,
                retry_max_delay: *args.retry_max_delay,
            },
            store,
            sessions: session_settings,
            otel: OtelSettings {
                endpoint: args.otel_endpoint.filter(|e| !e.trim().is_empty()),
                service_name: args.otel_service_name,
                sampler: args.otel_traces_sampler,
                sampler_arg,
            },
            callers: CallersSettings {
                file: args.callers_file,
                mtls: args.client_ca_file.is_some(),
                reload_interval: crate::callers::settings::RELOAD_INTERVAL,
            },
        })
    }
}

/// TLS on the gRPC port: the certificate and its key come together, and client certificates
/// (mTLS) need both. The files themselves are read by the server at start (and again on
/// rotation), which names the variable of a file it cannot use.
fn tls_settings(args: &GatewayArgs) -> Result<Option<TlsSettings>, ConfigError> {
    let (cert_file, key_file) = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => {
            if args.client_ca_file.is_some() {
                return Err(invalid(
                    "PROVE_GATEWAY_CLIENT_CA_FILE",
                    "client certificates need TLS: set PROVE_GATEWAY_TLS_CERT_FILE and \
                     PROVE_GATEWAY_TLS_KEY_FILE too",
                ));
            }
            return Ok(None);
        }
        (Some(_), None) => {
            return Err(invalid(
                "PROVE_GATEWAY_TLS_KEY_FILE",
                "must be set with PROVE_GATEWAY_TLS_CERT_FILE",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "PROVE_GATEWAY_TLS_CERT_FILE",
                "must be set with PROVE_GATEWAY_TLS_KEY_FILE",
            ));
        }
    };
    if args.tls_reload_interval.is_zero() {
        return Err(invalid(
            "PROVE_GATEWAY_TLS_RELOAD_INTERVAL",
            "must be longer than 0s",
        ));
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_ca_file: args.client_ca_file.clone(),
        reload_interval: *args.tls_reload_interval,
    }))
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
        ("PROVE_GATEWAY_KEEPALIVE_INTERVAL", *args.keepalive_interval),
        ("PROVE_GATEWAY_KEEPALIVE_TIMEOUT", *args.keepalive_timeout),
        ("PROVE_GATEWAY_HANDSHAKE_TIMEOUT", *args.handshake_timeout),
        ("PROVE_GATEWAY_IDLE_TIMEOUT", *args.idle_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(name, "must be longer than 0s"));
        }
    }
    Ok(ConnectionSettings {
        max_connections: args.max_connections,
        max_concurrent_streams: args.max_concurrent_streams,
        keepalive_interval: *args.keepalive_interval,
        keepalive_timeout: *args.keepalive_timeout,
        handshake_timeout: *args.handshake_timeout,
        idle_timeout: *args.idle_timeout,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use secrecy::ExposeSecret;

    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["prove-gateway"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_stated_from(argv).expect("arguments parse");
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
        assert_eq!(
            verify.client_secret.current().expose_secret(),
            "verify-secret"
        );
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
        assert_eq!(unify.client_secret.current().expose_secret(), "file-secret");
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
    }

    #[test]
    fn the_callers_file_and_a_client_ca_decide_how_callers_are_identified() {
        let open = parse(&[]).unwrap().callers;
        assert_eq!(open.file, None);
        assert!(!open.mtls, "no client CA: no mTLS");
        let both = parse(&[
            "--callers-file",
            "/etc/prove-gateway/callers.yaml",
            "--client-ca-file",
            "/etc/prove-gateway/ca.pem",
            "--tls-cert-file",
            "/etc/prove-gateway/tls.crt",
            "--tls-key-file",
            "/etc/prove-gateway/tls.key",
        ])
        .unwrap()
        .callers;
        assert_eq!(
            both.file.as_deref(),
            Some(std::path::Path::new("/etc/prove-gateway/callers.yaml"))
        );
        assert!(both.mtls, "a client CA turns mTLS on");
        assert_eq!(
            both.reload_interval,
            crate::callers::settings::RELOAD_INTERVAL
        );
    }

    #[test]
    fn closed_sets_are_refused_by_clap_with_their_possible_values() {
        // The sampler, the log format: a value outside the set never reaches the settings.
        for (flag, value, listed) in [
            (
                "--otel-traces-sampler",
                "sometimes",
                "parentbased_traceidratio",
            ),
            ("--log-format", "xml", "json"),
        ] {
            let err = Cli::try_parse_from(["prove-gateway", flag, value]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(value) && text.contains(listed), "{text}");
        }
        let cli = Cli::try_parse_from(["prove-gateway", "--otel-traces-sampler", "traceidratio"])
            .unwrap();
        assert_eq!(cli.gateway.otel_traces_sampler, Sampler::TraceIdRatio);
    }

    #[test]
    fn debug_output_of_the_arguments_hides_every_secret() {
        let cli = Cli::try_parse_from([
            "prove-gateway",
            "--client-secret",
            "hunter2",
            "--unify-client-secret",
            "hunter3",
            "--verify-client-secret",
            "hunter4",
            "--rate-limit-redis-url",
            "redis://:hunter5@localhost",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!printed.contains(secret), "{printed}");
        }
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
    fn tls_is_off_by_default_and_reflection_on() {
        let settings = parse(&[]).unwrap();
        assert!(settings.tls.is_none());
        assert!(settings.health_listen.is_none());
        assert!(settings.reflection);
        for off in ["false", "0", "no"] {
            assert!(!parse(&["--reflection", off]).unwrap().reflection, "{off}");
        }
    }

    #[test]
    fn tls_takes_a_certificate_and_its_key_and_optionally_a_client_ca() {
        let settings = parse(&[
            "--tls-cert-file",
            "/tls/tls.crt",
            "--tls-key-file",
            "/tls/tls.key",
            "--health-listen",
            "0.0.0.0:8081",
        ])
        .unwrap();
        let tls = settings.tls.unwrap();
        assert_eq!(tls.cert_file.to_str(), Some("/tls/tls.crt"));
        assert_eq!(tls.key_file.to_str(), Some("/tls/tls.key"));
        assert_eq!(tls.client_ca_file, None);
        assert_eq!(tls.reload_interval, Duration::from_secs(10));
        assert_eq!(settings.health_listen.unwrap().port(), 8081);
        let mutual = parse(&[
            "--tls-cert-file",
            "/tls/tls.crt",
            "--tls-key-file",
            "/tls/tls.key",
            "--client-ca-file",
            "/tls/ca.crt",
            "--tls-reload-interval",
            "2s",
        ])
        .unwrap()
        .tls
        .unwrap();
        assert_eq!(mutual.client_ca_file.unwrap().to_str(), Some("/tls/ca.crt"));
        assert_eq!(mutual.reload_interval, Duration::from_secs(2));
    }

    #[test]
    fn half_a_tls_configuration_names_what_is_missing() {
        for (args, name) in [
            (
                &["--tls-cert-file", "/c"][..],
                "PROVE_GATEWAY_TLS_KEY_FILE:",
            ),
            (
                &["--tls-key-file", "/k"][..],
                "PROVE_GATEWAY_TLS_CERT_FILE:",
            ),
            (
                &["--client-ca-file", "/ca"][..],
                "PROVE_GATEWAY_CLIENT_CA_FILE:",
            ),
            (
                &[
                    "--tls-cert-file",
                    "/c",
                    "--tls-key-file",
                    "/k",
                    "--tls-reload-interval",
                    "0s",
                ][..],
                "PROVE_GATEWAY_TLS_RELOAD_INTERVAL:",
            ),
        ] {
            let text = message(parse(args).unwrap_err());
            assert!(text.starts_with(name), "{args:?}: {text}");
        }
    }

    #[test]
    fn durations_accept_human_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
    }
}
