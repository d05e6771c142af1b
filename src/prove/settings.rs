//! Where Prove calls go and with which credentials.

use std::net::SocketAddr;

use url::Url;

use super::secret::ClientSecret;

/// One OAuth client-credentials pair (one Prove product project).
#[derive(Clone)]
pub struct Credentials {
    /// The OAuth client ID. Not secret, but not logged either.
    pub client_id: String,
    /// The OAuth client secret, fixed or read again from its file when it rotates.
    pub client_secret: ClientSecret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// Where Prove calls go.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The embedded simulator, started with the gateway on this address.
    Simulator {
        /// Where the simulator listens.
        listen: SocketAddr,
    },
    /// A Prove API host with one credential pair per product.
    Prove {
        /// Base URL, without `/v3`; the token endpoint is `{base}/token`.
        base_url: Url,
        /// Credentials of the Unified Authentication project.
        unify: Credentials,
        /// Credentials of the Verified Users project.
        verify: Credentials,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_credentials_hides_the_secret() {
        let creds = Credentials {
            client_id: "id".into(),
            client_secret: "hunter2".to_owned().into(),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
