//! The indexing plan: which indexer runs the pipeline of which shard of the write-ahead
//! logs on object storage. A shard whose writer lives is indexed by its writer, which needs
//! no plan; the plan places the shards nobody writes any more (a dead node's, or a restarted
//! node's earlier generation) on live indexers, balanced by capacity. It is a pure function
//! of what the control plane sees, so it is tested as a table.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A shard of an index's log: `index` as it names the log's folder (`{index_id}_{ULID}`),
/// `shard_id` as `{node_id}.{generation}` of its writer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardKey {
    pub index: String,
    pub shard_id: String,
}

impl ShardKey {
    /// The writer of the shard: `(node_id, generation)`; `None` for a name that is not a
    /// shard id.
    pub fn writer(&self) -> Option<(&str, u64)> {
        let (node_id, generation) = self.shard_id.rsplit_once('.')?;
        Some((node_id, generation.parse().ok()?))
    }
}

/// The plan the acting control plane gossips, with a version that grows with each change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexingPlan {
    pub version: u64,
    /// Orphan shard → the indexer that drains it.
    pub assignments: Vec<(ShardKey, String)>,
}

/// An indexer the plan may give work to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanIndexer {
    pub node_id: String,
    pub generation: u64,
    pub capacity: u32,
    /// Shards of its own log it indexes, as it gossips them: the control plane does not
    /// read live writers' logs.
    pub own_shards: u64,
}

