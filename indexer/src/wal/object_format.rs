//! One flush of a shard's log on object storage: an object holding the records of every
//! request that joined the flush.
//!
//! `[magic "QWAL"][version u8][3 zero bytes][first u64][last u64][prev_last u64]`
//! `[num_records u32][body_len u32][uncompressed_len u32][crc32c(body) u32]` then the body,
//! zstd-compressed records framed as in the local log (length, crc, position, payload),
//! little endian. `prev_last` is the last position of the last object of the shard that was
//! written when this one was started (two may be in flight at once): a reader that finds it
//! neither among the objects nor at or below what was published knows an acknowledged
//! object is missing, instead of skipping it silently.
//!
//! Objects are named `{first:020}-{last:020}.wal`, so that truncation and a node adopting
//! the shard know each object's range from a listing alone.

use super::record::{checksum, encode_record, WalError, WalRecord, HEADER_LEN, MAX_RECORD_LEN};

const MAGIC: &[u8; 4] = b"QWAL";
const VERSION: u8 = 1;
pub(crate) const OBJECT_HEADER_LEN: usize = 48;
/// A flush is at most `ingest.wal_flush_bytes` plus one request; a length read from an
/// object is never trusted beyond this.
const MAX_UNCOMPRESSED_LEN: u32 = 1024 * 1024 * 1024;
/// Fast enough to keep up with ingest on one core; logs live minutes, not months.
const ZSTD_LEVEL: i32 = 1;

/// Where an object sits in its shard's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjectRange {
    pub first: u64,
    pub last: u64,
}

pub(crate) fn object_key(range: ObjectRange) -> String {
    format!("{:020}-{:020}.wal", range.first, range.last)
}

/// The range of an object from its key (the last path component), `None` for any other
/// file.
pub(crate) fn parse_object_key(key: &str) -> Option<ObjectRange> {
    let name = key.rsplit('/').next()?;
    let (first, last) = name.strip_suffix(".wal")?.split_once('-')?;
    if first.len() != 20 || last.len() != 20 {
        return None;
    }
    let range = ObjectRange {
        first: first.parse().ok()?,
        last: last.parse().ok()?,
    };
    (range.first >= 1 && range.first <= range.last).then_some(range)
}

/// Encodes the records `first..` (one per payload) into an object.
pub(crate) fn encode_object(
    first: u64,
    prev_last: u64,
    payloads: &[&[u8]],
) -> Result<Vec<u8>, WalError> {
    let mut records = Vec::new();
    for (offset, payload) in payloads.iter().enumerate() {
        encode_record(first + offset as u64, payload, &mut records);
    }
    let uncompressed_len = u32::try_from(records.len())
        .ok()
        .filter(|len| *len <= MAX_UNCOMPRESSED_LEN)
        .ok_or(WalError::RecordTooLarge(records.len()))?;
    let body = zstd::bulk::compress(&records, ZSTD_LEVEL).map_err(|error| WalError::Io {
        path: "zstd".into(),
        message: error.to_string(),
    })?;
    let last = first + payloads.len() as u64 - 1;
    let mut object = Vec::with_capacity(OBJECT_HEADER_LEN + body.len());
    object.extend_from_slice(MAGIC);
    object.push(VERSION);
    object.extend_from_slice(&[0; 3]);
    object.extend_from_slice(&first.to_le_bytes());
    object.extend_from_slice(&last.to_le_bytes());
    object.extend_from_slice(&prev_last.to_le_bytes());
    object.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    object.extend_from_slice(&(body.len() as u32).to_le_bytes());
    object.extend_from_slice(&uncompressed_len.to_le_bytes());
    object.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    object.extend_from_slice(&body);
    Ok(object)
}

/// A decoded object: its records, in position order, and the chain link to the previous.
#[derive(Debug)]
pub(crate) struct DecodedObject {
    pub prev_last: u64,
    pub records: Vec<WalRecord>,
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut buffer = [0; 4];
    buffer.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(buffer)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut buffer = [0; 8];
    buffer.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(buffer)
}

