//! One flush of a node's write-ahead log on object storage: a single object holding the
//! batch of every shard (one per index) that the node wrote to during the flush window. A
//! node writing to 100 indexes makes one PUT per flush, not 100 (WarpStream's way); each
//! shard's records are a section of their own, compressed apart, so a reader fetches only
//! the byte ranges of the shards it indexes.
//!
//! Layout, little endian:
//! `[magic "QWAL"][version u8][3 zero bytes][seq u64][num_sections u32][toc_len u32]`
//! `[crc32c(toc) u32][4 zero bytes]`, then the table of contents, one entry per section:
//! `[shard_len u16][shard, UTF-8][first u64][last u64][prev_last u64][offset u64][len u32]`
//! `[uncompressed_len u32][crc32c(section) u32]`, then the sections: zstd-compressed
//! records framed as in the local log (length, crc, position, payload).
//!
//! `prev_last` is the last position of the shard's previous section that was written when
//! this object was started (two flushes may be in flight at once): a reader that finds it
//! neither among the objects nor at or below what was published knows an acknowledged
//! object is missing, instead of skipping it silently.
//!
//! Objects are named `{seq:020}.wal` after the flush's sequence number in the node's log.

use super::record::{checksum, encode_record, WalError, WalRecord, HEADER_LEN, MAX_RECORD_LEN};

const MAGIC: &[u8; 4] = b"QWAL";
/// Version 1 held one shard per object.
const VERSION: u8 = 2;
pub(crate) const OBJECT_HEADER_LEN: usize = 32;
/// A flush is at most `ingest.wal_flush_bytes` plus one request; a length read from an
/// object is never trusted beyond this.
const MAX_UNCOMPRESSED_LEN: u32 = 1024 * 1024 * 1024;
/// Enough for tens of thousands of shards in one flush; a table read from an object is
/// never trusted beyond it.
const MAX_TOC_LEN: u32 = 16 * 1024 * 1024;
const SECTION_ENTRY_FIXED_LEN: usize = 2 + 8 * 4 + 4 * 3;
/// Fast enough to keep up with ingest on one core; logs live minutes, not months.
const ZSTD_LEVEL: i32 = 1;

pub(crate) fn object_key(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The sequence number of an object from its key (the last path component), `None` for
/// any other file.
pub(crate) fn parse_object_key(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

/// One shard's records in a flush, before encoding.
pub(crate) struct ShardBatch<'a> {
    pub shard: &'a str,
    pub first: u64,
    pub prev_last: u64,
    pub payloads: Vec<&'a [u8]>,
}

/// Where one shard's records sit in an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub shard: String,
    pub first: u64,
    pub last: u64,
    pub prev_last: u64,
    pub offset: u64,
    pub len: u32,
    pub uncompressed_len: u32,
    pub crc: u32,
}

/// The fixed header: how long the table of contents that follows it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObjectHeader {
    pub seq: u64,
    num_sections: u32,
    pub toc_len: u32,
    toc_crc: u32,
}

fn zstd_error(error: std::io::Error) -> WalError {
    WalError::Io {
        path: "zstd".into(),
        message: error.to_string(),
    }
}