/// Places each orphan shard: it stays where the previous plan put it while that indexer
/// lives; otherwise it goes to the indexer with the least work per unit of capacity (its
/// own shards count, gossiped or listed in `shards`), ties to the lowest node id.
pub fn assign_shards(
    shards: &BTreeSet<ShardKey>,
    indexers: &[PlanIndexer],
    previous: &IndexingPlan,
) -> Vec<(ShardKey, String)> {
    let live = |node_id: &str, generation: u64| {
        indexers
            .iter()
            .any(|indexer| indexer.node_id == node_id && indexer.generation == generation)
    };
    let mut load: BTreeMap<&str, u64> = indexers
        .iter()
        .map(|indexer| (indexer.node_id.as_str(), indexer.own_shards))
        .collect();
    let mut orphans = Vec::new();
    for shard in shards {
        match shard.writer() {
            Some((node_id, generation)) if live(node_id, generation) => {
                if let Some(count) = load.get_mut(node_id) {
                    *count += 1;
                }
            }
            _ => orphans.push(shard),
        }
    }
    let previous: BTreeMap<&ShardKey, &str> = previous
        .assignments
        .iter()
        .map(|(shard, node_id)| (shard, node_id.as_str()))
        .collect();
    let mut assignments = Vec::new();
    let mut unplaced = Vec::new();
    for shard in orphans {
        match previous.get(shard) {
            Some(node_id) if load.contains_key(node_id) => {
                if let Some(count) = load.get_mut(node_id) {
                    *count += 1;
                }
                assignments.push((shard.clone(), node_id.to_string()));
            }
            _ => unplaced.push(shard),
        }
    }
    for shard in unplaced {
        let least_loaded = indexers
            .iter()
            .filter(|indexer| indexer.capacity > 0)
            .min_by(|left, right| {
                let ratio = |indexer: &PlanIndexer| {
                    (load[indexer.node_id.as_str()] + 1) as f64 / f64::from(indexer.capacity)
                };
                ratio(left)
                    .total_cmp(&ratio(right))
                    .then_with(|| left.node_id.cmp(&right.node_id))
            });
        if let Some(indexer) = least_loaded {
            if let Some(count) = load.get_mut(indexer.node_id.as_str()) {
                *count += 1;
            }
            assignments.push((shard.clone(), indexer.node_id.clone()));
        }
    }
    assignments.sort();
    assignments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: &str, shard_id: &str) -> ShardKey {
        ShardKey {
            index: index.to_string(),
            shard_id: shard_id.to_string(),
        }
    }

    fn indexer(node_id: &str, generation: u64, capacity: u32) -> PlanIndexer {
        PlanIndexer {
            node_id: node_id.to_string(),
            generation,
            capacity,
            own_shards: 0,
        }
    }

    fn plan(assignments: &[(ShardKey, &str)]) -> IndexingPlan {
        IndexingPlan {
            version: 1,
            assignments: assignments
                .iter()
                .map(|(shard, node)| (shard.clone(), node.to_string()))
                .collect(),
        }
    }

    #[test]
    fn writers_keep_their_shards_and_orphans_are_placed_by_capacity() {
        let shards: BTreeSet<ShardKey> = [
            shard("logs_01", "node-1.10"),
            shard("logs_01", "node-2.10"),
            shard("logs_01", "node-3.10"),
            shard("logs_01", "node-3.5"),
            shard("web_01", "node-3.10"),
            shard("web_01", "not-a-shard-id"),
        ]
        .into_iter()
        .collect();
        let indexers = [indexer("node-1", 10, 2), indexer("node-2", 10, 4)];
        let assignments = assign_shards(&shards, &indexers, &IndexingPlan::default());
        // node-1 has 1 own shard for 2 cores, node-2 1 for 4. Taking a shard would bring
        // node-1 to 2/2 and node-2 to 2/4, 3/4, then 4/4 (a tie, to the lower id), and last
        // node-1 to 3/2 against node-2's 4/4.
        assert_eq!(
            assignments,
            [
                (shard("logs_01", "node-3.10"), "node-2".to_string()),
                (shard("logs_01", "node-3.5"), "node-2".to_string()),
                (shard("web_01", "node-3.10"), "node-1".to_string()),
                (shard("web_01", "not-a-shard-id"), "node-2".to_string()),
            ]
        );
    }

    #[test]
    fn a_restarted_node_s_old_generation_is_an_orphan() {
        let shards: BTreeSet<ShardKey> =
            [shard("logs_01", "node-1.10"), shard("logs_01", "node-1.20")]
                .into_iter()
                .collect();
        let assignments = assign_shards(
            &shards,
            &[indexer("node-1", 20, 2)],
            &IndexingPlan::default(),
        );
        assert_eq!(
            assignments,
            [(shard("logs_01", "node-1.10"), "node-1".to_string())]
        );
    }

    #[test]
    fn placements_are_sticky_while_their_indexer_lives() {
        let shards: BTreeSet<ShardKey> = [shard("logs_01", "dead.1"), shard("logs_01", "dead.2")]
            .into_iter()
            .collect();
        let indexers = [indexer("node-1", 1, 8), indexer("node-2", 1, 1)];
        let previous = plan(&[
            (shard("logs_01", "dead.1"), "node-2"),
            (shard("logs_01", "dead.2"), "gone"),
        ]);
        let assignments = assign_shards(&shards, &indexers, &previous);
        assert_eq!(
            assignments,
            [
                (shard("logs_01", "dead.1"), "node-2".to_string()),
                (shard("logs_01", "dead.2"), "node-1".to_string()),
            ]
        );
        // No indexer at all: nothing is placed, nothing panics.
        assert!(assign_shards(&shards, &[], &previous).is_empty());
    }

    #[test]
    fn gossiped_own_shards_count_as_load() {
        let shards: BTreeSet<ShardKey> = [shard("logs_01", "dead.1"), shard("web_01", "dead.1")]
            .into_iter()
            .collect();
        let mut busy = indexer("node-1", 1, 4);
        busy.own_shards = 12;
        let indexers = [busy, indexer("node-2", 1, 2)];
        let assignments = assign_shards(&shards, &indexers, &IndexingPlan::default());
        // node-1 would be at 13/4 and 14/4; node-2 at 1/2 and 2/2.
        assert_eq!(
            assignments,
            [
                (shard("logs_01", "dead.1"), "node-2".to_string()),
                (shard("web_01", "dead.1"), "node-2".to_string()),
            ]
        );
    }
}
