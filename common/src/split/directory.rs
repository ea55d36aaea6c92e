use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use stable_deref_trait::StableDeref;
use tantivy::directory::error::LockError;
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    DirectoryLock, FileHandle, Lock, OwnedBytes, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::{Directory, HasLen};

use super::{ByteRangeCache, FileTable, HotCache, SplitError, SplitFooter};
use crate::storage::Storage;

/// Reads smaller than this fetch the whole aligned block around them.
const READ_BLOCK_BYTES: u64 = 64 * 1024;

/// What searches fetch from splits, for `/metrics`. A fetch tantivy makes while searching
/// blocks the search for a whole round trip; the warmup (`quarry-searcher`) fetches ahead,
/// concurrently, so that a search makes as few of them as possible.
pub mod fetch_stats {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Ranged GETs of split bytes, warmup and blocking alike.
    pub static GETS: AtomicU64 = AtomicU64::new(0);
    pub static BYTES: AtomicU64 = AtomicU64::new(0);
    /// GETs made from inside a search, each a round trip the search waited for.
    pub static BLOCKING_GETS: AtomicU64 = AtomicU64::new(0);
    /// Sequential round trips: blocking GETs plus the warmup's stages that fetched.
    pub static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static ASYNC_GETS_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    }

    /// Asynchronous GETs begun on this thread so far. The warmup polls its fetches with
    /// `block_on` on its own thread, so the difference across a stage tells whether the
    /// stage went to storage.
    pub fn async_gets_on_this_thread() -> u64 {
        ASYNC_GETS_ON_THIS_THREAD.with(Cell::get)
    }

    pub fn record_round_trip() {
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_get(num_bytes: u64, blocking: bool) {
        GETS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(num_bytes, Ordering::Relaxed);
        if blocking {
            BLOCKING_GETS.fetch_add(1, Ordering::Relaxed);
            record_round_trip();
        } else {
            ASYNC_GETS_ON_THIS_THREAD.with(|gets| gets.set(gets.get() + 1));
        }
    }
}

/// What a searcher needs to open a split: where it is and where its footer starts.
#[derive(Clone, Debug)]
pub struct SplitOpenInfo {
    pub storage: Arc<dyn Storage>,
    pub split_path: String,
    pub footer_offsets: Range<u64>,
    /// Where fetched ranges are kept between queries, if anywhere.
    pub range_cache: Option<Arc<ByteRangeCache>>,
}

/// A read-only tantivy [`Directory`] over one split file in object storage. Reads the
/// hotcache answers cost nothing; the others become ranged GETs.
///
/// Tantivy reads synchronously, so the ranged GETs block the calling thread on the
/// runtime: a `SplitDirectory` must only be used from blocking threads
/// (`spawn_blocking`), never from an async task.
#[derive(Clone, Debug)]
pub struct SplitDirectory {
    inner: Arc<SplitDirectoryInner>,
}

#[derive(Debug)]
struct SplitDirectoryInner {
    storage: Arc<dyn Storage>,
    split_path: String,
    file_table: FileTable,
    hotcache: HotCache,
    range_cache: Option<Arc<ByteRangeCache>>,
    runtime: tokio::runtime::Handle,
    /// Asynchronous fetches under way, by file and range: concurrent reads of one range
    /// (two hits in one doc-store block, two terms in one dictionary block) share a GET.
    in_flight: std::sync::Mutex<HashMap<(std::path::PathBuf, Range<u64>), SharedFetch>>,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Bytes, String>>>;

/// Lets tantivy hold storage bytes without a copy.
struct StableBytes(Bytes);

impl std::ops::Deref for StableBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: `Bytes` derefs to a heap buffer that does not move when the `Bytes` handle does.
unsafe impl StableDeref for StableBytes {}

pub(crate) fn owned_bytes(bytes: Bytes) -> OwnedBytes {
    OwnedBytes::new(StableBytes(bytes))
}

impl SplitDirectory {
    /// Opens a split with exactly one ranged read (file table + hotcache + footer).
    pub async fn open(info: SplitOpenInfo) -> Result<SplitDirectory, SplitError> {
        let tail = info
            .storage
            .get_range(&info.split_path, info.footer_offsets.clone())
            .await
            .map_err(|error| SplitError::Io(error.to_string()))?;
        Self::from_tail(info, tail)
    }

    fn from_tail(info: SplitOpenInfo, tail: Bytes) -> Result<SplitDirectory, SplitError> {
        let footer = SplitFooter::decode_and_check(&tail)?;
        if footer.file_table_offset != info.footer_offsets.start {
            return Err(SplitError::CorruptFooter(format!(
                "footer says the file table starts at {}, the split metadata says {}",
                footer.file_table_offset, info.footer_offsets.start
            )));
        }
        let table_len = footer.file_table_len as usize;
        let file_table = FileTable::decode(&tail[..table_len], footer.file_table_offset)?;
        let hotcache_end = table_len + footer.hotcache_len as usize;
        let hotcache = HotCache::decode(owned_bytes(tail.slice(table_len..hotcache_end)))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            SplitError::Io("split directories need a tokio runtime to fetch bytes".to_string())
        })?;
        Ok(SplitDirectory {
            inner: Arc::new(SplitDirectoryInner {
                storage: info.storage,
                split_path: info.split_path,
                file_table,
                hotcache,
                range_cache: info.range_cache,
                runtime,
                in_flight: std::sync::Mutex::default(),
            }),
        })
    }
}

