//! What the gossip tests share. Every node binds port 0 on 127.0.0.1 and advertises the port it
//! got, so tests run in parallel without port clashes. Gossip runs every 100 ms and a silent
//! node is dead after 2 s, so each test settles in a few seconds; each is bounded by a timeout.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use quarry_config::Service;
use quarry_control_plane::{Cluster, ClusterConfig, ClusterMember};

pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(100);
pub const FAILURE_DETECTION: Duration = Duration::from_secs(2);
pub const POLL: Duration = Duration::from_millis(50);
pub const CONVERGENCE: Duration = Duration::from_secs(10);
pub const TEST_BOUND: Duration = Duration::from_secs(25);

pub fn config(
    cluster_id: &str,
    node_id: &str,
    services: &[Service],
    seeds: &[String],
) -> ClusterConfig {
    ClusterConfig {
        cluster_id: cluster_id.to_string(),
        node_id: node_id.to_string(),
        generation: 1,
        gossip_listen_addr: ([127, 0, 0, 1], 0).into(),
        gossip_advertise_addr: ([127, 0, 0, 1], 0).into(),
        rest_advertise_addr: format!("{node_id}.example:7280"),
        enabled_services: services.to_vec(),
        peer_seeds: seeds.to_vec(),
        indexing_capacity: 4,
        gossip_interval: GOSSIP_INTERVAL,
        failure_detection: FAILURE_DETECTION,
        // Long enough that a dead node stays listed for the whole test.
        dead_node_grace_period: Duration::from_secs(60),
        gossip_secret: None,
    }
}

/// Joins and says it is ready.
pub async fn join_with(config: ClusterConfig) -> Cluster {
    let cluster = Cluster::join(config).await.unwrap();
    cluster.set_ready(true);
    cluster
}

pub async fn join(
    cluster_id: &str,
    node_id: &str,
    services: &[Service],
    seeds: &[String],
) -> Cluster {
    join_with(config(cluster_id, node_id, services, seeds)).await
}

pub fn seed(cluster: &Cluster) -> Vec<String> {
    vec![cluster.self_member().gossip_address]
}

pub fn node_ids(members: &[ClusterMember]) -> Vec<String> {
    members
        .iter()
        .map(|member| member.node_id.clone())
        .collect()
}

pub fn live_ids(cluster: &Cluster) -> Vec<String> {
    node_ids(&cluster.live_members())
}

/// Polls `condition` until it holds; panics naming `what` past `within`. Returns the time it took.
pub async fn wait_until(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if condition() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}

pub async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound");
}

pub fn all_ready(cluster: &Cluster, expected: &[&str]) -> bool {
    let live = cluster.live_members();
    node_ids(&live) == expected && live.iter().all(|member| member.ready)
}
