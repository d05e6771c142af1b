//! Who calls the gateway: caller identities (client certificates, bearer tokens), the callers
//! file and its allow lists, and the sessions and idempotency keys each caller owns.
//!
//! This module decides; it knows neither gRPC nor Prove. The gRPC layer asks it whether a call
//! may proceed and turns its answer into a status.

use std::sync::Arc;

pub mod identity;

/// The identity a verified client certificate proves (its SPIFFE URI SAN, else its DNS SAN, else
/// its CN). The server's TLS acceptor finds it once per connection and puts it in the
/// extensions of every request that arrives on that connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity(pub Arc<str>);

/// The caller a call was authenticated as: its name in the callers file, or the certificate
/// identity when mTLS runs without a callers file. The access layer puts it in the request's
/// extensions; sessions and idempotency keys belong to it. When the gateway runs open (neither
/// mTLS nor a callers file) every call is [`CallerName::anonymous`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerName(pub Arc<str>);

impl CallerName {
    /// The one caller of a gateway that runs open.
    pub fn anonymous() -> Self {
        Self(Arc::from("anonymous"))
    }

    /// The name, for logs, spans and metric labels.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub mod allow;
pub mod file;
pub mod registry;
pub mod settings;

pub use registry::{Caller, Callers, Refusal, Unauthenticated};
pub use settings::CallersSettings;
