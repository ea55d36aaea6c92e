use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quarry_common::doc_mapper::{DocMapper, ParsedDoc};
use quarry_common::metastore::{Metastore, MetastoreError};
use quarry_common::storage::StorageResolver;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::pipeline::Pipeline;
use crate::uploader::Uploader;
use crate::CommitMode;

pub(crate) const INGEST_SOURCE_ID: &str = "_ingest-api-source";
/// Enough failures to see a pattern without echoing a whole bad file back.
const MAX_REPORTED_FAILURES: usize = 100;
const MAX_FAILURE_DOCUMENT_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("index `{0}` not found")]
    IndexNotFound(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Internal(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParseFailure {
    /// 1-based line number in the request body.
    pub line: usize,
    pub reason: String,
    /// The start of the rejected line.
    pub document: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestResponse {
    pub num_docs_for_processing: u64,
    pub num_ingested_docs: u64,
    pub num_rejected_docs: u64,
    pub parse_failures: Vec<ParseFailure>,
}

/// Accepts NDJSON batches for any index and feeds them to that index's pipeline, starting
/// pipelines on first use.
pub struct IngestService {
    metastore: Arc<dyn Metastore>,
    uploader: Uploader,
    scratch_dir: PathBuf,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    accepting: AtomicBool,
}

struct MappedBatch {
    docs: Vec<ParsedDoc>,
    num_bytes: u64,
    response: IngestResponse,
}

impl IngestService {
    /// `data_dir/indexing` holds splits being built; nothing there outlives a restart.
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        data_dir: PathBuf,
    ) -> std::io::Result<IngestService> {
        let scratch_dir = data_dir.join("indexing");
        if scratch_dir.exists() {
            std::fs::remove_dir_all(&scratch_dir)?;
        }
        std::fs::create_dir_all(&scratch_dir)?;
        Ok(IngestService {
            uploader: Uploader {
                metastore: metastore.clone(),
                resolver,
            },
            metastore,
            scratch_dir,
            pipelines: Mutex::new(HashMap::new()),
            accepting: AtomicBool::new(true),
        })
    }

    async fn pipeline(&self, index_id: &str) -> Result<Arc<Pipeline>, IngestError> {
        let index_metadata = match self.metastore.index_metadata(index_id).await {
            Ok(metadata) => metadata,
            Err(MetastoreError::IndexNotFound(_)) => {
                return Err(IngestError::IndexNotFound(index_id.to_string()))
            }
            Err(error) => return Err(IngestError::Internal(error.to_string())),
        };
        let mut pipelines = self.pipelines.lock().await;
        if let Some(pipeline) = pipelines.get(index_id) {
            if pipeline.index_metadata.index_uid == index_metadata.index_uid
                && pipeline.is_alive().await
            {
                return Ok(pipeline.clone());
            }
        }
        // A pipeline of an older incarnation of the index must not publish into the new one,
        // and a dead one is replaced.
        if let Some(stale) = pipelines.remove(index_id) {
            stale.abort().await;
        }
        let scratch_dir = self
            .scratch_dir
            .join(index_metadata.index_uid.to_string().replace(':', "_"));
        let pipeline = Pipeline::spawn(index_metadata, scratch_dir, self.uploader.clone())
            .map_err(|error| {
                IngestError::Internal(format!("cannot start the indexing pipeline: {error}"))
            })?;
        pipelines.insert(index_id.to_string(), pipeline.clone());
        Ok(pipeline)
    }

    pub async fn ingest(
        &self,
        index_id: &str,
        body: Bytes,
        commit_mode: CommitMode,
    ) -> Result<IngestResponse, IngestError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(IngestError::ShuttingDown);
        }
        let pipeline = self.pipeline(index_id).await?;
        let doc_mapper = pipeline.doc_mapper.clone();
        // JSON parsing and mapping is CPU work: off the async threads.
        let batch = tokio::task::spawn_blocking(move || map_batch(&doc_mapper, &body))
            .await
            .map_err(|error| {
                IngestError::Internal(format!("document mapping panicked: {error}"))
            })?;
        let response = batch.response;
        let seq = if batch.docs.is_empty() {
            None
        } else {
            Some(
                pipeline
                    .add_docs(batch.docs, batch.num_bytes)
                    .await
                    .map_err(IngestError::Internal)?,
            )
        };
        match commit_mode {
            CommitMode::Auto => {}
            CommitMode::WaitFor => {
                if let Some(seq) = seq {
                    pipeline
                        .wait_published(seq)
                        .await
                        .map_err(IngestError::Internal)?;
                }
            }
            CommitMode::Force => {
                let commit_seq = pipeline
                    .force_commit()
                    .await
                    .map_err(IngestError::Internal)?;
                pipeline
                    .wait_published(commit_seq)
                    .await
                    .map_err(IngestError::Internal)?;
            }
        }
        Ok(response)
    }

    /// Stops the pipeline of a deleted index without publishing what it buffered.
    pub async fn drop_index(&self, index_id: &str) {
        let pipeline = self.pipelines.lock().await.remove(index_id);
        if let Some(pipeline) = pipeline {
            pipeline.abort().await;
        }
    }

    /// Refuses new batches, then publishes what every pipeline holds.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        let pipelines: Vec<Arc<Pipeline>> = self
            .pipelines
            .lock()
            .await
            .drain()
            .map(|(_, pipeline)| pipeline)
            .collect();
        for pipeline in pipelines {
            pipeline.shutdown().await;
        }
    }
}

