//! What the stages of the write path hand each other. The stages run in one direction,
//! `ingest` → `pipeline` → `packager` → `uploader` → `publisher`: each imports this module
//! and the stages after it, never one before it.

use std::path::PathBuf;

use quarry_common::metastore::SplitMetadata;
use quarry_common::split::SplitError;

use crate::wal::WalError;

/// The source every ingest path (NDJSON, `_bulk`) publishes checkpoints under.
pub(crate) const INGEST_SOURCE_ID: &str = "_ingest-api-source";

#[derive(Debug, thiserror::Error)]
pub enum IndexingError {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("packaging: {0}")]
    Split(#[from] SplitError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wal(#[from] WalError),
}

/// A split file ready to upload, with its metadata.
#[derive(Debug)]
pub(crate) struct PackagedSplit {
    pub metadata: SplitMetadata,
    pub local_path: PathBuf,
    /// WAL positions `(from, to]` whose documents the split holds.
    pub checkpoint_delta: Option<(u64, u64)>,
}

/// Handed from the indexing thread to the uploader: a split to publish, if any, and the
/// WAL position everything is searchable up to once it is.
pub(crate) struct UploadItem {
    pub split: Option<PackagedSplit>,
    pub covers: u64,
}

/// What waiters for `wait_for`/`force` watch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    pub published_position: u64,
    pub last_error: Option<String>,
    pub stopped: bool,
}
