//! The current set of callers, and the two decisions every call needs: who is calling
//! ([`Callers::authenticate`]) and whether it may call this method ([`Callers::authorize`]).
//! Both answer with values; the gRPC layer turns a [`Refusal`] into a status.
//!
//! Three ways to run, from the settings:
//! - a callers file: callers are its entries, found by certificate identity with mTLS, else by
//!   bearer token; each may call what its `allow` lists. The file is read again every few
//!   seconds: Kubernetes updates a mounted Secret by swapping a symlink, which no watch on the
//!   file itself sees, and reading a small file is cheap. A file that does not parse keeps the
//!   callers loaded before and logs one WARN;
//! - mTLS without a file: every verified certificate is a caller named by its identity, allowed
//!   every method;
//! - neither: the gateway runs open; every call is [`CallerName::anonymous`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::allow::Allow;
use super::file::{CallerEntry, CallersFile, FileError, TokenHash, hash_token};
use super::settings::CallersSettings;
use super::{CallerName, PeerIdentity};

/// The caller a call was authenticated as, and what it may call.
#[derive(Debug, Clone)]
pub struct Caller {
    name: CallerName,
    grant: Grant,
    authenticated: bool,
}

#[derive(Debug, Clone)]
enum Grant {
    Everything,
    /// The entry of the file as it was when the call was authenticated: a reload during the
    /// call does not change what the call may do.
    Entry(Arc<CallerEntry>),
}

impl Caller {
    /// Its name in logs, spans and metrics; sessions belong to it.
    pub fn name(&self) -> &CallerName {
        &self.name
    }

    /// Whether a credential proved who it is (false for the open gateway's anonymous caller).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Its share of Prove's budget under contention: the file's `weight`, else 1.
    pub fn weight(&self) -> u32 {
        match &self.grant {
            Grant::Everything => 1,
            Grant::Entry(entry) => entry.weight,
        }
    }

    fn permits(&self, method: &str) -> bool {
        match &self.grant {
            Grant::Everything => Allow::Everything.permits(method),
            Grant::Entry(entry) => entry.allow.permits(method),
        }
    }
}

/// A call the gateway will not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or one that names no caller.
    Unauthenticated(Unauthenticated),
    /// An authenticated caller whose allow list does not grant the method.
    NotAllowed {
        /// The caller.
        caller: CallerName,
        /// The method it asked for (`package.Service/Method`).
        method: String,
    },
}

/// Why a call has no caller. Each says what was wrong without repeating the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// No `authorization` metadata.
    NoCredential,
    /// `authorization` is not `Bearer <token>`.
    NotBearer,
    /// A bearer token whose hash no caller lists.
    UnknownToken,
    /// mTLS is on but the connection carried no verified certificate identity.
    NoCertificate,
    /// A certificate identity no caller lists.
    UnknownIdentity,
}

impl Unauthenticated {
    /// What was wrong, for the caller's status message and the logs.
    pub fn why(self) -> &'static str {
        match self {
            Self::NoCredential => "no authorization metadata",
            Self::NotBearer => "the authorization metadata is not a bearer token",
            Self::UnknownToken => "the bearer token is not a caller's",
            Self::NoCertificate => "no verified client certificate",
            Self::UnknownIdentity => "the client certificate's identity is not a caller's",
        }
    }
}

/// Who may call: shared by every connection, cheap to clone.
#[derive(Debug, Clone)]
pub struct Callers {
    mode: Arc<Mode>,
}

#[derive(Debug)]
enum Mode {
    Open,
    Certificates,
    File { mtls: bool, source: Source },
}

/// The callers file as last loaded, and what the poller last saw at its path.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    current: RwLock<Arc<CallersFile>>,
    seen: Mutex<Seen>,
}

/// The last content read at the path (its digest), or that it could not be read: a change is
/// acted on, and logged, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Not looked at yet (a set given as a value, [`Callers::from_file`]).
    Nothing,
    Content(TokenHash),
    Unreadable,
}

/// Why the callers file cannot be used at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// It could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a valid callers file.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        source: FileError,
    },
}

/// What one look at the callers file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The same content as last time (or still unreadable): nothing to do.
    Unchanged,
    /// New content, now in force.
    Reloaded {
        /// How many callers it lists.
        callers: usize,
    },
    /// New content that is not a valid file: the callers loaded before stay.
    Rejected(FileError),
    /// The file cannot be read (any more): the callers loaded before stay.
    Unreadable(String),
}

