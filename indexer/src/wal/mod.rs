//! The write-ahead log of one index shard: accepted batches are appended and made durable
//! before ingest acknowledges them, and replayed after a crash from the last published
//! position. On a single node the log is local files (below); in a cluster it is objects on
//! object storage (`object_log`), one per flush holding every shard of the node, which any
//! node can replay. Pipelines see either through
//! `ShardLog`.
//!
//! A log is a folder of segment files named by the position of their first record
//! (`00000000000000000001.wal`). A record is framed as
//! `[payload_len: u32][crc32c(position ‖ payload): u32][position: u64][payload]`, little
//! endian. Positions count records from 1 and never repeat, even across truncations.

mod log_directory;
pub(crate) mod object_format;
mod object_log;
mod reader;
mod record;
mod shard_log;
mod writer;

pub use log_directory::WalDirectory;
pub use object_log::FlushObserver;
pub(crate) use object_log::{
    delete_published_objects, shards_in_log, NodeLog, ObjectLog, ObjectLogOptions, TocCache,
};
pub use object_log::{
    WAL_OBJECT_BYTES, WAL_OBJECT_FLUSHES, WAL_OBJECT_FLUSH_FAILURES, WAL_OBJECT_FLUSH_MICROS,
    WAL_OBJECT_RECORDS, WAL_OBJECT_SECTIONS,
};
pub(crate) use reader::read_records;
#[cfg(test)]
pub(crate) use reader::scan_log;
pub(crate) use record::WalError;
pub(crate) use shard_log::ShardLog;
pub use writer::WAL_FSYNCS;
pub(crate) use writer::{WalOptions, WalWriter};

/// Segments roll over past this size so that truncation can free space in steps.
pub(crate) const SEGMENT_TARGET_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn segment_file_name(first_position: u64) -> String {
    format!("{first_position:020}.wal")
}

pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests;
