use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use quarry_config::IndexConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{
    now_secs, CheckpointDelta, DeleteQuery, DeleteTask, IndexMetadata, ListSplitsQuery, Metastore,
    MetastoreError, MetastoreResult, Split, SplitMetadata, SplitState,
};
use crate::api_keys::ApiKeyRecord;
use crate::storage::{Storage, StorageError, StorageResolver};
use crate::{IndexUid, SplitId};

const MANIFEST_KEY: &str = "manifest.json";
const INDEX_STATE_KEY: &str = "metastore.json";
const API_KEYS_KEY: &str = "api_keys.json";

/// Lists the indexes and where each one's state file lives.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    indexes: BTreeMap<String, String>,
}

/// Everything known about one index, in `{index_uri}/metastore.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct IndexState {
    index_metadata: IndexMetadata,
    splits: BTreeMap<SplitId, Split>,
    #[serde(default)]
    delete_tasks: Vec<DeleteTask>,
}

/// The default metastore: a manifest under `metastore_uri` and one JSON state file per
/// index beside its splits. One process writes (the node running the metastore service);
/// it serialises updates behind a lock and keeps the states in memory.
///
/// Each file is replaced by writing a temporary object and renaming it over the old one,
/// so a crash mid-write leaves the previous state intact.
#[derive(Debug)]
pub struct FileBackedMetastore {
    storage: Arc<dyn Storage>,
    resolver: StorageResolver,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    manifest: Option<Manifest>,
    states: HashMap<String, IndexState>,
    api_keys: Option<ApiKeys>,
}

/// The API keys, in `{metastore_uri}/api_keys.json`, by id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ApiKeys {
    keys: BTreeMap<String, ApiKeyRecord>,
}

async fn write_atomically(
    storage: &dyn Storage,
    key: &str,
    value: &impl Serialize,
) -> MetastoreResult<()> {
    let payload = serde_json::to_vec_pretty(value).map_err(|error| MetastoreError::Corrupt {
        path: key.to_string(),
        message: format!("cannot serialise: {error}"),
    })?;
    let temp_key = format!("{key}.tmp");
    storage.put(&temp_key, Bytes::from(payload)).await?;
    storage.rename(&temp_key, key).await?;
    Ok(())
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    storage: &dyn Storage,
    key: &str,
) -> MetastoreResult<Option<T>> {
    let bytes = match storage.get_all(key).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| MetastoreError::Corrupt {
            path: format!("{}/{key}", storage.uri()),
            message: error.to_string(),
        })
}

impl FileBackedMetastore {
    pub fn new(storage: Arc<dyn Storage>, resolver: StorageResolver) -> FileBackedMetastore {
        FileBackedMetastore {
            storage,
            resolver,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn index_storage(&self, index_uri: &str) -> MetastoreResult<Arc<dyn Storage>> {
        Ok(self.resolver.resolve(index_uri)?)
    }

    async fn manifest<'a>(&self, cache: &'a mut Cache) -> MetastoreResult<&'a mut Manifest> {
        if cache.manifest.is_none() {
            let manifest = read_json(&*self.storage, MANIFEST_KEY)
                .await?
                .unwrap_or_default();
            cache.manifest = Some(manifest);
        }
        Ok(cache.manifest.get_or_insert_with(Manifest::default))
    }

