//! The metastore of a node that does not run the `metastore` service, with a file-backed
//! metastore: every call goes to the node that does, over `/internal/v1/metastore`. The
//! file-backed metastore keeps its state in memory and serialises writes, so exactly one
//! process may serve it; everyone else is a client.
//!
//! Calls are JSON (`MetastoreRequest`) and answer the result's JSON, or an error that
//! carries the `MetastoreError` variant across (`WireError`), so callers handle remote
//! and local failures alike. Calls are retried while no metastore node is known or it
//! cannot be reached, within `retry_window`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quarry_config::IndexConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{
    CheckpointDelta, DeleteQuery, DeleteTask, IndexMetadata, ListSplitsQuery, Metastore,
    MetastoreError, MetastoreResult, Split, SplitMetadata,
};
use crate::api_keys::ApiKeyRecord;
use crate::{IndexUid, SplitId};

pub const METASTORE_ENDPOINT: &str = "/internal/v1/metastore";

/// One metastore call, as the trait's method and arguments.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetastoreRequest {
    CreateIndex {
        index_config: IndexConfig,
    },
    IndexMetadata {
        index_id: String,
    },
    ListIndexes,
    DeleteIndex {
        index_uid: IndexUid,
    },
    StageSplits {
        index_uid: IndexUid,
        splits: Vec<SplitMetadata>,
    },
    PublishSplits {
        index_uid: IndexUid,
        staged_split_ids: Vec<SplitId>,
        replaced_split_ids: Vec<SplitId>,
        checkpoint_delta: Option<CheckpointDelta>,
    },
    ListSplits {
        index_uid: IndexUid,
        query: ListSplitsQuery,
    },
    MarkSplitsForDeletion {
        index_uid: IndexUid,
        split_ids: Vec<SplitId>,
    },
    DeleteSplits {
        index_uid: IndexUid,
        split_ids: Vec<SplitId>,
    },
    CreateDeleteTask {
        delete_query: DeleteQuery,
    },
    ListDeleteTasks {
        index_uid: IndexUid,
        opstamp_start: u64,
    },
    LastDeleteOpstamp {
        index_uid: IndexUid,
    },
    UpdateSplitsDeleteOpstamp {
        index_uid: IndexUid,
        split_ids: Vec<SplitId>,
        delete_opstamp: u64,
    },
    CreateApiKey {
        record: ApiKeyRecord,
    },
    ListApiKeys,
    InvalidateApiKeys {
        ids: Vec<String>,
    },
}

impl MetastoreRequest {
    /// Whether running the call twice has the effect of running it once, so that a call
    /// whose answer was lost may be sent again. Creations and publishes are not: a lost
    /// answer to those surfaces as an error and the caller's own recovery (a pipeline
    /// replays from the published checkpoint) takes over.
    fn is_idempotent(&self) -> bool {
        !matches!(
            self,
            MetastoreRequest::CreateIndex { .. }
                | MetastoreRequest::PublishSplits { .. }
                | MetastoreRequest::CreateDeleteTask { .. }
                | MetastoreRequest::CreateApiKey { .. }
        )
    }

