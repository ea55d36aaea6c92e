//! Opened columns (datetimes, log ids), kept per segment. tantivy reads every block header of a column
//! again each time a query opens it (one header per 512 documents with the block-wise
//! linear codec that timestamps get), so without this the fixed cost of a windowed query
//! grows with the size of the split. Segments are immutable and their ids unique, so an
//! opened column stays valid as long as it is kept.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tantivy::columnar::{Column, ColumnType};
use tantivy::index::SegmentId;
use tantivy::SegmentReader;

/// Columns of at most this many documents in all are kept; past it the cache starts over.
/// An opened column holds its block headers and keeps its bytes alive, a few bytes per
/// document.
const MAX_CACHED_DOCS: u64 = 100_000_000;

#[derive(Default)]
struct Cache {
    columns: HashMap<(SegmentId, String), Column<u64>>,
    num_docs: u64,
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The datetime column `field` of `segment` as tantivy's order-preserving `u64`s
/// (nanoseconds), opened once per segment.
pub fn datetime_column(
    segment: &SegmentReader,
    field: &str,
) -> tantivy::Result<Option<Column<u64>>> {
    cached_column(segment, field, ColumnType::DateTime)
}

/// The `u64` column `field` of `segment`, opened once per segment. `None` when the
/// segment has no such column (a split written before the field existed).
pub fn u64_column(segment: &SegmentReader, field: &str) -> tantivy::Result<Option<Column<u64>>> {
    cached_column(segment, field, ColumnType::U64)
}

fn cached_column(
    segment: &SegmentReader,
    field: &str,
    column_type: ColumnType,
) -> tantivy::Result<Option<Column<u64>>> {
    let key = (segment.segment_id(), field.to_string());
    if let Some(column) = cache().columns.get(&key) {
        return Ok(Some(column.clone()));
    }
    let Some((column, _)) = segment
        .fast_fields()
        .u64_lenient_for_type(Some(&[column_type]), field)?
    else {
        return Ok(None);
    };
    let num_docs = u64::from(segment.max_doc());
    let mut cache = cache();
    if cache.num_docs + num_docs > MAX_CACHED_DOCS {
        cache.columns.clear();
        cache.num_docs = 0;
    }
    if num_docs <= MAX_CACHED_DOCS {
        cache.num_docs += num_docs;
        cache.columns.insert(key, column.clone());
    }
    Ok(Some(column))
}
