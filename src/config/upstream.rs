//! Where Prove calls go: the simulator, or a Prove host with one credential pair per product.

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use super::args::GatewayArgs;
use super::secrets::{secret_or_file, value_or_file};
use super::{ConfigError, invalid};
use crate::prove::{ClientSecret, Credentials, Product, SecretFile, Upstream};

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

/// The settings of one credential pair: the shared `PROVE_CLIENT_*` pair, or a product's own
/// `PROVE_<PRODUCT>_CLIENT_*` named from [`Product::env_name`].
#[derive(Clone)]
struct PairNames {
    id: String,
    secret: String,
}

impl PairNames {
    fn with_prefix(prefix: &str) -> Self {
        Self {
            id: format!("{prefix}CLIENT_ID"),
            secret: format!("{prefix}CLIENT_SECRET"),
        }
    }

    /// `product`'s own pair, or the shared one for `None`.
    fn of(product: Option<Product>) -> Self {
        match product {
            None => Self::with_prefix("PROVE_"),
            Some(product) => Self::with_prefix(&format!("PROVE_{}_", product.env_name())),
        }
    }
}

/// The raw arguments of one credential pair, each half given directly or as a file.
struct PairArgs<'a> {
    id: &'a Option<String>,
    id_file: &'a Option<PathBuf>,
    secret: &'a Option<SecretString>,
    secret_file: &'a Option<PathBuf>,
}

/// The arguments of `product`'s own pair, or of the shared one for `None`.
fn pair_args(args: &GatewayArgs, product: Option<Product>) -> PairArgs<'_> {
    match product {
        None => PairArgs {
            id: &args.client_id,
            id_file: &args.client_id_file,
            secret: &args.client_secret,
            secret_file: &args.client_secret_file,
        },
        Some(Product::Unify) => PairArgs {
            id: &args.unify_client_id,
            id_file: &args.unify_client_id_file,
            secret: &args.unify_client_secret,
            secret_file: &args.unify_client_secret_file,
        },
        Some(Product::Verify) => PairArgs {
            id: &args.verify_client_id,
            id_file: &args.verify_client_id_file,
            secret: &args.verify_client_secret,
            secret_file: &args.verify_client_secret_file,
        },
    }
}

/// A credential value with the pair it was given in, so that an error about its missing other
/// half names a setting the user actually uses.
type Given<T> = Option<(T, PairNames)>;

/// The halves of one pair that were given, read from their files where given as files.
/// A secret given as a file is read again while the gateway runs (a rotated Kubernetes
/// Secret); its ID is not: a new client ID is a new Prove project, and a restart.
fn given(
    args: &GatewayArgs,
    product: Option<Product>,
) -> Result<(Given<String>, Given<ClientSecret>), ConfigError> {
    let names = PairNames::of(product);
    let raw = pair_args(args, product);
    let id = value_or_file(
        (&names.id, raw.id),
        (&format!("{}_FILE", names.id), raw.id_file),
    )?;
    let secret_file = format!("{}_FILE", names.secret);
    let secret = secret_or_file((&names.secret, raw.secret), (&secret_file, raw.secret_file))?.map(
        |secret| match raw.secret_file {
            Some(path) => ClientSecret::from_file(
                secret,
                SecretFile {
                    path: path.clone(),
                    setting: secret_file,
                    interval: crate::prove::secret::RELOAD_INTERVAL,
                },
            ),
            None => ClientSecret::fixed(secret),
        },
    );
    Ok((id.map(|v| (v, names.clone())), secret.map(|v| (v, names))))
}

pub(super) fn resolve_upstream(args: &GatewayArgs) -> Result<Upstream, ConfigError> {
    let (shared_id, shared_secret) = given(args, None)?;
    // A product's own pair wins over the shared one, half by half.
    let product_credentials = |product| -> Result<Option<Credentials>, ConfigError> {
        let (id, secret) = given(args, Some(product))?;
        credentials(
            id.or_else(|| shared_id.clone()),
            secret.or_else(|| shared_secret.clone()),
        )
    };
    let unify = product_credentials(Product::Unify)?;
    let verify = product_credentials(Product::Verify)?;

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
    let unify = unify.ok_or_else(|| missing(Product::Unify))?;
    let verify = verify.ok_or_else(|| missing(Product::Verify))?;
    Ok(Upstream::Prove {
        base_url,
        unify,
        verify,
    })
}

/// The error for a product with no credentials at all: it names the product's ID setting.
fn missing(product: Product) -> ConfigError {
    let shared = PairNames::of(None);
    let own = PairNames::of(Some(product));
    let reason = format!(
        "credentials are missing: set {} and {}, or {} and {} (or their _FILE variants)",
        shared.id, shared.secret, own.id, own.secret
    );
    invalid(own.id, reason)
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
    secret: Given<ClientSecret>,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config::Cli;

    /// The names built from [`Product::env_name`] are the variables clap reads: a name that
    /// drifted from its `env = "…"` attribute would report errors under a setting nobody can set.
    #[test]
    fn every_pair_name_is_a_variable_of_the_command_line() {
        let command = Cli::command();
        let variables: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        for product in [None, Some(Product::Unify), Some(Product::Verify)] {
            let names = PairNames::of(product);
            for name in [
                names.id.clone(),
                names.secret.clone(),
                format!("{}_FILE", names.id),
                format!("{}_FILE", names.secret),
            ] {
                assert!(
                    variables.contains(&name),
                    "{product:?}: {name} is not a variable"
                );
            }
        }
    }
}
