use std::collections::BTreeMap;

use quarry_common::metastore::{
    CheckpointDelta, Metastore, MetastoreResult, Position, SplitMetadata,
};

/// Each node's write-ahead log of an index is one partition of the index's ingest source,
/// named after the node, so that nodes ingesting into the same index publish their own
/// positions and never contend for one.
pub(crate) fn wal_partition(node_id: &str) -> String {
    format!("wal:{node_id}")
}

/// Makes an uploaded split searchable and advances the source checkpoint to the last WAL
/// position it holds, in one metastore update: a split is either published with the
/// positions it covers or not at all, so a replay after a crash never indexes twice.
pub(crate) async fn publish(
    metastore: &dyn Metastore,
    metadata: &SplitMetadata,
    partition: &str,
    wal_delta: Option<(u64, u64)>,
) -> MetastoreResult<()> {
    let checkpoint_delta = wal_delta.map(|(from, to)| CheckpointDelta {
        source_id: crate::models::INGEST_SOURCE_ID.to_string(),
        partitions: BTreeMap::from([(partition.to_string(), (to_position(from), to_position(to)))]),
    });
    metastore
        .publish_splits(
            &metadata.index_uid,
            std::slice::from_ref(&metadata.split_id),
            &[],
            checkpoint_delta,
        )
        .await
}

fn to_position(offset: u64) -> Position {
    if offset == 0 {
        Position::Beginning
    } else {
        Position::Offset(offset)
    }
}

/// The published position of one WAL partition of an index, 0 if nothing was published.
pub(crate) fn published_wal_position(
    index_metadata: &quarry_common::metastore::IndexMetadata,
    partition: &str,
) -> u64 {
    index_metadata
        .checkpoints
        .get(crate::models::INGEST_SOURCE_ID)
        .and_then(|checkpoint| checkpoint.partitions.get(partition))
        .map(|position| match position {
            Position::Beginning => 0,
            Position::Offset(offset) => *offset,
        })
        .unwrap_or(0)
}