    /// Runs the call on a local metastore; the metastore node's handler.
    pub async fn execute(self, metastore: &dyn Metastore) -> Result<serde_json::Value, WireError> {
        fn json<T: Serialize>(value: T) -> Result<serde_json::Value, WireError> {
            serde_json::to_value(value).map_err(|error| WireError::Database {
                message: format!("cannot encode the answer: {error}"),
            })
        }
        match self {
            MetastoreRequest::CreateIndex { index_config } => {
                json(metastore.create_index(index_config).await?)
            }
            MetastoreRequest::IndexMetadata { index_id } => {
                json(metastore.index_metadata(&index_id).await?)
            }
            MetastoreRequest::ListIndexes => json(metastore.list_indexes().await?),
            MetastoreRequest::DeleteIndex { index_uid } => {
                json(metastore.delete_index(&index_uid).await?)
            }
            MetastoreRequest::StageSplits { index_uid, splits } => {
                json(metastore.stage_splits(&index_uid, splits).await?)
            }
            MetastoreRequest::PublishSplits {
                index_uid,
                staged_split_ids,
                replaced_split_ids,
                checkpoint_delta,
            } => json(
                metastore
                    .publish_splits(
                        &index_uid,
                        &staged_split_ids,
                        &replaced_split_ids,
                        checkpoint_delta,
                    )
                    .await?,
            ),
            MetastoreRequest::ListSplits { index_uid, query } => {
                json(metastore.list_splits(&index_uid, &query).await?)
            }
            MetastoreRequest::MarkSplitsForDeletion {
                index_uid,
                split_ids,
            } => json(
                metastore
                    .mark_splits_for_deletion(&index_uid, &split_ids)
                    .await?,
            ),
            MetastoreRequest::DeleteSplits {
                index_uid,
                split_ids,
            } => json(metastore.delete_splits(&index_uid, &split_ids).await?),
            MetastoreRequest::CreateDeleteTask { delete_query } => {
                json(metastore.create_delete_task(delete_query).await?)
            }
            MetastoreRequest::ListDeleteTasks {
                index_uid,
                opstamp_start,
            } => json(
                metastore
                    .list_delete_tasks(&index_uid, opstamp_start)
                    .await?,
            ),
            MetastoreRequest::LastDeleteOpstamp { index_uid } => {
                json(metastore.last_delete_opstamp(&index_uid).await?)
            }
            MetastoreRequest::UpdateSplitsDeleteOpstamp {
                index_uid,
                split_ids,
                delete_opstamp,
            } => json(
                metastore
                    .update_splits_delete_opstamp(&index_uid, &split_ids, delete_opstamp)
                    .await?,
            ),
            MetastoreRequest::CreateApiKey { record } => {
                json(metastore.create_api_key(record).await?)
            }
            MetastoreRequest::ListApiKeys => json(metastore.list_api_keys().await?),
            MetastoreRequest::InvalidateApiKeys { ids } => {
                json(metastore.invalidate_api_keys(&ids).await?)
            }
        }
    }
}

/// A `MetastoreError` as it crosses the network. Storage errors arrive as `Unavailable`:
/// both are what a retry may cure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireError {
    IndexAlreadyExists {
        index_id: String,
    },
    IndexNotFound {
        index_id: String,
    },
    SplitsNotFound {
        index_id: String,
        split_ids: Vec<String>,
    },
    SplitsNotInExpectedState {
        index_id: String,
        message: String,
    },
    CheckpointConflict {
        index_id: String,
        message: String,
    },
    Corrupt {
        path: String,
        message: String,
    },
    InvalidArgument {
        message: String,
    },
    Unavailable {
        message: String,
    },
    Database {
        message: String,
    },
}

impl From<MetastoreError> for WireError {
    fn from(error: MetastoreError) -> WireError {
        match error {
            MetastoreError::IndexAlreadyExists(index_id) => {
                WireError::IndexAlreadyExists { index_id }
            }
            MetastoreError::IndexNotFound(index_id) => WireError::IndexNotFound { index_id },
            MetastoreError::SplitsNotFound {
                index_id,
                split_ids,
            } => WireError::SplitsNotFound {
                index_id,
                split_ids,
            },
            MetastoreError::SplitsNotInExpectedState { index_id, message } => {
                WireError::SplitsNotInExpectedState { index_id, message }
            }
            MetastoreError::CheckpointConflict { index_id, message } => {
                WireError::CheckpointConflict { index_id, message }
            }
            MetastoreError::Corrupt { path, message } => WireError::Corrupt { path, message },
            MetastoreError::InvalidArgument(message) => WireError::InvalidArgument { message },
            MetastoreError::Storage(error) => WireError::Unavailable {
                message: format!("metastore storage error: {error}"),
            },
            MetastoreError::Unavailable(message) => WireError::Unavailable { message },
            MetastoreError::Database(message) => WireError::Database { message },
        }
    }
}

impl From<WireError> for MetastoreError {
    fn from(error: WireError) -> MetastoreError {
        match error {
            WireError::IndexAlreadyExists { index_id } => {
                MetastoreError::IndexAlreadyExists(index_id)
            }
            WireError::IndexNotFound { index_id } => MetastoreError::IndexNotFound(index_id),
            WireError::SplitsNotFound {
                index_id,
                split_ids,
            } => MetastoreError::SplitsNotFound {
                index_id,
                split_ids,
            },
            WireError::SplitsNotInExpectedState { index_id, message } => {
                MetastoreError::SplitsNotInExpectedState { index_id, message }
            }
            WireError::CheckpointConflict { index_id, message } => {
                MetastoreError::CheckpointConflict { index_id, message }
            }
            WireError::Corrupt { path, message } => MetastoreError::Corrupt { path, message },
            WireError::InvalidArgument { message } => MetastoreError::InvalidArgument(message),
            WireError::Unavailable { message } => MetastoreError::Unavailable(message),
            WireError::Database { message } => MetastoreError::Database(message),
        }
    }
}

