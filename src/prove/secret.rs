//! A client secret that can be rotated while the gateway runs.
//!
//! Kubernetes updates a mounted Secret in place: the kubelet writes the new files into a fresh
//! directory and swaps a `..data` symlink to it, so the path stays the same and its content
//! changes. The gateway reads a secret given as a file again every few seconds; the token
//! source asks for the current value each time it requests a token. A token already held stays
//! in use until it is due for a refresh or Prove refuses it (the old secret may already be
//! revoked, the token is not), so no call waits for or fails on a rotation.
//!
//! An unreadable or empty file keeps the secret read before (a broken rollout must not take the
//! gateway down with it), with one WARN until the file is readable again.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};

/// How often a secret file is read again: a rotation is in use within this long, and reading a
/// few bytes every few seconds costs nothing.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Where a rotating secret comes from (configuration builds it; `prove` never reads settings).
#[derive(Debug, Clone)]
pub struct SecretFile {
    /// The file, read through whatever symlinks lead to it.
    pub path: PathBuf,
    /// The variable that named it, for the log lines.
    pub setting: String,
    /// How often it is read again.
    pub interval: Duration,
}

/// A client secret: fixed, or read again from its file (see the module docs). Clones share it.
#[derive(Clone)]
pub struct ClientSecret(Arc<Shared>);

struct Shared {
    /// The value, with the number of times it changed: a refusal of one generation says
    /// nothing about the next.
    current: RwLock<(SecretString, u64)>,
    file: Option<SecretFile>,
    watching: std::sync::Once,
}

impl ClientSecret {
    /// A secret that never changes (given in a variable, or in tests).
    pub fn fixed(secret: SecretString) -> Self {
        Self::new(secret, None)
    }

    /// A secret read from `file` (its first value `initial`, read by configuration so that a
    /// missing file stops the start), read again while the gateway runs.
    pub fn from_file(initial: SecretString, file: SecretFile) -> Self {
        Self::new(initial, Some(file))
    }

    fn new(secret: SecretString, file: Option<SecretFile>) -> Self {
        Self(Arc::new(Shared {
            current: RwLock::new((secret, 0)),
            file,
            watching: std::sync::Once::new(),
        }))
    }

    /// The secret in force now.
    pub fn current(&self) -> SecretString {
        self.0.current.read().0.clone()
    }

    /// The secret in force now, and how many times it changed before.
    pub(crate) fn current_with_generation(&self) -> (SecretString, u64) {
        self.0.current.read().clone()
    }

    /// How many times the secret changed.
    pub(crate) fn generation(&self) -> u64 {
        self.0.current.read().1
    }

    /// Rotates the secret as a changed file would (for the token source's tests).
    #[cfg(test)]
    pub(crate) fn rotate(&self, text: &str) {
        replace(&self.0, text);
    }

    /// Starts reading the file again every interval, once however often it is called, for as
    /// long as a clone of this secret lives. Nothing for a fixed secret, or outside a runtime.
    pub(crate) fn keep_current(&self) {
        let Some(file) = self.0.file.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::downgrade(&self.0);
        self.0.watching.call_once(|| {
            runtime.spawn(follow(shared, file));
        });
    }
}

/// Takes `text` as the secret if it differs from the current one; true if it did.
fn replace(shared: &Shared, text: &str) -> bool {
    let mut current = shared.current.write();
    if current.0.expose_secret() == text {
        return false;
    }
    let generation = current.1 + 1;
    *current = (SecretString::from(text.to_owned()), generation);
    true
}

/// Reads `file` every interval until the secret is dropped; one line per change of state.
async fn follow(shared: Weak<Shared>, file: SecretFile) {
    let mut broken = false;
    loop {
        tokio::time::sleep(file.interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match read(&file) {
            Ok(text) => {
                if replace(&shared, &text) {
                    tracing::info!(
                        setting = %file.setting,
                        "the client secret file changed: the next token request uses the new secret"
                    );
                } else if broken {
                    tracing::info!(setting = %file.setting, "the client secret file is readable again");
                }
                broken = false;
            }
            Err(reason) => {
                if !broken {
                    tracing::warn!(
                        setting = %file.setting,
                        %reason,
                        "cannot use the client secret file; keeping the secret read before"
                    );
                }
                broken = true;
            }
        }
    }
}

/// The file's trimmed content; an error never quotes it. A blocking read: a few bytes of a
/// mounted file, every few seconds, on one task.
fn read(file: &SecretFile) -> Result<String, String> {
    let text = std::fs::read_to_string(&file.path).map_err(|e| e.to_string())?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the file is empty".into());
    }
    Ok(trimmed.to_owned())
}

impl From<SecretString> for ClientSecret {
    fn from(secret: SecretString) -> Self {
        Self::fixed(secret)
    }
}

impl From<String> for ClientSecret {
    fn from(secret: String) -> Self {
        Self::fixed(secret.into())
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("file", &self.0.file.as_ref().map(|f| &f.setting))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file_secret(path: PathBuf, initial: &str) -> ClientSecret {
        ClientSecret::from_file(
            initial.to_owned().into(),
            SecretFile {
                path,
                setting: "PROVE_CLIENT_SECRET_FILE".into(),
                interval: Duration::from_millis(50),
            },
        )
    }

    /// Waits (on the real clock: the file is real) for the secret to become `expected`.
    async fn until(secret: &ClientSecret, expected: &str) {
        for _ in 0..200 {
            if secret.current().expose_secret() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the secret never became {expected:?}");
    }

    #[tokio::test]
    async fn a_changed_file_replaces_the_secret_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "first\n").unwrap();
        let secret = file_secret(path.clone(), "first");
        let shared = secret.clone();
        secret.keep_current();
        secret.keep_current();
        assert_eq!(secret.generation(), 0);

        std::fs::write(&path, "second\n").unwrap();
        until(&shared, "second").await;
        assert_eq!(secret.generation(), 1, "one change, counted once");

        // Empty, then gone: the secret before stays.
        std::fs::write(&path, "  \n").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(secret.current().expose_secret(), "second");
        assert_eq!(secret.generation(), 1);

        std::fs::write(&path, "third").unwrap();
        until(&secret, "third").await;
        assert_eq!(secret.generation(), 2);
    }

    #[test]
    fn the_same_text_is_no_change_and_a_fixed_secret_never_watches() {
        let secret = ClientSecret::fixed("s".to_owned().into());
        assert!(!replace(&secret.0, "s"));
        assert!(replace(&secret.0, "t"));
        assert_eq!(secret.current_with_generation().1, 1);
        // Without a file (and outside a runtime): nothing to start, no panic.
        secret.keep_current();
    }

    #[test]
    fn debug_shows_the_setting_never_the_secret() {
        let secret = file_secret("/s".into(), "hunter2");
        let text = format!("{secret:?}");
        assert!(text.contains("PROVE_CLIENT_SECRET_FILE"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
