//! The split file: one tantivy segment's files concatenated, then a file table, the
//! hotcache and a fixed-size footer. Opening a split costs a single ranged read of
//! `[file table .. end]`, whose offsets are kept in the split's metadata.
//!
//! ```text
//! [file 0][file 1]…[file n][file table][hotcache][footer (36 bytes)]
//! ```
//!
//! Besides tantivy's files, a split holds `quarry.volume`, its per-minute document counts
//! (`volume`) and the time runs of its segments (`time_order`), kept in the hotcache.

mod directory;
mod extract;
mod file_table;
mod footer;
mod hotcache;
mod range_cache;
pub mod source_store;
pub mod time_order;
pub mod volume;
mod writer;

#[cfg(test)]
mod property_tests;

pub use directory::{fetch_stats, SplitDirectory, SplitOpenInfo};
pub use extract::download_split_files;
pub use file_table::FileTable;
pub use footer::{SplitFooter, FOOTER_LEN};
pub use hotcache::HotCache;
pub use range_cache::ByteRangeCache;
pub use volume::{VolumeCounts, VolumeSpec};
pub use writer::{write_split_file, WrittenSplit};

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("not a Quarry split: bad magic number {found:02x?} at the end of the file")]
    BadMagic { found: [u8; 4] },
    #[error("split format version {0} is not supported by this build (supports version 1): upgrade Quarry")]
    UnsupportedVersion(u32),
    #[error("split footer is corrupt: {0}")]
    CorruptFooter(String),
    #[error("split metadata checksum mismatch: expected {expected:08x}, computed {computed:08x}; the split file is damaged")]
    ChecksumMismatch { expected: u32, computed: u32 },
    #[error("split file table is corrupt: {0}")]
    CorruptFileTable(String),
    #[error("split hotcache is corrupt: {0}")]
    CorruptHotCache(String),
    #[error("split i/o error: {0}")]
    Io(String),
    #[error("tantivy error while packaging the split: {0}")]
    Tantivy(String),
}

/// Bounds on lengths read from disk, so a corrupt header never makes us allocate gigabytes.
pub(crate) const MAX_FILES_IN_SPLIT: u32 = 10_000;
pub(crate) const MAX_FILE_NAME_LEN: u16 = 1_024;
pub(crate) const MAX_METADATA_LEN: u64 = 1 << 30;