/// The body of a failed metastore call: the usual `{"error": …}` for people, and the
/// variant for the client.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireErrorBody {
    pub error: String,
    pub metastore_error: WireError,
}

/// Where the metastore node is now: the REST `host:port` of a live node running the
/// `metastore` service, from the node's membership view.
pub type MetastoreLocator = Arc<dyn Fn() -> Option<String> + Send + Sync>;

pub struct RemoteMetastore {
    http: reqwest::Client,
    transport: crate::node_transport::NodeTransport,
    locate: MetastoreLocator,
    retry_window: Duration,
}

impl std::fmt::Debug for RemoteMetastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteMetastore").finish_non_exhaustive()
    }
}

enum CallError {
    /// The call may be sent again: nothing reached the metastore, or it is idempotent.
    Retryable(String),
    Final(MetastoreError),
}

impl RemoteMetastore {
    /// `transport`: how the metastore node's `/internal/v1` is reached (secret, TLS).
    pub fn new(
        locate: MetastoreLocator,
        retry_window: Duration,
        transport: &crate::node_transport::NodeTransport,
    ) -> RemoteMetastore {
        RemoteMetastore {
            transport: transport.clone(),
            http: transport
                .client_builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            locate,
            retry_window,
        }
    }

    async fn call<T: DeserializeOwned>(&self, request: MetastoreRequest) -> MetastoreResult<T> {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let error = match self.call_once(&request).await {
                Ok(value) => {
                    return serde_json::from_value(value).map_err(|error| {
                        MetastoreError::Database(format!(
                            "the metastore node's answer does not parse: {error}"
                        ))
                    })
                }
                Err(CallError::Final(error)) => return Err(error),
                Err(CallError::Retryable(error)) => error,
            };
            if started.elapsed() + backoff > self.retry_window {
                return Err(MetastoreError::Unavailable(format!(
                    "no metastore node answered within {} s: {error}",
                    self.retry_window.as_secs()
                )));
            }
            warn!("metastore call failed, retrying in {backoff:?}: {error}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn call_once(&self, request: &MetastoreRequest) -> Result<serde_json::Value, CallError> {
        let Some(address) = (self.locate)() else {
            return Err(CallError::Retryable(
                "no live node runs the metastore service".to_string(),
            ));
        };
        let response = self
            .http
            .post(self.transport.url(&address, METASTORE_ENDPOINT))
            .json(request)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // Nothing was sent when the connection failed: always safe to send again.
            Err(error) if error.is_connect() || request.is_idempotent() => {
                return Err(CallError::Retryable(format!("{address}: {error}")))
            }
            Err(error) => {
                return Err(CallError::Final(MetastoreError::Unavailable(format!(
                    "{address}: {error} (the call may or may not have taken effect)"
                ))))
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) if request.is_idempotent() => {
                return Err(CallError::Retryable(format!("{address}: {error}")))
            }
            Err(error) => {
                return Err(CallError::Final(MetastoreError::Unavailable(format!(
                    "{address}: {error} (the call may or may not have taken effect)"
                ))))
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|error| {
                CallError::Final(MetastoreError::Database(format!(
                    "the metastore node's answer does not parse: {error}"
                )))
            });
        }
        match serde_json::from_slice::<WireErrorBody>(&body) {
            Ok(WireErrorBody {
                metastore_error: WireError::Unavailable { message },
                ..
            }) if request.is_idempotent() => Err(CallError::Retryable(message)),
            Ok(body) => Err(CallError::Final(body.metastore_error.into())),
            // A node that is not (or no longer) the metastore, or is shutting down.
            Err(_) if status.as_u16() == 503 || status.as_u16() == 404 => {
                Err(CallError::Retryable(format!(
                    "{address} answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(256)])
                )))
            }
            Err(_) => Err(CallError::Final(MetastoreError::Database(format!(
                "{address} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(256)])
            )))),
        }
    }
}

#[async_trait]
impl Metastore for RemoteMetastore {
    async fn create_index(&self, index_config: IndexConfig) -> MetastoreResult<IndexMetadata> {
        self.call(MetastoreRequest::CreateIndex { index_config })
            .await
    }

    async fn index_metadata(&self, index_id: &str) -> MetastoreResult<IndexMetadata> {
        self.call(MetastoreRequest::IndexMetadata {
            index_id: index_id.to_string(),
        })
        .await
    }

    async fn list_indexes(&self) -> MetastoreResult<Vec<IndexMetadata>> {
        self.call(MetastoreRequest::ListIndexes).await
    }

