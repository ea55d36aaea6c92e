use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Storage, StorageResult};

/// Counts read requests and bytes, so tests can pin how many round trips a search costs.
#[derive(Debug)]
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    counts: Arc<RequestCounts>,
}

#[derive(Debug, Default)]
pub struct RequestCounts {
    pub get_range: AtomicU64,
    pub get_all: AtomicU64,
    pub bytes_read: AtomicU64,
}

impl RequestCounts {
    pub fn reads(&self) -> u64 {
        self.get_range.load(Ordering::SeqCst) + self.get_all.load(Ordering::SeqCst)
    }
}

impl CountingStorage {
    pub fn new(inner: Arc<dyn Storage>) -> (CountingStorage, Arc<RequestCounts>) {
        let counts = Arc::new(RequestCounts::default());
        (
            CountingStorage {
                inner,
                counts: counts.clone(),
            },
            counts,
        )
    }
}

#[async_trait]
impl Storage for CountingStorage {
    async fn put(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        self.inner.put(path, payload).await
    }
    async fn put_if_absent(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        self.inner.put_if_absent(path, payload).await
    }
    async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()> {
        self.inner.put_file(path, local_file).await
    }
    async fn get_all(&self, path: &str) -> StorageResult<Bytes> {
        self.counts.get_all.fetch_add(1, Ordering::SeqCst);
        let bytes = self.inner.get_all(path).await?;
        self.counts
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(bytes)
    }
    async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes> {
        self.counts.get_range.fetch_add(1, Ordering::SeqCst);
        let bytes = self.inner.get_range(path, range).await?;
        self.counts
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(bytes)
    }
    async fn delete(&self, path: &str) -> StorageResult<()> {
        self.inner.delete(path).await
    }
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.inner.rename(from, to).await
    }
    async fn file_num_bytes(&self, path: &str) -> StorageResult<u64> {
        self.inner.file_num_bytes(path).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.inner.list(prefix).await
    }
    fn uri(&self) -> &str {
        self.inner.uri()
    }
}
