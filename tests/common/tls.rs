//! TLS for tests: a CA and a node certificate for 127.0.0.1 made with `openssl` at test
//! time, and an HTTPS client that trusts that CA alone.

use std::time::{Duration, Instant};

use super::TestNode;

/// A CA and a certificate for 127.0.0.1 that it signed, made with openssl for the test.
pub fn test_certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed to test TLS");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=quarry test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let mut request = vec![
        "req",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
    ];
    request.extend(ec);
    openssl(&request);
    std::fs::write(
        dir.join("node.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "node.pem",
        "-extfile",
        "node.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("node.pem"),
        dir.join("node.key"),
    )
}

pub fn tls_yaml(ca: &std::path::Path, cert: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "  tls:\n    cert_path: {}\n    key_path: {}\n    ca_path: {}\n",
        cert.display(),
        key.display(),
        ca.display()
    )
}

/// An HTTPS client that trusts the test CA only.
pub fn https_client(ca: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap()
}

pub async fn wait_ready_https(client: &reqwest::Client, node: &TestNode) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client
            .get(format!("{}/health/readyz", node.endpoint))
            .send()
            .await
        {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node not ready over TLS; log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
