//! What a pipeline needs of its shard's log, whichever medium holds it: the local
//! write-ahead log of a single node (`WalWriter`) or the log on object storage that any node
//! of a cluster can read (`ObjectLog`).

use async_trait::async_trait;

use super::record::{WalError, WalRecord};

#[async_trait]
pub(crate) trait ShardLog: Send + Sync + 'static {
    /// Appends a record; resolves with its position once it is durable (fsynced, or
    /// written to object storage), which is when ingest may acknowledge it.
    async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError>;

    /// Position of the last durable record.
    fn last_position(&self) -> u64;

    /// Bytes the log holds that are not yet published: ingest refuses writes past a quota.
    fn num_bytes(&self) -> u64;

    /// Records with `after < position <= up_to`, in order. Blocking: the pipeline calls it
    /// from its own thread.
    fn read_records(&self, after: u64, up_to: u64) -> Result<Vec<WalRecord>, WalError>;

    /// Forgets records at or below `up_to` (they are published); in the background.
    fn truncate(&self, up_to: u64);
}

#[async_trait]
impl ShardLog for super::WalWriter {
    async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError> {
        super::WalWriter::append(self, payload).await
    }

    fn last_position(&self) -> u64 {
        super::WalWriter::last_position(self)
    }

    fn num_bytes(&self) -> u64 {
        super::WalWriter::num_bytes(self)
    }

    fn read_records(&self, after: u64, up_to: u64) -> Result<Vec<WalRecord>, WalError> {
        super::read_records(self.dir(), after, up_to)
    }

    fn truncate(&self, up_to: u64) {
        super::WalWriter::truncate(self, up_to)
    }
}
