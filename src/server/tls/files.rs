//! Reading the TLS files and turning them into what rustls serves: the certificate with its
//! key, and the verifier of client certificates. Every error names the variable of the file at
//! fault, and never quotes a file's contents (one of them is a private key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::server::settings::TlsSettings;

pub(super) const CERT_VAR: &str = "PROVE_GATEWAY_TLS_CERT_FILE";
pub(super) const KEY_VAR: &str = "PROVE_GATEWAY_TLS_KEY_FILE";
pub(super) const CLIENT_CA_VAR: &str = "PROVE_GATEWAY_CLIENT_CA_FILE";

/// A TLS file that cannot be used, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} {path}: {reason}")]
pub(in crate::server) struct TlsFileError {
    variable: &'static str,
    path: String,
    reason: String,
}

impl TlsFileError {
    fn new(variable: &'static str, path: &Path, reason: impl Into<String>) -> Self {
        Self {
            variable,
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// The bytes of the TLS files as read at one moment, compared from one poll to the next to
/// notice a rotation. Not `Debug`: it holds the private key.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// What the files hold, ready to serve.
pub(super) struct Material {
    pub(super) key: Arc<CertifiedKey>,
    /// `Some` exactly when client certificates are required.
    pub(super) client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// The paths to read, with the variables that named them.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl From<&TlsSettings> for Paths {
    fn from(settings: &TlsSettings) -> Self {
        Self {
            cert: settings.cert_file.clone(),
            key: settings.key_file.clone(),
            client_ca: settings.client_ca_file.clone(),
        }
    }
}

impl Paths {
    /// Reads the files (following symlinks, as a Kubernetes secret volume needs) as they are
    /// now. Blocking: small files, read off the async threads by the caller.
    pub(super) fn read(&self) -> Result<Contents, TlsFileError> {
        let read = |variable, path: &Path| {
            std::fs::read(path)
                .map_err(|e| TlsFileError::new(variable, path, format!("cannot read: {e}")))
        };
        Ok(Contents {
            cert: read(CERT_VAR, &self.cert)?,
            key: read(KEY_VAR, &self.key)?,
            client_ca: match &self.client_ca {
                Some(path) => Some(read(CLIENT_CA_VAR, path)?),
                None => None,
            },
        })
    }

    /// Parses `contents`: the chain, a key that matches its first certificate, the CA bundle.
    pub(super) fn parse(
        &self,
        contents: &Contents,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Material, TlsFileError> {
        let chain = certificates(&contents.cert)
            .map_err(|reason| TlsFileError::new(CERT_VAR, &self.cert, reason))?;
        // The parser's error says what it expected, never what it read.
        let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| {
            TlsFileError::new(KEY_VAR, &self.key, format!("no PEM private key: {e}"))
        })?;
        let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            TlsFileError::new(
                KEY_VAR,
                &self.key,
                format!("unusable with the certificate of {CERT_VAR}: {e}"),
            )
        })?;
        let client_verifier = match (&self.client_ca, &contents.client_ca) {
            (Some(path), Some(bundle)) => Some(
                client_verifier(bundle, provider)
                    .map_err(|reason| TlsFileError::new(CLIENT_CA_VAR, path, reason))?,
            ),
            _ => None,
        };
        Ok(Material {
            key: Arc::new(key),
            client_verifier,
        })
    }
}

/// Every certificate of a PEM file, in order; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("holds no PEM CERTIFICATE".into());
    }
    Ok(chain)
}

