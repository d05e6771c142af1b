//! The two profiles, and what production refuses.
//!
//! `development` (the default) starts with whatever it is given: no `PROVE_BASE_URL` means the
//! embedded simulator, no TLS means plaintext, no callers file means an open gateway. That is
//! what `cargo run` wants, and exactly what a production install gets when a Secret or a value
//! goes missing. `production` fails closed instead: it refuses to start unless every setting
//! below is there, and it lists all the missing ones in one message, so an operator fixes a
//! deployment in one round rather than one restart per setting.
//!
//! | production requires | because |
//! |---|---|
//! | `PROVE_BASE_URL` set | without it the simulator would answer: callers would be told a person was verified when nobody was |
//! | `PROVE_BASE_URL` over https, loopback included | the token request carries the client secret; a "local proxy" on plain http is one misconfiguration from the network |
//! | Prove credentials | (named here only when the base URL is missing too; otherwise the upstream check names the missing half) |
//! | `PROVE_GATEWAY_TLS_CERT_FILE` and `_KEY_FILE` | bearer tokens and phone numbers cross the network to the gateway |
//! | `PROVE_GATEWAY_CALLERS_FILE` or `PROVE_GATEWAY_CLIENT_CA_FILE` | an open gateway lets anyone who reaches the port spend the Prove budget and read sessions |
//! | `PROVE_GATEWAY_METRICS_LISTEN` stated | the development default binds every interface; production binds only where it is told |
//!
//! TLS and caller authentication are both required: TLS alone lets any client in, and bearer
//! tokens without TLS travel in clear. Production also changes two defaults (a setting given
//! explicitly still wins): JSON logs, for log collectors, and no reflection, which would
//! describe the API to anyone who can connect.

use url::Url;

use super::args::GatewayArgs;
use super::upstream::environment_url;
use super::{ConfigError, invalid};
use crate::telemetry::LogFormat;

/// Which safety rules apply (`PROVE_GATEWAY_PROFILE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Starts with what it is given; the embedded simulator answers without `PROVE_BASE_URL`.
    #[default]
    Development,
    /// Fails closed: refuses to start without a real Prove host over https, TLS and
    /// authenticated callers.
    Production,
}

/// Every missing or unsafe setting that stops a production start, each naming its variable
/// (never its value, which may hold a secret).
pub(super) fn refusals(args: &GatewayArgs) -> Vec<ConfigError> {
    let mut refused = Vec::new();
    match args
        .prove_base_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => {
            refused.push(invalid(
                "PROVE_BASE_URL",
                "not set: production never answers from the embedded simulator; set uat-us, \
                 prod-us, uat-eu, prod-eu or an https URL",
            ));
            if !any_credentials(args) {
                refused.push(invalid(
                    "PROVE_CLIENT_ID",
                    "not set, nor PROVE_CLIENT_SECRET: set the pair (or PROVE_UNIFY_* and \
                     PROVE_VERIFY_* pairs, or their _FILE variants)",
                ));
            }
        }
        Some(raw) if is_plain_http(raw) => refused.push(invalid(
            "PROVE_BASE_URL",
            "plain http: production sends the client secret over https only, to a loopback \
             address too",
        )),
        Some(_) => {}
    }
    if args.tls_cert_file.is_none() && args.tls_key_file.is_none() {
        refused.push(invalid(
            "PROVE_GATEWAY_TLS_CERT_FILE",
            "not set, nor PROVE_GATEWAY_TLS_KEY_FILE: production serves the gRPC port over TLS \
             only",
        ));
    }
    if args.callers_file.is_none() && args.client_ca_file.is_none() {
        refused.push(invalid(
            "PROVE_GATEWAY_CALLERS_FILE",
            "not set, nor PROVE_GATEWAY_CLIENT_CA_FILE: production serves authenticated callers \
             only (bearer tokens from a callers file, or client certificates)",
        ));
    }
    if !args.stated.contains("metrics_listen") {
        refused.push(invalid(
            "PROVE_GATEWAY_METRICS_LISTEN",
            "not set: production binds the metrics endpoint only where it is told to (for \
             example 0.0.0.0:9090)",
        ));
    }
    refused
}

/// Production's own defaults, for the settings left at development's.
pub(super) fn apply_production_defaults(args: &mut GatewayArgs) {
    if !args.stated.contains("log_format") {
        args.log_format = LogFormat::Json;
    }
    if !args.stated.contains("reflection") {
        args.reflection = false;
    }
}

/// Whether Prove's base URL, as given, is plain http (an environment name is https; a value
/// that is no URL at all is left to the upstream check, which says what it should be).
fn is_plain_http(raw: &str) -> bool {
    if environment_url(raw).is_some() {
        return false;
    }
    Url::parse(raw).is_ok_and(|url| url.scheme() == "http")
}