    async fn load_state<'a>(
        &self,
        cache: &'a mut Cache,
        index_id: &str,
    ) -> MetastoreResult<&'a mut IndexState> {
        if !cache.states.contains_key(index_id) {
            let index_uri = self
                .manifest(cache)
                .await?
                .indexes
                .get(index_id)
                .cloned()
                .ok_or_else(|| MetastoreError::IndexNotFound(index_id.to_string()))?;
            let storage = self.index_storage(&index_uri)?;
            let state: IndexState =
                read_json(&*storage, INDEX_STATE_KEY)
                    .await?
                    .ok_or_else(|| MetastoreError::Corrupt {
                        path: format!("{index_uri}/{INDEX_STATE_KEY}"),
                        message: "the manifest lists the index but its state file is missing"
                            .to_string(),
                    })?;
            cache.states.insert(index_id.to_string(), state);
        }
        cache
            .states
            .get_mut(index_id)
            .ok_or_else(|| MetastoreError::IndexNotFound(index_id.to_string()))
    }

    async fn api_keys<'a>(&self, cache: &'a mut Cache) -> MetastoreResult<&'a mut ApiKeys> {
        if cache.api_keys.is_none() {
            let keys = read_json(&*self.storage, API_KEYS_KEY)
                .await?
                .unwrap_or_default();
            cache.api_keys = Some(keys);
        }
        Ok(cache.api_keys.get_or_insert_with(ApiKeys::default))
    }

    /// Runs `update` on a copy of the API keys and persists them, like `update_state`.
    async fn update_api_keys<T>(
        &self,
        update: impl FnOnce(&mut ApiKeys) -> T,
    ) -> MetastoreResult<T> {
        let mut cache = self.cache.lock().await;
        let keys = self.api_keys(&mut cache).await?;
        let mut new_keys = keys.clone();
        let output = update(&mut new_keys);
        write_atomically(&*self.storage, API_KEYS_KEY, &new_keys).await?;
        *keys = new_keys;
        Ok(output)
    }

    /// Runs `update` on a copy of the index state and persists it; the cached state only
    /// changes once the new file is in place, so a failed write changes nothing.
    async fn update_state<T>(
        &self,
        index_uid: &IndexUid,
        update: impl FnOnce(&mut IndexState) -> MetastoreResult<T>,
    ) -> MetastoreResult<T> {
        let mut cache = self.cache.lock().await;
        let state = self.load_state(&mut cache, index_uid.index_id()).await?;
        if &state.index_metadata.index_uid != index_uid {
            return Err(MetastoreError::IndexNotFound(index_uid.to_string()));
        }
        let mut new_state = state.clone();
        let output = update(&mut new_state)?;
        let storage = self.index_storage(new_state.index_metadata.index_uri())?;
        write_atomically(&*storage, INDEX_STATE_KEY, &new_state).await?;
        *state = new_state;
        Ok(output)
    }
}

#[async_trait]
impl Metastore for FileBackedMetastore {
    async fn create_index(&self, index_config: IndexConfig) -> MetastoreResult<IndexMetadata> {
        let index_id = index_config.index_id.clone();
        let index_uri = index_config.index_uri.clone().ok_or_else(|| {
            MetastoreError::InvalidArgument(format!("index `{index_id}` has no index_uri"))
        })?;
        let mut cache = self.cache.lock().await;
        if self
            .manifest(&mut cache)
            .await?
            .indexes
            .contains_key(&index_id)
        {
            return Err(MetastoreError::IndexAlreadyExists(index_id));
        }
        let state = IndexState {
            index_metadata: IndexMetadata {
                index_uid: IndexUid::new(&index_id),
                index_config,
                checkpoints: BTreeMap::new(),
                create_timestamp: now_secs(),
            },
            splits: BTreeMap::new(),
            delete_tasks: Vec::new(),
        };
        // The state file first, then the manifest entry that makes the index exist: a crash
        // in between leaves an unlisted file that the next create overwrites.
        let storage = self.index_storage(&index_uri)?;
        write_atomically(&*storage, INDEX_STATE_KEY, &state).await?;
        let mut manifest = self.manifest(&mut cache).await?.clone();
        manifest.indexes.insert(index_id.clone(), index_uri);
        write_atomically(&*self.storage, MANIFEST_KEY, &manifest).await?;
        cache.manifest = Some(manifest);
        let metadata = state.index_metadata.clone();
        cache.states.insert(index_id, state);
        Ok(metadata)
    }

    async fn index_metadata(&self, index_id: &str) -> MetastoreResult<IndexMetadata> {
        let mut cache = self.cache.lock().await;
        Ok(self
            .load_state(&mut cache, index_id)
            .await?
            .index_metadata
            .clone())
    }

    async fn list_indexes(&self) -> MetastoreResult<Vec<IndexMetadata>> {
        let mut cache = self.cache.lock().await;
        let index_ids: Vec<String> = self
            .manifest(&mut cache)
            .await?
            .indexes
            .keys()
            .cloned()
            .collect();
        let mut indexes = Vec::with_capacity(index_ids.len());
        for index_id in index_ids {
            indexes.push(
                self.load_state(&mut cache, &index_id)
                    .await?
                    .index_metadata
                    .clone(),
            );
        }
        Ok(indexes)
    }

