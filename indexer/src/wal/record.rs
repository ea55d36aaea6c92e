use std::path::PathBuf;

/// Records larger than this are refused on write and treated as corruption on read: a
/// length field read from disk is never trusted beyond it.
pub(crate) const MAX_RECORD_LEN: u32 = 256 * 1024 * 1024;
pub(crate) const HEADER_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub(crate) enum WalError {
    #[error("write-ahead log i/o error on `{path}`: {message}")]
    Io { path: PathBuf, message: String },
    /// Damage before the end of the log: replaying past it would skip acknowledged data.
    #[error("write-ahead log corrupt in `{path}` at byte offset {offset}: {message}; the shard stays stopped until the damage is repaired")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    #[error("record of {0} bytes is larger than the {MAX_RECORD_LEN}-byte maximum")]
    RecordTooLarge(usize),
    #[error("the write-ahead log writer has stopped")]
    Closed,
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> WalError {
        WalError::Io {
            path: path.into(),
            message: error.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WalRecord {
    pub position: u64,
    pub payload: Vec<u8>,
}

pub(crate) fn checksum(position: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&position.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

pub(crate) fn encode_record(position: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(position, payload).to_le_bytes());
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(payload);
}
