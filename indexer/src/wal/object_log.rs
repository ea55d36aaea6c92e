//! A shard's write-ahead log on object storage (`ingest.wal_uri`), for clusters: an
//! acknowledged document lives in object storage, replicated by it, not on the disk of the
//! node that took it, so any node can index it after that node dies.
//!
//! The writing node groups the requests that arrive within `wal_flush_interval` (or up to
//! `wal_flush_bytes`) into one object, written with put-if-absent, and acknowledges them
//! once it is written. Only the node that owns a shard (node id + generation) writes it;
//! a node adopting the shard of a dead node opens it read-only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use quarry_common::storage::{Storage, StorageError};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::object_format::{
    decode_object, encode_object, object_key, parse_object_key, DecodedObject, ObjectRange,
};
use super::record::{WalError, WalRecord, MAX_RECORD_LEN};
use super::shard_log::ShardLog;

/// Flushes (one PUT each), the records and bytes they carried, and the time they took, for
/// `/metrics`.
pub static WAL_OBJECT_FLUSHES: AtomicU64 = AtomicU64::new(0);
pub static WAL_OBJECT_RECORDS: AtomicU64 = AtomicU64::new(0);
pub static WAL_OBJECT_BYTES: AtomicU64 = AtomicU64::new(0);
pub static WAL_OBJECT_FLUSH_MICROS: AtomicU64 = AtomicU64::new(0);
pub static WAL_OBJECT_FLUSH_FAILURES: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
pub(crate) struct ObjectLogOptions {
    pub flush_interval: Duration,
    pub flush_bytes: usize,
    /// Told how long each written flush took, for a latency histogram.
    pub observe_flush: Option<FlushObserver>,
}

/// Receives the duration of every flush that was written.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

struct Append {
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<u64, WalError>>,
    /// A request that waited through the previous flush has waited its interval already.
    arrived: tokio::time::Instant,
}

/// The objects of the log this node knows of: what truncation deletes and what the quota
/// counts.
type KnownObjects = Arc<Mutex<BTreeMap<ObjectRange, u64>>>;

pub(crate) struct ObjectLog {
    storage: Arc<dyn Storage>,
    runtime: tokio::runtime::Handle,
    /// `None` when this node adopted the shard: it reads, it never writes.
    appends: Option<mpsc::Sender<Append>>,
    last_position: Arc<AtomicU64>,
    objects: KnownObjects,
}

fn lock(objects: &KnownObjects) -> std::sync::MutexGuard<'_, BTreeMap<ObjectRange, u64>> {
    objects
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn list_objects(storage: &dyn Storage) -> Result<BTreeMap<ObjectRange, String>, WalError> {
    let keys = storage
        .list("")
        .await
        .map_err(|error| storage_error(storage, error))?;
    Ok(keys
        .into_iter()
        .filter_map(|key| parse_object_key(&key).map(|range| (range, key)))
        .collect())
}

fn storage_error(storage: &dyn Storage, error: StorageError) -> WalError {
    WalError::Io {
        path: storage.uri().into(),
        message: error.to_string(),
    }
}

impl ObjectLog {
    /// Opens the log of a shard this node writes. Positions start after what the log
    /// already holds and after `resume_after` (the published checkpoint).
    pub(crate) async fn open_writer(
        storage: Arc<dyn Storage>,
        options: ObjectLogOptions,
        resume_after: u64,
    ) -> Result<ObjectLog, WalError> {
        let log = ObjectLog::open_reader(storage).await?;
        let last = log.last_position().max(resume_after);
        log.last_position.store(last, Ordering::SeqCst);
        let (appends, receiver) = mpsc::channel(1024);
        let flusher = Flusher {
            storage: log.storage.clone(),
            options,
            last_position: log.last_position.clone(),
            next_position: last + 1,
            prev_last: lock(&log.objects)
                .keys()
                .next_back()
                .map_or(0, |range| range.last),
            objects: log.objects.clone(),
        };
        tokio::spawn(flusher.run(receiver));
        Ok(ObjectLog {
            appends: Some(appends),
            ..log
        })
    }

