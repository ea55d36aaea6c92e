//! TLS on the REST port (`rest.tls`): rustls with the node's certificate chain and key
//! from PEM files. Handshakes run off the accept loop, each bounded in time, so that a slow
//! or hostile client cannot hold up the others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use quarry_config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of `rest.tls`; errors name the file at fault.
pub(crate) fn server_config(tls: &TlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_path = tls.cert_path.display();
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_path)
        .with_context(|| format!("cannot read rest.tls.cert_path `{cert_path}`"))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!("rest.tls.cert_path `{cert_path}` is not a PEM certificate chain")
        })?;
    if certificates.is_empty() {
        anyhow::bail!("rest.tls.cert_path `{cert_path}` holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_path).with_context(|| {
        format!(
            "rest.tls.key_path `{}` is not a readable PEM private key",
            tls.key_path.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("the TLS certificate and key do not go together")?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA of `rest.tls.ca_path`, read once at start so that a bad file stops the node.
pub(crate) fn read_ca(tls: &TlsConfig) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = &tls.ca_path else {
        return Ok(None);
    };
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read rest.tls.ca_path `{}`", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("rest.tls.ca_path `{}` is not PEM", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("rest.tls.ca_path `{}` holds no certificate", path.display());
    }
    Ok(Some(pem))
}

/// Hands `axum::serve` connections whose handshake succeeded.
pub(crate) struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (sender, connections) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, typically: wait instead of spinning.
                        warn!("cannot accept a connection: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => debug!(%peer, "TLS handshake failed: {error}"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            connections,
            local_addr,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accepting task is gone only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for crate::auth::ClientAddress
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        crate::auth::ClientAddress(*stream.remote_addr())
    }
}
