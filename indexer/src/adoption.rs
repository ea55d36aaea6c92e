//! Shards of other nodes' logs that this node indexes because the indexing plan gives them
//! to it: the shards of a dead node, or of an earlier generation of this one. Each is read
//! from its published position to its end, indexed and published under its own checkpoint
//! partition, then its objects are deleted: the shard is closed. If its writer was only
//! paused and comes back, the checkpoint check at publish keeps both from publishing the
//! same records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quarry_common::metastore::MetastoreError;
use quarry_common::IndexUid;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::ingest::{object_shard_uri, IngestService};
use crate::publisher::published_wal_position;
use crate::wal::{ObjectLog, ShardLog};

/// Adopted shards whose records were all published and whose objects were deleted.
pub static ADOPTED_SHARDS_CLOSED: AtomicU64 = AtomicU64::new(0);

/// A shard of an index's log on object storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardRef {
    pub index_uid: IndexUid,
    /// `{node_id}.{generation}` of the node that wrote it.
    pub shard_id: String,
}

pub(crate) struct AdoptedShard {
    task: tokio::task::JoinHandle<()>,
    cancel: watch::Sender<bool>,
}

impl IngestService {
    /// Makes this node index exactly `shards` of other nodes: starts the new ones, stops
    /// those given to another node, and starts again those that stopped (a publish refused
    /// because another node published the same records first, a storage failure).
    pub async fn set_adopted_shards(self: &Arc<Self>, wal_uri: &str, shards: &[ShardRef]) {
        let mut adopted = self.adopted.lock().await;
        adopted.retain(|(index_uid, shard_id), shard| {
            let wanted = shards
                .iter()
                .any(|wanted| &wanted.index_uid == index_uid && &wanted.shard_id == shard_id);
            if !wanted {
                let _ = shard.cancel.send(true);
            }
            wanted && !shard.task.is_finished()
        });
        for shard in shards {
            let key = (shard.index_uid.clone(), shard.shard_id.clone());
            if adopted.contains_key(&key) {
                continue;
            }
            let (cancel, cancelled) = watch::channel(false);
            let service = self.clone();
            let wal_uri = wal_uri.to_string();
            let shard = shard.clone();
            let task = tokio::spawn(async move {
                if let Err(error) = service.drain(&wal_uri, &shard, cancelled).await {
                    warn!(
                        index_id = shard.index_uid.index_id(),
                        shard_id = shard.shard_id,
                        "adopted shard not drained yet: {error}"
                    );
                }
            });
            adopted.insert(key, AdoptedShard { task, cancel });
        }
    }

    /// The adopted shards this node is indexing now.
    pub async fn adopted_shards(&self) -> Vec<ShardRef> {
        self.adopted
            .lock()
            .await
            .iter()
            .filter(|(_, shard)| !shard.task.is_finished())
            .map(|((index_uid, shard_id), _)| ShardRef {
                index_uid: index_uid.clone(),
                shard_id: shard_id.clone(),
            })
            .collect()
    }

    async fn drain(
        self: &Arc<Self>,
        wal_uri: &str,
        shard: &ShardRef,
        mut cancelled: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let uri = object_shard_uri(wal_uri, &shard.index_uid, &shard.shard_id);
        let storage = self
            .resolver
            .resolve(&uri)
            .map_err(|error| error.to_string())?;
        let log: Arc<dyn ShardLog> = Arc::new(
            ObjectLog::open_reader(storage)
                .await
                .map_err(|error| error.to_string())?,
        );
        let index_metadata = match self
            .metastore
            .index_metadata(shard.index_uid.index_id())
            .await
        {
            Ok(metadata) if metadata.index_uid == shard.index_uid => metadata,
            // The index was deleted (or deleted and created again): nothing to index.
            Ok(_) | Err(MetastoreError::IndexNotFound(_)) => {
                log.truncate(u64::MAX);
                return Ok(());
            }
            Err(error) => return Err(error.to_string()),
        };
        let published = published_wal_position(&index_metadata, &shard.shard_id);
        let last = log.last_position();
        if last > published {
            info!(
                index_id = shard.index_uid.index_id(),
                shard_id = shard.shard_id,
                "indexing an adopted shard's log, positions {}..={last}",
                published + 1
            );
            let partition: Arc<str> = Arc::from(shard.shard_id.as_str());
            let pipeline = self
                .spawn_pipeline(&index_metadata, log.clone(), &partition)
                .map_err(|error| error.to_string())?;
            let work = async {
                pipeline.force_commit(last).await?;
                pipeline.wait_published(last).await
            };
            tokio::select! {
                outcome = work => {
                    pipeline.shutdown().await;
                    outcome?;
                }
                _ = cancelled.changed() => {
                    pipeline.abort().await;
                    return Ok(());
                }
            }
        }
        // Every record is published: the shard is closed.
        log.truncate(last);
        ADOPTED_SHARDS_CLOSED.fetch_add(1, Ordering::Relaxed);
        info!(
            index_id = shard.index_uid.index_id(),
            shard_id = shard.shard_id,
            "adopted shard drained and closed"
        );
        Ok(())
    }
}
