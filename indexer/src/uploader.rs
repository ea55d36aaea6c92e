use std::sync::Arc;
use std::time::Duration;

use quarry_common::metastore::{Metastore, MetastoreError};
use quarry_common::storage::StorageResolver;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::models::{PackagedSplit, Progress, UploadItem};
use crate::publisher::publish;
use crate::wal::ShardLog;

/// Uploads packaged splits in order and publishes each one, retrying transient failures so
/// that nothing accepted is dropped while storage or metastore are briefly unavailable.
#[derive(Clone)]
pub(crate) struct Uploader {
    pub metastore: Arc<dyn Metastore>,
    pub resolver: StorageResolver,
    /// Crash tests widen the upload and publish windows with this pause so that a kill
    /// lands inside them (`QUARRY_FAULT_INJECTION_DELAY_MS`); unset in production.
    pub fault_injection_delay: Option<Duration>,
    /// The checkpoint partition this node's write-ahead logs publish to.
    pub wal_partition: Arc<str>,
}

impl Uploader {
    pub(crate) fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        wal_partition: Arc<str>,
    ) -> Uploader {
        let fault_injection_delay = std::env::var("QUARRY_FAULT_INJECTION_DELAY_MS")
            .ok()
            .and_then(|millis| millis.parse().ok())
            .map(Duration::from_millis);
        Uploader {
            metastore,
            resolver,
            fault_injection_delay,
            wal_partition,
        }
    }

    async fn fault_injection_pause(&self) {
        if let Some(delay) = self.fault_injection_delay {
            tokio::time::sleep(delay).await;
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Uploader {
    pub(crate) async fn run(
        self,
        mut items: mpsc::UnboundedReceiver<UploadItem>,
        progress: Arc<watch::Sender<Progress>>,
        wal: Arc<dyn ShardLog>,
    ) {
        while let Some(item) = items.recv().await {
            if let Some(split) = item.split {
                let checkpoint_end = split.checkpoint_delta.map(|(_, to)| to);
                if !self.upload_with_retries(split, &progress).await {
                    // Later splits would not continue the checkpoint: stop, so that a new
                    // pipeline replays from the last published position.
                    break;
                }
                if let Some(to) = checkpoint_end {
                    // Published records are no longer needed for replay.
                    wal.truncate(to);
                }
            }
            progress.send_modify(|progress| {
                progress.published_position = progress.published_position.max(item.covers)
            });
        }
        progress.send_modify(|progress| progress.stopped = true);
    }

    /// False if the split could not be published and never will be.
    async fn upload_with_retries(
        &self,
        split: PackagedSplit,
        progress: &watch::Sender<Progress>,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        let published = loop {
            match self.upload_and_publish(&split).await {
                Ok(()) => break true,
                Err(UploadError::Permanent(message)) => {
                    warn!(split_id = %split.metadata.split_id, "split dropped: {message}");
                    progress.send_modify(|progress| progress.last_error = Some(message.clone()));
                    break false;
                }
                Err(UploadError::Transient(message)) => {
                    warn!(split_id = %split.metadata.split_id, "upload failed, retrying in {backoff:?}: {message}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if let Err(error) = tokio::fs::remove_file(&split.local_path).await {
            warn!(
                "could not remove local split file {}: {error}",
                split.local_path.display()
            );
        }
        published
    }

    async fn upload_and_publish(&self, split: &PackagedSplit) -> Result<(), UploadError> {
        let mut metadata = split.metadata.clone();
        // Delete tasks created before now apply to older splits only: documents published
        // from here on were not there when the task was asked for.
        metadata.delete_opstamp = self
            .metastore
            .last_delete_opstamp(&metadata.index_uid)
            .await
            .map_err(UploadError::from_metastore)?;
        let metadata = &metadata;
        let index_metadata = self
            .metastore
            .index_metadata(metadata.index_uid.index_id())
            .await
            .map_err(UploadError::from_metastore)?;
        if index_metadata.index_uid != metadata.index_uid {
            return Err(UploadError::Permanent("the index was deleted".to_string()));
        }
        // Staged before upload: a crash between the two leaves a record the janitor can use
        // to delete the orphan file.
        self.metastore
            .stage_splits(&metadata.index_uid, vec![metadata.clone()])
            .await
            .map_err(UploadError::from_metastore)?;
        let storage = self
            .resolver
            .resolve(index_metadata.index_uri())
            .map_err(|error| UploadError::Permanent(error.to_string()))?;
        info!(split_id = %metadata.split_id, "uploading split");
        self.fault_injection_pause().await;
        storage
            .put_file(&metadata.split_id.file_name(), &split.local_path)
            .await
            .map_err(|error| UploadError::Transient(error.to_string()))?;
        info!(split_id = %metadata.split_id, "publishing split");
        self.fault_injection_pause().await;
        publish(
            &*self.metastore,
            &index_metadata,
            metadata,
            &self.wal_partition,
            split.checkpoint_delta,
        )
        .await
        .map_err(UploadError::from_metastore)?;
        info!(index_id = metadata.index_uid.index_id(), split_id = %metadata.split_id, num_docs = metadata.num_docs, "split published");
        Ok(())
    }
}

enum UploadError {
    Transient(String),
    Permanent(String),
}

impl UploadError {
    fn from_metastore(error: MetastoreError) -> UploadError {
        if error.is_transient() {
            UploadError::Transient(error.to_string())
        } else {
            UploadError::Permanent(error.to_string())
        }
    }
}
