//! The fan-out of a search: each split is placed on a searcher node by rendezvous
//! hashing, one leaf request goes to each node per index, splits of a node that fails or
//! hangs are retried on the next node in their order, and the documents of the final page
//! are fetched from the nodes that searched them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use quarry_common::metastore::Split;
use tracing::warn;

use super::{Plan, SearchService, MAX_LEAF_ATTEMPTS};
use crate::fetch_docs::FetchedDoc;
use crate::leaf::{LeafResult, PartialHit};
use crate::leaf_client::{LEAF_RETRIES, LOCAL_NODE_ID};
use crate::placer::{rendezvous_order, SearcherNode};
use crate::protocol::{self, FetchDocsRequest, LeafSearchRequest, SnippetSpec, SplitTarget};

/// The splits of one index that one attempt sends to one node.
struct LeafGroup {
    node: SearcherNode,
    plan: Arc<Plan>,
    split_ords: Vec<usize>,
    /// Whether any of them has another node to try after this one.
    has_fallback: bool,
}

impl SearchService {
    /// The nodes splits are placed on: the pool's live searchers, or this node alone when
    /// the pool knows none (a single node, or one that lost sight of its peers).
    fn placement_nodes(&self) -> Vec<SearcherNode> {
        let nodes = self.pool.searchers();
        if nodes.is_empty() {
            vec![SearcherNode {
                node_id: self.pool.self_node_id(),
                rest_address: String::new(),
            }]
        } else {
            nodes
        }
    }

