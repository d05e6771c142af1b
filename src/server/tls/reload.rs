//! Certificate rotation without a restart: rustls asks [`CurrentCert`] for the certificate and
//! [`CurrentVerifier`] to check the client's at every handshake, and both hand over whatever
//! the files held at the last good read. Connections already open keep their session; only new
//! handshakes see the new files, so no call is dropped.
//!
//! Why polling the files' contents rather than file-change notifications: cert-manager and the
//! kubelet rotate a mounted secret by swapping the `..data` symlink of the directory, which an
//! inotify watch on the file itself never sees (the watched inode is simply unlinked), and
//! which arrives as a different sequence of events on every platform and volume type. Reading
//! three small files every few seconds costs nothing, sees every kind of replacement (symlink
//! swap, rename, rewrite in place, a volume without notifications) and needs no dependency.
//! Contents rather than modification times, because a swapped symlink can point at a file with
//! an older mtime.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::files::{Contents, Material, Paths, TlsFileError};

/// The certificate to serve: the last good one read from the files.
pub(super) struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    pub(super) fn new(key: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(key))
    }
}

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// The verifier of client certificates built from the last good CA bundle.
pub(super) struct CurrentVerifier(RwLock<Arc<dyn ClientCertVerifier>>);

impl CurrentVerifier {
    pub(super) fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Self(RwLock::new(verifier))
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0.read().clone()
    }
}

impl fmt::Debug for CurrentVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentVerifier")
    }
}

impl ClientCertVerifier for CurrentVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Cleared in every verifier we build (see `files::client_verifier`).
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// What one poll of the files leads to.
pub(super) enum Change {
    /// Same files as last time (or the same breakage): nothing to do, nothing to say.
    None,
    /// New files that parse: serve them.
    Rotated(Material),
    /// New files, or a new error, that cannot be used: keep serving the old ones, say so once.
    Refused(TlsFileError),
}

/// Remembers what the last poll saw, so a rotation is applied once and a broken file is warned
/// about once (not at every poll until someone fixes it).
pub(super) struct Watch {
    seen: Contents,
    failure: Option<TlsFileError>,
}

impl Watch {
    /// Starts from the contents being served.
    pub(super) fn new(served: Contents) -> Self {
        Self {
            seen: served,
            failure: None,
        }
    }

    /// Decides what `read`, the outcome of reading the files now, changes.
    pub(super) fn poll(
        &mut self,
        read: Result<Contents, TlsFileError>,
        parse: impl FnOnce(&Contents) -> Result<Material, TlsFileError>,
    ) -> Change {
        let contents = match read {
            Ok(contents) => contents,
            // A file missing or unreadable, for example while it is replaced by a writer that
            // does not swap atomically.
            Err(error) => return self.refuse(error),
        };
        if contents == self.seen {
            // The files were readable again and unchanged: a later failure is news.
            self.failure = None;
            return Change::None;
        }
        self.seen = contents;
        match parse(&self.seen) {
            Ok(material) => {
                self.failure = None;
                Change::Rotated(material)
            }
            Err(error) => self.refuse(error),
        }
    }

    fn refuse(&mut self, error: TlsFileError) -> Change {
        if self.failure.as_ref() == Some(&error) {
            return Change::None;
        }
        self.failure = Some(error.clone());
        Change::Refused(error)
    }
}

/// Reads the files every `interval` until `stop`, handing each good rotation to the resolver and
/// the verifier.
pub(super) async fn poll_files(
    paths: Paths,
    provider: Arc<CryptoProvider>,
    mut watch: Watch,
    cert: Arc<CurrentCert>,
    verifier: Option<Arc<CurrentVerifier>>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        // File reads block: off the async threads. Parsing stays here, only when they changed.
        let reading = paths.clone();
        let read = match tokio::task::spawn_blocking(move || reading.read()).await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, "reading the TLS files failed; keeping the certificate");
                continue;
            }
        };
        match watch.poll(read, |contents| paths.parse(contents, &provider)) {
            Change::None => {}
            Change::Rotated(material) => {
                *cert.0.write() = material.key;
                if let (Some(current), Some(new)) = (&verifier, material.client_verifier) {
                    *current.0.write() = new;
                }
                tracing::info!("TLS files changed: new handshakes use them");
            }
            Change::Refused(error) => {
                tracing::warn!(
                    %error,
                    "TLS files changed but cannot be used: still serving the previous certificate"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn error(reason: &str) -> TlsFileError {
        TlsFileError::for_tests(reason)
    }

    fn material() -> Result<Material, TlsFileError> {
        Material::for_tests()
    }

    #[test]
    fn unchanged_files_are_not_parsed_again() {
        let mut watch = Watch::new(Contents::for_tests("a"));
        let change = watch.poll(Ok(Contents::for_tests("a")), |_| panic!("parsed"));
        assert!(matches!(change, Change::None));
    }

    #[test]
    fn new_files_that_parse_are_a_rotation_applied_once() {
        let mut watch = Watch::new(Contents::for_tests("a"));
        let change = watch.poll(Ok(Contents::for_tests("b")), |_| material());
        assert!(matches!(change, Change::Rotated(_)));
        let change = watch.poll(Ok(Contents::for_tests("b")), |_| panic!("parsed"));
        assert!(matches!(change, Change::None));
    }

    #[test]
    fn a_broken_file_is_refused_once_and_each_new_breakage_again() {
        let mut watch = Watch::new(Contents::for_tests("a"));
        let change = watch.poll(Ok(Contents::for_tests("broken")), |_| Err(error("bad")));
        assert!(matches!(change, Change::Refused(_)));
        for _ in 0..3 {
            let change = watch.poll(Ok(Contents::for_tests("broken")), |_| panic!("parsed"));
            assert!(matches!(change, Change::None));
        }
        let change = watch.poll(Ok(Contents::for_tests("broken2")), |_| Err(error("worse")));
        assert!(matches!(change, Change::Refused(_)), "a different breakage");
        let change = watch.poll(Ok(Contents::for_tests("good")), |_| material());
        assert!(matches!(change, Change::Rotated(_)), "fixed");
    }

    #[test]
    fn an_unreadable_file_is_refused_once_until_the_files_are_readable_again() {
        let mut watch = Watch::new(Contents::for_tests("a"));
        assert!(matches!(
            watch.poll(Err(error("gone")), |_| panic!("parsed")),
            Change::Refused(_)
        ));
        assert!(matches!(
            watch.poll(Err(error("gone")), |_| panic!("parsed")),
            Change::None
        ));
        // Back as they were: nothing to apply, but the next failure is warned about again.
        assert!(matches!(
            watch.poll(Ok(Contents::for_tests("a")), |_| panic!("parsed")),
            Change::None
        ));
        assert!(matches!(
            watch.poll(Err(error("gone")), |_| panic!("parsed")),
            Change::Refused(_)
        ));
    }

    #[test]
    fn a_file_broken_then_restored_to_what_is_served_is_served_without_parsing() {
        let mut watch = Watch::new(Contents::for_tests("a"));
        let change = watch.poll(Ok(Contents::for_tests("broken")), |_| Err(error("bad")));
        assert!(matches!(change, Change::Refused(_)));
        // "a" is still what rustls serves; but the watch last saw "broken", so "a" is a change
        // and is parsed again (harmless: the same certificate).
        let change = watch.poll(Ok(Contents::for_tests("a")), |_| material());
        assert!(matches!(change, Change::Rotated(_)));
    }
}
