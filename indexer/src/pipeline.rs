use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry_common::doc_mapper::{
    shard_hash, DocMapper, LogDocId, ParsedDoc, MAX_TAG_VALUES_PER_FIELD,
};
use quarry_common::metastore::IndexMetadata;
use quarry_common::split::{source_store, VolumeSpec};
use quarry_common::time_range::TimeRange;
use quarry_common::SplitId;
use tantivy::indexer::NoMergePolicy;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexSettings, IndexWriter};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tracing::{error, info, warn};

use crate::models::{IndexingError, PackagedSplit, Progress, UploadItem};
use crate::packager::{package, SplitAttributes};
use crate::wal::ShardLog;

/// Tantivy refuses less than 15 MB per indexing thread; more than 4 GB overflows its arena.
const MIN_HEAP_BYTES: u64 = 15_000_000;
const MAX_HEAP_BYTES: u64 = 4_000_000_000;
/// Tantivy indexing threads per split being built; they share the index's heap size.
const WRITER_THREADS: usize = 2;
/// Batches queued ahead of the indexing thread; senders wait beyond that. Two keep the
/// writer busy (measured: four were no faster). Mapped documents take about twice their
/// JSON size in memory, so a deeper queue only raises the peak memory of a node that is
/// fed faster than it indexes.
const COMMAND_QUEUE_LEN: usize = 2;