    async fn delete_index(&self, index_uid: &IndexUid) -> MetastoreResult<()> {
        let mut cache = self.cache.lock().await;
        let state = self.load_state(&mut cache, index_uid.index_id()).await?;
        if &state.index_metadata.index_uid != index_uid {
            return Err(MetastoreError::IndexNotFound(index_uid.to_string()));
        }
        let index_uri = state.index_metadata.index_uri().to_string();
        let mut manifest = self.manifest(&mut cache).await?.clone();
        manifest.indexes.remove(index_uid.index_id());
        write_atomically(&*self.storage, MANIFEST_KEY, &manifest).await?;
        cache.manifest = Some(manifest);
        cache.states.remove(index_uid.index_id());
        self.index_storage(&index_uri)?
            .delete(INDEX_STATE_KEY)
            .await?;
        Ok(())
    }

    async fn stage_splits(
        &self,
        index_uid: &IndexUid,
        splits: Vec<SplitMetadata>,
    ) -> MetastoreResult<()> {
        let now = now_secs();
        self.update_state(index_uid, |state| {
            for split_metadata in splits {
                if let Some(existing) = state.splits.get(&split_metadata.split_id) {
                    if existing.split_state != SplitState::Staged {
                        return Err(MetastoreError::SplitsNotInExpectedState {
                            index_id: index_uid.index_id().to_string(),
                            message: format!(
                                "split `{}` is {:?}, cannot stage it again",
                                split_metadata.split_id, existing.split_state
                            ),
                        });
                    }
                }
                state.splits.insert(
                    split_metadata.split_id.clone(),
                    Split {
                        split_metadata,
                        split_state: SplitState::Staged,
                        update_timestamp: now,
                        publish_timestamp: None,
                    },
                );
            }
            Ok(())
        })
        .await
    }

    async fn publish_splits(
        &self,
        index_uid: &IndexUid,
        staged_split_ids: &[SplitId],
        replaced_split_ids: &[SplitId],
        checkpoint_delta: Option<CheckpointDelta>,
    ) -> MetastoreResult<()> {
        let now = now_secs();
        let index_id = index_uid.index_id().to_string();
        self.update_state(index_uid, |state| {
            let missing: Vec<String> = staged_split_ids
                .iter()
                .chain(replaced_split_ids)
                .filter(|split_id| !state.splits.contains_key(*split_id))
                .map(|split_id| split_id.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(MetastoreError::SplitsNotFound { index_id: index_id.clone(), split_ids: missing });
            }
            for split_id in staged_split_ids {
                let split_state = state.splits[split_id].split_state;
                if split_state != SplitState::Staged {
                    return Err(MetastoreError::SplitsNotInExpectedState {
                        index_id: index_id.clone(),
                        message: format!("split `{split_id}` is {split_state:?}, only staged splits can be published"),
                    });
                }
            }
            for split_id in replaced_split_ids {
                let split_state = state.splits[split_id].split_state;
                if split_state != SplitState::Published {
                    return Err(MetastoreError::SplitsNotInExpectedState {
                        index_id: index_id.clone(),
                        message: format!("split `{split_id}` is {split_state:?}, only published splits can be replaced"),
                    });
                }
            }
            if let Some(delta) = &checkpoint_delta {
                state
                    .index_metadata
                    .checkpoints
                    .entry(delta.source_id.clone())
                    .or_default()
                    .try_apply(delta)
                    .map_err(|message| MetastoreError::CheckpointConflict { index_id: index_id.clone(), message })?;
            }
            for split_id in staged_split_ids {
                if let Some(split) = state.splits.get_mut(split_id) {
                    split.split_state = SplitState::Published;
                    split.update_timestamp = now;
                    split.publish_timestamp = Some(now);
                }
            }
            for split_id in replaced_split_ids {
                if let Some(split) = state.splits.get_mut(split_id) {
                    split.split_state = SplitState::MarkedForDeletion;
                    split.update_timestamp = now;
                }
            }
            Ok(())
        })
        .await
    }

