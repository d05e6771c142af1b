//! The shared Redis, the store's capacity and the unknown-sessions policy.

use secrecy::{ExposeSecret, SecretString};

use super::args::GatewayArgs;
use super::{ConfigError, invalid};
use crate::callers::{SessionSettings, UnknownSessions};
use crate::store::StoreSettings;

const REDIS_URL: &str = "PROVE_GATEWAY_REDIS_URL";
const OLD_REDIS_URL: &str = "PROVE_RATE_LIMIT_REDIS_URL";

/// The one Redis of the limiter and the store: `PROVE_GATEWAY_REDIS_URL`, or its older name.
/// Both set to different values is refused: one of them would be silently ignored.
pub(super) fn redis_url(args: &GatewayArgs) -> Result<Option<SecretString>, ConfigError> {
    let (name, url) = match (&args.redis_url, &args.rate_limit_redis_url) {
        (Some(new), Some(old)) if new.expose_secret() != old.expose_secret() => {
            return Err(invalid(
                REDIS_URL,
                format!(
                    "{REDIS_URL} and {OLD_REDIS_URL} (its older name) are set to different \
                     values; set only {REDIS_URL}"
                ),
            ));
        }
        (Some(url), _) => (REDIS_URL, url),
        (None, Some(url)) => (OLD_REDIS_URL, url),
        (None, None) => return Ok(None),
    };
    let text = url.expose_secret();
    if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
        return Err(invalid(name, "must start with redis:// or rediss://"));
    }
    Ok(Some(url.clone()))
}

/// The store's settings, on the Redis `redis_url` resolved above.
pub(super) fn store(
    args: &GatewayArgs,
    redis_url: Option<SecretString>,
) -> Result<StoreSettings, ConfigError> {
    if args.store_capacity == 0 {
        return Err(invalid(
            "PROVE_GATEWAY_STORE_CAPACITY",
            "must be at least 1",
        ));
    }
    Ok(StoreSettings {
        redis_url,
        capacity: args.store_capacity,
    })
}

/// The sessions' settings: the policy given, else the one that fits how callers are known.
pub(super) fn sessions(args: &GatewayArgs) -> SessionSettings {
    SessionSettings {
        unknown: args
            .unknown_sessions
            .unwrap_or_else(|| UnknownSessions::default_for(callers_authenticated(args))),
    }
}

/// Whether callers prove who they are: a client CA (mTLS) or a callers file is configured.
fn callers_authenticated(args: &GatewayArgs) -> bool {
    args.client_ca_file.is_some() || args.callers_file.is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Settings};

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["prove-gateway"];
        argv.extend_from_slice(args);
        Settings::from_args(Cli::try_parse_from(argv).expect("arguments parse").gateway)
    }

    fn urls(settings: &Settings) -> (Option<String>, Option<String>) {
        let text = |url: &Option<SecretString>| url.as_ref().map(|u| u.expose_secret().to_owned());
        (
            text(&settings.store.redis_url),
            text(&settings.outbound.rate_limit_redis_url),
        )
    }

    #[test]
    fn one_redis_url_serves_the_limiter_and_the_store_under_either_name() {
        let url = Some("redis://r:6379".to_owned());
        for flag in ["--redis-url", "--rate-limit-redis-url"] {
            let settings = parse(&[flag, "redis://r:6379"]).unwrap();
            assert_eq!(urls(&settings), (url.clone(), url.clone()), "{flag}");
        }
        let both = parse(&[
            "--redis-url",
            "redis://r:6379",
            "--rate-limit-redis-url",
            "redis://r:6379",
        ])
        .unwrap();
        assert_eq!(urls(&both), (url.clone(), url));
        assert_eq!(urls(&parse(&[]).unwrap()), (None, None));
    }

    #[test]
    fn two_different_redis_urls_are_refused_naming_both_and_neither_secret() {
        let err = parse(&[
            "--redis-url",
            "redis://:hunter2@a:6379",
            "--rate-limit-redis-url",
            "redis://:hunter3@b:6379",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("PROVE_GATEWAY_REDIS_URL:"), "{err}");
        assert!(err.contains("PROVE_RATE_LIMIT_REDIS_URL"), "{err}");
        assert!(!err.contains("hunter"), "{err}");
    }

    #[test]
    fn a_redis_url_of_another_scheme_is_refused_under_the_name_it_was_given() {
        let err = parse(&["--redis-url", "http://r:6379"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PROVE_GATEWAY_REDIS_URL:"), "{err}");
        let err = parse(&["--rate-limit-redis-url", "r:6379"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PROVE_RATE_LIMIT_REDIS_URL:"), "{err}");
        assert!(parse(&["--redis-url", "rediss://r:6380"]).is_ok());
    }

    #[test]
    fn the_store_capacity_defaults_to_the_window_at_proves_rate_and_refuses_zero() {
        assert_eq!(
            parse(&[]).unwrap().store.capacity,
            crate::store::settings::CAPACITY
        );
        assert_eq!(parse(&["--store-capacity", "7"]).unwrap().store.capacity, 7);
        let err = parse(&["--store-capacity", "0"]).unwrap_err().to_string();
        assert!(err.starts_with("PROVE_GATEWAY_STORE_CAPACITY:"), "{err}");
    }

    #[test]
    fn unknown_sessions_are_refused_by_default_exactly_when_callers_are_authenticated() {
        assert_eq!(
            parse(&[]).unwrap().sessions.unknown,
            UnknownSessions::Forward
        );
        let dir = tempfile::tempdir().unwrap();
        let callers = dir.path().join("callers.yaml");
        std::fs::write(&callers, "callers: []\n").unwrap();
        let callers = callers.to_str().unwrap();
        assert_eq!(
            parse(&["--callers-file", callers])
                .unwrap()
                .sessions
                .unknown,
            UnknownSessions::Refuse
        );
        let mtls = GatewayArgs {
            client_ca_file: Some("/etc/ca.pem".into()),
            ..Cli::try_parse_from(["prove-gateway"]).unwrap().gateway
        };
        assert!(callers_authenticated(&mtls));
        assert_eq!(sessions(&mtls).unknown, UnknownSessions::Refuse);
        assert_eq!(
            parse(&["--callers-file", callers, "--unknown-sessions", "forward"])
                .unwrap()
                .sessions
                .unknown,
            UnknownSessions::Forward
        );
        assert_eq!(
            parse(&["--unknown-sessions", "refuse"])
                .unwrap()
                .sessions
                .unknown,
            UnknownSessions::Refuse
        );
        assert!(Cli::try_parse_from(["prove-gateway", "--unknown-sessions", "drop"]).is_err());
    }
}
