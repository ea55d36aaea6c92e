//! Cluster membership and, later, the indexing plan. For now a cluster is the node itself:
//! this is the seam where chitchat gossip will add peers.

use std::net::SocketAddr;

use quarry_config::{NodeConfig, Service};
use serde::Serialize;

/// One node as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterMember {
    pub node_id: String,
    pub rest_address: String,
    pub enabled_services: Vec<Service>,
    /// Seconds since the epoch.
    pub started_at: i64,
}

/// The state `/api/v1/cluster` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterSnapshot {
    pub cluster_id: String,
    pub self_node_id: String,
    pub ready_nodes: Vec<ClusterMember>,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    cluster_id: String,
    self_member: ClusterMember,
}

impl Cluster {
    /// `listen_addr` is where the REST server actually listens (the configured port may be 0).
    pub fn single_node(config: &NodeConfig, listen_addr: SocketAddr, started_at: i64) -> Cluster {
        let host = config
            .advertise_address
            .clone()
            .unwrap_or_else(|| listen_addr.ip().to_string());
        Cluster {
            cluster_id: config.cluster_id.clone(),
            self_member: ClusterMember {
                node_id: config.node_id.clone(),
                rest_address: format!("{host}:{}", listen_addr.port()),
                enabled_services: config.enabled_services.clone(),
                started_at,
            },
        }
    }

    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            cluster_id: self.cluster_id.clone(),
            self_node_id: self.self_member.node_id.clone(),
            ready_nodes: vec![self.self_member.clone()],
        }
    }

    /// Nodes running `service`, e.g. the searchers a root can fan out to.
    pub fn members_with(&self, service: Service) -> Vec<ClusterMember> {
        std::iter::once(&self.self_member)
            .filter(|member| member.enabled_services.contains(&service))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_cluster_reports_itself() {
        let config = NodeConfig {
            node_id: "node-a".to_string(),
            advertise_address: Some("10.0.0.5".to_string()),
            enabled_services: vec![Service::Searcher, Service::Metastore],
            ..NodeConfig::default()
        };
        let cluster = Cluster::single_node(&config, "127.0.0.1:7399".parse().unwrap(), 42);
        let snapshot = cluster.snapshot();
        assert_eq!(snapshot.self_node_id, "node-a");
        assert_eq!(snapshot.ready_nodes[0].rest_address, "10.0.0.5:7399");
        assert_eq!(cluster.members_with(Service::Searcher).len(), 1);
        assert!(cluster.members_with(Service::Indexer).is_empty());
    }
}
