use std::sync::Arc;

use quarry_common::metastore::{
    DeleteQuery, DeleteTask, IndexMetadata, ListSplitsQuery, Metastore, MetastoreError, Split,
    SplitState,
};
use quarry_common::storage::{StorageError, StorageResolver};
use quarry_common::SplitId;
use quarry_config::{ConfigError, ConfigFormat, IndexConfig};
use quarry_indexer::IngestService;
use quarry_searcher::SearchService;
use serde::Serialize;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum IndexServiceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid delete query: {0}")]
    InvalidDeleteQuery(String),
    #[error(transparent)]
    Metastore(#[from] MetastoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// `POST /api/v1/{index}/delete-tasks`: documents to delete, in the search API's terms.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteTaskRequest {
    pub query: String,
    #[serde(default)]
    pub search_field: Option<Vec<String>>,
    #[serde(default)]
    pub start_timestamp: Option<i64>,
    #[serde(default)]
    pub end_timestamp: Option<i64>,
}

/// Summary of an index for `describe`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndexDescription {
    pub index_id: String,
    pub index_uid: String,
    pub index_uri: String,
    pub num_published_splits: usize,
    pub num_published_docs: u64,
    pub size_published_splits_bytes: u64,
    pub size_published_docs_uncompressed_bytes: u64,
    pub timestamp_field: Option<String>,
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    pub create_timestamp: i64,
    pub index_config: IndexConfig,
}

/// Index lifecycle: creation (with a default location), description and deletion, which
/// involves the metastore, object storage and the running pipelines.
pub struct IndexService {
    metastore: Arc<dyn Metastore>,
    resolver: StorageResolver,
    default_index_root_uri: String,
    ingest: Arc<IngestService>,
    search: Arc<SearchService>,
}