/// Decodes an object read from `key`, checking everything a damaged or foreign object
/// could get wrong; each failure names what it found.
pub(crate) fn decode_object(key: &str, bytes: &[u8]) -> Result<DecodedObject, WalError> {
    let corrupt = |offset: u64, message: String| WalError::Corrupt {
        path: key.into(),
        offset,
        message,
    };
    if bytes.len() < OBJECT_HEADER_LEN {
        return Err(corrupt(
            0,
            format!(
                "object of {} bytes is shorter than its {OBJECT_HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if &bytes[0..4] != MAGIC {
        return Err(corrupt(
            0,
            "not a write-ahead log object (bad magic)".to_string(),
        ));
    }
    if bytes[4] != VERSION {
        return Err(corrupt(
            4,
            format!(
                "format version {} is not {VERSION}: written by another build?",
                bytes[4]
            ),
        ));
    }
    let range = ObjectRange {
        first: u64_at(bytes, 8),
        last: u64_at(bytes, 16),
    };
    let prev_last = u64_at(bytes, 24);
    let num_records = u32_at(bytes, 32);
    let body_len = u32_at(bytes, 36) as usize;
    let uncompressed_len = u32_at(bytes, 40);
    let expected_crc = u32_at(bytes, 44);
    if range.first == 0
        || range.last < range.first
        || range.last - range.first + 1 != u64::from(num_records)
        || prev_last >= range.first
    {
        return Err(corrupt(
            8,
            format!(
                "header says positions {}..={} with {num_records} records after {prev_last}",
                range.first, range.last
            ),
        ));
    }
    if parse_object_key(key).is_some_and(|named| named != range) {
        return Err(corrupt(
            8,
            format!(
                "object holds positions {}..={} but is named for others",
                range.first, range.last
            ),
        ));
    }
    if OBJECT_HEADER_LEN + body_len != bytes.len() {
        return Err(corrupt(
            36,
            format!(
                "body length {body_len} does not match the object's {} bytes",
                bytes.len()
            ),
        ));
    }
    if uncompressed_len > MAX_UNCOMPRESSED_LEN {
        return Err(corrupt(
            40,
            format!("uncompressed length {uncompressed_len} is over the {MAX_UNCOMPRESSED_LEN}-byte bound"),
        ));
    }
    let body = &bytes[OBJECT_HEADER_LEN..];
    if crc32c::crc32c(body) != expected_crc {
        return Err(corrupt(
            OBJECT_HEADER_LEN as u64,
            "checksum mismatch in the body".to_string(),
        ));
    }
    let records_bytes = zstd::bulk::decompress(body, uncompressed_len as usize)
        .map_err(|error| corrupt(OBJECT_HEADER_LEN as u64, format!("zstd: {error}")))?;
    if records_bytes.len() != uncompressed_len as usize {
        return Err(corrupt(
            40,
            format!(
                "body decompresses to {} bytes, header says {uncompressed_len}",
                records_bytes.len()
            ),
        ));
    }
    let mut records = Vec::with_capacity(num_records as usize);
    let mut offset = 0usize;
    let mut expected_position = range.first;
    while offset < records_bytes.len() {
        if records_bytes.len() - offset < HEADER_LEN {
            return Err(corrupt(
                offset as u64,
                "record header cut short".to_string(),
            ));
        }
        let len = u32_at(&records_bytes, offset);
        let crc = u32_at(&records_bytes, offset + 4);
        let position = u64_at(&records_bytes, offset + 8);
        if len > MAX_RECORD_LEN || HEADER_LEN + len as usize > records_bytes.len() - offset {
            return Err(corrupt(
                offset as u64,
                format!("record length {len} runs past the body"),
            ));
        }
        if position != expected_position {
            return Err(corrupt(
                offset as u64,
                format!("record has position {position}, expected {expected_position}"),
            ));
        }
        let payload =
            records_bytes[offset + HEADER_LEN..offset + HEADER_LEN + len as usize].to_vec();
        if checksum(position, &payload) != crc {
            return Err(corrupt(
                offset as u64,
                format!("checksum mismatch in record at position {position}"),
            ));
        }
        records.push(WalRecord { position, payload });
        offset += HEADER_LEN + len as usize;
        expected_position += 1;
    }
    if records.len() != num_records as usize {
        return Err(corrupt(
            32,
            format!(
                "object holds {} records, header says {num_records}",
                records.len()
            ),
        ));
    }
    Ok(DecodedObject { prev_last, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_object(5, 4, &[b"{\"a\":1}\n", b"{\"a\":2}\n{\"a\":3}\n"]).unwrap()
    }

    fn error_of(key: &str, bytes: &[u8]) -> String {
        decode_object(key, bytes).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_with_positions_and_chain_link() {
        let key = object_key(ObjectRange { first: 5, last: 6 });
        assert_eq!(key, "00000000000000000005-00000000000000000006.wal");
        assert_eq!(
            parse_object_key(&format!("logs_01H/node-1.7/{key}")),
            Some(ObjectRange { first: 5, last: 6 })
        );
        assert_eq!(
            parse_object_key("00000000000000000007-00000000000000000006.wal"),
            None
        );
        assert_eq!(parse_object_key("notes.txt"), None);
        let decoded = decode_object(&key, &sample()).unwrap();
        assert_eq!(decoded.prev_last, 4);
        assert_eq!(decoded.records[1].position, 6);
        assert_eq!(decoded.records[1].payload, b"{\"a\":2}\n{\"a\":3}\n");
    }

    #[test]
    fn each_damage_has_its_own_error() {
        let key = object_key(ObjectRange { first: 5, last: 6 });
        let good = sample();
        assert!(error_of(&key, &good[..20]).contains("shorter than its 48-byte header"));
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(error_of(&key, &bad_magic).contains("bad magic"));
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        assert!(error_of(&key, &bad_version).contains("format version 9"));
        let mut bad_count = good.clone();
        bad_count[32] = 7;
        assert!(error_of(&key, &bad_count).contains("with 7 records"));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(error_of(&key, &flipped).contains("checksum mismatch in the body"));
        assert!(error_of(&key, &good[..good.len() - 1]).contains("does not match the object's"));
        let other_key = object_key(ObjectRange { first: 9, last: 10 });
        assert!(error_of(&other_key, &good).contains("named for others"));
        let mut huge = good.clone();
        huge[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(error_of(&key, &huge).contains("over the"));
    }
}