impl Callers {
    /// The callers `settings` describe. With a file, reads it now (an error here is a startup
    /// error) and keeps reading it every `reload_interval` for as long as a clone lives; needs
    /// a Tokio runtime then. Open (no file, no mTLS) logs one WARN.
    pub fn start(settings: &CallersSettings) -> Result<Self, StartError> {
        let Some(path) = &settings.file else {
            if settings.mtls {
                return Ok(Self::certificates());
            }
            tracing::warn!(
                "no mTLS and no PROVE_GATEWAY_CALLERS_FILE: the gateway runs open; any client \
                 that reaches it may call every method, as caller `anonymous`"
            );
            return Ok(Self::open());
        };
        let display = || path.display().to_string();
        let content = std::fs::read(path).map_err(|source| StartError::Read {
            path: display(),
            source,
        })?;
        let file = parse(&content).map_err(|source| StartError::Invalid {
            path: display(),
            source,
        })?;
        tracing::info!(
            path = %path.display(),
            callers = file.callers().len(),
            mtls = settings.mtls,
            "callers file loaded"
        );
        let source = Source {
            path: path.clone(),
            current: RwLock::new(Arc::new(file)),
            seen: Mutex::new(Seen::Content(hash_content(&content))),
        };
        let callers = Self {
            mode: Arc::new(Mode::File {
                mtls: settings.mtls,
                source,
            }),
        };
        tokio::spawn(poll(
            Arc::downgrade(&callers.mode),
            settings.reload_interval,
        ));
        Ok(callers)
    }

    /// Open: every call is [`CallerName::anonymous`], allowed everything.
    pub fn open() -> Self {
        Self {
            mode: Arc::new(Mode::Open),
        }
    }

    /// mTLS without a callers file: every verified certificate is a caller allowed everything.
    pub fn certificates() -> Self {
        Self {
            mode: Arc::new(Mode::Certificates),
        }
    }

    /// The callers of `file`, never reloaded (tests, embedding). `path` is where
    /// [`Callers::reload`] reads.
    pub fn from_file(file: CallersFile, mtls: bool, path: impl Into<PathBuf>) -> Self {
        Self {
            mode: Arc::new(Mode::File {
                mtls,
                source: Source {
                    path: path.into(),
                    current: RwLock::new(Arc::new(file)),
                    seen: Mutex::new(Seen::Nothing),
                },
            }),
        }
    }

    /// Whether calls run without any credential (no mTLS, no callers file).
    pub fn is_open(&self) -> bool {
        matches!(*self.mode, Mode::Open)
    }

    /// Who is calling: the certificate identity the connection proved (`peer`, with mTLS) or
    /// the bearer token in the `authorization` metadata (without mTLS).
    pub fn authenticate(
        &self,
        peer: Option<&PeerIdentity>,
        authorization: Option<&str>,
    ) -> Result<Caller, Refusal> {
        let refuse = |why| Err(Refusal::Unauthenticated(why));
        match &*self.mode {
            Mode::Open => Ok(Caller {
                name: CallerName::anonymous(),
                grant: Grant::Everything,
                authenticated: false,
            }),
            Mode::Certificates => match peer {
                Some(identity) => Ok(Caller {
                    name: CallerName(identity.0.clone()),
                    grant: Grant::Everything,
                    authenticated: true,
                }),
                None => refuse(Unauthenticated::NoCertificate),
            },
            Mode::File { mtls: true, source } => {
                let Some(identity) = peer else {
                    return refuse(Unauthenticated::NoCertificate);
                };
                match source.current.read().by_identity(&identity.0) {
                    Some(entry) => Ok(Caller::of(entry)),
                    None => refuse(Unauthenticated::UnknownIdentity),
                }
            }
            Mode::File {
                mtls: false,
                source,
            } => {
                let token = match authorization.map(bearer_token) {
                    None => return refuse(Unauthenticated::NoCredential),
                    Some(None) => return refuse(Unauthenticated::NotBearer),
                    Some(Some(token)) => token,
                };
                // Looked up by digest, as the file stores them: the token itself is compared
                // with nothing, so no comparison's timing depends on its bytes.
                match source.current.read().by_token(&hash_token(token)) {
                    Some(entry) => Ok(Caller::of(entry)),
                    None => refuse(Unauthenticated::UnknownToken),
                }
            }
        }
    }

    /// Whether `caller` may call `method` (`package.Service/Method`).
    pub fn authorize(&self, caller: &Caller, method: &str) -> Result<(), Refusal> {
        if caller.permits(method) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed {
                caller: caller.name.clone(),
                method: method.to_owned(),
            })
        }
    }

    /// Reads the callers file again and puts it in force if it changed and is valid. The poller
    /// calls it; a test may too. Without a file: [`Reload::Unchanged`].
    pub fn reload(&self) -> Reload {
        match &*self.mode {
            Mode::File { source, .. } => source.apply(std::fs::read(&source.path)),
            _ => Reload::Unchanged,
        }
    }
}

