//! The official Elasticsearch Python clients (a pinned 8.x and 9.x) against a real node
//! serving HTTPS with authentication on, carrying an API key and trusting the test CA: `tests/es-python/run.sh` installs each into
//! its own venv and runs the same suite.

mod common;

use std::process::Command;

use common::{tls, TestNode};

#[tokio::test]
async fn official_python_clients_work_unmodified() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the Elasticsearch Python clients: python3 is missing"
        );
        eprintln!(
            "SKIPPED: python3 is not installed, so the Elasticsearch Python clients cannot run"
        );
        return;
    }
    // As against Elasticsearch 8: HTTPS with the cluster's CA, and an API key.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls::test_certificates(dir.path());
    let (id, secret) = ("es-clients", "a-secret-for-the-python-clients-0123456789");
    let bootstrap = format!("{id}:{secret}");
    let mut node = TestNode::configure(
        &dir.path().join("node"),
        &[("QUARRY_BOOTSTRAP_API_KEY", bootstrap.as_str())],
        "node_id: es-clients\n",
    );
    node.serve_tls(&tls::tls_yaml(&ca, &cert, &key));
    node.spawn_unchecked();
    tls::wait_ready_https(&tls::https_client(&ca), &node).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/es-python/run.sh");
    let endpoint = node.endpoint.clone();
    let api_key = quarry_common::api_keys::encode_credential(id, secret);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .arg(&endpoint)
            .env("QUARRY_API_KEY", api_key)
            .env("QUARRY_CA_CERT", ca)
            .output()
            .expect("run tests/es-python/run.sh")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the Python client suite failed:\n{stdout}\n{stderr}\nnode log:\n{}",
        node.log()
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
