//! Object storage behind one small trait, so that splits and metastore files go to local
//! disk, memory or S3 through the same calls, and tests can wrap it to count or fail requests.

mod counting_storage;
mod latency_storage;
mod object_store_storage;
mod resolver;
mod retrying_storage;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

pub use counting_storage::{CountingStorage, RequestCounts};
pub use latency_storage::LatencyStorage;
pub use object_store_storage::ObjectStoreStorage;
#[cfg(test)]
pub(crate) use resolver::s3_tests as s3_test_support;
pub use resolver::StorageResolver;
pub use retrying_storage::{RetryPolicy, RetryingStorage};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object `{0}` not found")]
    NotFound(String),
    /// `put_if_absent` found an object at the path.
    #[error("object `{0}` already exists")]
    AlreadyExists(String),
    #[error("invalid storage uri `{uri}`: {reason}")]
    InvalidUri { uri: String, reason: String },
    #[error("storage i/o error on `{path}`: {reason}")]
    Io { path: String, reason: String },
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A flat key space of immutable-ish objects under one root (a directory, a bucket prefix).
///
/// `put` is all-or-nothing: a reader never sees half an object, even if the writer crashes.
#[async_trait]
pub trait Storage: fmt::Debug + Send + Sync + 'static {
    async fn put(&self, path: &str, payload: Bytes) -> StorageResult<()>;

    /// Writes the object only if there is none at `path` (S3's `If-None-Match: *`), else
    /// fails with `AlreadyExists`: two writers can never both believe they wrote a key.
    async fn put_if_absent(&self, path: &str, payload: Bytes) -> StorageResult<()>;

    /// Uploads a local file, streaming it in parts so large splits never sit in memory.
    async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()>;

    async fn get_all(&self, path: &str) -> StorageResult<Bytes>;

    async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes>;

    /// Deleting a missing object is not an error: deletes get retried after crashes.
    async fn delete(&self, path: &str) -> StorageResult<()>;

    /// Moves an object, replacing any object at `to`, atomically for readers of `to`.
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()>;

    async fn file_num_bytes(&self, path: &str) -> StorageResult<u64>;

    /// Keys under `prefix`, relative to the storage root.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>>;

    /// The URI this storage was resolved from, for messages.
    fn uri(&self) -> &str;
}