/// A verifier that requires a client certificate chaining to one of `bundle`'s CAs, valid now.
fn client_verifier(
    bundle: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(bundle)? {
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        // The hints would go stale at a CA rotation while the delegating verifier lives on (its
        // trait lends them from itself); clients with one certificate do not need them.
        .clear_root_hint_subjects()
        .build()
        .map_err(|e| format!("cannot verify client certificates with it: {e}"))
}

#[cfg(test)]
impl Contents {
    /// Contents told apart by `tag` alone.
    pub(super) fn for_tests(tag: &str) -> Self {
        Self {
            cert: tag.as_bytes().to_vec(),
            key: Vec::new(),
            client_ca: None,
        }
    }
}

#[cfg(test)]
impl TlsFileError {
    pub(super) fn for_tests(reason: &str) -> Self {
        Self::new(CERT_VAR, Path::new("/tls/tls.crt"), reason)
    }
}

#[cfg(test)]
impl Material {
    /// A freshly made self-signed certificate with its key.
    pub(super) fn for_tests() -> Result<Self, TlsFileError> {
        let (cert, key) = tests::self_signed("localhost");
        let contents = Contents {
            cert: cert.into_bytes(),
            key: key.into_bytes(),
            client_ca: None,
        };
        tests::paths(false).parse(&contents, &tests::provider())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// A self-signed certificate for `name` and its key, both PEM.
    pub(crate) fn self_signed(name: &str) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    pub(crate) fn paths(mutual: bool) -> Paths {
        Paths {
            cert: "/tls/tls.crt".into(),
            key: "/tls/tls.key".into(),
            client_ca: mutual.then(|| "/tls/ca.crt".into()),
        }
    }

    fn contents(cert: &str, key: &str, client_ca: Option<&str>) -> Contents {
        Contents {
            cert: cert.as_bytes().to_vec(),
            key: key.as_bytes().to_vec(),
            client_ca: client_ca.map(|ca| ca.as_bytes().to_vec()),
        }
    }

    fn refusal(paths: &Paths, contents: &Contents) -> String {
        match paths.parse(contents, &provider()) {
            Ok(_) => panic!("the files were accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_certificate_with_its_key_and_a_ca_bundle_are_served() {
        let (cert, key) = self_signed("localhost");
        let (ca, _) = self_signed("ca");
        let material = paths(true)
            .parse(&contents(&cert, &key, Some(&ca)), &provider())
            .unwrap();
        assert_eq!(material.key.cert.len(), 1);
        let verifier = material.client_verifier.unwrap();
        assert!(verifier.offer_client_auth() && verifier.client_auth_mandatory());
        let tls_only = paths(false)
            .parse(&contents(&cert, &key, None), &provider())
            .unwrap();
        assert!(tls_only.client_verifier.is_none());
    }

    #[test]
    fn each_unusable_file_is_named_by_its_variable_without_its_contents() {
        let (cert, key) = self_signed("localhost");
        let (_, other_key) = self_signed("other");
        let key_body = key.lines().nth(1).unwrap().to_owned();
        for (case, contents, variable) in [
            ("no certificate", contents("", &key, None), CERT_VAR),
            (
                "garbage",
                contents(
                    "-----BEGIN CERTIFICATE-----\nx!\n-----END CERTIFICATE-----\n",
                    &key,
                    None,
                ),
                CERT_VAR,
            ),
            ("no key", contents(&cert, "", None), KEY_VAR),
            (
                "half a key",
                contents(&cert, &key[..key.len() / 2], None),
                KEY_VAR,
            ),
            ("another key", contents(&cert, &other_key, None), KEY_VAR),
            ("no CA", contents(&cert, &key, Some("")), CLIENT_CA_VAR),
        ] {
            let text = refusal(&paths(true), &contents);
            assert!(text.starts_with(variable), "{case}: {text}");
            assert!(!text.contains(&key_body), "{case}: {text}");
        }
    }

    #[test]
    fn read_names_the_file_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed("localhost");
        std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
        std::fs::write(dir.path().join("tls.key"), key).unwrap();
        let at = |name: &str| dir.path().join(name);
        let ok = Paths {
            cert: at("tls.crt"),
            key: at("tls.key"),
            client_ca: None,
        };
        assert!(ok.read().is_ok());
        for (paths, variable) in [
            (
                Paths {
                    cert: at("missing"),
                    ..ok.clone()
                },
                CERT_VAR,
            ),
            (
                Paths {
                    key: at("missing"),
                    ..ok.clone()
                },
                KEY_VAR,
            ),
            (
                Paths {
                    client_ca: Some(at("missing")),
                    ..ok.clone()
                },
                CLIENT_CA_VAR,
            ),
        ] {
            let Err(error) = paths.read() else {
                panic!("{variable}: read a missing file")
            };
            assert!(error.to_string().starts_with(variable), "{error}");
        }
    }
}