impl IndexService {
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        default_index_root_uri: String,
        ingest: Arc<IngestService>,
        search: Arc<SearchService>,
    ) -> IndexService {
        IndexService {
            metastore,
            resolver,
            default_index_root_uri,
            ingest,
            search,
        }
    }

    pub async fn create_index(
        &self,
        body: &[u8],
        format: ConfigFormat,
    ) -> Result<IndexMetadata, IndexServiceError> {
        let config = IndexConfig::parse(body, format)?;
        self.create_index_from_config(config).await
    }

    /// Creates an index from a config already parsed and validated (an index template's).
    pub(crate) async fn create_index_from_config(
        &self,
        mut config: IndexConfig,
    ) -> Result<IndexMetadata, IndexServiceError> {
        let index_uri = match &config.index_uri {
            Some(uri) => StorageResolver::normalize_uri(uri)?,
            None => {
                let root = StorageResolver::normalize_uri(&self.default_index_root_uri)?;
                format!("{root}/{}", config.index_id)
            }
        };
        config.index_uri = Some(index_uri);
        let metadata = self.metastore.create_index(config).await?;
        info!(
            index_id = metadata.index_id(),
            index_uri = metadata.index_uri(),
            "index created"
        );
        Ok(metadata)
    }

    pub(crate) fn metastore(&self) -> Arc<dyn Metastore> {
        self.metastore.clone()
    }

    pub async fn list_indexes(&self) -> Result<Vec<IndexMetadata>, IndexServiceError> {
        Ok(self.metastore.list_indexes().await?)
    }

    pub async fn describe_index(
        &self,
        index_id: &str,
    ) -> Result<IndexDescription, IndexServiceError> {
        let metadata = self.metastore.index_metadata(index_id).await?;
        let splits = self
            .metastore
            .list_splits(&metadata.index_uid, &ListSplitsQuery::published())
            .await?;
        let time_ranges = splits
            .iter()
            .filter_map(|split| split.split_metadata.time_range);
        let min_timestamp = time_ranges.clone().map(|range| range.start).min();
        let max_timestamp = time_ranges.map(|range| range.end).max();
        Ok(IndexDescription {
            index_id: metadata.index_id().to_string(),
            index_uid: metadata.index_uid.to_string(),
            index_uri: metadata.index_uri().to_string(),
            num_published_splits: splits.len(),
            num_published_docs: splits
                .iter()
                .map(|split| split.split_metadata.num_docs)
                .sum(),
            size_published_splits_bytes: splits
                .iter()
                .map(|split| split.split_metadata.file_size_bytes)
                .sum(),
            size_published_docs_uncompressed_bytes: splits
                .iter()
                .map(|split| split.split_metadata.uncompressed_docs_size_bytes)
                .sum(),
            timestamp_field: metadata.index_config.doc_mapping.timestamp_field.clone(),
            min_timestamp,
            max_timestamp,
            create_timestamp: metadata.create_timestamp,
            index_config: metadata.index_config,
        })
    }

    pub async fn list_splits(&self, index_id: &str) -> Result<Vec<Split>, IndexServiceError> {
        let metadata = self.metastore.index_metadata(index_id).await?;
        Ok(self
            .metastore
            .list_splits(&metadata.index_uid, &ListSplitsQuery::default())
            .await?)
    }

    /// Records a delete task after checking its query against the index's mapping; the
    /// merge planner applies it to the splits published before it.
    pub async fn create_delete_task(
        &self,
        index_id: &str,
        request: DeleteTaskRequest,
    ) -> Result<DeleteTask, IndexServiceError> {
        let metadata = self.metastore.index_metadata(index_id).await?;
        let delete_query = DeleteQuery {
            index_uid: metadata.index_uid.clone(),
            query: request.query,
            search_fields: request.search_field.unwrap_or_default(),
            start_timestamp: request.start_timestamp,
            end_timestamp: request.end_timestamp,
        };
        if let (Some(start), Some(end)) = (delete_query.start_timestamp, delete_query.end_timestamp)
        {
            if start > end {
                return Err(IndexServiceError::InvalidDeleteQuery(format!(
                    "start_timestamp ({start}) is after end_timestamp ({end})"
                )));
            }
        }
        let doc_mapper = quarry_common::doc_mapper::DocMapper::new(&metadata.index_config);
        quarry_query::delete_query::delete_query_ast(&delete_query, &doc_mapper)
            .map_err(IndexServiceError::InvalidDeleteQuery)?;
        let task = self.metastore.create_delete_task(delete_query).await?;
        info!(index_id, opstamp = task.opstamp, query = %task.delete_query.query, "delete task created");
        Ok(task)
    }

    pub async fn list_delete_tasks(
        &self,
        index_id: &str,
    ) -> Result<Vec<DeleteTask>, IndexServiceError> {
        let metadata = self.metastore.index_metadata(index_id).await?;
        Ok(self
            .metastore
            .list_delete_tasks(&metadata.index_uid, 0)
            .await?)
    }

    /// Deletes an index: its pipeline stops, its splits are marked, their files deleted,
    /// and only then is the index forgotten. A crash midway leaves an index whose
    /// remaining splits are all marked for deletion; deleting again finishes the job.
    pub async fn delete_index(&self, index_id: &str) -> Result<Vec<SplitId>, IndexServiceError> {
        let metadata = self.metastore.index_metadata(index_id).await?;
        let index_uid = metadata.index_uid.clone();
        self.ingest.drop_index(index_id).await;
        let splits = self
            .metastore
            .list_splits(&index_uid, &ListSplitsQuery::default())
            .await?;
        let split_ids: Vec<SplitId> = splits
            .iter()
            .map(|split| split.split_metadata.split_id.clone())
            .collect();
        let published: Vec<SplitId> = splits
            .iter()
            .filter(|split| split.split_state != SplitState::MarkedForDeletion)
            .map(|split| split.split_metadata.split_id.clone())
            .collect();
        self.metastore
            .mark_splits_for_deletion(&index_uid, &published)
            .await?;
        let storage = self.resolver.resolve(metadata.index_uri())?;
        for split_id in &split_ids {
            storage.delete(&split_id.file_name()).await?;
        }
        self.metastore.delete_splits(&index_uid, &split_ids).await?;
        self.metastore.delete_index(&index_uid).await?;
        // Object stores have no folders; a local one leaves the emptied one behind.
        if let Some(dir) = metadata.index_uri().strip_prefix("file://") {
            if let Err(error) = std::fs::remove_dir(dir) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir, "cannot remove the deleted index's folder: {error}");
                }
            }
        }
        self.search.forget_index(&index_uid, &split_ids);
        info!(index_id, num_splits = split_ids.len(), "index deleted");
        Ok(split_ids)
    }
}