#[derive(Debug)]
struct SplitFileHandle {
    directory: Arc<SplitDirectoryInner>,
    path: std::path::PathBuf,
    range_in_split: Range<u64>,
}

impl HasLen for SplitFileHandle {
    fn len(&self) -> usize {
        (self.range_in_split.end - self.range_in_split.start) as usize
    }
}

impl SplitFileHandle {
    fn check_range(&self, range: &Range<usize>) -> io::Result<Range<u64>> {
        if range.start > range.end || range.end > self.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "read of {range:?} past the end of `{}` ({} bytes)",
                    self.path.display(),
                    self.len()
                ),
            ));
        }
        Ok(range.start as u64..range.end as u64)
    }

    fn cached(&self, range: &Range<u64>) -> Option<OwnedBytes> {
        if let Some(bytes) = self.directory.hotcache.get(&self.path, range) {
            return Some(bytes);
        }
        let cache = self.directory.range_cache.as_ref()?;
        cache.get(&self.directory.split_path, &self.path, range)
    }

    /// Small reads fetch the aligned block around them: the next read (the next term's
    /// postings, the next dictionary block) is usually close by, and one request of 64 KiB
    /// costs about what one of 64 bytes does, on S3 as on disk.
    fn fetch_range(&self, range: &Range<u64>) -> Range<u64> {
        if self.directory.range_cache.is_none() || range.end - range.start >= READ_BLOCK_BYTES {
            return range.clone();
        }
        let start = range.start / READ_BLOCK_BYTES * READ_BLOCK_BYTES;
        let end = range.end.div_ceil(READ_BLOCK_BYTES) * READ_BLOCK_BYTES;
        start..end.min(self.len() as u64)
    }

    /// Caches what was fetched and returns the part that was asked for.
    fn remember(&self, wanted: Range<u64>, fetched: Range<u64>, bytes: OwnedBytes) -> OwnedBytes {
        if let Some(cache) = &self.directory.range_cache {
            cache.put(
                &self.directory.split_path,
                &self.path,
                fetched.clone(),
                bytes.clone(),
            );
        }
        let from = (wanted.start - fetched.start) as usize;
        let to = (wanted.end - fetched.start) as usize;
        bytes.slice(from..to)
    }

    fn split_range(&self, range: &Range<u64>) -> Range<u64> {
        self.range_in_split.start + range.start..self.range_in_split.start + range.end
    }
}

#[async_trait]
impl FileHandle for SplitFileHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let range = self.check_range(&range)?;
        if let Some(bytes) = self.cached(&range) {
            return Ok(bytes);
        }
        let fetched = self.fetch_range(&range);
        fetch_stats::record_get(fetched.end - fetched.start, true);
        let directory = &self.directory;
        let bytes = directory
            .runtime
            .block_on(
                directory
                    .storage
                    .get_range(&directory.split_path, self.split_range(&fetched)),
            )
            .map_err(io::Error::other)?;
        Ok(self.remember(range, fetched, owned_bytes(bytes)))
    }

    async fn read_bytes_async(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let range = self.check_range(&range)?;
        if let Some(bytes) = self.cached(&range) {
            return Ok(bytes);
        }
        let fetched = self.fetch_range(&range);
        let key = (self.path.clone(), fetched.clone());
        let (fetch, leads) = {
            let mut in_flight = self
                .directory
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match in_flight.get(&key) {
                Some(fetch) => (fetch.clone(), false),
                None => {
                    let storage = self.directory.storage.clone();
                    let split_path = self.directory.split_path.clone();
                    let split_range = self.split_range(&fetched);
                    let fetch = async move {
                        storage
                            .get_range(&split_path, split_range)
                            .await
                            .map_err(|error| error.to_string())
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key.clone(), fetch.clone());
                    (fetch, true)
                }
            }
        };
        // The leader forgets the fetch when done, or dropped: a later read then finds the
        // bytes in the range cache, or fetches again.
        let _forget = leads.then(|| {
            fetch_stats::record_get(fetched.end - fetched.start, false);
            ForgetOnDrop {
                directory: &self.directory,
                key,
            }
        });
        let bytes = fetch.await.map_err(io::Error::other)?;
        Ok(self.remember(range, fetched, owned_bytes(bytes)))
    }
}

struct ForgetOnDrop<'a> {
    directory: &'a SplitDirectoryInner,
    key: (std::path::PathBuf, Range<u64>),
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.directory
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

fn read_only_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "splits are immutable")
}

impl Directory for SplitDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let range_in_split = self
            .inner
            .file_table
            .get(path)
            .ok_or_else(|| OpenReadError::FileDoesNotExist(path.to_path_buf()))?;
        Ok(Arc::new(SplitFileHandle {
            directory: self.inner.clone(),
            path: path.to_path_buf(),
            range_in_split,
        }))
    }

    fn delete(&self, _path: &Path) -> Result<(), DeleteError> {
        Ok(())
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.inner.file_table.get(path).is_some())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::wrap_io_error(
            read_only_error(),
            path.to_path_buf(),
        ))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let handle = self.get_file_handle(path)?;
        let len = handle.len();
        handle
            .read_bytes(0..len)
            .map(|bytes| bytes.as_slice().to_vec())
            .map_err(|error| OpenReadError::wrap_io_error(error, path.to_path_buf()))
    }

    fn atomic_write(&self, _path: &Path, _data: &[u8]) -> io::Result<()> {
        Err(read_only_error())
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    /// Nothing ever writes to a split, so readers need no lock.
    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, _watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}

#[cfg(test)]
mod tests;