    async fn list_splits(
        &self,
        index_uid: &IndexUid,
        query: &ListSplitsQuery,
    ) -> MetastoreResult<Vec<Split>> {
        let mut cache = self.cache.lock().await;
        let state = self.load_state(&mut cache, index_uid.index_id()).await?;
        if &state.index_metadata.index_uid != index_uid {
            return Err(MetastoreError::IndexNotFound(index_uid.to_string()));
        }
        Ok(state
            .splits
            .values()
            .filter(|split| query.matches(split))
            .cloned()
            .collect())
    }

    async fn mark_splits_for_deletion(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        let now = now_secs();
        self.update_state(index_uid, |state| {
            for split_id in split_ids {
                // Unknown ids are skipped: marking is retried after crashes.
                if let Some(split) = state.splits.get_mut(split_id) {
                    split.split_state = SplitState::MarkedForDeletion;
                    split.update_timestamp = now;
                }
            }
            Ok(())
        })
        .await
    }

    async fn delete_splits(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        let index_id = index_uid.index_id().to_string();
        self.update_state(index_uid, |state| {
            for split_id in split_ids {
                if let Some(split) = state.splits.get(split_id) {
                    if split.split_state == SplitState::Published {
                        return Err(MetastoreError::SplitsNotInExpectedState {
                            index_id: index_id.clone(),
                            message: format!(
                                "split `{split_id}` is published; mark it for deletion first"
                            ),
                        });
                    }
                }
            }
            for split_id in split_ids {
                state.splits.remove(split_id);
            }
            Ok(())
        })
        .await
    }

    async fn create_delete_task(&self, delete_query: DeleteQuery) -> MetastoreResult<DeleteTask> {
        let index_uid = delete_query.index_uid.clone();
        self.update_state(&index_uid, |state| {
            let opstamp = state
                .delete_tasks
                .last()
                .map(|task| task.opstamp)
                .unwrap_or(0)
                + 1;
            let task = DeleteTask {
                opstamp,
                create_timestamp: now_secs(),
                delete_query,
            };
            state.delete_tasks.push(task.clone());
            Ok(task)
        })
        .await
    }

    async fn list_delete_tasks(
        &self,
        index_uid: &IndexUid,
        opstamp_start: u64,
    ) -> MetastoreResult<Vec<DeleteTask>> {
        let mut cache = self.cache.lock().await;
        let state = self.load_state(&mut cache, index_uid.index_id()).await?;
        if &state.index_metadata.index_uid != index_uid {
            return Err(MetastoreError::IndexNotFound(index_uid.to_string()));
        }
        Ok(state
            .delete_tasks
            .iter()
            .filter(|task| task.opstamp > opstamp_start)
            .cloned()
            .collect())
    }

    async fn last_delete_opstamp(&self, index_uid: &IndexUid) -> MetastoreResult<u64> {
        Ok(self
            .list_delete_tasks(index_uid, 0)
            .await?
            .last()
            .map(|task| task.opstamp)
            .unwrap_or(0))
    }

    async fn update_splits_delete_opstamp(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
        delete_opstamp: u64,
    ) -> MetastoreResult<()> {
        let now = now_secs();
        self.update_state(index_uid, |state| {
            for split_id in split_ids {
                if let Some(split) = state.splits.get_mut(split_id) {
                    if split.split_state == SplitState::Published {
                        split.split_metadata.delete_opstamp =
                            split.split_metadata.delete_opstamp.max(delete_opstamp);
                        split.update_timestamp = now;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> MetastoreResult<bool> {
        self.update_api_keys(|keys| match keys.keys.entry(record.id.clone()) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(record);
                true
            }
        })
        .await
    }

    async fn list_api_keys(&self) -> MetastoreResult<Vec<ApiKeyRecord>> {
        let mut cache = self.cache.lock().await;
        Ok(self
            .api_keys(&mut cache)
            .await?
            .keys
            .values()
            .cloned()
            .collect())
    }

    async fn invalidate_api_keys(&self, ids: &[String]) -> MetastoreResult<Vec<String>> {
        self.update_api_keys(|keys| {
            let mut invalidated = Vec::new();
            for id in ids {
                if let Some(record) = keys.keys.get_mut(id) {
                    if !record.invalidated {
                        record.invalidated = true;
                        invalidated.push(id.clone());
                    }
                }
            }
            invalidated
        })
        .await
    }
}

#[cfg(test)]
mod tests;
