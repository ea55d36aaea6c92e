//! The control plane at work: the live node with the `control_plane` role and the lowest
//! node id reads which shards the logs of dead writers on object storage hold, plans who
//! indexes them, and gossips the plan with a version. Two nodes acting at once (during a
//! partition) are harmless: the plan decides only who works, and the checkpoint check at
//! publish decides what counts.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quarry_config::Service;
use tracing::{info, warn};

use crate::indexing_plan::{assign_shards, IndexingPlan, PlanIndexer, ShardKey};
use crate::{Cluster, ClusterMember};

/// The gossip key the acting control plane publishes its plan under.
pub const INDEXING_PLAN_KEY: &str = "indexing_plan";

/// The gossip key under which an indexer publishes how many shards of its own log it
/// indexes: the load the plan balances orphans against.
pub const OWN_SHARDS_KEY: &str = "indexer_own_shards";

/// The version of the plan this node last published or followed, for `/metrics`.
pub static PLAN_VERSION: AtomicU64 = AtomicU64::new(0);

/// Shards of dead writers' logs the acting control plane sees: drained ones leave once
/// their objects are deleted, so a count that stays up means work that is not getting done.
pub static ORPHAN_SHARDS: AtomicU64 = AtomicU64::new(0);

/// The node whose plan counts: the live, ready control plane with the lowest node id.
pub fn acting_control_plane(cluster: &Cluster) -> Option<ClusterMember> {
    cluster
        .ready_members_with(Service::ControlPlane)
        .into_iter()
        .next()
}

/// The plan the acting control plane gossips now, if any.
pub fn current_plan(cluster: &Cluster) -> Option<IndexingPlan> {
    let acting = acting_control_plane(cluster)?;
    let value = cluster.member_key(&acting.node_id, INDEXING_PLAN_KEY)?;
    match serde_json::from_str(&value) {
        Ok(plan) => Some(plan),
        Err(error) => {
            warn!(
                node_id = acting.node_id,
                "unreadable indexing plan: {error}"
            );
            None
        }
    }
}

/// What the control plane needs of the write-ahead logs on object storage.
#[async_trait]
pub trait LogDirectory: Send + Sync + 'static {
    /// The shards held by the logs of writers (`{node_id}.{generation}`) other than
    /// `live_writers`: the orphans. The logs of live writers are not read.
    async fn orphan_shards(
        &self,
        live_writers: &BTreeSet<String>,
    ) -> Result<BTreeSet<ShardKey>, String>;
}

/// Runs the control plane on this node until the task is dropped: acts while this node is
/// the acting control plane, idles otherwise.
pub async fn run_control_plane(cluster: Cluster, logs: Arc<dyn LogDirectory>, interval: Duration) {
    let self_node_id = cluster.self_member().node_id;
    let mut plan = IndexingPlan::default();
    loop {
        tokio::time::sleep(interval).await;
        if acting_control_plane(&cluster).is_none_or(|acting| acting.node_id != self_node_id) {
            continue;
        }
        // Taking over from another control plane: continue its versions.
        if plan.version == 0 {
            if let Some(gossiped) = cluster
                .live_members()
                .iter()
                .filter_map(|member| cluster.member_key(&member.node_id, INDEXING_PLAN_KEY))
                .filter_map(|value| serde_json::from_str::<IndexingPlan>(&value).ok())
                .max_by_key(|plan| plan.version)
            {
                plan = gossiped;
            }
        }
        let indexers: Vec<PlanIndexer> = cluster
            .ready_members_with(Service::Indexer)
            .into_iter()
            .map(|member| PlanIndexer {
                own_shards: cluster
                    .member_key(&member.node_id, OWN_SHARDS_KEY)
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0),
                node_id: member.node_id,
                generation: member.generation,
                capacity: member.indexing_capacity,
            })
            .collect();
        let live_writers: BTreeSet<String> = indexers
            .iter()
            .map(|indexer| format!("{}.{}", indexer.node_id, indexer.generation))
            .collect();
        let shards = match logs.orphan_shards(&live_writers).await {
            Ok(shards) => shards,
            Err(error) => {
                warn!("control plane cannot read the write-ahead logs: {error}");
                continue;
            }
        };
        let assignments = assign_shards(&shards, &indexers, &plan);
        if assignments != plan.assignments || plan.version == 0 {
            plan = IndexingPlan {
                version: plan.version + 1,
                assignments,
            };
            info!(
                version = plan.version,
                orphan_shards = plan.assignments.len(),
                "new indexing plan"
            );
            match serde_json::to_string(&plan) {
                Ok(value) => cluster.set_self_key(INDEXING_PLAN_KEY, &value),
                Err(error) => warn!("cannot encode the indexing plan: {error}"),
            }
        }
        PLAN_VERSION.store(plan.version, Ordering::Relaxed);
        ORPHAN_SHARDS.store(shards.len() as u64, Ordering::Relaxed);
    }
}