    /// Opens the log of another node's shard, to index what it holds.
    pub(crate) async fn open_reader(storage: Arc<dyn Storage>) -> Result<ObjectLog, WalError> {
        let mut objects = BTreeMap::new();
        for (range, key) in list_objects(storage.as_ref()).await? {
            let len = storage
                .file_num_bytes(&key)
                .await
                .map_err(|error| storage_error(storage.as_ref(), error))?;
            objects.insert(range, len);
        }
        let last = objects.keys().next_back().map_or(0, |range| range.last);
        Ok(ObjectLog {
            storage,
            runtime: tokio::runtime::Handle::current(),
            appends: None,
            last_position: Arc::new(AtomicU64::new(last)),
            objects: Arc::new(Mutex::new(objects)),
        })
    }

    /// Records after `after` up to `up_to`, checking that no acknowledged object between
    /// them is missing (each object names its predecessor).
    async fn read(&self, after: u64, up_to: u64) -> Result<Vec<WalRecord>, WalError> {
        let listed = list_objects(self.storage.as_ref()).await?;
        let mut records = Vec::new();
        let mut last_seen: Option<u64> = None;
        let lasts: std::collections::BTreeSet<u64> =
            listed.keys().map(|range| range.last).collect();
        for (range, key) in listed {
            if range.last <= after || range.first > up_to {
                last_seen = Some(range.last);
                continue;
            }
            let bytes = self
                .storage
                .get_all(&key)
                .await
                .map_err(|error| storage_error(self.storage.as_ref(), error))?;
            let DecodedObject {
                prev_last,
                records: object_records,
            } = decode_object(&key, &bytes)?;
            // The predecessor is published (at or below `after`, maybe deleted), or listed.
            if prev_last > after && !lasts.contains(&prev_last) {
                return Err(WalError::Corrupt {
                    path: key.into(),
                    offset: 0,
                    message: format!(
                        "the object ending at position {prev_last} is missing (last listed before it: {last_seen:?})"
                    ),
                });
            }
            last_seen = Some(range.last);
            records.extend(
                object_records
                    .into_iter()
                    .filter(|record| record.position > after && record.position <= up_to),
            );
        }
        Ok(records)
    }
}

#[async_trait]
impl ShardLog for ObjectLog {
    async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_LEN as usize {
            return Err(WalError::RecordTooLarge(payload.len()));
        }
        let appends = self.appends.as_ref().ok_or(WalError::Closed)?;
        let (reply, receiver) = oneshot::channel();
        appends
            .send(Append {
                payload,
                reply,
                arrived: tokio::time::Instant::now(),
            })
            .await
            .map_err(|_| WalError::Closed)?;
        receiver.await.map_err(|_| WalError::Closed)?
    }

    fn last_position(&self) -> u64 {
        self.last_position.load(Ordering::SeqCst)
    }

    fn num_bytes(&self) -> u64 {
        lock(&self.objects).values().sum()
    }

    fn read_records(&self, after: u64, up_to: u64) -> Result<Vec<WalRecord>, WalError> {
        if up_to <= after {
            return Ok(Vec::new());
        }
        self.runtime.block_on(self.read(after, up_to))
    }

    fn truncate(&self, up_to: u64) {
        let storage = self.storage.clone();
        let objects = self.objects.clone();
        self.runtime.spawn(async move {
            // Listed again: objects this node did not write (an adopted shard) count too.
            let listed = match list_objects(storage.as_ref()).await {
                Ok(listed) => listed,
                Err(error) => {
                    warn!("cannot list the write-ahead log to truncate it: {error}");
                    return;
                }
            };
            for (range, key) in listed.into_iter().filter(|(range, _)| range.last <= up_to) {
                match storage.delete(&key).await {
                    Ok(()) => {
                        lock(&objects).remove(&range);
                    }
                    Err(error) => warn!(key, "cannot delete a published log object: {error}"),
                }
            }
        });
    }
}