impl Caller {
    fn of(entry: &Arc<CallerEntry>) -> Self {
        Self {
            name: entry.name.clone(),
            grant: Grant::Entry(entry.clone()),
            authenticated: true,
        }
    }
}

impl Source {
    /// Acts on one read of the file.
    fn apply(&self, read: std::io::Result<Vec<u8>>) -> Reload {
        let mut seen = self.seen.lock();
        let content = match read {
            Ok(content) => content,
            Err(error) => {
                if *seen == Seen::Unreadable {
                    return Reload::Unchanged;
                }
                *seen = Seen::Unreadable;
                return Reload::Unreadable(error.to_string());
            }
        };
        let digest = hash_content(&content);
        if *seen == Seen::Content(digest) {
            return Reload::Unchanged;
        }
        *seen = Seen::Content(digest);
        match parse(&content) {
            Ok(file) => {
                let callers = file.callers().len();
                *self.current.write() = Arc::new(file);
                Reload::Reloaded { callers }
            }
            Err(error) => Reload::Rejected(error),
        }
    }
}

impl Reload {
    /// One line for a change: INFO for a reload, WARN for a file that cannot be used.
    fn log(&self, path: &Path) {
        let path = path.display();
        match self {
            Self::Unchanged => {}
            Self::Reloaded { callers } => {
                tracing::info!(%path, callers, "callers file reloaded");
            }
            Self::Rejected(error) => tracing::warn!(
                %path,
                %error,
                "callers file changed but is not valid: keeping the callers loaded before"
            ),
            Self::Unreadable(error) => tracing::warn!(
                %path,
                %error,
                "callers file cannot be read: keeping the callers loaded before"
            ),
        }
    }
}

/// Reads the file every `every` until the last [`Callers`] clone is gone.
async fn poll(mode: Weak<Mode>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the file was just read.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(mode) = mode.upgrade() else {
            return;
        };
        let Mode::File { source, .. } = &*mode else {
            return;
        };
        let path = source.path.clone();
        // A small file, but still a blocking read: off the runtime's threads.
        let read = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        source.apply(read).log(&source.path);
    }
}

fn parse(content: &[u8]) -> Result<CallersFile, FileError> {
    let text = std::str::from_utf8(content)
        .map_err(|_| FileError::from("the file is not UTF-8 text".to_owned()))?;
    CallersFile::parse(text)
}

