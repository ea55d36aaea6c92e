//! How a node calls another node's REST port (`/internal/v1`, forwarded scrolls): with the
//! cluster secret, and over TLS when the cluster's REST ports use it, trusting only the
//! cluster's own CA.

use crate::cluster_secret::client_headers;

/// The transport every node-to-node HTTP client of a node shares.
#[derive(Clone, Debug, Default)]
pub struct NodeTransport {
    secret: Option<String>,
    tls: bool,
    /// PEM of the CA that signs the nodes' certificates; without it, the platform's roots.
    tls_ca_pem: Option<Vec<u8>>,
}

impl NodeTransport {
    pub fn new(secret: Option<&str>, tls: bool, tls_ca_pem: Option<Vec<u8>>) -> NodeTransport {
        NodeTransport {
            secret: secret.map(str::to_string),
            tls,
            tls_ca_pem,
        }
    }

    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The URL of `path` on the node at `address` (`host:port`).
    pub fn url(&self, address: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{address}{path}")
    }

    /// A client builder that sends the secret and, with TLS, trusts the cluster's CA only.
    /// A CA that cannot be read was refused when the node started, so it is skipped here.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder =
            reqwest::Client::builder().default_headers(client_headers(self.secret.as_deref()));
        match self
            .tls_ca_pem
            .as_deref()
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok())
        {
            Some(certificates) => builder.tls_certs_only(certificates),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_or_tls_urls() {
        assert_eq!(
            NodeTransport::default().url("10.0.0.1:7280", "/internal/v1/leaf_search"),
            "http://10.0.0.1:7280/internal/v1/leaf_search"
        );
        let tls = NodeTransport::new(Some("s"), true, Some(b"not a pem".to_vec()));
        assert_eq!(tls.url("h:1", "/x"), "https://h:1/x");
        assert_eq!(tls.secret(), Some("s"));
        // An unreadable CA builds a client that trusts nothing extra, not a panic.
        assert!(tls.client_builder().build().is_ok());
    }
}
