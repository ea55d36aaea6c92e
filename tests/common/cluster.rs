//! A cluster of `quarry` processes on 127.0.0.1 for the multi-node tests: each node with
//! its own data folder and gossip port, all sharing one index root and metastore.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{free_udp_port, TestNode};

/// Short enough that a test sees a death within seconds, long enough that a busy 2-core
/// machine running debug builds does not mistake a slow node for a dead one.
/// Every test cluster proves this to itself on `/internal/v1`.
pub const CLUSTER_SECRET: &str = "test-cluster-secret";

pub const GOSSIP: &str = "gossip:\n  interval_ms: 200\n  failure_detection_ms: 3000\n";

pub struct ClusterNode {
    pub node: TestNode,
    pub gossip_port: u16,
}

/// A node of the test cluster: `services`, its data under `dir/{node_id}`, the shared
/// index root and metastore under `dir/shared`, seeded at `seed`'s gossip port.
pub fn configure(dir: &Path, node_id: &str, services: &str, seed: Option<u16>) -> ClusterNode {
    let shared = dir.join("shared").join("indexes");
    let shared = shared.display().to_string();
    configure_with(dir, node_id, services, seed, &shared, &shared, "")
}

/// A node whose metastore and index root are the given URIs (a shared folder, an S3
/// prefix, a PostgreSQL database for the metastore), with `extra` YAML appended.
pub fn configure_with(
    dir: &Path,
    node_id: &str,
    services: &str,
    seed: Option<u16>,
    metastore_uri: &str,
    index_root: &str,
    extra: &str,
) -> ClusterNode {
    let gossip_port = free_udp_port();
    let seeds = seed.map_or(String::new(), |port| {
        format!("peer_seeds: [127.0.0.1:{port}]\n")
    });
    let config = format!(
        "node_id: {node_id}\ncluster_id: test-cluster\ncluster_secret: {CLUSTER_SECRET}\ngossip_listen_port: {gossip_port}\n{seeds}{GOSSIP}\
         enabled_services: [{services}]\nmetastore_uri: {metastore_uri}\ndefault_index_root_uri: {index_root}\n\
         indexer:\n  merge_interval_secs: 1\n{extra}"
    );
    ClusterNode {
        node: TestNode::configure(&dir.join(node_id), &[], &config),
        gossip_port,
    }
}

pub async fn live_ready_nodes(node: &TestNode) -> BTreeSet<String> {
    let (status, cluster) = node.get("/api/v1/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    cluster["live_nodes"]
        .as_array()
        .expect("live_nodes")
        .iter()
        .filter(|member| member["ready"] == json!(true))
        .map(|member| member["node_id"].as_str().unwrap().to_string())
        .collect()
}

pub async fn wait_for_members(node: &TestNode, expected: &[&str], timeout: Duration) {
    let expected: BTreeSet<String> = expected.iter().map(|id| id.to_string()).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let live = live_ready_nodes(node).await;
        if live == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} sees {live:?}, not {expected:?}; log:\n{}",
            node.endpoint,
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Prometheus counter or gauge without labels, 0 when absent.
pub async fn metric(node: &TestNode, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.endpoint))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
