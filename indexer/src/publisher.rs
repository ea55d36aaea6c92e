use std::collections::BTreeMap;

use quarry_common::metastore::{
    CheckpointDelta, IndexMetadata, Metastore, MetastoreResult, Position, SplitMetadata,
};

/// Each node's write-ahead log of an index is one partition of the index's ingest source,
/// named after the node, so that nodes ingesting into the same index publish their own
/// positions and never contend for one.
pub(crate) fn wal_partition(node_id: &str) -> String {
    format!("wal:{node_id}")
}

/// Before nodes had partitions of their own, a single node's log published as `wal`.
const LEGACY_WAL_PARTITION: &str = "wal";

/// Makes an uploaded split searchable and advances the source checkpoint to the last WAL
/// position it holds, in one metastore update: a split is either published with the
/// positions it covers or not at all, so a replay after a crash never indexes twice.
/// `index_metadata` is the index as read just before: a partition it does not list yet is
/// published from its beginning, whatever position its log starts at (a log that carried
/// over the legacy partition's positions).
pub(crate) async fn publish(
    metastore: &dyn Metastore,
    index_metadata: &IndexMetadata,
    metadata: &SplitMetadata,
    partition: &str,
    wal_delta: Option<(u64, u64)>,
) -> MetastoreResult<()> {
    let checkpoint_delta =
        wal_delta.map(|(from, to)| checkpoint_delta(index_metadata, partition, from, to));
    metastore
        .publish_splits(
            &metadata.index_uid,
            std::slice::from_ref(&metadata.split_id),
            &[],
            checkpoint_delta,
        )
        .await
}

fn checkpoint_delta(
    index_metadata: &IndexMetadata,
    partition: &str,
    from: u64,
    to: u64,
) -> CheckpointDelta {
    let known = index_metadata
        .checkpoints
        .get(crate::models::INGEST_SOURCE_ID)
        .is_some_and(|checkpoint| checkpoint.partitions.contains_key(partition));
    let from = if known {
        to_position(from)
    } else {
        Position::Beginning
    };
    CheckpointDelta {
        source_id: crate::models::INGEST_SOURCE_ID.to_string(),
        partitions: BTreeMap::from([(partition.to_string(), (from, to_position(to)))]),
    }
}

fn to_position(offset: u64) -> Position {
    if offset == 0 {
        Position::Beginning
    } else {
        Position::Offset(offset)
    }
}

/// The published position of one WAL partition of an index, 0 if nothing was published.
/// A node's local log (`wal:{node_id}`) that has published nothing yet continues from the
/// legacy `wal` partition: the log on its disk may hold those positions, and replaying them
/// again would index them twice.
pub(crate) fn published_wal_position(index_metadata: &IndexMetadata, partition: &str) -> u64 {
    let partitions = index_metadata
        .checkpoints
        .get(crate::models::INGEST_SOURCE_ID)
        .map(|checkpoint| &checkpoint.partitions);
    let position = partitions.and_then(|partitions| {
        partitions.get(partition).or_else(|| {
            partition
                .starts_with("wal:")
                .then(|| partitions.get(LEGACY_WAL_PARTITION))
                .flatten()
        })
    });
    match position {
        Some(Position::Offset(offset)) => *offset,
        Some(Position::Beginning) | None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_common::metastore::SourceCheckpoint;
    use quarry_config::{ConfigFormat, IndexConfig};

    fn index_with(partitions: &[(&str, u64)]) -> IndexMetadata {
        let config = IndexConfig::parse(b"index_id: logs\n", ConfigFormat::Yaml).unwrap();
        let mut checkpoints = BTreeMap::new();
        checkpoints.insert(
            crate::models::INGEST_SOURCE_ID.to_string(),
            SourceCheckpoint {
                partitions: partitions
                    .iter()
                    .map(|(name, offset)| (name.to_string(), Position::Offset(*offset)))
                    .collect(),
            },
        );
        IndexMetadata {
            index_uid: quarry_common::IndexUid::new("logs"),
            index_config: config,
            checkpoints,
            create_timestamp: 0,
        }
    }

    #[test]
    fn a_node_upgraded_from_the_legacy_partition_carries_on_where_it_was() {
        let legacy = index_with(&[("wal", 500)]);
        // The log resumes after what the single node published...
        assert_eq!(published_wal_position(&legacy, "wal:node-1"), 500);
        // ...and its first publish starts the node's own partition.
        let delta = checkpoint_delta(&legacy, "wal:node-1", 500, 620);
        assert_eq!(
            delta.partitions["wal:node-1"],
            (Position::Beginning, Position::Offset(620))
        );
        let mut checkpoint = legacy.checkpoints[crate::models::INGEST_SOURCE_ID].clone();
        checkpoint.try_apply(&delta).unwrap();

        // Once the node's partition exists, deltas must continue it exactly.
        let upgraded = index_with(&[("wal", 500), ("wal:node-1", 620)]);
        assert_eq!(published_wal_position(&upgraded, "wal:node-1"), 620);
        let delta = checkpoint_delta(&upgraded, "wal:node-1", 620, 700);
        assert_eq!(
            delta.partitions["wal:node-1"],
            (Position::Offset(620), Position::Offset(700))
        );
        // Shards on object storage never fall back to the legacy partition.
        assert_eq!(published_wal_position(&legacy, "node-1.1767225600000"), 0);
    }
}
