//! The write path: NDJSON batches are mapped to documents, indexed by one pipeline per
//! index, cut into splits, packaged, uploaded and published.
//!
//! `ingest` → `pipeline` (tantivy writer on its own thread) → `packager` → `uploader`
//! → `publisher`.

mod commit_mode;
mod dedup;
mod ingest;
mod janitor;
mod merge;
mod packager;
mod pipeline;
mod publisher;
mod uploader;
mod wal;

pub use commit_mode::CommitMode;
pub use dedup::{DedupError, DedupWindow, IdClaim};
pub use ingest::{IngestError, IngestLimits, IngestResponse, IngestService, ParseFailure};
pub use janitor::{
    Janitor, JanitorPolicy, JanitorReport, JANITOR_DELETED_MARKED, JANITOR_DELETED_STAGED,
    JANITOR_EXPIRED_BY_RETENTION,
};
pub use merge::{
    plan_merges, split_maturity, MergeError, MergeExecutor, MergeOperation, MergeOutcome,
    MergePlanner, DELETE_REWRITES, MERGED_INPUT_BYTES, MERGES_COMPLETED, MERGES_FAILED,
};
pub use wal::WAL_FSYNCS;
