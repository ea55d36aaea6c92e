use super::{SplitError, MAX_METADATA_LEN};

pub const SPLIT_MAGIC: [u8; 4] = *b"QSPL";
pub const SPLIT_FORMAT_VERSION: u32 = 1;
/// file_table_offset (8) + file_table_len (8) + hotcache_len (8) + crc32c (4) + version (4)
/// + magic (4).
pub const FOOTER_LEN: usize = 36;

/// The fixed-size tail of a split file. The checksum covers the file table and hotcache,
/// the bytes a searcher trusts to find everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitFooter {
    pub file_table_offset: u64,
    pub file_table_len: u64,
    pub hotcache_len: u64,
    pub crc32c: u32,
}

impl SplitFooter {
    pub fn metadata_len(&self) -> u64 {
        self.file_table_len + self.hotcache_len
    }

    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[0..8].copy_from_slice(&self.file_table_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.file_table_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.hotcache_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.crc32c.to_le_bytes());
        out[28..32].copy_from_slice(&SPLIT_FORMAT_VERSION.to_le_bytes());
        out[32..36].copy_from_slice(&SPLIT_MAGIC);
        out
    }

    /// Decodes the footer at the end of `tail` (the bytes from the file table to the end of
    /// the split) and checks it against them.
    pub fn decode_and_check(tail: &[u8]) -> Result<SplitFooter, SplitError> {
        if tail.len() < FOOTER_LEN {
            return Err(SplitError::CorruptFooter(format!(
                "the split tail is {} bytes, shorter than the {FOOTER_LEN}-byte footer",
                tail.len()
            )));
        }
        let footer = &tail[tail.len() - FOOTER_LEN..];
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&footer[32..36]);
        if magic != SPLIT_MAGIC {
            return Err(SplitError::BadMagic { found: magic });
        }
        let read_u64 = |at: usize| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&footer[at..at + 8]);
            u64::from_le_bytes(buf)
        };
        let read_u32 = |at: usize| {
            let mut buf = [0u8; 4];
            buf.copy_from_slice(&footer[at..at + 4]);
            u32::from_le_bytes(buf)
        };
        let version = read_u32(28);
        if version != SPLIT_FORMAT_VERSION {
            return Err(SplitError::UnsupportedVersion(version));
        }
        let decoded = SplitFooter {
            file_table_offset: read_u64(0),
            file_table_len: read_u64(8),
            hotcache_len: read_u64(16),
            crc32c: read_u32(24),
        };
        if decoded.file_table_len > MAX_METADATA_LEN || decoded.hotcache_len > MAX_METADATA_LEN {
            return Err(SplitError::CorruptFooter(format!(
                "file table ({} bytes) or hotcache ({} bytes) exceeds the {MAX_METADATA_LEN}-byte bound",
                decoded.file_table_len, decoded.hotcache_len
            )));
        }
        let expected_tail_len = decoded.metadata_len() + FOOTER_LEN as u64;
        if tail.len() as u64 != expected_tail_len {
            return Err(SplitError::CorruptFooter(format!(
                "footer announces {expected_tail_len} bytes of file table, hotcache and footer, but {} were read; are the split's footer offsets right?",
                tail.len()
            )));
        }
        let computed = crc32c::crc32c(&tail[..tail.len() - FOOTER_LEN]);
        if computed != decoded.crc32c {
            return Err(SplitError::ChecksumMismatch {
                expected: decoded.crc32c,
                computed,
            });
        }
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_tail() -> Vec<u8> {
        let metadata = b"file-table+hotcache".to_vec();
        let footer = SplitFooter {
            file_table_offset: 1_000,
            file_table_len: 10,
            hotcache_len: metadata.len() as u64 - 10,
            crc32c: crc32c::crc32c(&metadata),
        };
        let mut tail = metadata;
        tail.extend_from_slice(&footer.encode());
        tail
    }

    #[test]
    fn round_trip() {
        let tail = valid_tail();
        let footer = SplitFooter::decode_and_check(&tail).unwrap();
        assert_eq!(footer.file_table_offset, 1_000);
        assert_eq!(footer.metadata_len(), 19);
    }

    #[test]
    fn each_corruption_has_its_own_error() {
        let err = SplitFooter::decode_and_check(b"short").unwrap_err();
        assert_eq!(
            err.to_string(),
            "split footer is corrupt: the split tail is 5 bytes, shorter than the 36-byte footer"
        );

        let mut bad_magic = valid_tail();
        let len = bad_magic.len();
        bad_magic[len - 1] = b'X';
        assert!(matches!(
            SplitFooter::decode_and_check(&bad_magic),
            Err(SplitError::BadMagic { found }) if &found == b"QSPX"
        ));

        let mut bad_version = valid_tail();
        bad_version[len - 8..len - 4].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            SplitFooter::decode_and_check(&bad_version).unwrap_err().to_string(),
            "split format version 7 is not supported by this build (supports version 1): upgrade Quarry"
        );

        let mut flipped = valid_tail();
        flipped[0] ^= 0xff;
        assert!(matches!(
            SplitFooter::decode_and_check(&flipped),
            Err(SplitError::ChecksumMismatch { .. })
        ));

        let truncated = valid_tail()[3..].to_vec();
        assert!(matches!(
            SplitFooter::decode_and_check(&truncated),
            Err(SplitError::CorruptFooter(message)) if message.contains("footer offsets")
        ));

        let mut huge = valid_tail();
        huge[len - 36 + 8..len - 36 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            SplitFooter::decode_and_check(&huge),
            Err(SplitError::CorruptFooter(message)) if message.contains("exceeds")
        ));
    }
}
