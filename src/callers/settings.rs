//! Settings of caller authentication; `config` builds them from `PROVE_GATEWAY_CALLERS_FILE` and
//! `PROVE_GATEWAY_CLIENT_CA_FILE`.

use std::path::PathBuf;
use std::time::Duration;

/// How often the callers file is read again. Kubernetes updates a mounted Secret within a minute
/// or so; a few seconds more is nothing, and reading a small file is cheap.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Who may call the gateway.
#[derive(Debug, Clone)]
pub struct CallersSettings {
    /// The callers file; `None`: no file (every verified certificate is a caller with mTLS, and
    /// without mTLS the gateway runs open).
    pub file: Option<PathBuf>,
    /// Whether clients present certificates the server verified (mTLS): the identity comes
    /// from the certificate, not from a bearer token.
    pub mtls: bool,
    /// How often the file is read again to pick up changes.
    pub reload_interval: Duration,
}

impl Default for CallersSettings {
    /// Open: no file, no mTLS.
    fn default() -> Self {
        Self {
            file: None,
            mtls: false,
            reload_interval: RELOAD_INTERVAL,
        }
    }
}
