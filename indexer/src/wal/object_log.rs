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

#[derive(Clone, Copy, Debug)]
pub(crate) struct ObjectLogOptions {
    pub flush_interval: Duration,
    pub flush_bytes: usize,
}

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

/// The writer side: one flush at a time, each a single object.
struct Flusher {
    storage: Arc<dyn Storage>,
    options: ObjectLogOptions,
    last_position: Arc<AtomicU64>,
    /// The last position of the last object written, which the next object names.
    prev_last: u64,
    objects: KnownObjects,
}

impl Flusher {
    async fn run(mut self, mut receiver: mpsc::Receiver<Append>) {
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            let mut bytes = batch[0].payload.len();
            let deadline = batch[0].arrived + self.options.flush_interval;
            while bytes < self.options.flush_bytes {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(append)) => {
                        bytes += append.payload.len();
                        batch.push(append);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            self.flush(batch).await;
        }
    }

    async fn flush(&mut self, batch: Vec<Append>) {
        let first = self.last_position.load(Ordering::SeqCst) + 1;
        let range = ObjectRange {
            first,
            last: first + batch.len() as u64 - 1,
        };
        let started = std::time::Instant::now();
        // Compressing megabytes is CPU work: off the async threads.
        let prev_last = self.prev_last;
        let joined = tokio::task::spawn_blocking(move || {
            let payloads: Vec<&[u8]> = batch.iter().map(|append| &append.payload[..]).collect();
            let encoded = encode_object(first, prev_last, &payloads);
            (batch, encoded)
        })
        .await;
        let Ok((batch, encoded)) = joined else {
            // The batch's reply senders are gone with the task: its requests get an error.
            WAL_OBJECT_FLUSH_FAILURES.fetch_add(1, Ordering::Relaxed);
            warn!(
                uri = self.storage.uri(),
                "encoding a write-ahead log object failed"
            );
            self.last_position.store(range.last, Ordering::SeqCst);
            return;
        };
        let outcome = match encoded {
            Ok(object) => self.put(range, Bytes::from(object)).await,
            Err(error) => Err(error),
        };
        // Positions are never handed out twice, even when the write failed: an object whose
        // answer was lost may still land, and must not collide with the next one.
        self.last_position.store(range.last, Ordering::SeqCst);
        match outcome {
            Ok(len) => {
                self.prev_last = range.last;
                lock(&self.objects).insert(range, len);
                WAL_OBJECT_FLUSHES.fetch_add(1, Ordering::Relaxed);
                WAL_OBJECT_RECORDS.fetch_add(batch.len() as u64, Ordering::Relaxed);
                WAL_OBJECT_BYTES.fetch_add(len, Ordering::Relaxed);
                WAL_OBJECT_FLUSH_MICROS
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                for (offset, append) in batch.into_iter().enumerate() {
                    let _ = append.reply.send(Ok(first + offset as u64));
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

    /// Writes the object once. A retry that finds an object already there is told apart
    /// from a foreign writer by reading it back.
    async fn put(&self, range: ObjectRange, object: Bytes) -> Result<u64, WalError> {
        let key = object_key(range);
        let len = object.len() as u64;
        match self.storage.put_if_absent(&key, object.clone()).await {
            Ok(()) => Ok(len),
            Err(StorageError::AlreadyExists(_)) => {
                let existing = self
                    .storage
                    .get_all(&key)
                    .await
                    .map_err(|error| storage_error(self.storage.as_ref(), error))?;
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
            Err(error) => Err(storage_error(self.storage.as_ref(), error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_common::storage::StorageResolver;

    fn options() -> ObjectLogOptions {
        ObjectLogOptions {
            flush_interval: Duration::from_millis(20),
            flush_bytes: 1024 * 1024,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_objects_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageResolver::new(Default::default())
            .resolve(dir.path().to_str().unwrap())
            .unwrap();
        let log = Arc::new(
            ObjectLog::open_writer(storage.clone(), options(), 0)
                .await
                .unwrap(),
        );
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_acknowledged_object_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageResolver::new(Default::default())
            .resolve(dir.path().to_str().unwrap())
            .unwrap();
        let log = Arc::new(
            ObjectLog::open_writer(storage.clone(), options(), 0)
                .await
                .unwrap(),
        );
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