    async fn delete_index(&self, index_uid: &IndexUid) -> MetastoreResult<()> {
        self.call(MetastoreRequest::DeleteIndex {
            index_uid: index_uid.clone(),
        })
        .await
    }

    async fn stage_splits(
        &self,
        index_uid: &IndexUid,
        splits: Vec<SplitMetadata>,
    ) -> MetastoreResult<()> {
        self.call(MetastoreRequest::StageSplits {
            index_uid: index_uid.clone(),
            splits,
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
        self.call(MetastoreRequest::PublishSplits {
            index_uid: index_uid.clone(),
            staged_split_ids: staged_split_ids.to_vec(),
            replaced_split_ids: replaced_split_ids.to_vec(),
            checkpoint_delta,
        })
        .await
    }

    async fn list_splits(
        &self,
        index_uid: &IndexUid,
        query: &ListSplitsQuery,
    ) -> MetastoreResult<Vec<Split>> {
        self.call(MetastoreRequest::ListSplits {
            index_uid: index_uid.clone(),
            query: query.clone(),
        })
        .await
    }

    async fn mark_splits_for_deletion(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        self.call(MetastoreRequest::MarkSplitsForDeletion {
            index_uid: index_uid.clone(),
            split_ids: split_ids.to_vec(),
        })
        .await
    }

    async fn delete_splits(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
    ) -> MetastoreResult<()> {
        self.call(MetastoreRequest::DeleteSplits {
            index_uid: index_uid.clone(),
            split_ids: split_ids.to_vec(),
        })
        .await
    }

    async fn create_delete_task(&self, delete_query: DeleteQuery) -> MetastoreResult<DeleteTask> {
        self.call(MetastoreRequest::CreateDeleteTask { delete_query })
            .await
    }

    async fn list_delete_tasks(
        &self,
        index_uid: &IndexUid,
        opstamp_start: u64,
    ) -> MetastoreResult<Vec<DeleteTask>> {
        self.call(MetastoreRequest::ListDeleteTasks {
            index_uid: index_uid.clone(),
            opstamp_start,
        })
        .await
    }

    async fn last_delete_opstamp(&self, index_uid: &IndexUid) -> MetastoreResult<u64> {
        self.call(MetastoreRequest::LastDeleteOpstamp {
            index_uid: index_uid.clone(),
        })
        .await
    }

    async fn update_splits_delete_opstamp(
        &self,
        index_uid: &IndexUid,
        split_ids: &[SplitId],
        delete_opstamp: u64,
    ) -> MetastoreResult<()> {
        self.call(MetastoreRequest::UpdateSplitsDeleteOpstamp {
            index_uid: index_uid.clone(),
            split_ids: split_ids.to_vec(),
            delete_opstamp,
        })
        .await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> MetastoreResult<bool> {
        self.call(MetastoreRequest::CreateApiKey { record }).await
    }

    async fn list_api_keys(&self) -> MetastoreResult<Vec<ApiKeyRecord>> {
        self.call(MetastoreRequest::ListApiKeys).await
    }

    async fn invalidate_api_keys(&self, ids: &[String]) -> MetastoreResult<Vec<String>> {
        self.call(MetastoreRequest::InvalidateApiKeys { ids: ids.to_vec() })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_variant_across_the_wire() {
        let errors = [
            MetastoreError::IndexAlreadyExists("logs".to_string()),
            MetastoreError::IndexNotFound("logs".to_string()),
            MetastoreError::CheckpointConflict {
                index_id: "logs".to_string(),
                message: "at 5".to_string(),
            },
            MetastoreError::Unavailable("down".to_string()),
        ];
        for error in errors {
            let text = error.to_string();
            let wire = serde_json::to_string(&WireError::from(error)).unwrap();
            let back: MetastoreError = serde_json::from_str::<WireError>(&wire).unwrap().into();
            assert_eq!(back.to_string(), text);
        }
    }

    #[test]
    fn requests_are_tagged_by_method_and_refuse_unknown_fields() {
        let request: MetastoreRequest =
            serde_json::from_str(r#"{"method": "index_metadata", "index_id": "logs"}"#).unwrap();
        assert!(matches!(request, MetastoreRequest::IndexMetadata { .. }));
        let error = serde_json::from_str::<MetastoreRequest>(r#"{"method": "drop_everything"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown variant `drop_everything`"),
            "{error}"
        );
        assert!(!MetastoreRequest::PublishSplits {
            index_uid: IndexUid::new("logs"),
            staged_split_ids: Vec::new(),
            replaced_split_ids: Vec::new(),
            checkpoint_delta: None,
        }
        .is_idempotent());
    }
}