fn hash_content(content: &[u8]) -> TokenHash {
    use sha2::Digest as _;
    sha2::Sha256::digest(content).into()
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 9110 §11.1); `None` for any
/// other scheme or an empty token.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const UNIFY: &str = "prove.gateway.v1.UnifyService/Unify";
    const VERIFY: &str = "prove.gateway.v1.VerifyService/Verify";
    const CHECKOUT_ID: &str = "spiffe://corp/ns/shop/sa/checkout";

    fn hex(hash: TokenHash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `checkout` (certificate CHECKOUT_ID, token "checkout-token") may call UnifyService;
    /// `audit` (token "audit-token") may call nothing.
    fn file() -> CallersFile {
        CallersFile::parse(&format!(
            "callers:\n  - name: checkout\n    identities: [\"{CHECKOUT_ID}\"]\n    token_sha256: [{}]\n    allow: [\"prove.gateway.v1.UnifyService/*\"]\n    weight: 4\n  - name: audit\n    token_sha256: [{}]\n    allow: []\n",
            hex(hash_token("checkout-token")),
            hex(hash_token("audit-token")),
        ))
        .unwrap()
    }

    fn peer(identity: &str) -> PeerIdentity {
        PeerIdentity(Arc::from(identity))
    }

    fn refusal(result: Result<Caller, Refusal>) -> Refusal {
        result.unwrap_err()
    }

    fn unauthenticated(why: Unauthenticated) -> Refusal {
        Refusal::Unauthenticated(why)
    }

    #[test]
    fn open_every_call_is_anonymous_and_allowed_everything() {
        let callers = Callers::open();
        assert!(callers.is_open());
        let caller = callers.authenticate(None, None).unwrap();
        assert_eq!(caller.name(), &CallerName::anonymous());
        assert!(!caller.is_authenticated());
        assert_eq!(caller.weight(), 1);
        assert_eq!(callers.authorize(&caller, VERIFY), Ok(()));
        // A credential changes nothing when nobody checks it.
        let caller = callers
            .authenticate(Some(&peer("x")), Some("Bearer whatever"))
            .unwrap();
        assert_eq!(caller.name(), &CallerName::anonymous());
    }

    #[test]
    fn a_bearer_token_is_its_callers_by_hash() {
        let callers = Callers::from_file(file(), false, "/nonexistent");
        assert!(!callers.is_open());
        let caller = callers
            .authenticate(None, Some("Bearer checkout-token"))
            .unwrap();
        assert_eq!(caller.name().as_str(), "checkout");
        assert!(caller.is_authenticated());
        assert_eq!(caller.weight(), 4);
        let caller = callers
            .authenticate(None, Some("bearer   audit-token"))
            .unwrap();
        assert_eq!(caller.name().as_str(), "audit");
    }

    #[test]
    fn without_mtls_a_missing_malformed_or_unknown_token_is_refused() {
        let callers = Callers::from_file(file(), false, "/nonexistent");
        for (authorization, why) in [
            (None, Unauthenticated::NoCredential),
            (Some("checkout-token"), Unauthenticated::NotBearer),
            (Some("Basic checkout-token"), Unauthenticated::NotBearer),
            (Some("Bearer "), Unauthenticated::NotBearer),
            (Some("Bearer"), Unauthenticated::NotBearer),
            (
                Some("Bearer checkout-token2"),
                Unauthenticated::UnknownToken,
            ),
            (Some("Bearer Checkout-token"), Unauthenticated::UnknownToken),
        ] {
            assert_eq!(
                refusal(callers.authenticate(None, authorization)),
                unauthenticated(why),
                "{authorization:?}"
            );
        }
        // Without mTLS a certificate identity is not a credential.
        assert_eq!(
            refusal(callers.authenticate(Some(&peer(CHECKOUT_ID)), None)),
            unauthenticated(Unauthenticated::NoCredential)
        );
    }

    #[test]
    fn with_mtls_and_a_file_the_certificate_identity_names_the_caller() {
        let callers = Callers::from_file(file(), true, "/nonexistent");
        let caller = callers
            .authenticate(Some(&peer(CHECKOUT_ID)), None)
            .unwrap();
        assert_eq!(caller.name().as_str(), "checkout");
        assert!(caller.is_authenticated());
        assert_eq!(callers.authorize(&caller, UNIFY), Ok(()));
        assert_eq!(
            refusal(callers.authenticate(Some(&peer("spiffe://corp/ns/shop/sa/other")), None)),
            unauthenticated(Unauthenticated::UnknownIdentity)
        );
        assert_eq!(
            refusal(callers.authenticate(None, Some("Bearer checkout-token"))),
            unauthenticated(Unauthenticated::NoCertificate),
            "with mTLS the certificate decides, not a token"
        );
        assert_eq!(
            refusal(callers.authenticate(
                Some(&peer("spiffe://corp/ns/shop/sa/other")),
                Some("Bearer checkout-token")
            )),
            unauthenticated(Unauthenticated::UnknownIdentity)
        );
    }

    #[test]
    fn with_mtls_and_no_file_every_certificate_is_a_caller_allowed_everything() {
        let callers = Callers::start(&CallersSettings {
            mtls: true,
            ..CallersSettings::default()
        })
        .unwrap();
        assert!(!callers.is_open());
        let caller = callers
            .authenticate(Some(&peer("spiffe://corp/ns/a/sa/b")), None)
            .unwrap();
        assert_eq!(caller.name().as_str(), "spiffe://corp/ns/a/sa/b");
        assert!(caller.is_authenticated());
        assert_eq!(callers.authorize(&caller, VERIFY), Ok(()));
        assert_eq!(
            refusal(callers.authenticate(None, Some("Bearer checkout-token"))),
            unauthenticated(Unauthenticated::NoCertificate)
        );
    }

    #[test]
    fn a_caller_may_call_only_what_its_allow_list_grants() {
        let callers = Callers::from_file(file(), false, "/nonexistent");
        let checkout = callers
            .authenticate(None, Some("Bearer checkout-token"))
            .unwrap();
        assert_eq!(callers.authorize(&checkout, UNIFY), Ok(()));
        assert_eq!(
            callers.authorize(&checkout, VERIFY),
            Err(Refusal::NotAllowed {
                caller: CallerName(Arc::from("checkout")),
                method: VERIFY.to_owned(),
            })
        );
        let audit = callers
            .authenticate(None, Some("Bearer audit-token"))
            .unwrap();
        assert!(callers.authorize(&audit, UNIFY).is_err());
    }

    #[test]
    fn every_refusal_says_why_without_the_credential() {
        let all = [
            Unauthenticated::NoCredential,
            Unauthenticated::NotBearer,
            Unauthenticated::UnknownToken,
            Unauthenticated::NoCertificate,
            Unauthenticated::UnknownIdentity,
        ];
        let whys: std::collections::HashSet<_> = all.iter().map(|u| u.why()).collect();
        assert_eq!(whys.len(), all.len(), "each reason is told apart");
    }

    #[test]
    fn bearer_tokens_parse_with_any_case_of_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("  Bearer  abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer a b"), Some("a b"));
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token("Token abc"), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn a_start_with_a_bad_or_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callers.yaml");
        std::fs::write(&path, "callers: [{name: a, allow: []}]").unwrap();
        let settings = CallersSettings {
            file: Some(path.clone()),
            ..CallersSettings::default()
        };
        let text = Callers::start(&settings).unwrap_err().to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("could never call"), "{text}");
        let missing = CallersSettings {
            file: Some(dir.path().join("absent.yaml")),
            ..CallersSettings::default()
        };
        let text = Callers::start(&missing).unwrap_err().to_string();
        assert!(
            text.contains("cannot read") && text.contains("absent.yaml"),
            "{text}"
        );
    }

    #[test]
    fn a_change_is_acted_on_once_and_a_bad_one_keeps_the_callers_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callers.yaml");
        let callers = Callers::from_file(CallersFile::default(), false, &path);
        assert_eq!(
            refusal(callers.authenticate(None, Some("Bearer audit-token"))),
            unauthenticated(Unauthenticated::UnknownToken)
        );
        let audit_only = format!(
            "callers: [{{name: audit, token_sha256: [{}], allow: []}}]",
            hex(hash_token("audit-token"))
        );

        // Not there yet: unreadable, said once.
        assert!(matches!(callers.reload(), Reload::Unreadable(_)));
        assert_eq!(callers.reload(), Reload::Unchanged);

        std::fs::write(&path, &audit_only).unwrap();
        assert_eq!(callers.reload(), Reload::Reloaded { callers: 1 });
        assert_eq!(callers.reload(), Reload::Unchanged);
        let audit = callers
            .authenticate(None, Some("Bearer audit-token"))
            .unwrap();
        assert_eq!(audit.name().as_str(), "audit");

        std::fs::write(&path, "callers: [{name: audit, alow: []}]").unwrap();
        let Reload::Rejected(error) = callers.reload() else {
            panic!("a bad file is rejected");
        };
        assert!(error.to_string().contains("`alow`"), "{error}");
        assert_eq!(
            callers.reload(),
            Reload::Unchanged,
            "one WARN, not one per look"
        );
        assert!(
            callers
                .authenticate(None, Some("Bearer audit-token"))
                .is_ok(),
            "the callers loaded before stay"
        );

        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            callers.reload(),
            Reload::Rejected(FileError::from("the file is not UTF-8 text".to_owned()))
        );

        // Removed, then back with the same content as before: both are changes.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(callers.reload(), Reload::Unreadable(_)));
        std::fs::write(&path, &audit_only).unwrap();
        assert_eq!(callers.reload(), Reload::Reloaded { callers: 1 });

        std::fs::write(&path, "callers: []").unwrap();
        assert_eq!(callers.reload(), Reload::Reloaded { callers: 0 });
        assert_eq!(
            refusal(callers.authenticate(None, Some("Bearer audit-token"))),
            unauthenticated(Unauthenticated::UnknownToken),
            "a removed caller is refused"
        );
    }

    #[test]
    fn without_a_file_there_is_nothing_to_reload() {
        assert_eq!(Callers::open().reload(), Reload::Unchanged);
        assert_eq!(Callers::certificates().reload(), Reload::Unchanged);
    }

    #[tokio::test]
    async fn the_file_is_polled_until_the_last_clone_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callers.yaml");
        std::fs::write(&path, "callers: []").unwrap();
        let callers = Callers::start(&CallersSettings {
            file: Some(path.clone()),
            mtls: false,
            reload_interval: Duration::from_millis(10),
        })
        .unwrap();
        let weak = Arc::downgrade(&callers.mode);
        std::fs::write(
            &path,
            format!(
                "callers: [{{name: audit, token_sha256: [{}], allow: []}}]",
                hex(hash_token("audit-token"))
            ),
        )
        .unwrap();
        let picked_up = tokio::time::timeout(Duration::from_secs(10), async {
            while callers
                .authenticate(None, Some("Bearer audit-token"))
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(picked_up.is_ok(), "the new file was never picked up");
        drop(callers);
        let released = tokio::time::timeout(Duration::from_secs(10), async {
            while weak.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(released.is_ok(), "the poller keeps the callers alive");
    }
}
