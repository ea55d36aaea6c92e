use quarry_common::metastore::{Metastore, MetastoreResult, SplitMetadata};

/// Makes an uploaded split searchable. The WAL checkpoint delta joins this same update
/// once ingest is durable, so a split and the position it covers publish atomically.
pub(crate) async fn publish(
    metastore: &dyn Metastore,
    metadata: &SplitMetadata,
) -> MetastoreResult<()> {
    metastore
        .publish_splits(
            &metadata.index_uid,
            std::slice::from_ref(&metadata.split_id),
            &[],
            None,
        )
        .await
}
