//! Stable ids for documents sent without one. A document is identified by where it was made
//! durable: its shard of the write-ahead log, the record's position in it and its line in
//! the record. All three are known when ingest acknowledges the batch and again when a
//! pipeline replays it (on the same node or on the one that adopted the shard), they are
//! unique within an index, and tantivy carries them through merges as columns. An id made
//! of the split, segment and doc number would change with every merge.
//!
//! The columns cost little: the shard is constant in a split until merges mix shards, and
//! positions and lines rise by one from document to document, which the block-wise linear
//! codec stores in a few bits.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Hash of the shard's name (`wal:{node}`, `{node}.{generation}`).
pub const LOG_SHARD_FIELD_NAME: &str = "_log_shard";
/// The position of the write-ahead log record the document came in.
pub const LOG_POSITION_FIELD_NAME: &str = "_log_position";
/// The document's rank among the record's documents, from 0.
pub const LOG_LINE_FIELD_NAME: &str = "_log_line";

/// 8 bytes of shard hash and two varints of at most 10 bytes.
const MAX_ENCODED_BYTES: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogDocId {
    pub shard: u64,
    pub position: u64,
    pub line: u64,
}

impl LogDocId {
    /// URL-safe base64 of the shard hash and the varint position and line: 18 characters
    /// for a typical document, like Elasticsearch's 20-character generated ids.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(MAX_ENCODED_BYTES);
        bytes.extend_from_slice(&self.shard.to_be_bytes());
        push_varint(&mut bytes, self.position);
        push_varint(&mut bytes, self.line);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The id `encode` made, or `None` for any other text (a client's own `_id`).
    pub fn decode(text: &str) -> Option<LogDocId> {
        if text.len() > MAX_ENCODED_BYTES.div_ceil(3) * 4 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let shard = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let mut rest = &bytes[8..];
        let position = take_varint(&mut rest)?;
        let line = take_varint(&mut rest)?;
        let id = LogDocId {
            shard,
            position,
            line,
        };
        // One spelling per id: trailing bytes or padded varints are someone else's text.
        (rest.is_empty() && id.encode() == text).then_some(id)
    }
}

/// Stable across builds: ids handed out today must name the same shard after an upgrade.
pub fn shard_hash(shard: &str) -> u64 {
    crate::stable_hash(shard.as_bytes())
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            *bytes = &bytes[index + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_other_text_is_not_an_id() {
        let shard = shard_hash("wal:node-1");
        for (position, line) in [(1, 0), (127, 128), (1 << 40, 65_535), (u64::MAX, u64::MAX)] {
            let id = LogDocId {
                shard,
                position,
                line,
            };
            let text = id.encode();
            assert!(text.len() <= 38, "{text}");
            assert_eq!(LogDocId::decode(&text), Some(id), "{text}");
        }
        let typical = LogDocId {
            shard,
            position: 120_000,
            line: 999,
        }
        .encode();
        assert_eq!(typical.len(), 18, "{typical}");
        for other in [
            "",
            "doc-1",
            "01M8SA2DJ3V0G5Q3RZ9F7K2W1C",
            "AAAAAAAAAAA",
            "a b",
        ] {
            assert_eq!(LogDocId::decode(other), None, "{other}");
        }
        // Trailing bytes after the line.
        let mut bytes = shard.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 0, 0]);
        assert_eq!(LogDocId::decode(&URL_SAFE_NO_PAD.encode(bytes)), None);
        // An over-long varint spelling of 1.
        let mut bytes = shard.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0x81, 0x00, 0]);
        assert_eq!(LogDocId::decode(&URL_SAFE_NO_PAD.encode(bytes)), None);
    }

    #[test]
    fn shard_hashes_are_fixed() {
        // Ids already handed out depend on these values never changing.
        assert_eq!(shard_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(shard_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(shard_hash("wal:node-1"), shard_hash("wal:node-2"));
    }
}