/// Encodes a flush: returns the object and the table of contents it carries.
pub(crate) fn encode_object(
    seq: u64,
    batches: &[ShardBatch<'_>],
) -> Result<(Vec<u8>, Vec<Section>), WalError> {
    let mut bodies = Vec::with_capacity(batches.len());
    let mut sections = Vec::with_capacity(batches.len());
    let mut toc_len = 0usize;
    for batch in batches {
        let mut records = Vec::new();
        for (offset, payload) in batch.payloads.iter().enumerate() {
            encode_record(batch.first + offset as u64, payload, &mut records);
        }
        let uncompressed_len = u32::try_from(records.len())
            .ok()
            .filter(|len| *len <= MAX_UNCOMPRESSED_LEN)
            .ok_or(WalError::RecordTooLarge(records.len()))?;
        let body = zstd::bulk::compress(&records, ZSTD_LEVEL).map_err(zstd_error)?;
        if batch.shard.len() > usize::from(u16::MAX) || batch.payloads.is_empty() {
            return Err(WalError::Io {
                path: batch.shard.into(),
                message: "a shard section needs a name under 64 KiB and records".to_string(),
            });
        }
        toc_len += SECTION_ENTRY_FIXED_LEN + batch.shard.len();
        sections.push(Section {
            shard: batch.shard.to_string(),
            first: batch.first,
            last: batch.first + batch.payloads.len() as u64 - 1,
            prev_last: batch.prev_last,
            offset: 0,
            len: body.len() as u32,
            uncompressed_len,
            crc: crc32c::crc32c(&body),
        });
        bodies.push(body);
    }
    let mut offset = (OBJECT_HEADER_LEN + toc_len) as u64;
    let mut toc = Vec::with_capacity(toc_len);
    for section in &mut sections {
        section.offset = offset;
        offset += u64::from(section.len);
        toc.extend_from_slice(&(section.shard.len() as u16).to_le_bytes());
        toc.extend_from_slice(section.shard.as_bytes());
        for value in [
            section.first,
            section.last,
            section.prev_last,
            section.offset,
        ] {
            toc.extend_from_slice(&value.to_le_bytes());
        }
        for value in [section.len, section.uncompressed_len, section.crc] {
            toc.extend_from_slice(&value.to_le_bytes());
        }
    }
    let toc_len = u32::try_from(toc.len())
        .ok()
        .filter(|len| *len <= MAX_TOC_LEN)
        .ok_or(WalError::RecordTooLarge(toc.len()))?;
    let mut object = Vec::with_capacity(offset as usize);
    object.extend_from_slice(MAGIC);
    object.push(VERSION);
    object.extend_from_slice(&[0; 3]);
    object.extend_from_slice(&seq.to_le_bytes());
    object.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    object.extend_from_slice(&toc_len.to_le_bytes());
    object.extend_from_slice(&crc32c::crc32c(&toc).to_le_bytes());
    object.extend_from_slice(&[0; 4]);
    object.extend_from_slice(&toc);
    for body in bodies {
        object.extend_from_slice(&body);
    }
    Ok((object, sections))
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    let mut buffer = [0; 2];
    buffer.copy_from_slice(&bytes[offset..offset + 2]);
    u16::from_le_bytes(buffer)
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

fn corrupt(key: &str, offset: u64, message: String) -> WalError {
    WalError::Corrupt {
        path: key.into(),
        offset,
        message,
    }
}

/// Decodes the fixed header read from the first `OBJECT_HEADER_LEN` bytes of `key`.
pub(crate) fn decode_header(key: &str, bytes: &[u8]) -> Result<ObjectHeader, WalError> {
    if bytes.len() < OBJECT_HEADER_LEN {
        return Err(corrupt(
            key,
            0,
            format!(
                "object of {} bytes is shorter than its {OBJECT_HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if &bytes[0..4] != MAGIC {
        return Err(corrupt(
            key,
            0,
            "not a write-ahead log object (bad magic)".to_string(),
        ));
    }
    if bytes[4] != VERSION {
        return Err(corrupt(
            key,
            4,
            format!(
                "format version {} is not {VERSION}: written by another build?",
                bytes[4]
            ),
        ));
    }
    let header = ObjectHeader {
        seq: u64_at(bytes, 8),
        num_sections: u32_at(bytes, 16),
        toc_len: u32_at(bytes, 20),
        toc_crc: u32_at(bytes, 24),
    };
    if parse_object_key(key).is_some_and(|named| named != header.seq) {
        return Err(corrupt(
            key,
            8,
            format!("object is flush {} but is named for another", header.seq),
        ));
    }
    if header.toc_len > MAX_TOC_LEN {
        return Err(corrupt(
            key,
            20,
            format!(
                "table of contents of {} bytes is over the {MAX_TOC_LEN}-byte bound",
                header.toc_len
            ),
        ));
    }
    Ok(header)
}

/// Decodes the table of contents that follows the header.
pub(crate) fn decode_toc(
    key: &str,
    header: &ObjectHeader,
    toc: &[u8],
) -> Result<Vec<Section>, WalError> {
    let toc_offset = OBJECT_HEADER_LEN as u64;
    if toc.len() != header.toc_len as usize {
        return Err(corrupt(
            key,
            toc_offset,
            format!(
                "table of contents is {} bytes, header says {}",
                toc.len(),
                header.toc_len
            ),
        ));
    }
    if crc32c::crc32c(toc) != header.toc_crc {
        return Err(corrupt(
            key,
            toc_offset,
            "checksum mismatch in the table of contents".to_string(),
        ));
    }
    let mut sections = Vec::with_capacity(header.num_sections.min(65_536) as usize);
    let mut at = 0usize;
    let mut next_offset = toc_offset + u64::from(header.toc_len);
    while at < toc.len() {
        let entry_offset = toc_offset + at as u64;
        let short = || {
            corrupt(
                key,
                entry_offset,
                "table of contents entry cut short".to_string(),
            )
        };
        if toc.len() - at < 2 {
            return Err(short());
        }
        let shard_len = usize::from(u16_at(toc, at));
        if toc.len() - at < SECTION_ENTRY_FIXED_LEN + shard_len {
            return Err(short());
        }
        let shard = std::str::from_utf8(&toc[at + 2..at + 2 + shard_len])
            .map_err(|_| corrupt(key, entry_offset, "shard name is not UTF-8".to_string()))?
            .to_string();
        let fixed = at + 2 + shard_len;
        let section = Section {
            shard,
            first: u64_at(toc, fixed),
            last: u64_at(toc, fixed + 8),
            prev_last: u64_at(toc, fixed + 16),
            offset: u64_at(toc, fixed + 24),
            len: u32_at(toc, fixed + 32),
            uncompressed_len: u32_at(toc, fixed + 36),
            crc: u32_at(toc, fixed + 40),
        };
        if section.first == 0
            || section.last < section.first
            || section.prev_last >= section.first
            || section.offset != next_offset
            || section.uncompressed_len > MAX_UNCOMPRESSED_LEN
        {
            return Err(corrupt(
                key,
                entry_offset,
                format!(
                    "section of shard `{}` says positions {}..={} after {} at byte {} ({} bytes, {} uncompressed)",
                    section.shard,
                    section.first,
                    section.last,
                    section.prev_last,
                    section.offset,
                    section.len,
                    section.uncompressed_len
                ),
            ));
        }
        next_offset += u64::from(section.len);
        sections.push(section);
        at = fixed + SECTION_ENTRY_FIXED_LEN - 2;
    }
    if sections.len() != header.num_sections as usize {
        return Err(corrupt(
            key,
            16,
            format!(
                "object holds {} sections, header says {}",
                sections.len(),
                header.num_sections
            ),
        ));
    }
    Ok(sections)
}

/// Decodes a section's bytes (`section.len` of them, read at `section.offset`) into its
/// records, checking their positions and checksums.
pub(crate) fn decode_section(
    key: &str,
    section: &Section,
    body: &[u8],
) -> Result<Vec<WalRecord>, WalError> {
    let at = |offset: usize| section.offset + offset as u64;
    if body.len() != section.len as usize {
        return Err(corrupt(
            key,
            section.offset,
            format!(
                "section of shard `{}` is {} bytes, its entry says {}: the object is cut short",
                section.shard,
                body.len(),
                section.len
            ),
        ));
    }
    if crc32c::crc32c(body) != section.crc {
        return Err(corrupt(
            key,
            section.offset,
            format!(
                "checksum mismatch in the section of shard `{}`",
                section.shard
            ),
        ));
    }
    let records_bytes = zstd::bulk::decompress(body, section.uncompressed_len as usize)
        .map_err(|error| corrupt(key, section.offset, format!("zstd: {error}")))?;
    if records_bytes.len() != section.uncompressed_len as usize {
        return Err(corrupt(
            key,
            section.offset,
            format!(
                "section decompresses to {} bytes, its entry says {}",
                records_bytes.len(),
                section.uncompressed_len
            ),
        ));
    }
    let mut records = Vec::with_capacity((section.last - section.first + 1).min(1 << 20) as usize);
    let mut offset = 0usize;
    let mut expected_position = section.first;
    while offset < records_bytes.len() {
        if records_bytes.len() - offset < HEADER_LEN {
            return Err(corrupt(key, at(0), "record header cut short".to_string()));
        }
        let len = u32_at(&records_bytes, offset);
        let crc = u32_at(&records_bytes, offset + 4);
        let position = u64_at(&records_bytes, offset + 8);
        if len > MAX_RECORD_LEN || HEADER_LEN + len as usize > records_bytes.len() - offset {
            return Err(corrupt(
                key,
                at(0),
                format!("record length {len} runs past the section"),
            ));
        }
        if position != expected_position {
            return Err(corrupt(
                key,
                at(0),
                format!("record has position {position}, expected {expected_position}"),
            ));
        }
        let payload =
            records_bytes[offset + HEADER_LEN..offset + HEADER_LEN + len as usize].to_vec();
        if checksum(position, &payload) != crc {
            return Err(corrupt(
                key,
                at(0),
                format!("checksum mismatch in record at position {position}"),
            ));
        }
        records.push(WalRecord { position, payload });
        offset += HEADER_LEN + len as usize;
        expected_position += 1;
    }
    if expected_position != section.last + 1 {
        return Err(corrupt(
            key,
            at(0),
            format!(
                "section of shard `{}` ends at position {}, its entry says {}",
                section.shard,
                expected_position - 1,
                section.last
            ),
        ));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<Section>) {
        encode_object(
            3,
            &[
                ShardBatch {
                    shard: "logs_01A",
                    first: 5,
                    prev_last: 4,
                    payloads: vec![b"{\"a\":1}\n", b"{\"a\":2}\n{\"a\":3}\n"],
                },
                ShardBatch {
                    shard: "other_01B",
                    first: 1,
                    prev_last: 0,
                    payloads: vec![b"{\"b\":1}\n"],
                },
            ],
        )
        .unwrap()
    }

    fn decode_all(key: &str, object: &[u8]) -> Result<Vec<Vec<WalRecord>>, WalError> {
        let header = decode_header(key, object)?;
        let toc_end = (OBJECT_HEADER_LEN + header.toc_len as usize).min(object.len());
        let sections = decode_toc(key, &header, &object[OBJECT_HEADER_LEN..toc_end])?;
        sections
            .iter()
            .map(|section| {
                let start = (section.offset as usize).min(object.len());
                let end = (start + section.len as usize).min(object.len());
                decode_section(key, section, &object[start..end])
            })
            .collect()
    }

    fn error_of(key: &str, object: &[u8]) -> String {
        decode_all(key, object).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_every_shard_with_positions_and_chain_links() {
        let key = object_key(3);
        assert_eq!(key, "00000000000000000003.wal");
        assert_eq!(parse_object_key(&format!("node-1.7/{key}")), Some(3));
        assert_eq!(parse_object_key("0003.wal"), None);
        assert_eq!(parse_object_key("notes.txt"), None);
        let (object, sections) = sample();
        let header = decode_header(&key, &object).unwrap();
        let toc_end = OBJECT_HEADER_LEN + header.toc_len as usize;
        assert_eq!(
            decode_toc(&key, &header, &object[OBJECT_HEADER_LEN..toc_end]).unwrap(),
            sections
        );
        assert_eq!(sections[0].prev_last, 4);
        assert_eq!((sections[1].first, sections[1].last), (1, 1));
        let records = decode_all(&key, &object).unwrap();
        assert_eq!(records[0][1].position, 6);
        assert_eq!(records[0][1].payload, b"{\"a\":2}\n{\"a\":3}\n");
        assert_eq!(records[1][0].payload, b"{\"b\":1}\n");
    }

    #[test]
    fn each_damage_has_its_own_error() {
        let key = object_key(3);
        let (good, sections) = sample();
        assert!(error_of(&key, &good[..20]).contains("shorter than its 32-byte header"));
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(error_of(&key, &bad_magic).contains("bad magic"));
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        assert!(error_of(&key, &bad_version).contains("format version 9"));
        assert!(error_of(&object_key(4), &good).contains("named for another"));
        let mut bad_count = good.clone();
        bad_count[16] = 7;
        assert!(error_of(&key, &bad_count).contains("header says 7"));
        let mut bad_toc = good.clone();
        bad_toc[OBJECT_HEADER_LEN + 3] ^= 0xff;
        assert!(error_of(&key, &bad_toc).contains("checksum mismatch in the table of contents"));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(error_of(&key, &flipped)
            .contains("checksum mismatch in the section of shard `other_01B`"));
        assert!(error_of(&key, &good[..good.len() - 1]).contains("cut short"));
        let mut huge = good.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(error_of(&key, &huge).contains("over the"));
        // A section whose entry lies about its last position.
        let mut lying = sections[1].clone();
        lying.last = 2;
        let start = lying.offset as usize;
        let error = decode_section(&key, &lying, &good[start..start + lying.len as usize])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ends at position 1, its entry says 2"),
            "{error}"
        );
    }
}
