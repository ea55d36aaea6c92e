//! Shards of other nodes' logs that this node indexes because the indexing plan gives them
//! to it: the shards of a dead node, or of an earlier generation of this one. Each is read
//! from its published position to its end, indexed and published under its own checkpoint
//! partition: the shard is closed. The log's objects go once every shard in them is closed.
//! If the writer was only paused and comes back, the checkpoint check at publish keeps both
//! from publishing the same records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quarry_common::metastore::MetastoreError;
use quarry_common::storage::Storage;
use quarry_common::IndexUid;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::ingest::{node_log_uri, wal_dir_name, IngestService};
use crate::publisher::published_wal_position;
use crate::wal::{delete_published_objects, shards_in_log, ObjectLog, ShardLog};

/// How often an adopter that drained its shard tries again to delete the log's objects
/// that other shards still held.
const GENERATION_DELETE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a generation's last pass is remembered: dead generations do not accumulate.
const GENERATION_PASSES_KEPT: std::time::Duration = std::time::Duration::from_secs(600);

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
        let uri = node_log_uri(wal_uri, &shard.shard_id);
        let storage = self
            .resolver
            .resolve(&uri)
            .map_err(|error| error.to_string())?;
        let shard_name = wal_dir_name(&shard.index_uid);
        let log = ObjectLog::open_reader(storage.clone(), self.tocs.clone(), &shard_name)
            .await
            .map_err(|error| error.to_string())?;
        let last = log.last_position();
        if last == 0 {
            // Nothing of this shard is left in the log: closed before.
            return Ok(());
        }
        let log: Arc<dyn ShardLog> = Arc::new(log);
        match self
            .metastore
            .index_metadata(shard.index_uid.index_id())
            .await
        {
            Ok(index_metadata) if index_metadata.index_uid == shard.index_uid => {
                let published = published_wal_position(&index_metadata, &shard.shard_id);
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
            }
            // The index was deleted (or deleted and created again): nothing to index.
            Ok(_) | Err(MetastoreError::IndexNotFound(_)) => {}
            Err(error) => return Err(error.to_string()),
        }
        log.truncate(last);
        let published_at = std::time::Instant::now();
        ADOPTED_SHARDS_CLOSED.fetch_add(1, Ordering::Relaxed);
        info!(
            index_id = shard.index_uid.index_id(),
            shard_id = shard.shard_id,
            "adopted shard drained and closed"
        );
        // The log's objects hold other shards too, maybe drained by other nodes: each
        // adopter deletes those whose every shard is published, after its own publish, so
        // the last one to finish deletes them all. Until then the plan keeps this shard
        // here, and the pass is tried again.
        loop {
            let fresh_since = published_at.max(
                std::time::Instant::now()
                    .checked_sub(GENERATION_DELETE_INTERVAL)
                    .unwrap_or(published_at),
            );
            match self
                .delete_published_objects(storage.as_ref(), &shard.shard_id, fresh_since)
                .await
            {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(error) => warn!(
                    shard_id = shard.shard_id,
                    "cannot delete the published objects of an adopted log: {error}"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(GENERATION_DELETE_INTERVAL) => {}
                _ = cancelled.changed() => return Ok(()),
            }
        }
    }

    /// Deletes the objects of a dead generation's log whose every shard is published (or
    /// whose index is gone); returns how many remain. The adopters of one generation share
    /// the passes: a pass that started after `fresh_since` answers for all of them, so a
    /// dead node's hundred shards cost one listing per interval, not a hundred.
    async fn delete_published_objects(
        &self,
        storage: &dyn Storage,
        shard_id: &str,
        fresh_since: std::time::Instant,
    ) -> Result<usize, String> {
        let mut passes = self.generation_passes.lock().await;
        if let Some((started, remaining)) = passes.get(shard_id) {
            if *started >= fresh_since {
                return Ok(*remaining);
            }
        }
        let started = std::time::Instant::now();
        let remaining = self.delete_published_objects_now(storage, shard_id).await?;
        passes.retain(|_, (at, _)| at.elapsed() < GENERATION_PASSES_KEPT);
        passes.insert(shard_id.to_string(), (started, remaining));
        Ok(remaining)
    }

    async fn delete_published_objects_now(
        &self,
        storage: &dyn Storage,
        shard_id: &str,
    ) -> Result<usize, String> {
        let shards = shards_in_log(storage, &self.tocs)
            .await
            .map_err(|error| error.to_string())?;
        if shards.is_empty() {
            return Ok(0);
        }
        let indexes = self
            .metastore
            .list_indexes()
            .await
            .map_err(|error| error.to_string())?;
        let published: HashMap<String, u64> = shards
            .into_keys()
            .map(|shard_name| {
                let position = indexes
                    .iter()
                    .find(|index| wal_dir_name(&index.index_uid) == shard_name)
                    .map_or(u64::MAX, |index| published_wal_position(index, shard_id));
                (shard_name, position)
            })
            .collect();
        delete_published_objects(storage, &self.tocs, &published)
            .await
            .map_err(|error| error.to_string())
    }
}