/// Flushes in flight at once. A PUT takes tens of milliseconds: while one is in flight the
/// next window fills and goes out too, so acknowledgements are not held back by the PUT
/// before them (measured: 8 clients got 0.73x the local log's throughput with one).
const MAX_FLUSHES_IN_FLIGHT: usize = 2;

/// The writer side: windows of requests, each written as one object.
struct Flusher {
    storage: Arc<dyn Storage>,
    options: ObjectLogOptions,
    last_position: Arc<AtomicU64>,
    /// The position the next object starts at.
    next_position: u64,
    /// The last position of the last object known written when the next one is encoded:
    /// the object it names. Two objects may be in flight, so an object names the last one
    /// that was durable when it started, never one that may still fail.
    prev_last: u64,
    objects: KnownObjects,
}

/// A flush that finished: its requests, its range, and the object's length or the error.
struct FlushOutcome {
    batch: Vec<Append>,
    range: ObjectRange,
    written: Result<u64, WalError>,
    started: std::time::Instant,
}

impl Flusher {
    async fn run(mut self, mut receiver: mpsc::Receiver<Append>) {
        self.next_position = self.last_position.load(Ordering::SeqCst) + 1;
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut window: Vec<Append> = Vec::new();
        let mut window_bytes = 0usize;
        let mut open = true;
        loop {
            let can_flush = in_flight.len() < MAX_FLUSHES_IN_FLIGHT && !window.is_empty();
            if can_flush && (window_bytes >= self.options.flush_bytes || !open) {
                in_flight.push_back(self.start(std::mem::take(&mut window)));
                window_bytes = 0;
                continue;
            }
            if !open && window.is_empty() && in_flight.is_empty() {
                return;
            }
            let deadline = window
                .first()
                .map(|append| append.arrived + self.options.flush_interval);
            tokio::select! {
                // Completions first: acknowledgements go out as soon as they can.
                biased;
                Some(outcome) = futures::StreamExt::next(&mut in_flight), if !in_flight.is_empty() => {
                    self.finish(outcome);
                }
                append = receiver.recv(), if open && window_bytes < self.options.flush_bytes => {
                    match append {
                        Some(append) => {
                            window_bytes += append.payload.len();
                            window.push(append);
                        }
                        None => open = false,
                    }
                }
                _ = sleep_until(deadline), if can_flush => {
                    in_flight.push_back(self.start(std::mem::take(&mut window)));
                    window_bytes = 0;
                }
            }
        }
    }

