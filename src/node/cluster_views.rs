//! What the services see of the cluster, each through the narrow interface its crate
//! defines: the searchers a root fans out to, where the metastore node is, and which node
//! does an index's background work.

use std::sync::Arc;

use quarry_common::metastore::MetastoreLocator;
use quarry_config::Service;
use quarry_control_plane::Cluster;
use quarry_indexer::IndexOwnership;
use quarry_searcher::{rendezvous_order, SearcherNode, SearcherPool};

pub(crate) struct ClusterSearcherPool {
    pub cluster: Cluster,
    pub self_node_id: String,
}

impl SearcherPool for ClusterSearcherPool {
    fn self_node_id(&self) -> String {
        self.self_node_id.clone()
    }

    fn searchers(&self) -> Vec<SearcherNode> {
        self.cluster
            .ready_members_with(Service::Searcher)
            .into_iter()
            .map(|member| SearcherNode {
                node_id: member.node_id,
                rest_address: member.rest_address,
            })
            .collect()
    }
}

/// The REST address of the live, ready node that serves the file-backed metastore.
pub(crate) fn metastore_locator(cluster: Cluster) -> MetastoreLocator {
    Arc::new(move || {
        cluster
            .ready_members_with(Service::Metastore)
            .into_iter()
            .next()
            .map(|member| member.rest_address)
    })
}

/// An index's background work of `service` goes to the first live node with that service
/// in the index's rendezvous order: the same answer on every node with the same view, and
/// only the indexes of a node that joins or leaves move. During a membership change two
/// nodes may both think they own an index for a moment; the metastore's checks (a merge
/// publishes only if its inputs are still published) keep that harmless.
pub(crate) fn index_ownership(
    cluster: Cluster,
    self_node_id: String,
    service: Service,
) -> IndexOwnership {
    Arc::new(move |index_uid| {
        let nodes: Vec<SearcherNode> = cluster
            .live_members()
            .into_iter()
            .filter(|member| member.enabled_services.contains(&service))
            .map(|member| SearcherNode {
                node_id: member.node_id,
                rest_address: member.rest_address,
            })
            .collect();
        match rendezvous_order(&index_uid.to_string(), &nodes).first() {
            Some(owner) => owner.node_id == self_node_id,
            // Not even this node is listed yet: it is starting alone.
            None => true,
        }
    })
}
