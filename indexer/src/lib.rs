//! The write path: NDJSON batches are mapped to documents, indexed by one pipeline per
//! index, cut into splits, packaged, uploaded and published.
//!
//! `ingest` → `pipeline` (tantivy writer on its own thread) → `packager` → `uploader`
//! → `publisher`.

mod adoption;
mod commit_mode;
mod dedup;
mod ingest;
mod janitor;
mod merge;
mod models;
mod packager;
mod pipeline;
mod publisher;
mod uploader;
mod wal;

#[cfg(test)]
mod property_tests;

pub use adoption::{ShardRef, ADOPTED_SHARDS_CLOSED};
pub use commit_mode::CommitMode;
pub use dedup::{DedupError, DedupWindow, IdClaim};
pub use ingest::{
    wal_dir_name, IngestError, IngestLimits, IngestOutcome, IngestResponse, IngestService,
    ObjectWalConfig, ParseFailure,
};
pub use janitor::{
    Janitor, JanitorPolicy, JanitorReport, JANITOR_DELETED_MARKED, JANITOR_DELETED_STAGED,
    JANITOR_EXPIRED_BY_RETENTION,
};
pub use merge::{
    plan_merges, split_maturity, MergeError, MergeExecutor, MergeOperation, MergeOutcome,
    MergePlanner, DELETE_REWRITES, MERGED_INPUT_BYTES, MERGES_COMPLETED, MERGES_FAILED,
};
pub use wal::{
    FlushObserver, WalDirectory, WAL_FSYNCS, WAL_OBJECT_BYTES, WAL_OBJECT_FLUSHES,
    WAL_OBJECT_FLUSH_FAILURES, WAL_OBJECT_FLUSH_MICROS, WAL_OBJECT_RECORDS, WAL_OBJECT_SECTIONS,
};

/// Whether this node is the one that does an index's background work (merges, janitor
/// passes) now. In a cluster exactly one live node answers yes for each index, so two
/// nodes never merge the same splits; a single node owns everything.
pub type IndexOwnership = std::sync::Arc<dyn Fn(&quarry_common::IndexUid) -> bool + Send + Sync>;

/// The ownership of a node alone in its cluster.
pub fn owns_every_index() -> IndexOwnership {
    std::sync::Arc::new(|_| true)
}
