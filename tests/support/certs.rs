//! Certificates the tests make themselves: a CA, the server and client certificates it signs
//! (valid, expired, from another CA), and a directory laid out as Kubernetes mounts a secret,
//! whose certificate is rotated by swapping a symlink.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate, DER, to compare with what a server presented.
    pub der: Vec<u8>,
}

/// Serial numbers unique within the test binary, so two certificates are never alike.
fn next_serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    SerialNumber::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Ca {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(next_serial());
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA's certificate, PEM (what clients trust, or the gateway's client CA file).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with a SPIFFE ID.
    pub fn client(&self, spiffe_id: &str) -> Leaf {
        self.client_with(vec![SanType::URI(spiffe_id.try_into().unwrap())], "client")
    }

    /// A client certificate with these SANs and CN.
    pub fn client_with(&self, sans: Vec<SanType>, cn: &str) -> Leaf {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// A client certificate that expired in 2021.
    pub fn expired_client(&self, spiffe_id: &str) -> Leaf {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Leaf {
        params.serial_number = Some(next_serial());
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A directory laid out as the kubelet mounts a secret: `tls.crt`, `tls.key` and `ca.crt` are
/// symlinks into `..data`, itself a symlink to the current version's directory. A rotation
/// writes a new version and swaps `..data` in one rename, as the kubelet does.
pub struct SecretDir {
    dir: tempfile::TempDir,
    versions: u32,
}

impl SecretDir {
    /// A mounted secret holding `server` and the client CA `ca_pem`.
    pub fn new(server: &Leaf, ca_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut mounted = Self { dir, versions: 0 };
        mounted.swap(&server.cert_pem, &server.key_pem, ca_pem);
        for name in ["tls.crt", "tls.key", "ca.crt"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), mounted.path(name)).unwrap();
        }
        mounted
    }

    /// The path of `name` in the mounted directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rotates to `server`, keeping the client CA.
    pub fn rotate(&mut self, server: &Leaf, ca_pem: &str) {
        self.swap(&server.cert_pem, &server.key_pem, ca_pem);
    }

    /// Rotates to these file contents, whatever they are (for broken replacements).
    pub fn swap(&mut self, cert: &str, key: &str, ca: &str) {
        self.versions += 1;
        let version = format!("..version_{}", self.versions);
        let target = self.dir.path().join(&version);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert).unwrap();
        std::fs::write(target.join("tls.key"), key).unwrap();
        std::fs::write(target.join("ca.crt"), ca).unwrap();
        let staged = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&version, &staged).unwrap();
        std::fs::rename(&staged, self.dir.path().join("..data")).unwrap();
    }
}