fn truncate(text: &str, max_len: usize) -> String {
    if text.len() <= max_len {
        return text.to_string();
    }
    let mut cut = max_len;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

fn map_batch(doc_mapper: &DocMapper, body: &[u8]) -> MappedBatch {
    let mut batch = MappedBatch {
        docs: Vec::new(),
        num_bytes: 0,
        response: IngestResponse::default(),
    };
    for (line_index, line) in body.split(|byte| *byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        batch.response.num_docs_for_processing += 1;
        match doc_mapper.doc_from_json_bytes(line) {
            Ok(doc) => {
                batch.num_bytes += line.len() as u64;
                batch.docs.push(doc);
            }
            Err(error) => {
                batch.response.num_rejected_docs += 1;
                if batch.response.parse_failures.len() < MAX_REPORTED_FAILURES {
                    batch.response.parse_failures.push(ParseFailure {
                        line: line_index + 1,
                        reason: error.to_string(),
                        document: truncate(
                            &String::from_utf8_lossy(line),
                            MAX_FAILURE_DOCUMENT_LEN,
                        ),
                    });
                }
            }
        }
    }
    batch.response.num_ingested_docs = batch.docs.len() as u64;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_config::{ConfigFormat, IndexConfig};

    #[test]
    fn bad_lines_are_rejected_alone() {
        let config = IndexConfig::parse(
            b"index_id: t1\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: n, type: u64}\n  timestamp_field: ts",
            ConfigFormat::Yaml,
        )
        .unwrap();
        let mapper = DocMapper::new(&config);
        let body = b"{\"ts\": 1, \"n\": 1}\n\n{oops\n[1]\n{\"n\": 2}\n{\"ts\": 2, \"n\": \"x\"}\n{\"ts\": 3, \"extra\": 1}\n{\"ts\": 4}\n";
        let batch = map_batch(&mapper, body);
        assert_eq!(batch.docs.len(), 2);
        let response = batch.response;
        assert_eq!(response.num_docs_for_processing, 7);
        assert_eq!(response.num_ingested_docs, 2);
        assert_eq!(response.num_rejected_docs, 5);
        let lines: Vec<usize> = response
            .parse_failures
            .iter()
            .map(|failure| failure.line)
            .collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert_eq!(
            response.parse_failures[1].reason,
            "document is not a JSON object"
        );
        assert_eq!(
            response.parse_failures[2].reason,
            "timestamp field `ts` is missing"
        );
        assert_eq!(response.parse_failures[0].document, "{oops");
    }
}
