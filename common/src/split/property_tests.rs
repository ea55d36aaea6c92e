//! Property tests: a split's footer, file table and hotcache come from object storage,
//! where any byte may be damaged. For any bytes, decoding returns a value or an error,
//! never a panic, and looking ranges up in a decoded hotcache never reads out of bounds.

use std::ops::Range;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tantivy::directory::OwnedBytes;

use super::{FileTable, HotCache, SplitFooter, FOOTER_LEN};

/// Bytes that begin like a well-formed structure (small counts and lengths) more often
/// than random bytes would, followed by anything.
fn structured_bytes() -> impl Strategy<Value = Vec<u8>> {
    (0u32..4, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(count, rest)| {
        let mut bytes = count.to_le_bytes().to_vec();
        bytes.extend(rest);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_footer_bytes_decode_or_err(tail in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = SplitFooter::decode_and_check(&tail);
    }

    #[test]
    fn a_valid_footer_damaged_anywhere_decodes_or_errs(
        metadata in prop::collection::vec(any::<u8>(), 0..64),
        position in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let footer = SplitFooter {
            file_table_offset: 1_000,
            file_table_len: metadata.len() as u64 / 2,
            hotcache_len: metadata.len() as u64 - metadata.len() as u64 / 2,
            crc32c: crc32c::crc32c(&metadata),
        };
        let mut tail = metadata.clone();
        tail.extend_from_slice(&footer.encode());
        prop_assert_eq!(tail.len(), metadata.len() + FOOTER_LEN);
        let at = position.index(tail.len());
        tail[at] ^= flip;
        let _ = SplitFooter::decode_and_check(&tail);
    }

    #[test]
    fn any_file_table_bytes_decode_or_err(bytes in structured_bytes(), body_len in any::<u64>()) {
        let _ = FileTable::decode(&bytes, body_len);
    }

    #[test]
    fn file_tables_round_trip(
        files in prop::collection::btree_map("[a-z]{1,12}", (0u64..1 << 40, 0u64..1 << 20), 0..8)
    ) {
        let mut table = FileTable::default();
        let mut start = 0;
        for (name, (gap, len)) in &files {
            start += gap;
            table.insert(PathBuf::from(name), start..start + len);
            start += len;
        }
        let decoded = FileTable::decode(&table.encode(), start).unwrap();
        for (path, range) in table.files() {
            prop_assert_eq!(decoded.get(path), Some(range.clone()));
        }
    }

    #[test]
    fn any_hotcache_bytes_decode_or_err_and_lookups_stay_in_bounds(
        bytes in structured_bytes(),
        lookups in prop::collection::vec((any::<u64>(), any::<u64>()), 0..8),
    ) {
        if let Ok(hotcache) = HotCache::decode(OwnedBytes::new(bytes)) {
            for (start, end) in lookups {
                let range: Range<u64> = start.min(end)..start.max(end);
                let _ = hotcache.get(Path::new(""), &range);
            }
        }
    }
}