pub(crate) enum Command {
    /// The documents of WAL record `position`, already mapped. The permit holds the batch's
    /// share of the in-flight memory budget until the documents are in the writer.
    AddDocs {
        position: u64,
        docs: Vec<ParsedDoc>,
        num_bytes: u64,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// Index everything up to WAL position `up_to`, then cut the split (commit=force).
    Commit { up_to: u64 },
    /// Cut and publish what is buffered, then stop.
    Shutdown,
}

/// The handle to one index's pipeline: a dedicated indexing thread and an uploader task.
pub(crate) struct Pipeline {
    pub doc_mapper: Arc<DocMapper>,
    sender: mpsc::Sender<Command>,
    progress: watch::Receiver<Progress>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    uploader: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Pipeline {
    /// Starts the pipeline; it first indexes what the WAL holds past the published
    /// checkpoint (`published_position`).
    pub(crate) fn spawn(
        index_metadata: IndexMetadata,
        scratch_dir: PathBuf,
        wal: Arc<dyn ShardLog>,
        published_position: u64,
        uploader: crate::uploader::Uploader,
        cut_merge_max_docs: u64,
    ) -> Result<Arc<Pipeline>, IndexingError> {
        std::fs::create_dir_all(&scratch_dir)?;
        let doc_mapper = Arc::new(DocMapper::new(&index_metadata.index_config));
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE_LEN);
        let (upload_tx, upload_rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = watch::channel(Progress {
            published_position,
            ..Progress::default()
        });
        let progress_tx = Arc::new(progress_tx);
        let runtime = tokio::runtime::Handle::current();
        let worker = IndexingWorker {
            shard_hash: shard_hash(&uploader.wal_partition),
            index_metadata: index_metadata.clone(),
            doc_mapper: doc_mapper.clone(),
            scratch_dir,
            workbench: None,
            wal: wal.clone(),
            indexed_position: published_position,
            checkpoint_position: published_position,
            upload_tx,
            progress: progress_tx.clone(),
            cut_merge_max_docs,
        };
        let thread = std::thread::Builder::new()
            .name(format!("indexer-{}", index_metadata.index_id()))
            .spawn(move || worker.run(runtime, command_rx))?;
        let uploader_task = tokio::spawn(uploader.run(upload_rx, progress_tx, wal));
        Ok(Arc::new(Pipeline {
            doc_mapper,
            sender: command_tx,
            progress: progress_rx,
            thread: std::sync::Mutex::new(Some(thread)),
            uploader: std::sync::Mutex::new(Some(uploader_task)),
        }))
    }

    async fn send(&self, command: Command) -> Result<(), String> {
        self.sender
            .send(command)
            .await
            .map_err(|_| "the indexing pipeline has stopped".to_string())
    }

    pub(crate) async fn add_docs(
        &self,
        position: u64,
        docs: Vec<ParsedDoc>,
        num_bytes: u64,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(), String> {
        self.send(Command::AddDocs {
            position,
            docs,
            num_bytes,
            permit,
        })
        .await
    }

    pub(crate) async fn force_commit(&self, up_to: u64) -> Result<(), String> {
        self.send(Command::Commit { up_to }).await
    }

    /// False once the indexing thread has exited (after a panic, say): the caller starts a
    /// new pipeline instead of queueing into a dead one.
    /// False once the indexing thread or the uploader stopped (the uploader stops when a
    /// publish is refused, e.g. because another node published the same records first).
    pub(crate) fn is_alive(&self) -> bool {
        !self.sender.is_closed() && !self.progress.borrow().stopped
    }

    /// Waits until WAL position `position` is searchable.
    pub(crate) async fn wait_published(&self, position: u64) -> Result<(), String> {
        let mut progress = self.progress.clone();
        let outcome = progress
            .wait_for(|progress| progress.published_position >= position || progress.stopped)
            .await
            .map_err(|_| "the indexing pipeline has stopped".to_string())?;
        if outcome.published_position >= position {
            Ok(())
        } else {
            Err(outcome
                .last_error
                .clone()
                .unwrap_or_else(|| "the indexing pipeline stopped before publishing".to_string()))
        }
    }

    /// Publishes what is buffered and stops. Blocks until the thread and uploader are done.
    pub(crate) async fn shutdown(&self) {
        let _ = self.sender.send(Command::Shutdown).await;
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let uploader = self.uploader.lock().ok().and_then(|mut task| task.take());
        if let Some(uploader) = uploader {
            let _ = uploader.await;
        }
    }

    /// Stops without publishing: the index is being deleted.
    pub(crate) async fn abort(&self) {
        if let Some(uploader) = self.uploader.lock().ok().and_then(|mut task| task.take()) {
            uploader.abort();
        }
        // The thread ends after its current batch; its output goes nowhere.
        let _ = self.sender.send(Command::Shutdown).await;
    }
}

/// The split being built.
struct Workbench {
    split_id: SplitId,
    index_dir: PathBuf,
    writer: IndexWriter,
    num_docs: u64,
    num_bytes: u64,
    time_range: Option<TimeRange>,
    tags: BTreeMap<String, BTreeSet<String>>,
    deadline: Instant,
}

struct IndexingWorker {
    /// Of the shard whose log this pipeline indexes: the first part of document ids.
    shard_hash: u64,
    index_metadata: IndexMetadata,
    doc_mapper: Arc<DocMapper>,
    scratch_dir: PathBuf,
    workbench: Option<Workbench>,
    wal: Arc<dyn ShardLog>,
    /// Every WAL record up to here is in the workbench or in a cut split.
    indexed_position: u64,
    /// Every WAL record up to here is in a cut split: where the next split's checkpoint
    /// delta starts.
    checkpoint_position: u64,
    upload_tx: mpsc::UnboundedSender<UploadItem>,
    progress: Arc<watch::Sender<Progress>>,
    /// Splits of at most this many documents are merged into one segment when cut.
    cut_merge_max_docs: u64,
}

impl IndexingWorker {
    fn run(mut self, runtime: tokio::runtime::Handle, mut commands: mpsc::Receiver<Command>) {
        // Timers need the runtime's context even when awaited through `block_on`.
        let _runtime_context = runtime.enter();
        // What was acknowledged before a restart but never published is indexed first.
        let durable_end = self.wal.last_position();
        if let Err(error) = self.catch_up(durable_end) {
            self.fail(format!("replaying the write-ahead log failed: {error}"));
            return;
        }
        if self.indexed_position > self.checkpoint_position {
            info!(
                index_id = self.index_metadata.index_id(),
                from = self.checkpoint_position,
                to = self.indexed_position,
                "replayed unpublished write-ahead log records"
            );
        }
        loop {
            if self.upload_tx.is_closed() {
                self.fail("the uploader stopped".to_string());
                return;
            }
            let timeout = self
                .workbench
                .as_ref()
                .map(|workbench| workbench.deadline.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            let command = runtime.block_on(tokio::time::timeout(timeout, commands.recv()));
            let outcome = match command {
                Ok(Some(Command::AddDocs {
                    position,
                    docs,
                    num_bytes,
                    permit,
                })) => {
                    let outcome = self.add_at(position, docs, num_bytes);
                    drop(permit);
                    outcome.and_then(|()| {
                        let target = self
                            .index_metadata
                            .index_config
                            .indexing_settings
                            .split_num_docs_target;
                        if self
                            .workbench
                            .as_ref()
                            .is_some_and(|workbench| workbench.num_docs >= target)
                        {
                            self.cut()
                        } else {
                            Ok(())
                        }
                    })
                }
                Ok(Some(Command::Commit { up_to })) => {
                    self.catch_up(up_to).and_then(|()| self.cut())
                }
                Ok(Some(Command::Shutdown)) | Ok(None) => {
                    if let Err(error) = self.cut() {
                        self.fail(format!("cutting the last split failed: {error}"));
                    }
                    return;
                }
                Err(_elapsed) => self.cut(),
            };
            if let Err(error) = outcome {
                // The chain of checkpoints is broken: stop, and let a new pipeline replay
                // from the last published position.
                self.fail(format!("indexing failed: {error}"));
                return;
            }
        }
    }

    fn fail(&mut self, message: String) {
        error!(index_id = self.index_metadata.index_id(), "{message}");
        self.workbench = None;
        self.progress.send_modify(|progress| {
            progress.last_error = Some(message);
            progress.stopped = true;
        });
    }

    /// Indexes the documents of record `position`, first reading from the WAL any record
    /// between what is indexed and it (batches may arrive out of order, or not at all
    /// for a pipeline that restarted).
    fn add_at(
        &mut self,
        position: u64,
        docs: Vec<ParsedDoc>,
        num_bytes: u64,
    ) -> Result<(), IndexingError> {
        if position <= self.indexed_position {
            return Ok(());
        }
        self.catch_up(position - 1)?;
        self.add_docs(position, docs, num_bytes)?;
        self.indexed_position = position;
        Ok(())
    }

    fn catch_up(&mut self, up_to: u64) -> Result<(), IndexingError> {
        if up_to <= self.indexed_position {
            return Ok(());
        }
        let records = self.wal.read_records(self.indexed_position, up_to)?;
        for record in records {
            // Lines are numbered as ingest numbered the batch's documents (the log holds
            // only accepted, non-blank lines), so a replayed document keeps its id.
            let mut docs = Vec::new();
            let lines = record
                .payload
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
            for (line_number, line) in lines.enumerate() {
                match self.doc_mapper.doc_from_json_bytes(line) {
                    Ok(doc) => docs.push((line_number, doc)),
                    // The same mapper accepted it before; a change would be a bug.
                    Err(error) => warn!(
                        position = record.position,
                        "replayed document rejected: {error}"
                    ),
                }
            }
            self.add_numbered_docs(record.position, docs, record.payload.len() as u64)?;
            self.indexed_position = record.position;
        }
        Ok(())
    }

    fn new_workbench(&self) -> Result<Workbench, IndexingError> {
        let settings = &self.index_metadata.index_config.indexing_settings;
        let split_id = SplitId::generate();
        let index_dir = self.scratch_dir.join(split_id.as_str());
        std::fs::create_dir_all(&index_dir)?;
        let mut builder = Index::builder()
            .schema(self.doc_mapper.schema().clone())
            .settings(IndexSettings {
                docstore_compression: Compressor::Zstd(ZstdCompressor {
                    compression_level: Some(settings.docstore_compression_level),
                }),
                docstore_blocksize: settings.docstore_blocksize.as_u64() as usize,
                ..IndexSettings::default()
            });
        if source_store::has_source_field(self.doc_mapper.schema()) {
            builder = builder.register_plugin(Arc::new(source_store::SourceStorePlugin));
        }
        let index = builder.create_in_dir(&index_dir)?;
        let heap = settings
            .resources
            .heap_size
            .as_u64()
            .clamp(MIN_HEAP_BYTES * WRITER_THREADS as u64, MAX_HEAP_BYTES);
        // One tantivy thread indexes about as fast as the rest of the node maps and logs,
        // so a single one leaves a core idle. With two, a big split keeps one segment per
        // thread (node config `indexer.cut_merge_max_docs`).
        let writer: IndexWriter = index.writer_with_num_threads(WRITER_THREADS, heap as usize)?;
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(Workbench {
            split_id,
            index_dir,
            writer,
            num_docs: 0,
            num_bytes: 0,
            time_range: None,
            tags: BTreeMap::new(),
            deadline: Instant::now() + Duration::from_secs(settings.commit_timeout_secs),
        })
    }

    /// The documents of the record at `position`, in the order of its lines.
    fn add_docs(
        &mut self,
        position: u64,
        docs: Vec<ParsedDoc>,
        num_bytes: u64,
    ) -> Result<(), IndexingError> {
        self.add_numbered_docs(position, docs.into_iter().enumerate(), num_bytes)
    }

    fn add_numbered_docs(
        &mut self,
        position: u64,
        docs: impl IntoIterator<Item = (usize, ParsedDoc)>,
        num_bytes: u64,
    ) -> Result<(), IndexingError> {
        let mut docs = docs.into_iter().peekable();
        if docs.peek().is_none() {
            return Ok(());
        }
        if self.workbench.is_none() {
            self.workbench = Some(self.new_workbench()?);
        }
        let Some(workbench) = self.workbench.as_mut() else {
            return Ok(());
        };
        workbench.num_bytes += num_bytes;
        for (line, mut parsed) in docs {
            let log_id = LogDocId {
                shard: self.shard_hash,
                position,
                line: line as u64,
            };
            self.doc_mapper.add_log_id(&mut parsed.doc, log_id);
            if let Some(timestamp) = parsed.timestamp {
                let secs = timestamp.into_timestamp_secs();
                let point = TimeRange {
                    start: secs,
                    end: secs,
                };
                match workbench.time_range.as_mut() {
                    Some(range) => range.extend(point),
                    None => workbench.time_range = Some(point),
                }
            }
            for tag in parsed.tags {
                let Some((field, _)) = tag.split_once(':') else {
                    continue;
                };
                // Looked up before inserting: a `String` per document and tag field was
                // most of this loop's cost.
                if !workbench.tags.contains_key(field) {
                    workbench.tags.insert(field.to_string(), BTreeSet::new());
                }
                if let Some(values) = workbench.tags.get_mut(field) {
                    // One past the limit is enough to know the field has "too many" values.
                    if values.len() <= MAX_TAG_VALUES_PER_FIELD {
                        values.insert(tag);
                    }
                }
            }
            workbench.writer.add_document(parsed.doc)?;
            workbench.num_docs += 1;
        }
        Ok(())
    }

    /// Commits the workbench into one segment, packages it and hands it to the uploader
    /// with the WAL positions it covers.
    fn cut(&mut self) -> Result<(), IndexingError> {
        let split = match self.workbench.take() {
            Some(workbench) => {
                let delta = (self.checkpoint_position, self.indexed_position);
                let mut split = self.finish(workbench)?;
                split.checkpoint_delta = Some(delta);
                self.checkpoint_position = self.indexed_position;
                Some(split)
            }
            None => None,
        };
        let item = UploadItem {
            split,
            covers: self.indexed_position,
        };
        if self.upload_tx.send(item).is_err() {
            warn!(
                index_id = self.index_metadata.index_id(),
                "uploader is gone, split dropped"
            );
        }
        Ok(())
    }

    fn finish(&self, mut workbench: Workbench) -> Result<PackagedSplit, IndexingError> {
        let started = Instant::now();
        workbench.writer.commit()?;
        let segment_ids = workbench.writer.index().searchable_segment_ids()?;
        if segment_ids.len() > 1 && workbench.num_docs <= self.cut_merge_max_docs {
            workbench.writer.merge(&segment_ids).wait()?;
        }
        workbench.writer.wait_merging_threads()?;
        let maturity = crate::merge::split_maturity(
            workbench.num_docs,
            &self.index_metadata.index_config.indexing_settings,
        );
        let attributes = SplitAttributes {
            split_id: workbench.split_id,
            index_uid: self.index_metadata.index_uid.clone(),
            num_docs: workbench.num_docs,
            uncompressed_docs_size_bytes: workbench.num_bytes,
            time_range: workbench.time_range,
            tags: workbench.tags,
            maturity,
            volume: VolumeSpec::of(&self.index_metadata.index_config),
        };
        let num_docs = attributes.num_docs;
        let committed_ms = started.elapsed().as_millis() as u64;
        let packaged = package(&workbench.index_dir, attributes)?;
        std::fs::remove_dir_all(&workbench.index_dir)?;
        info!(
            index_id = self.index_metadata.index_id(),
            split_id = %packaged.metadata.split_id,
            num_docs,
            num_bytes = packaged.metadata.file_size_bytes,
            committed_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "split packaged"
        );
        Ok(packaged)
    }
}
