//! An indexer's side of the indexing plan: every second, the orphan shards the acting
//! control plane gives this node are the ones it drains.

use std::sync::Arc;
use std::time::Duration;

use quarry_common::IndexUid;
use quarry_control_plane::{current_plan, Cluster, ShardKey};
use quarry_indexer::{IngestService, ShardRef};
use tracing::warn;

pub(crate) async fn follow_indexing_plan(
    cluster: Cluster,
    ingest_service: Arc<IngestService>,
    wal_uri: String,
    interval: Duration,
) {
    let self_node_id = cluster.self_member().node_id;
    loop {
        tokio::time::sleep(interval).await;
        // Without a plan (no control plane yet), keep draining what was given before.
        let Some(plan) = current_plan(&cluster) else {
            continue;
        };
        let mine: Vec<ShardRef> = plan
            .assignments
            .iter()
            .filter(|(_, node_id)| *node_id == self_node_id)
            .filter_map(|(shard, _)| shard_ref(shard))
            .collect();
        ingest_service.set_adopted_shards(&wal_uri, &mine).await;
    }
}

/// The log folder `{index_id}_{ULID}` back to the index uid `{index_id}:{ULID}`.
fn shard_ref(shard: &ShardKey) -> Option<ShardRef> {
    let (index_id, incarnation) = shard.index.rsplit_once('_')?;
    match format!("{index_id}:{incarnation}").parse::<IndexUid>() {
        Ok(index_uid) => Some(ShardRef {
            index_uid,
            shard_id: shard.shard_id.clone(),
        }),
        Err(error) => {
            warn!(index = shard.index, "not a write-ahead log folder: {error}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_folders_name_their_index_uid() {
        let index_uid = IndexUid::new("my_logs");
        let shard = ShardKey {
            index: quarry_indexer::wal_dir_name(&index_uid),
            shard_id: "node-1.42".to_string(),
        };
        assert_eq!(shard_ref(&shard).unwrap().index_uid, index_uid);
        let junk = ShardKey {
            index: "junk".to_string(),
            shard_id: "node-1.42".to_string(),
        };
        assert!(shard_ref(&junk).is_none());
    }
}
