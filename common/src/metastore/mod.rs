//! The metastore: which indexes exist, which splits are published, and up to where each
//! source has been indexed. The trait is the seam; `FileBackedMetastore` is the default
//! implementation (JSON files on object storage), `PostgresMetastore` the one for clusters
//! whose metastore outgrows a file per index.

mod checkpoint;
mod file_backed;
mod metadata;
mod postgres;
mod remote;
#[cfg(test)]
mod tests_suite;

use async_trait::async_trait;
use quarry_config::IndexConfig;

pub use checkpoint::{CheckpointDelta, Position, SourceCheckpoint};
pub use file_backed::FileBackedMetastore;
pub use metadata::{
    DeleteQuery, DeleteTask, IndexMetadata, Split, SplitMaturity, SplitMetadata, SplitState,
};
pub use postgres::{is_postgres_uri, BulkIdClaim, PostgresMetastore};
pub use remote::{
    MetastoreLocator, MetastoreRequest, RemoteMetastore, WireError, WireErrorBody,
    METASTORE_ENDPOINT,
};

use crate::api_keys::ApiKeyRecord;
use crate::{IndexUid, SplitId};

#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error("index `{0}` already exists")]
    IndexAlreadyExists(String),
    #[error("index `{0}` not found")]
    IndexNotFound(String),
    #[error("splits not found in index `{index_id}`: {split_ids:?}")]
    SplitsNotFound {
        index_id: String,
        split_ids: Vec<String>,
    },
    #[error("splits of index `{index_id}` are not in the state this operation needs: {message}")]
    SplitsNotInExpectedState { index_id: String, message: String },
    #[error("checkpoint conflict on index `{index_id}`: {message}")]
    CheckpointConflict { index_id: String, message: String },
    #[error("metastore state `{path}` is corrupt: {message}")]
    Corrupt { path: String, message: String },
    #[error("metastore storage error: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The metastore database cannot be reached, or refused the transaction for a reason
    /// that a retry can cure (deadlock, serialization failure, server restarting).
    #[error("metastore database unavailable: {0}")]
    Unavailable(String),
    /// The metastore database rejected a statement for a reason a retry will not cure
    /// (permissions, a schema this build does not know).
    #[error("metastore database error: {0}")]
    Database(String),
}

impl MetastoreError {
    /// Whether the same call may succeed later unchanged: callers retry these and give up
    /// on the others.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MetastoreError::Storage(_) | MetastoreError::Unavailable(_)
        )
    }
}

pub type MetastoreResult<T> = Result<T, MetastoreError>;

/// Seconds since the epoch, for split and index timestamps.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// Which splits `list_splits` returns. Time bounds follow the search API: seconds,
/// `start` inclusive, `end` exclusive.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ListSplitsQuery {
    pub states: Vec<SplitState>,
    pub start_timestamp: Option<i64>,
    pub end_timestamp: Option<i64>,
}

impl ListSplitsQuery {
    pub fn published() -> ListSplitsQuery {
        ListSplitsQuery {
            states: vec![SplitState::Published],
            ..Default::default()
        }
    }

    pub fn matches(&self, split: &Split) -> bool {
        if !self.states.is_empty() && !self.states.contains(&split.split_state) {
            return false;
        }
        match split.split_metadata.time_range {
            Some(range) => range.overlaps(self.start_timestamp, self.end_timestamp),
            // A split without timestamps cannot be pruned by time.
            None => true,
        }
    }
}

#[async_trait]
pub trait Metastore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates an index; its `index_uri` must already be set.
    async fn create_index(&self, index_config: IndexConfig) -> MetastoreResult<IndexMetadata>;

    async fn index_metadata(&self, index_id: &str) -> MetastoreResult<IndexMetadata>;

    async fn list_indexes(&self) -> MetastoreResult<Vec<IndexMetadata>>;

    /// Forgets the index and its splits' records. Deleting the split files is the caller's
    /// job, done before this call so that a crash never leaves files nobody tracks.
    async fn delete_index(&self, index_uid: &IndexUid) -> MetastoreResult<()>;

    /// Records splits about to be uploaded, so that a crash between upload and publish
    /// leaves files the janitor can find and delete.
    async fn stage_splits(
        &self,
        index_uid: &IndexUid,
        splits: Vec<SplitMetadata>,
    ) -> MetastoreResult<()>;

    /// In one atomic update: publishes staged splits, marks `replaced` splits for deletion
    /// (merges), and advances the source checkpoint. Fails, changing nothing, if a split is
    /// not in the expected state or the checkpoint delta does not continue the stored one.
    async fn publish_splits(
        &self,
        index_uid: &IndexUid,
        staged_split_ids: &[SplitId],
        replaced_split_ids: &[SplitId],
        checkpoint_delta: Option<CheckpointDelta>,
    ) -> MetastoreResult<()>;

    async fn list_splits(
        &self,
        index_uid: &IndexUid,
        query: &ListSplitsQuery,
    ) -> MetastoreResult<Vec<Split>>;

    async fn mark_splits_for_deletion(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()>;

    /// Forgets splits that are staged or marked for deletion (never published ones).
    async fn delete_splits(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()>;

    /// Records a delete task with the next opstamp of its index.
    async fn create_delete_task(&self, delete_query: DeleteQuery) -> MetastoreResult<DeleteTask>;

    /// The index's delete tasks with an opstamp above `opstamp_start`, oldest first.
    async fn list_delete_tasks(
        &self,
        index_uid: &IndexUid,
        opstamp_start: u64,
    ) -> MetastoreResult<Vec<DeleteTask>>;

    /// The opstamp of the index's newest delete task, 0 without any.
    async fn last_delete_opstamp(&self, index_uid: &IndexUid) -> MetastoreResult<u64>;

    /// Records that published splits hold nothing older delete tasks remove. Splits no
    /// longer published are skipped: a merge or rewrite replaced them meanwhile.
    async fn update_splits_delete_opstamp(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
        delete_opstamp: u64,
    ) -> MetastoreResult<()>;

    /// Stores a new API key; `false`, changing nothing, when a key with its id exists.
    async fn create_api_key(&self, record: ApiKeyRecord) -> MetastoreResult<bool>;

    /// Every API key, invalidated and expired ones included, by id.
    async fn list_api_keys(&self) -> MetastoreResult<Vec<ApiKeyRecord>>;

    /// Invalidates the keys; returns the ids that were valid before the call.
    async fn invalidate_api_keys(&self, ids: &[String]) -> MetastoreResult<Vec<String>>;
}
