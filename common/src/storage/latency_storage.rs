use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Storage, StorageResult};

/// Adds a fixed latency to every read, as a distant object store would: what benchmarks
/// and tests of cold searches run on (`searcher.simulated_get_latency_ms`).
#[derive(Debug)]
pub struct LatencyStorage {
    inner: Arc<dyn Storage>,
    latency: Duration,
}

impl LatencyStorage {
    pub fn new(inner: Arc<dyn Storage>, latency: Duration) -> LatencyStorage {
        LatencyStorage { inner, latency }
    }
}

#[async_trait]
impl Storage for LatencyStorage {
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
        tokio::time::sleep(self.latency).await;
        self.inner.get_all(path).await
    }
    async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes> {
        tokio::time::sleep(self.latency).await;
        self.inner.get_range(path, range).await
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
