//! How a root reaches leaves on other nodes: which searchers are live (the node's
//! membership view, behind a trait so the searcher does not depend on the control plane)
//! and the HTTP calls to their `/internal/v1` endpoints.

use quarry_common::node_transport::NodeTransport;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::fetch_docs::FetchedDoc;
use crate::placer::SearcherNode;
use crate::protocol::{self, LeafSearchResponse};

/// Leaf searches retried on another node after a node failed or timed out.
pub static LEAF_RETRIES: AtomicU64 = AtomicU64::new(0);
/// Leaf and fetch requests this node sent to other nodes, and how many failed.
pub static REMOTE_LEAF_REQUESTS: AtomicU64 = AtomicU64::new(0);
pub static REMOTE_LEAF_FAILURES: AtomicU64 = AtomicU64::new(0);

/// The searcher nodes a root may fan out to.
pub trait SearcherPool: Send + Sync {
    /// This node's id: splits placed on it are searched in-process.
    fn self_node_id(&self) -> String;
    /// Live and ready nodes running the searcher service, this one included when it is one.
    fn searchers(&self) -> Vec<SearcherNode>;
}

/// A pool of one: the node itself. Single-node setups and unit tests use it.
pub struct LocalSearcherPool;

pub(crate) const LOCAL_NODE_ID: &str = "_local";

impl SearcherPool for LocalSearcherPool {
    fn self_node_id(&self) -> String {
        LOCAL_NODE_ID.to_string()
    }

    fn searchers(&self) -> Vec<SearcherNode> {
        Vec::new()
    }
}

#[derive(Clone)]
pub(crate) struct LeafClient {
    http: reqwest::Client,
    transport: NodeTransport,
}

impl LeafClient {
    pub(crate) fn new(transport: &NodeTransport) -> LeafClient {
        LeafClient {
            transport: transport.clone(),
            http: transport
                .client_builder()
                .connect_timeout(Duration::from_secs(2))
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
        }
    }

    async fn post(
        &self,
        node: &SearcherNode,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        REMOTE_LEAF_REQUESTS.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let response = self
                .http
                .post(self.transport.url(&node.rest_address, path))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|error| format!("node {}: {error}", node.node_id))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|error| format!("node {}: reading the answer: {error}", node.node_id))?;
            if !status.is_success() {
                return Err(format!(
                    "node {} answered {status}: {}",
                    node.node_id,
                    String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
                ));
            }
            Ok(bytes.to_vec())
        }
        .await;
        if result.is_err() {
            REMOTE_LEAF_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    pub(crate) async fn leaf_search(
        &self,
        node: &SearcherNode,
        body: Vec<u8>,
    ) -> Result<LeafSearchResponse, String> {
        let bytes = self.post(node, "/internal/v1/leaf_search", body).await?;
        protocol::off_executor_if_large(bytes, protocol::decode_leaf_response)
            .await
            .map_err(|error| format!("node {}: {error}", node.node_id))
    }

    pub(crate) async fn fetch_docs(
        &self,
        node: &SearcherNode,
        body: Vec<u8>,
    ) -> Result<Vec<FetchedDoc>, String> {
        let bytes = self.post(node, "/internal/v1/fetch_docs", body).await?;
        protocol::decode_fetch_response(&bytes)
            .map(|response| response.docs)
            .map_err(|error| format!("node {}: {error}", node.node_id))
    }
}