fn any_credentials(args: &GatewayArgs) -> bool {
    [
        &args.client_id,
        &args.unify_client_id,
        &args.verify_client_id,
    ]
    .iter()
    .any(|id| id.is_some())
        || [
            &args.client_secret,
            &args.unify_client_secret,
            &args.verify_client_secret,
        ]
        .iter()
        .any(|secret| secret.is_some())
        || [
            &args.client_id_file,
            &args.client_secret_file,
            &args.unify_client_id_file,
            &args.unify_client_secret_file,
            &args.verify_client_id_file,
            &args.verify_client_secret_file,
        ]
        .iter()
        .any(|file| file.is_some())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::{Cli, Settings};
    use crate::prove::Upstream;

    /// Everything production requires, as flags; a test leaves one out by its flag.
    const COMPLETE: [(&str, &str); 7] = [
        ("--prove-base-url", "https://platform.uat.proveapis.com"),
        ("--client-id", "id"),
        ("--client-secret", "hunter2-prod-secret"),
        ("--tls-cert-file", "/tls/tls.crt"),
        ("--tls-key-file", "/tls/tls.key"),
        ("--callers-file", "/callers/callers.yaml"),
        ("--metrics-listen", "0.0.0.0:9090"),
    ];

    fn production(without: &[&str], extra: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["prove-gateway", "--profile", "production"];
        for (flag, value) in COMPLETE {
            if !without.contains(&flag) {
                argv.extend([flag, value]);
            }
        }
        argv.extend_from_slice(extra);
        Settings::from_args(Cli::try_parse_stated_from(argv).unwrap().gateway)
    }

    /// The variables a refusal names, in order.
    fn named(result: Result<Settings, ConfigError>) -> Vec<String> {
        match result {
            Err(ConfigError::Refused(all)) => all.iter().map(|e| e.setting().to_owned()).collect(),
            Err(other) => panic!("not a refusal: {other}"),
            Ok(_) => panic!("production started"),
        }
    }

    #[test]
    fn a_complete_production_configuration_starts_with_json_logs_and_no_reflection() {
        let settings = production(&[], &[]).unwrap();
        assert!(matches!(settings.upstream, Upstream::Prove { .. }));
        assert_eq!(settings.log_format, LogFormat::Json);
        assert!(!settings.reflection);
        assert!(settings.tls.is_some());
        // A default is only a default: stated, the operator's choice wins.
        let stated = production(&[], &["--log-format", "text", "--reflection", "true"]).unwrap();
        assert_eq!(stated.log_format, LogFormat::Text);
        assert!(stated.reflection);
        // mTLS alone authenticates callers too.
        let mtls = production(&["--callers-file"], &["--client-ca-file", "/tls/ca.crt"]).unwrap();
        assert!(mtls.callers.mtls);
    }

    #[test]
    fn development_keeps_its_defaults_and_refuses_nothing_production_would() {
        let argv = ["prove-gateway"];
        let settings =
            Settings::from_args(Cli::try_parse_stated_from(argv).unwrap().gateway).unwrap();
        assert!(matches!(settings.upstream, Upstream::Simulator { .. }));
        assert_eq!(settings.log_format, LogFormat::Text);
        assert!(settings.reflection);
        assert!(settings.tls.is_none());
        assert_eq!(settings.metrics_listen.map(|a| a.port()), Some(9090));
    }

    #[test]
    fn each_missing_setting_is_named() {
        assert_eq!(
            named(production(&["--prove-base-url"], &[])),
            ["PROVE_BASE_URL"]
        );
        assert_eq!(
            named(production(&["--tls-cert-file", "--tls-key-file"], &[])),
            ["PROVE_GATEWAY_TLS_CERT_FILE"]
        );
        assert_eq!(
            named(production(&["--callers-file"], &[])),
            ["PROVE_GATEWAY_CALLERS_FILE"]
        );
        assert_eq!(
            named(production(&["--metrics-listen"], &[])),
            ["PROVE_GATEWAY_METRICS_LISTEN"]
        );
        // Half a TLS pair is the TLS check's own error, after the profile's.
        assert_eq!(
            named(production(&["--tls-key-file"], &[])),
            ["PROVE_GATEWAY_TLS_KEY_FILE"]
        );
    }

    #[test]
    fn everything_missing_is_named_in_one_message_without_a_secret() {
        let argv = [
            "prove-gateway",
            "--profile",
            "production",
            "--unify-client-secret-file",
            "/nonexistent",
        ];
        let none = Settings::from_args(Cli::try_parse_stated_from(argv).unwrap().gateway);
        assert_eq!(
            named(none),
            [
                "PROVE_BASE_URL",
                "PROVE_GATEWAY_TLS_CERT_FILE",
                "PROVE_GATEWAY_CALLERS_FILE",
                "PROVE_GATEWAY_METRICS_LISTEN",
                // The configuration's own first error comes after the profile's.
                "PROVE_UNIFY_CLIENT_SECRET_FILE",
            ]
        );
        let nothing = Settings::from_args(
            Cli::try_parse_stated_from(["prove-gateway", "--profile", "production"])
                .unwrap()
                .gateway,
        );
        let text = nothing.as_ref().err().unwrap().to_string();
        assert_eq!(
            named(nothing),
            [
                "PROVE_BASE_URL",
                "PROVE_CLIENT_ID",
                "PROVE_GATEWAY_TLS_CERT_FILE",
                "PROVE_GATEWAY_CALLERS_FILE",
                "PROVE_GATEWAY_METRICS_LISTEN",
            ]
        );
        assert!(
            text.starts_with("PROVE_GATEWAY_PROFILE=production refuses to start"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 6, "{text}");
        // A secret given with an unsafe URL stays out of the message.
        let err = production(
            &["--prove-base-url"],
            &["--prove-base-url", "http://u:pw-in-url@10.0.0.5"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            !err.contains("hunter2-prod-secret") && !err.contains("pw-in-url"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_is_refused_even_to_loopback_and_named_once() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://10.0.0.5",
        ] {
            let result = production(&["--prove-base-url"], &["--prove-base-url", url]);
            let text = result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert_eq!(named(result), ["PROVE_BASE_URL"], "{url}");
            assert!(text.contains("https"), "{url}: {text}");
        }
        for url in ["uat-us", "prod-eu", "https://127.0.0.1:8443"] {
            production(&["--prove-base-url"], &["--prove-base-url", url])
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn credentials_without_a_base_url_name_the_base_url_once() {
        assert_eq!(
            named(production(&["--prove-base-url"], &[])),
            ["PROVE_BASE_URL"],
            "credentials are set: only the host is missing"
        );
    }
}
