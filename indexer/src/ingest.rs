use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quarry_common::doc_mapper::{shard_hash, DocMapper, LogDocId, ParsedDoc};
use quarry_common::metastore::{IndexMetadata, Metastore, MetastoreError};
use quarry_common::storage::StorageResolver;
use quarry_common::IndexUid;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};
use tracing::{info, warn};

use crate::dedup::DedupWindow;
use crate::pipeline::Pipeline;
use crate::publisher::published_wal_position;
use crate::uploader::Uploader;
use crate::wal::{
    NodeLog, ObjectLogOptions, ShardLog, TocCache, WalOptions, WalWriter, SEGMENT_TARGET_BYTES,
};
use crate::CommitMode;

/// Enough failures to see a pattern without echoing a whole bad file back.
const MAX_REPORTED_FAILURES: usize = 100;
const MAX_FAILURE_DOCUMENT_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("index `{0}` not found")]
    IndexNotFound(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// Back-pressure: the client should retry after a while.
    #[error("{0}")]
    TooManyRequests(String),
    /// The shard cannot take writes until an operator repairs it.
    #[error("{0}")]
    ShardFailed(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ParseFailure {
    /// 1-based line number in the request body.
    pub line: usize,
    pub reason: String,
    /// The start of the rejected line.
    pub document: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    pub num_docs_for_processing: u64,
    pub num_ingested_docs: u64,
    pub num_rejected_docs: u64,
    pub parse_failures: Vec<ParseFailure>,
}

/// Limits that keep ingest from growing memory or disk without bound.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    pub max_in_flight_bytes: u64,
    pub wal_max_bytes: u64,
    pub wal_sync: bool,
    /// How long a `_bulk` `_id` is remembered, and how many per index at most.
    pub dedup_window: std::time::Duration,
    pub dedup_max_ids_per_index: usize,
}

/// A cluster's write-ahead logs on object storage (`ingest.wal_uri`): each node writes its
/// own shard of each index, named after the node and its generation (start time), so a
/// restarted node never appends to a log another node may be replaying.
#[derive(Clone)]
pub struct ObjectWalConfig {
    pub uri: String,
    pub generation: u64,
    pub flush_interval: std::time::Duration,
    pub flush_bytes: usize,
    /// Told the duration of every written flush (the node's latency histogram).
    pub observe_flush: Option<crate::wal::FlushObserver>,
}

/// The shard id of a node's log on object storage: `{node_id}.{generation}`.
pub(crate) fn object_shard_id(node_id: &str, generation: u64) -> String {
    format!("{node_id}.{generation}")
}

/// Where a node generation's log objects live: `{wal_uri}/{node_id}.{generation}`. Its
/// shards are named by `wal_dir_name` of their index.
pub(crate) fn node_log_uri(wal_uri: &str, shard_id: &str) -> String {
    format!("{}/{shard_id}", wal_uri.trim_end_matches('/'))
}

/// What became of an ingested batch.
#[derive(Debug)]
pub struct IngestOutcome {
    pub response: IngestResponse,
    /// Every rejected line (1-based) with the reason, not only the first ones.
    pub failures: Vec<(usize, String)>,
    /// The log id of the batch's first accepted document; the n-th accepted one (from 0)
    /// has line n. Documents without an `_id` of their own keep that id. `None` when no
    /// document was accepted.
    pub first_log_id: Option<LogDocId>,
}

/// One index's write path on this node: its write-ahead log and its pipeline.
struct Shard {
    index_metadata: IndexMetadata,
    wal: Arc<dyn ShardLog>,
    /// The local log's folder; `None` on object storage.
    local_dir: Option<PathBuf>,
    /// The checkpoint partition the pipeline publishes.
    partition: Arc<str>,
    pipeline: Arc<Pipeline>,
}

/// Accepts NDJSON batches for any index: maps them, makes them durable in the index's
/// write-ahead log, and hands them to the index's pipeline.
pub struct IngestService {
    pub(crate) metastore: Arc<dyn Metastore>,
    pub(crate) resolver: StorageResolver,
    pub(crate) uploader: Uploader,
    node_id: String,
    object_wal: Option<ObjectWalConfig>,
    /// This generation's log on object storage, started with the first shard.
    node_log: std::sync::OnceLock<Arc<NodeLog>>,
    /// Tables of contents of the log objects this node has read.
    pub(crate) tocs: Arc<TocCache>,
    /// Shards of other nodes' logs this node indexes (see `adoption`).
    pub(crate) adopted: Mutex<HashMap<(IndexUid, String), crate::adoption::AdoptedShard>>,
    /// The last pass deleting each adopted generation's published objects: when it started
    /// and how many objects it left (see `adoption`).
    pub(crate) generation_passes: Mutex<HashMap<String, (std::time::Instant, usize)>>,
    scratch_dir: PathBuf,
    wal_root: PathBuf,
    limits: IngestLimits,
    in_flight: Arc<Semaphore>,
    shards: Mutex<HashMap<String, Arc<Shard>>>,
    /// Shards that cannot start (a corrupt WAL), by index id, with the reason.
    failed_shards: std::sync::Mutex<BTreeMap<String, String>>,
    accepting: AtomicBool,
    dedup: DedupWindow,
    cut_merge_max_docs: u64,
}

pub(crate) struct MappedBatch {
    pub(crate) docs: Vec<ParsedDoc>,
    /// The accepted lines, as the WAL stores them; `None` when that is the whole body, as
    /// it nearly always is (no copy then).
    accepted: Option<Vec<u8>>,
    pub(crate) response: IngestResponse,
    /// Every rejected line: `(line number, reason)`.
    all_failures: Vec<(usize, String)>,
}

/// How an index uid names folders and key prefixes (`:` is not portable in paths).
pub fn wal_dir_name(index_uid: &IndexUid) -> String {
    index_uid.to_string().replace(':', "_")
}

impl IngestService {
    /// `data_dir/indexing` holds splits being built (nothing there outlives a restart);
    /// `data_dir/wal` holds the write-ahead logs.
    /// `node_id` names this node's partition of every index's ingest checkpoint.
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        data_dir: PathBuf,
        node_id: &str,
        limits: IngestLimits,
    ) -> std::io::Result<IngestService> {
        let scratch_dir = data_dir.join("indexing");
        if scratch_dir.exists() {
            std::fs::remove_dir_all(&scratch_dir)?;
        }
        std::fs::create_dir_all(&scratch_dir)?;
        let wal_root = data_dir.join("wal");
        std::fs::create_dir_all(&wal_root)?;
        let permits = limits
            .max_in_flight_bytes
            .min(Semaphore::MAX_PERMITS as u64) as usize;
        Ok(IngestService {
            uploader: Uploader::new(
                metastore.clone(),
                resolver.clone(),
                Arc::from(crate::publisher::wal_partition(node_id)),
            ),
            resolver,
            node_id: node_id.to_string(),
            object_wal: None,
            node_log: std::sync::OnceLock::new(),
            tocs: Arc::new(TocCache::default()),
            adopted: Mutex::new(HashMap::new()),
            generation_passes: Mutex::new(HashMap::new()),
            metastore,
            scratch_dir,
            wal_root,
            limits,
            in_flight: Arc::new(Semaphore::new(permits)),
            shards: Mutex::new(HashMap::new()),
            failed_shards: std::sync::Mutex::new(BTreeMap::new()),
            accepting: AtomicBool::new(true),
            dedup: DedupWindow::new(
                data_dir.join("dedup"),
                limits.dedup_window,
                limits.dedup_max_ids_per_index,
            ),
            cut_merge_max_docs: quarry_config::IndexerConfig::default().cut_merge_max_docs,
        })
    }

    /// Keeps the write-ahead logs on object storage instead of `data_dir/wal`.
    pub fn with_object_wal(mut self, config: ObjectWalConfig) -> IngestService {
        self.object_wal = Some(config);
        self
    }

    /// Splits of at most this many documents are merged into one segment when cut
    /// (`indexer.cut_merge_max_docs`).
    pub fn with_cut_merge_max_docs(mut self, max_docs: u64) -> IngestService {
        self.cut_merge_max_docs = max_docs;
        self
    }

    /// Restarts the shards that have write-ahead logs, so that documents acknowledged
    /// before a crash get indexed without waiting for new traffic; removes the logs of
    /// deleted indexes.
    pub async fn recover(&self) -> Result<(), IngestError> {
        if self.object_wal.is_some() {
            // This node starts a new generation: its older shards on object storage are
            // orphans that the control plane hands to some indexer.
            return Ok(());
        }
        let indexes = self
            .metastore
            .list_indexes()
            .await
            .map_err(|error| IngestError::Internal(error.to_string()))?;
        let entries = std::fs::read_dir(&self.wal_root)
            .map_err(|error| IngestError::Internal(error.to_string()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match indexes
                .iter()
                .find(|index| wal_dir_name(&index.index_uid) == name)
            {
                Some(index) => {
                    if let Err(error) = self.shard(index.index_id()).await {
                        warn!(index_id = index.index_id(), "shard did not start: {error}");
                    }
                }
                None => {
                    info!(wal = %entry.path().display(), "removing the write-ahead log of a deleted index");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Replaces the pipelines that stopped by new ones, which replay the log from the
    /// published checkpoint. Without this, acknowledged records behind a stopped pipeline
    /// would wait for the index's next ingest request.
    pub async fn restart_stopped_pipelines(&self) {
        let stopped: Vec<String> = self
            .shards
            .lock()
            .await
            .iter()
            .filter(|(_, shard)| !shard.pipeline.is_alive())
            .map(|(index_id, _)| index_id.clone())
            .collect();
        for index_id in stopped {
            if !self.accepting.load(Ordering::SeqCst) {
                return;
            }
            info!(index_id, "restarting a stopped indexing pipeline");
            match self.shard(&index_id).await {
                Ok(_) => {}
                // Deleted through another node: this node's shard of it goes too.
                Err(IngestError::IndexNotFound(_)) => self.drop_index(&index_id).await,
                Err(error) => warn!(index_id, "cannot restart the indexing pipeline: {error}"),
            }
        }
    }

    /// The shards of this node's own logs that are open now.
    pub async fn num_own_shards(&self) -> usize {
        self.shards.lock().await.len()
    }

    /// Shards that could not start, with the reason: readiness and metrics report them.
    pub fn failed_shards(&self) -> BTreeMap<String, String> {
        self.failed_shards
            .lock()
            .map(|failed| failed.clone())
            .unwrap_or_default()
    }

    async fn shard(&self, index_id: &str) -> Result<Arc<Shard>, IngestError> {
        let index_metadata = match self.metastore.index_metadata(index_id).await {
            Ok(metadata) => metadata,
            Err(MetastoreError::IndexNotFound(_)) => {
                return Err(IngestError::IndexNotFound(index_id.to_string()))
            }
            Err(error) => return Err(IngestError::Internal(error.to_string())),
        };
        let mut shards = self.shards.lock().await;
        if let Some(shard) = shards.get(index_id) {
            if shard.index_metadata.index_uid == index_metadata.index_uid {
                if shard.pipeline.is_alive() {
                    return Ok(shard.clone());
                }
                // A stopped pipeline is replaced; the new one replays from the checkpoint.
                let pipeline =
                    self.spawn_pipeline(&index_metadata, shard.wal.clone(), &shard.partition)?;
                let shard = Arc::new(Shard {
                    index_metadata,
                    wal: shard.wal.clone(),
                    local_dir: shard.local_dir.clone(),
                    partition: shard.partition.clone(),
                    pipeline,
                });
                shards.insert(index_id.to_string(), shard.clone());
                return Ok(shard);
            }
        }
        // A shard of an older incarnation of the index must not publish into the new one.
        if let Some(stale) = shards.remove(index_id) {
            stale.pipeline.abort().await;
        }
        let (wal, local_dir, partition) = match self.open_log(&index_metadata).await {
            Ok(opened) => opened,
            Err(error) => {
                let message = format!("shard of index `{index_id}` failed: {error}");
                if let Ok(mut failed) = self.failed_shards.lock() {
                    failed.insert(index_id.to_string(), message.clone());
                }
                return Err(IngestError::ShardFailed(message));
            }
        };
        if let Ok(mut failed) = self.failed_shards.lock() {
            failed.remove(index_id);
        }
        let pipeline = self.spawn_pipeline(&index_metadata, wal.clone(), &partition)?;
        let shard = Arc::new(Shard {
            index_metadata,
            wal,
            local_dir,
            partition,
            pipeline,
        });
        shards.insert(index_id.to_string(), shard.clone());
        Ok(shard)
    }

    /// This node's log of an index: local files, or its own shard on object storage.
    async fn open_log(
        &self,
        index_metadata: &IndexMetadata,
    ) -> Result<(Arc<dyn ShardLog>, Option<PathBuf>, Arc<str>), crate::wal::WalError> {
        match &self.object_wal {
            Some(config) => {
                let shard_id = object_shard_id(&self.node_id, config.generation);
                let node_log = match self.node_log.get() {
                    Some(node_log) => node_log.clone(),
                    None => {
                        let uri = node_log_uri(&config.uri, &shard_id);
                        let storage = self.resolver.resolve(&uri).map_err(|error| {
                            crate::wal::WalError::Io {
                                path: uri.clone().into(),
                                message: error.to_string(),
                            }
                        })?;
                        let started = NodeLog::start(
                            storage,
                            self.tocs.clone(),
                            ObjectLogOptions {
                                flush_interval: config.flush_interval,
                                flush_bytes: config.flush_bytes,
                                observe_flush: config.observe_flush.clone(),
                            },
                        );
                        // Callers hold the shards lock, so no other log starts meanwhile.
                        self.node_log.get_or_init(|| started).clone()
                    }
                };
                let log = node_log.open_shard(
                    &wal_dir_name(&index_metadata.index_uid),
                    published_wal_position(index_metadata, &shard_id),
                );
                Ok((Arc::new(log), None, Arc::from(shard_id)))
            }
            None => {
                let wal_dir = self.wal_root.join(wal_dir_name(&index_metadata.index_uid));
                let partition = self.uploader.wal_partition.clone();
                let wal = WalWriter::open(
                    &wal_dir,
                    WalOptions {
                        segment_target_bytes: SEGMENT_TARGET_BYTES,
                        sync: self.limits.wal_sync,
                    },
                    published_wal_position(index_metadata, &partition),
                )?;
                Ok((Arc::new(wal), Some(wal_dir), partition))
            }
        }
    }

    pub(crate) fn spawn_pipeline(
        &self,
        index_metadata: &IndexMetadata,
        wal: Arc<dyn ShardLog>,
        partition: &Arc<str>,
    ) -> Result<Arc<Pipeline>, IngestError> {
        let scratch_dir = self.scratch_dir.join(format!(
            "{}-{}",
            wal_dir_name(&index_metadata.index_uid),
            partition.replace([':', '/'], "_")
        ));
        let mut uploader = self.uploader.clone();
        uploader.wal_partition = partition.clone();
        let published = published_wal_position(index_metadata, partition);
        // What another pipeline published (an adopter, while this node was cut off) is
        // not this pipeline's to truncate after its own publish: it may have none.
        if published > 0 {
            wal.truncate(published);
        }
        Pipeline::spawn(
            index_metadata.clone(),
            scratch_dir,
            wal,
            published,
            uploader,
            self.cut_merge_max_docs,
        )
        .map_err(|error| {
            IngestError::Internal(format!("cannot start the indexing pipeline: {error}"))
        })
    }

    /// Maps the batch, appends its accepted documents to the WAL (answering only once they
    /// are on disk) and queues them for indexing; then waits as `commit_mode` says.
    pub async fn ingest(
        &self,
        index_id: &str,
        body: Bytes,
        commit_mode: CommitMode,
    ) -> Result<IngestResponse, IngestError> {
        Ok(self
            .ingest_detailed(index_id, body, commit_mode)
            .await?
            .response)
    }

    /// Like `ingest`, plus the reason of every rejected line and where the accepted ones
    /// were logged: `_bulk` answers per item.
    pub async fn ingest_detailed(
        &self,
        index_id: &str,
        body: Bytes,
        commit_mode: CommitMode,
    ) -> Result<IngestOutcome, IngestError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(IngestError::ShuttingDown);
        }
        let shard = self.shard(index_id).await?;
        if shard.wal.num_bytes() > self.limits.wal_max_bytes {
            return Err(IngestError::TooManyRequests(format!(
                "the write-ahead log of `{index_id}` is over its {}-byte quota (ingest.wal_max_bytes) until indexing catches up: retry later",
                self.limits.wal_max_bytes
            )));
        }
        let cost = (body.len() as u64).clamp(1, u32::MAX as u64) as u32;
        let permit = self.in_flight.clone().try_acquire_many_owned(cost).map_err(|_| {
            IngestError::TooManyRequests(format!(
                "more than {} bytes of ingest requests are in flight (ingest.max_in_flight_bytes): retry later",
                self.limits.max_in_flight_bytes
            ))
        })?;
        let doc_mapper = shard.pipeline.doc_mapper.clone();
        // JSON parsing and mapping is CPU work: off the async threads.
        let (batch, body) = tokio::task::spawn_blocking(move || {
            let batch = map_batch(&doc_mapper, &body);
            (batch, body)
        })
        .await
        .map_err(|error| IngestError::Internal(format!("document mapping panicked: {error}")))?;
        let response = batch.response;
        let failures = batch.all_failures;
        let position = if batch.docs.is_empty() {
            None
        } else {
            let accepted = batch.accepted.unwrap_or_else(|| Vec::from(body));
            let num_bytes = accepted.len() as u64;
            let position = shard
                .wal
                .append(accepted)
                .await
                .map_err(|error| IngestError::Internal(error.to_string()))?;
            // Durable from here: a failure to queue is repaired by the pipeline's replay.
            if let Err(error) = shard
                .pipeline
                .add_docs(position, batch.docs, num_bytes, Some(permit))
                .await
            {
                warn!(
                    index_id,
                    "batch at position {position} is durable but its pipeline stopped: {error}"
                );
            }
            Some(position)
        };
        match commit_mode {
            CommitMode::Auto => {}
            CommitMode::WaitFor => {
                if let Some(position) = position {
                    shard
                        .pipeline
                        .wait_published(position)
                        .await
                        .map_err(IngestError::Internal)?;
                }
            }
            CommitMode::Force => {
                let up_to = shard.wal.last_position().max(position.unwrap_or(0));
                shard
                    .pipeline
                    .force_commit(up_to)
                    .await
                    .map_err(IngestError::Internal)?;
                shard
                    .pipeline
                    .wait_published(up_to)
                    .await
                    .map_err(IngestError::Internal)?;
            }
        }
        Ok(IngestOutcome {
            response,
            failures,
            first_log_id: position.map(|position| LogDocId {
                shard: shard_hash(&shard.partition),
                position,
                line: 0,
            }),
        })
    }

    /// The `_id`s `_bulk` accepted recently, per index.
    pub fn dedup(&self) -> &DedupWindow {
        &self.dedup
    }

    /// Stops the shard of a deleted index without publishing, and removes its log and
    /// its remembered `_id`s.
    pub async fn drop_index(&self, index_id: &str) {
        self.dedup.forget_index(index_id);
        let shard = self.shards.lock().await.remove(index_id);
        if let Some(shard) = shard {
            Self::discard(&shard).await;
        }
        if let Ok(mut failed) = self.failed_shards.lock() {
            failed.remove(index_id);
        }
    }

    async fn discard(shard: &Shard) {
        shard.pipeline.abort().await;
        match &shard.local_dir {
            Some(dir) => {
                if let Err(error) = std::fs::remove_dir_all(dir) {
                    warn!(wal = %dir.display(), "cannot remove the write-ahead log: {error}");
                }
            }
            None => shard.wal.truncate(u64::MAX),
        }
    }

    /// Drops the shards of indexes deleted through other nodes (an idle pipeline would not
    /// notice by itself): their pipelines stop and their logs go.
    pub async fn drop_shards_of_deleted_indexes(&self) {
        let indexes = match self.metastore.list_indexes().await {
            Ok(indexes) => indexes,
            Err(error) => {
                warn!("cannot list indexes to find deleted ones: {error}");
                return;
            }
        };
        let live: std::collections::HashSet<&IndexUid> =
            indexes.iter().map(|index| &index.index_uid).collect();
        let stale: Vec<Arc<Shard>> = {
            let mut shards = self.shards.lock().await;
            let stale_ids: Vec<String> = shards
                .iter()
                .filter(|(_, shard)| !live.contains(&shard.index_metadata.index_uid))
                .map(|(index_id, _)| index_id.clone())
                .collect();
            stale_ids
                .iter()
                .filter_map(|index_id| shards.remove(index_id))
                .collect()
        };
        for shard in stale {
            info!(
                index_id = shard.index_metadata.index_id(),
                "dropping this node's shard of a deleted index"
            );
            Self::discard(&shard).await;
        }
    }

    /// Refuses new batches, then publishes what every pipeline holds.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        let shards: Vec<Arc<Shard>> = self
            .shards
            .lock()
            .await
            .drain()
            .map(|(_, shard)| shard)
            .collect();
        for shard in shards {
            shard.pipeline.shutdown().await;
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

#[cfg(test)]
pub(crate) fn map_batch_for_tests(doc_mapper: &DocMapper, body: &[u8]) -> MappedBatch {
    map_batch(doc_mapper, body)
}

fn map_batch(doc_mapper: &DocMapper, body: &[u8]) -> MappedBatch {
    let mut batch = MappedBatch {
        docs: Vec::new(),
        accepted: None,
        response: IngestResponse::default(),
        all_failures: Vec::new(),
    };
    let mut line_start = 0usize;
    for (line_index, line) in body.split(|byte| *byte == b'\n').enumerate() {
        let start = line_start;
        line_start += line.len() + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            // An empty last line is only the final newline; any other blank line is left
            // out of the log, which then differs from the body.
            if line_start <= body.len() || !line.is_empty() {
                batch.accepted.get_or_insert_with(|| body[..start].to_vec());
            }
            continue;
        }
        batch.response.num_docs_for_processing += 1;
        match doc_mapper.doc_from_json_bytes(line) {
            Ok(doc) => {
                if let Some(accepted) = batch.accepted.as_mut() {
                    accepted.extend_from_slice(line);
                    accepted.push(b'\n');
                }
                batch.docs.push(doc);
            }
            Err(error) => {
                batch.accepted.get_or_insert_with(|| body[..start].to_vec());
                batch.response.num_rejected_docs += 1;
                batch.all_failures.push((line_index + 1, error.to_string()));
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
            b"index_id: test-index\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: n, type: u64}\n  timestamp_field: ts",
            ConfigFormat::Yaml,
        )
        .unwrap();
        let mapper = DocMapper::new(&config);
        let body = b"{\"ts\": 1, \"n\": 1}\n\n{oops\n[1]\n{\"n\": 2}\n{\"ts\": 2, \"n\": \"x\"}\n{\"ts\": 3, \"extra\": 1}\n{\"ts\": 4}\n";
        let batch = map_batch(&mapper, body);
        assert_eq!(batch.docs.len(), 2);
        assert_eq!(
            batch.accepted.as_deref(),
            Some(&b"{\"ts\": 1, \"n\": 1}\n{\"ts\": 4}\n"[..])
        );
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

    #[test]
    fn a_body_of_accepted_lines_goes_to_the_log_as_it_is() {
        let config = IndexConfig::parse(
            b"index_id: test-index\ndoc_mapping:\n  mode: dynamic\n",
            ConfigFormat::Yaml,
        )
        .unwrap();
        let mapper = DocMapper::new(&config);
        for body in [&b"{\"a\": 1}\n{\"a\": 2}\n"[..], b"{\"a\": 1}\n{\"a\": 2}"] {
            let batch = map_batch(&mapper, body);
            assert_eq!(batch.docs.len(), 2);
            assert!(batch.accepted.is_none());
        }
        // A blank line in the middle is left out of the log.
        let batch = map_batch(&mapper, b"{\"a\": 1}\n\n{\"a\": 2}\n");
        assert_eq!(
            batch.accepted.as_deref(),
            Some(&b"{\"a\": 1}\n{\"a\": 2}\n"[..])
        );
        let batch = map_batch(&mapper, b"{\"a\": 1}\n  ");
        assert_eq!(batch.accepted.as_deref(), Some(&b"{\"a\": 1}\n"[..]));
    }
}
