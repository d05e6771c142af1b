//! Where Prove calls go: the simulator, or a Prove host with one credential pair per product.

use secrecy::SecretString;
use url::Url;

use super::args::GatewayArgs;
use super::secrets::{secret_or_file, value_or_file};
use super::{ConfigError, invalid};
use crate::prove::{Credentials, Upstream};

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
type Given<T> = Option<(T, &'static PairNames)>;

fn tag<T>(value: Option<T>, names: &'static PairNames) -> Given<T> {
    value.map(|v| (v, names))
}

pub(super) fn resolve_upstream(args: &GatewayArgs) -> Result<Upstream, ConfigError> {
    let general_id = tag(
        value_or_file(
            ("PROVE_CLIENT_ID", &args.client_id),
            ("PROVE_CLIENT_ID_FILE", &args.client_id_file),
        )?,
        &SHARED_PAIR,
    );
    let general_secret = tag(
        secret_or_file(
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
            secret_or_file(
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
            secret_or_file(
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
fn credentials(
    id: Given<String>,
    secret: Given<SecretString>,
) -> Result<Option<Credentials>, ConfigError> {
    match (id, secret) {
        (None, None) => Ok(None),
        (Some((client_id, _)), Some((secret, _))) => Ok(Some(Credentials {
            client_id,
            client_secret: secret,
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