    /// Assigns the window its positions and starts writing its object.
    fn start(
        &mut self,
        batch: Vec<Append>,
    ) -> impl std::future::Future<Output = FlushOutcome> + Send + 'static {
        let range = ObjectRange {
            first: self.next_position,
            last: self.next_position + batch.len() as u64 - 1,
        };
        // Positions are never handed out twice, even when a write fails: an object whose
        // answer was lost may still land, and must not collide with a later one.
        self.next_position = range.last + 1;
        let prev_last = self.prev_last;
        let storage = self.storage.clone();
        let started = std::time::Instant::now();
        async move {
            // Compressing megabytes is CPU work: off the async threads.
            let joined = tokio::task::spawn_blocking(move || {
                let payloads: Vec<&[u8]> = batch.iter().map(|append| &append.payload[..]).collect();
                let encoded = encode_object(range.first, prev_last, &payloads);
                (batch, encoded)
            })
            .await;
            let (batch, encoded) = match joined {
                Ok(joined) => joined,
                // The requests' reply senders went with the task: they get an error.
                Err(_) => (
                    Vec::new(),
                    Err(WalError::Io {
                        path: storage.uri().into(),
                        message: "encoding the write-ahead log object failed".to_string(),
                    }),
                ),
            };
            let written = match encoded {
                Ok(object) => put(storage.as_ref(), range, Bytes::from(object)).await,
                Err(error) => Err(error),
            };
            FlushOutcome {
                batch,
                range,
                written,
                started,
            }
        }
    }

    /// Answers a flush's requests; flushes finish in the order they started.
    fn finish(&mut self, outcome: FlushOutcome) {
        let FlushOutcome {
            batch,
            range,
            written,
            started,
        } = outcome;
        self.last_position.store(range.last, Ordering::SeqCst);
        match written {
            Ok(len) => {
                self.prev_last = range.last;
                lock(&self.objects).insert(range, len);
                WAL_OBJECT_FLUSHES.fetch_add(1, Ordering::Relaxed);
                WAL_OBJECT_RECORDS.fetch_add(batch.len() as u64, Ordering::Relaxed);
                WAL_OBJECT_BYTES.fetch_add(len, Ordering::Relaxed);
                let took = started.elapsed();
                WAL_OBJECT_FLUSH_MICROS.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                if let Some(observe) = &self.options.observe_flush {
                    observe(took);
                }
                for (offset, append) in batch.into_iter().enumerate() {
                    let _ = append.reply.send(Ok(range.first + offset as u64));
                }
            }
            Err(error) => {
                WAL_OBJECT_FLUSH_FAILURES.fetch_add(1, Ordering::Relaxed);
                warn!(
                    uri = self.storage.uri(),
                    "write-ahead log flush failed: {error}"
                );
                let message = error.to_string();
                for append in batch {
                    let _ = append.reply.send(Err(WalError::Io {
                        path: self.storage.uri().into(),
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Writes the object once. A retry that finds an object already there is told apart from
/// a foreign writer by reading it back.
async fn put(storage: &dyn Storage, range: ObjectRange, object: Bytes) -> Result<u64, WalError> {
    let key = object_key(range);
    let len = object.len() as u64;
    match storage.put_if_absent(&key, object.clone()).await {
        Ok(()) => Ok(len),
        Err(StorageError::AlreadyExists(_)) => {
            let existing = storage
                .get_all(&key)
                .await
                .map_err(|error| storage_error(storage, error))?;
            if existing == object {
                Ok(len)
            } else {
                Err(WalError::Corrupt {
                    path: key.into(),
                    offset: 0,
                    message: "another writer wrote this position of the shard: two nodes run with the same node id and start time".to_string(),
                })
            }
        }
        Err(error) => Err(storage_error(storage, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_common::storage::StorageResolver;

    fn local_storage(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
        StorageResolver::new(Default::default())
            .resolve(dir.path().to_str().unwrap())
            .unwrap()
    }

    async fn writer(storage: &Arc<dyn Storage>) -> Arc<ObjectLog> {
        Arc::new(
            ObjectLog::open_writer(storage.clone(), options(), 0)
                .await
                .unwrap(),
        )
    }

    fn options() -> ObjectLogOptions {
        ObjectLogOptions {
            flush_interval: Duration::from_millis(20),
            flush_bytes: 1024 * 1024,
            observe_flush: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_objects_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = local_storage(&dir);
        let log = writer(&storage).await;
        let appends = (0..20).map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.append(format!("doc {n}\n").into_bytes()).await })
        });
        let mut positions: Vec<u64> = futures::future::join_all(appends)
            .await
            .into_iter()
            .map(|outcome| outcome.unwrap().unwrap())
            .collect();
        positions.sort();
        assert_eq!(positions, (1..=20).collect::<Vec<_>>());
        let objects = storage.list("").await.unwrap();
        assert!(objects.len() < 20, "{objects:?}: requests were not grouped");

        // Another node reads it all, from any position.
        let reader = ObjectLog::open_reader(storage.clone()).await.unwrap();
        assert_eq!(reader.last_position(), 20);
        let read = log.clone();
        let records = tokio::task::spawn_blocking(move || read.read_records(5, 20).unwrap())
            .await
            .unwrap();
        assert_eq!(records.len(), 15);
        assert_eq!(records[0].position, 6);

        // Truncation deletes whole objects at or below the published position.
        log.truncate(20);
        for _ in 0..100 {
            if storage.list("").await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(storage.list("").await.unwrap().is_empty());
        assert_eq!(log.num_bytes(), 0);

        // A writer reopened after a restart continues after what was published.
        let again = ObjectLog::open_writer(storage.clone(), options(), 20)
            .await
            .unwrap();
        assert_eq!(again.append(b"later\n".to_vec()).await.unwrap(), 21);
        assert!(reader.append(b"no\n".to_vec()).await.is_err());
    }

    /// Fails the first put of the object starting at position 2.
    #[derive(Debug)]
    struct FailingOnce {
        inner: Arc<dyn Storage>,
        failed: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Storage for FailingOnce {
        async fn put(
            &self,
            path: &str,
            payload: Bytes,
        ) -> quarry_common::storage::StorageResult<()> {
            self.inner.put(path, payload).await
        }
        async fn put_if_absent(
            &self,
            path: &str,
            payload: Bytes,
        ) -> quarry_common::storage::StorageResult<()> {
            if path.starts_with("00000000000000000002-")
                && !self.failed.swap(true, Ordering::SeqCst)
            {
                return Err(StorageError::Io {
                    path: path.to_string(),
                    reason: "injected".to_string(),
                });
            }
            self.inner.put_if_absent(path, payload).await
        }
        async fn put_file(
            &self,
            path: &str,
            local_file: &std::path::Path,
        ) -> quarry_common::storage::StorageResult<()> {
            self.inner.put_file(path, local_file).await
        }
        async fn get_all(&self, path: &str) -> quarry_common::storage::StorageResult<Bytes> {
            self.inner.get_all(path).await
        }
        async fn get_range(
            &self,
            path: &str,
            range: std::ops::Range<u64>,
        ) -> quarry_common::storage::StorageResult<Bytes> {
            self.inner.get_range(path, range).await
        }
        async fn delete(&self, path: &str) -> quarry_common::storage::StorageResult<()> {
            self.inner.delete(path).await
        }
        async fn rename(&self, from: &str, to: &str) -> quarry_common::storage::StorageResult<()> {
            self.inner.rename(from, to).await
        }
        async fn file_num_bytes(&self, path: &str) -> quarry_common::storage::StorageResult<u64> {
            self.inner.file_num_bytes(path).await
        }
        async fn list(&self, prefix: &str) -> quarry_common::storage::StorageResult<Vec<String>> {
            self.inner.list(prefix).await
        }
        fn uri(&self) -> &str {
            self.inner.uri()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_is_answered_with_an_error_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FailingOnce {
            inner: local_storage(&dir),
            failed: std::sync::atomic::AtomicBool::new(false),
        });
        let log = writer(&storage).await;
        assert_eq!(log.append(b"one\n".to_vec()).await.unwrap(), 1);
        assert!(log.append(b"two\n".to_vec()).await.is_err());
        // Position 2 is never handed out again; the log reads on past the failed flush.
        assert_eq!(log.append(b"three\n".to_vec()).await.unwrap(), 3);
        let read = log.clone();
        let records = tokio::task::spawn_blocking(move || read.read_records(0, 3).unwrap())
            .await
            .unwrap();
        let positions: Vec<u64> = records.iter().map(|record| record.position).collect();
        assert_eq!(positions, [1, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_acknowledged_object_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = local_storage(&dir);
        let log = writer(&storage).await;
        for n in 0..3 {
            log.append(format!("doc {n}\n").into_bytes()).await.unwrap();
        }
        let mut keys = storage.list("").await.unwrap();
        keys.sort();
        assert_eq!(keys.len(), 3);
        storage.delete(&keys[1]).await.unwrap();
        let read = log.clone();
        let error = tokio::task::spawn_blocking(move || read.read_records(0, 3))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the object ending at position 2 is missing"),
            "{error}"
        );
        // Published past the hole: nothing is missing any more.
        let read = log.clone();
        let records = tokio::task::spawn_blocking(move || read.read_records(2, 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(records.len(), 1);
    }
}