    /// First phase. Each split goes to the first node of its rendezvous order, one request
    /// per node and index; the splits of a node that fails or runs out of time are retried
    /// on the next node in their own order. Returns each split's result and the node that
    /// searched it, which the fetch phase asks first.
    pub(super) async fn search_leaves(
        &self,
        targets: &[(Arc<Plan>, Split)],
        limit: usize,
        deadline: tokio::time::Instant,
        timeout: std::time::Duration,
    ) -> (Vec<Result<LeafResult, String>>, Vec<Vec<SearcherNode>>) {
        let nodes = self.placement_nodes();
        let self_node_id = self.pool.self_node_id();
        let candidates: Vec<Vec<SearcherNode>> = targets
            .iter()
            .map(|(_, split)| {
                rendezvous_order(split.split_metadata.split_id.as_str(), &nodes)
                    .into_iter()
                    .take(MAX_LEAF_ATTEMPTS)
                    .cloned()
                    .collect()
            })
            .collect();
        let timed_out = |split: &Split| {
            format!(
                "split {}: timed out after {} ms",
                split.split_metadata.split_id,
                timeout.as_millis()
            )
        };
        let mut results: Vec<Result<LeafResult, String>> = targets
            .iter()
            .map(|(_, split)| Err(timed_out(split)))
            .collect();
        let mut searched_by = vec![0; targets.len()];
        let mut pending: Vec<usize> = (0..targets.len()).collect();
        for attempt in 0..MAX_LEAF_ATTEMPTS {
            pending.retain(|split_ord| candidates[*split_ord].len() > attempt);
            let now = tokio::time::Instant::now();
            if pending.is_empty() || now >= deadline {
                break;
            }
            if attempt > 0 {
                LEAF_RETRIES.fetch_add(pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            // A node that hangs must leave time to retry its splits elsewhere.
            let remaining = deadline - now;
            let mut groups: BTreeMap<(String, String), LeafGroup> = BTreeMap::new();
            for &split_ord in &pending {
                let node = candidates[split_ord][attempt].clone();
                let plan = targets[split_ord].0.clone();
                let has_fallback = candidates[split_ord].len() > attempt + 1;
                let group = groups
                    .entry((node.node_id.clone(), plan.index_uid.to_string()))
                    .or_insert_with(|| LeafGroup {
                        node,
                        plan,
                        split_ords: Vec::new(),
                        has_fallback: false,
                    });
                group.split_ords.push(split_ord);
                group.has_fallback |= has_fallback;
            }
            let attempts = groups.into_values().map(
                |LeafGroup {
                     node,
                     plan,
                     split_ords,
                     has_fallback,
                 }| {
                    let budget = if has_fallback {
                        remaining / 2
                    } else {
                        remaining
                    };
                    let request = Arc::new(LeafSearchRequest {
                        index_uid: plan.index_uid.clone(),
                        index_config: plan.index_config.clone(),
                        query_ast: plan.query_ast.clone(),
                        sort: plan.sort.clone(),
                        aggs: plan.aggs.clone(),
                        cursor: plan.cursor.clone(),
                        limit,
                        timeout_ms: budget.as_millis() as u64,
                        splits: split_ords
                            .iter()
                            .map(|split_ord| {
                                let metadata = &targets[*split_ord].1.split_metadata;
                                SplitTarget {
                                    split_ord: *split_ord,
                                    split_id: metadata.split_id.clone(),
                                    footer_offsets: metadata.footer_offsets.clone(),
                                }
                            })
                            .collect(),
                    });
                    let is_local = node.node_id == self_node_id;
                    async move {
                        let call = async {
                            if is_local {
                                return Ok(self.leaf.search(request.clone()).await);
                            }
                            let body = protocol::encode_request(&*request)
                                .map_err(|error| error.to_string())?;
                            let response = self.client.leaf_search(&node, body).await?;
                            if response.results.len() != split_ords.len() {
                                return Err(format!(
                                    "node {} answered {} results for {} splits",
                                    node.node_id,
                                    response.results.len(),
                                    split_ords.len()
                                ));
                            }
                            Ok(response.results)
                        };
                        // The leaf bounds each split by the budget; this bounds a node that
                        // does not answer at all.
                        let grace = std::time::Duration::from_millis(200);
                        let outcome = tokio::time::timeout(budget + grace, call)
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!(
                                    "node {}: no answer within {} ms",
                                    node.node_id,
                                    budget.as_millis()
                                ))
                            });
                        (node, split_ords, outcome, attempt)
                    }
                },
            );
            let mut still_pending = Vec::new();
            for (node, split_ords, outcome, attempt) in join_all(attempts).await {
                match outcome {
                    Ok(split_results) => {
                        for (split_ord, result) in split_ords.into_iter().zip(split_results) {
                            if result.is_err() {
                                still_pending.push(split_ord);
                            } else {
                                searched_by[split_ord] = attempt;
                            }
                            results[split_ord] = result;
                        }
                    }
                    Err(error) => {
                        warn!("leaf search on node {} failed: {error}", node.node_id);
                        for split_ord in split_ords {
                            results[split_ord] = Err(format!(
                                "split {}: {error}",
                                targets[split_ord].1.split_metadata.split_id
                            ));
                            still_pending.push(split_ord);
                        }
                    }
                }
            }
            pending = still_pending;
        }
        // The fetch phase asks the node that searched a split first, then the ones after it.
        let searched_on = candidates
            .into_iter()
            .zip(searched_by)
            .map(|(nodes, attempt)| nodes.into_iter().skip(attempt).collect())
            .collect();
        (results, searched_on)
    }

    /// Second phase: documents of the page only, fetched per split in parallel (from the
    /// nodes that searched them, then the next ones in their order), returned in page
    /// order.
    pub(super) async fn fetch_page(
        &self,
        targets: &[(Arc<Plan>, Split)],
        page: &[PartialHit],
        candidates: &[Vec<SearcherNode>],
        deadline: tokio::time::Instant,
        errors: &mut Vec<String>,
    ) -> Vec<Option<FetchedDoc>> {
        // The page is known: finishing it is worth a little more than the search's own
        // deadline, but a node that hangs must not hold the answer forever.
        let budget = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(std::time::Duration::from_secs(2));
        let mut by_split: BTreeMap<usize, Vec<(usize, tantivy::DocAddress)>> = BTreeMap::new();
        for (position, hit) in page.iter().enumerate() {
            by_split
                .entry(hit.split_ord)
                .or_default()
                .push((position, hit.address));
        }
        let self_node_id = self.pool.self_node_id();
        let fetches = by_split.into_iter().map(|(split_ord, positioned)| {
            let (plan, split) = &targets[split_ord];
            let snippets = (!plan.snippet_fields.is_empty()).then(|| SnippetSpec {
                query_ast: plan.query_ast.clone(),
                fields: plan
                    .snippet_fields
                    .iter()
                    .map(|(name, field)| (name.clone(), field.field_id()))
                    .collect(),
                highlight: plan.highlight.clone(),
            });
            let request = FetchDocsRequest {
                index_uid: plan.index_uid.clone(),
                index_config: plan.index_config.clone(),
                split: SplitTarget {
                    split_ord,
                    split_id: split.split_metadata.split_id.clone(),
                    footer_offsets: split.split_metadata.footer_offsets.clone(),
                },
                addresses: positioned.iter().map(|(_, address)| *address).collect(),
                snippets,
            };
            let nodes = &candidates[split_ord];
            let self_node_id = self_node_id.as_str();
            async move {
                let mut last_error = String::from("no searcher node is available");
                for node in nodes {
                    let call = async {
                        if node.node_id == self_node_id || node.node_id == LOCAL_NODE_ID {
                            return self.leaf.fetch_docs(request.clone()).await;
                        }
                        let body = protocol::encode_request(&request)
                            .map_err(|error| error.to_string())?;
                        self.client.fetch_docs(node, body).await
                    };
                    let docs = tokio::time::timeout(budget, call)
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!(
                                "node {}: no answer within {} ms",
                                node.node_id,
                                budget.as_millis()
                            ))
                        });
                    match docs {
                        Ok(docs) if docs.len() == positioned.len() => {
                            return (positioned, Ok(docs))
                        }
                        Ok(docs) => {
                            last_error = format!(
                                "node {} returned {} documents for {}",
                                node.node_id,
                                docs.len(),
                                positioned.len()
                            )
                        }
                        Err(error) => last_error = error,
                    }
                }
                (positioned, Err(last_error))
            }
        });
        let mut slots: Vec<Option<FetchedDoc>> = (0..page.len()).map(|_| None).collect();
        for (positioned, docs) in join_all(fetches).await {
            match docs {
                Ok(docs) => {
                    for ((position, _), doc) in positioned.into_iter().zip(docs) {
                        slots[position] = Some(doc);
                    }
                }
                Err(error) => errors.push(format!("fetching documents failed: {error}")),
            }
        }
        slots
    }
}
