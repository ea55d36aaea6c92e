//! What the rest of the node sees of the cluster: plain data, serialisable as is for
//! `GET /api/v1/cluster`, with nothing of chitchat in it.

use quarry_config::Service;
use serde::{Deserialize, Serialize};

/// One node, as of the last gossip heard from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMember {
    pub node_id: String,
    /// Grows across restarts: the same node id with a higher generation is a restarted node.
    pub generation: u64,
    /// `host:port` for REST and `/internal/v1`; empty until the node's state has arrived.
    pub rest_address: String,
    /// Empty for a node that does not gossip (see `Cluster::single_node`).
    pub gossip_address: String,
    pub enabled_services: Vec<Service>,
    /// The node said it serves requests, and all of its state has arrived. Always false for a
    /// dead node.
    pub ready: bool,
    pub indexing_capacity: u32,
}

impl ClusterMember {
    pub fn runs(&self, service: Service) -> bool {
        self.enabled_services.contains(&service)
    }
}

/// The state `/api/v1/cluster` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterSnapshot {
    pub cluster_id: String,
    pub self_node_id: String,
    /// Sorted by node id; one entry per node id (its newest generation), self included.
    pub live_nodes: Vec<ClusterMember>,
    /// Sorted by node id then generation. A restarted node's previous generations are here
    /// while chitchat remembers them.
    pub dead_nodes: Vec<ClusterMember>,
    /// The live nodes that are ready; what single-node Quarry reported, kept for its readers.
    pub ready_nodes: Vec<ClusterMember>,
}
