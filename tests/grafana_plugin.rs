//! The Grafana datasource plugin, built from a clean install as its README says, with its
//! unit tests and its integration test against this build of Quarry (the test starts the
//! node itself from `QUARRY_BIN`), served over HTTPS with a CA made for the test.

mod common;

use std::path::Path;
use std::process::Command;

fn run(plugin_dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let output = Command::new("npm")
        .args(args)
        .current_dir(plugin_dir)
        .env("QUARRY_BIN", env!("CARGO_BIN_EXE_quarry"))
        .env("CI", "true")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("npm {args:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("npm {}:\n{stdout}\n{stderr}", args.join(" "));
    assert!(
        output.status.success(),
        "npm {} failed:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    format!("{stdout}\n{stderr}")
}

#[test]
fn grafana_plugin_builds_and_its_tests_pass_against_a_live_node() {
    if Command::new("npm").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must build the Grafana plugin: npm is missing"
        );
        eprintln!("SKIPPED: npm is not installed, so the Grafana plugin cannot be built");
        return;
    }
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana-datasource");
    run(&plugin_dir, &["ci", "--no-audit", "--no-fund"], &[]);
    run(&plugin_dir, &["run", "typecheck"], &[]);
    run(&plugin_dir, &["run", "build"], &[]);
    assert!(plugin_dir.join("dist/module.js").exists());
    assert!(plugin_dir.join("dist/plugin.json").exists());
    let certificates = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::tls::test_certificates(certificates.path());
    let tested = run(
        &plugin_dir,
        &["test"],
        &[
            ("QUARRY_TLS_CERT", &cert),
            ("QUARRY_TLS_KEY", &key),
            ("NODE_EXTRA_CA_CERTS", &ca),
        ],
    );
    // With QUARRY_BIN set, the integration suite must have run against the node.
    assert!(!tested.contains("SKIPPED"), "{tested}");
    assert!(tested.contains("quarry.integration"), "{tested}");
}
