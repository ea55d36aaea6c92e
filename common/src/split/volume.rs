//! Per-minute document counts of a split, overall and per tag value, recorded when the
//! split is packaged. The log-volume histogram (every dashboard's first query, re-sent on
//! each refresh) is then read from them instead of visiting a million documents.
//!
//! The file also holds each segment's time runs (`time_order`), which speed up the
//! histogram collector where the counts cannot answer (a query, a cut minute).
//!
//! The counts live in the split as one more file, `quarry.volume`, read into the hotcache
//! so that a searcher has them as soon as the split is open.
//!
//! ```text
//! "QVOL" version(u8)
//! bucket_secs, timestamp_field, multi_valued (u8), buckets
//! num_tag_fields, then per field: name, num_values, then per value: value, buckets
//! num_segments, then per segment: id, max_doc, num_runs, run start deltas  (version 2)
//! buckets = count, then per bucket: minute delta (zigzag), doc count      (all varints)
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use quarry_config::IndexConfig;
use tantivy::{DateTime, DocId, Index, SegmentReader};

use super::time_order::{SplitTimeRuns, TimeRuns};
use super::writer::{searcher_of, tantivy_error};
use super::SplitError;
use crate::doc_mapper::MAX_TAG_VALUES_PER_FIELD;

/// The file's name inside the split.
pub const VOLUME_FILE: &str = "quarry.volume";

const MAGIC: &[u8; 4] = b"QVOL";
/// Version 1 had no time runs; it still reads.
const VERSION: u8 = 2;
pub const BUCKET_SECS: i64 = 60;
const BUCKET_NANOS: i64 = BUCKET_SECS * 1_000_000_000;

/// A split covering more minutes than this (about two years) records no counts: its
/// histograms go through the collector, and its hotcache stays small.
const MAX_BUCKETS: i64 = 1_000_000;
/// A tag field whose (value × minute) table would be larger than this is not counted.
const MAX_TAG_CELLS: usize = 4_000_000;

/// What to count: the index's timestamp field and tag fields.
#[derive(Clone, Debug, Default)]
pub struct VolumeSpec {
    pub timestamp_field: Option<String>,
    pub tag_fields: Vec<String>,
}

impl VolumeSpec {
    pub fn of(index_config: &IndexConfig) -> VolumeSpec {
        VolumeSpec {
            timestamp_field: index_config.doc_mapping.timestamp_field.clone(),
            tag_fields: index_config.doc_mapping.tag_fields.clone(),
        }
    }
}

/// Documents per minute: `(minute since the epoch, count)`, minutes ascending, no zeros.
pub type MinuteCounts = Vec<(i64, u64)>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeCounts {
    pub timestamp_field: String,
    /// Whether some document holds several timestamps in different minutes: then the
    /// totals count it more than once and are not a number of documents.
    pub multi_valued: bool,
    /// Documents per minute of their timestamp (a document with several timestamps counts
    /// once in each of their distinct minutes, as in a date histogram).
    pub totals: MinuteCounts,
    /// Per tag field (one whose values fit the tag limit), per value: the minutes of the
    /// documents holding it.
    pub tags: BTreeMap<String, BTreeMap<String, MinuteCounts>>,
    /// The time runs of the segments whose runs are worth recording.
    pub time_runs: Arc<SplitTimeRuns>,
}

impl VolumeCounts {
    /// Counts the alive documents of the committed index in `index_dir`. `None` when the
    /// index has no timestamp field or spans too many minutes to be worth it. Blocking.
    pub fn compute(
        index_dir: &Path,
        spec: &VolumeSpec,
    ) -> Result<Option<VolumeCounts>, SplitError> {
        let Some(timestamp_field) = &spec.timestamp_field else {
            return Ok(None);
        };
        let index = Index::open_in_dir(index_dir).map_err(tantivy_error)?;
        let searcher = searcher_of(&index)?;
        let mut counts = VolumeCounts {
            timestamp_field: timestamp_field.clone(),
            ..VolumeCounts::default()
        };
        let mut skipped_tags = Vec::new();
        let mut time_runs = SplitTimeRuns::new();
        for segment in searcher.segment_readers() {
            let Some(segment_counts) =
                count_segment(segment, timestamp_field, &spec.tag_fields).map_err(tantivy_error)?
            else {
                return Ok(None);
            };
            if let Some(runs) =
                TimeRuns::of_segment(segment, timestamp_field).map_err(tantivy_error)?
            {
                time_runs.insert(segment.segment_id().uuid_string(), Arc::new(runs));
            }
            counts.totals = add_minute_counts(&counts.totals, &segment_counts.totals);
            counts.multi_valued |= segment_counts.multi_valued;
            skipped_tags.extend(segment_counts.skipped_tags);
            for (field, values) in segment_counts.tags {
                let merged = counts.tags.entry(field).or_default();
                for (value, minutes) in values {
                    let entry = merged.entry(value).or_default();
                    *entry = add_minute_counts(entry, &minutes);
                }
            }
        }
        for field in skipped_tags {
            counts.tags.remove(&field);
        }
        counts
            .tags
            .retain(|_, values| values.len() <= MAX_TAG_VALUES_PER_FIELD);
        counts.time_runs = Arc::new(time_runs);
        Ok(Some(counts))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.totals.len() * 4);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_varint(&mut out, BUCKET_SECS as u64);
        put_str(&mut out, &self.timestamp_field);
        out.push(u8::from(self.multi_valued));
        put_minutes(&mut out, &self.totals);
        put_varint(&mut out, self.tags.len() as u64);
        for (field, values) in &self.tags {
            put_str(&mut out, field);
            put_varint(&mut out, values.len() as u64);
            for (value, minutes) in values {
                put_str(&mut out, value);
                put_minutes(&mut out, minutes);
            }
        }
        put_varint(&mut out, self.time_runs.len() as u64);
        for (segment_id, runs) in self.time_runs.iter() {
            put_str(&mut out, segment_id);
            runs.encode(&mut out);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<VolumeCounts, SplitError> {
        let corrupt =
            |what: &str| SplitError::Tantivy(format!("volume counts are corrupt: {what}"));
        let mut reader = Reader::new(bytes);
        if reader.take(4).ok_or_else(|| corrupt("too short"))? != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = reader.take(1).ok_or_else(|| corrupt("too short"))?[0];
        if version != VERSION && version != 1 {
            return Err(corrupt(&format!("unknown version {version}")));
        }
        if reader.varint().ok_or_else(|| corrupt("bucket"))? != BUCKET_SECS as u64 {
            return Err(corrupt("unexpected bucket length"));
        }
        let timestamp_field = reader.string().ok_or_else(|| corrupt("timestamp field"))?;
        let multi_valued = match reader.take(1).ok_or_else(|| corrupt("too short"))?[0] {
            0 => false,
            1 => true,
            other => return Err(corrupt(&format!("bad flag {other}"))),
        };
        let totals = reader.minutes().ok_or_else(|| corrupt("totals"))?;
        let num_fields = reader.varint().ok_or_else(|| corrupt("tag fields"))?;
        let mut tags = BTreeMap::new();
        for _ in 0..num_fields {
            let field = reader.string().ok_or_else(|| corrupt("tag field"))?;
            let num_values = reader.varint().ok_or_else(|| corrupt("tag values"))?;
            let mut values = BTreeMap::new();
            for _ in 0..num_values {
                let value = reader.string().ok_or_else(|| corrupt("tag value"))?;
                let minutes = reader.minutes().ok_or_else(|| corrupt("tag minutes"))?;
                values.insert(value, minutes);
            }
            tags.insert(field, values);
        }
        let mut time_runs = SplitTimeRuns::new();
        if version >= 2 {
            let num_segments = reader.varint().ok_or_else(|| corrupt("segments"))?;
            for _ in 0..num_segments {
                let segment_id = reader.string().ok_or_else(|| corrupt("segment id"))?;
                let runs = TimeRuns::decode(&mut reader).ok_or_else(|| corrupt("time runs"))?;
                time_runs.insert(segment_id, Arc::new(runs));
            }
        }
        if reader.position != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(VolumeCounts {
            timestamp_field,
            multi_valued,
            totals,
            tags,
            time_runs: Arc::new(time_runs),
        })
    }

    /// Documents in minutes `[from, to)`.
    pub fn total_between(&self, from: i64, to: i64) -> u64 {
        minutes_between(&self.totals, from, to)
            .iter()
            .map(|(_, count)| count)
            .sum()
    }
}

/// The entries of `minutes` in `[from, to)`.
pub fn minutes_between(minutes: &[(i64, u64)], from: i64, to: i64) -> &[(i64, u64)] {
    let start = minutes.partition_point(|(minute, _)| *minute < from);
    let end = minutes.partition_point(|(minute, _)| *minute < to);
    &minutes[start..end.max(start)]
}

/// The minute an instant (nanoseconds since the epoch) falls in.
pub fn minute_of(nanos: i64) -> i64 {
    nanos.div_euclid(BUCKET_NANOS)
}

struct SegmentCounts {
    totals: MinuteCounts,
    multi_valued: bool,
    tags: BTreeMap<String, BTreeMap<String, MinuteCounts>>,
    skipped_tags: Vec<String>,
}

fn count_segment(
    segment: &SegmentReader,
    timestamp_field: &str,
    tag_fields: &[String],
) -> tantivy::Result<Option<SegmentCounts>> {
    let fast_fields = segment.fast_fields();
    let mut counts = SegmentCounts {
        totals: Vec::new(),
        multi_valued: false,
        tags: BTreeMap::new(),
        skipped_tags: Vec::new(),
    };
    let Some(timestamps) = fast_fields.column_opt::<DateTime>(timestamp_field)? else {
        return Ok(Some(counts));
    };
    if segment.num_docs() == 0 {
        return Ok(Some(counts));
    }
    let first_minute = minute_of(timestamps.min_value().into_timestamp_nanos());
    let num_minutes = minute_of(timestamps.max_value().into_timestamp_nanos()) - first_minute + 1;
    if num_minutes > MAX_BUCKETS {
        return Ok(None);
    }
    let num_minutes = num_minutes as usize;
    // Each document's distinct minutes, in document order; most documents have one.
    let mut doc_minutes: Vec<(DocId, u32)> = Vec::with_capacity(segment.num_docs() as usize);
    let mut totals = vec![0u64; num_minutes];
    let mut slots: Vec<u32> = Vec::new();
    for doc in segment.doc_ids_alive() {
        slots.clear();
        slots.extend(
            timestamps.values_for_doc(doc).map(|timestamp| {
                (minute_of(timestamp.into_timestamp_nanos()) - first_minute) as u32
            }),
        );
        if slots.len() > 1 {
            slots.sort_unstable();
            slots.dedup();
            counts.multi_valued |= slots.len() > 1;
        }
        for &slot in &slots {
            totals[slot as usize] += 1;
            doc_minutes.push((doc, slot));
        }
    }
    counts.totals = dense_to_minutes(&totals, first_minute);
    for field in tag_fields {
        let Some(column) = fast_fields.str(field)? else {
            continue;
        };
        let num_terms = column.num_terms();
        if num_terms > MAX_TAG_VALUES_PER_FIELD
            || num_terms.saturating_mul(num_minutes) > MAX_TAG_CELLS
        {
            counts.skipped_tags.push(field.clone());
            continue;
        }
        let mut cells = vec![0u64; num_terms * num_minutes];
        for &(doc, slot) in &doc_minutes {
            let mut previous = None;
            for ord in column.term_ords(doc) {
                if previous != Some(ord) {
                    cells[ord as usize * num_minutes + slot as usize] += 1;
                }
                previous = Some(ord);
            }
        }
        let mut values = BTreeMap::new();
        let mut value = String::new();
        for ord in 0..num_terms {
            let row = &cells[ord * num_minutes..(ord + 1) * num_minutes];
            if row.iter().all(|count| *count == 0) {
                continue;
            }
            value.clear();
            column.ord_to_str(ord as u64, &mut value)?;
            values.insert(value.clone(), dense_to_minutes(row, first_minute));
        }
        counts.tags.insert(field.clone(), values);
    }
    Ok(Some(counts))
}

fn dense_to_minutes(dense: &[u64], first_minute: i64) -> MinuteCounts {
    dense
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(slot, count)| (first_minute + slot as i64, *count))
        .collect()
}

fn add_minute_counts(left: &[(i64, u64)], right: &[(i64, u64)]) -> MinuteCounts {
    let mut sum = Vec::with_capacity(left.len().max(right.len()));
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        match (left.get(i), right.get(j)) {
            (Some(l), Some(r)) if l.0 == r.0 => {
                sum.push((l.0, l.1 + r.1));
                i += 1;
                j += 1;
            }
            (Some(l), Some(r)) if l.0 < r.0 => {
                sum.push(*l);
                i += 1;
            }
            (Some(l), None) => {
                sum.push(*l);
                i += 1;
            }
            (_, Some(r)) => {
                sum.push(*r);
                j += 1;
            }
            (None, None) => break,
        }
    }
    sum
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn put_minutes(out: &mut Vec<u8>, minutes: &[(i64, u64)]) {
    put_varint(out, minutes.len() as u64);
    let mut previous = 0i64;
    for &(minute, count) in minutes {
        let delta = minute.wrapping_sub(previous);
        put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
        put_varint(out, count);
        previous = minute;
    }
}

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(len)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(super) fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn minutes(&mut self) -> Option<MinuteCounts> {
        let len = usize::try_from(self.varint()?).ok()?;
        // Each entry takes at least two bytes: a corrupt length cannot over-allocate.
        if len > self.bytes.len() - self.position {
            return None;
        }
        let mut minutes = Vec::with_capacity(len);
        let mut previous = 0i64;
        for _ in 0..len {
            let zigzag = self.varint()?;
            let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            previous = previous.wrapping_add(delta);
            minutes.push((previous, self.varint()?));
        }
        Some(minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{Schema, FAST, STRING};
    use tantivy::{doc, IndexWriter};

    fn build_index(dir: &Path, docs: &[(i64, &[&str])], segments: usize) {
        let mut builder = Schema::builder();
        let ts = builder.add_date_field("ts", FAST);
        let level = builder.add_text_field("level", STRING | FAST);
        let index = Index::create_in_dir(dir, builder.build()).unwrap();
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for chunk in docs.chunks(docs.len().div_ceil(segments)) {
            for (secs, levels) in chunk {
                let mut document = doc!(ts => DateTime::from_timestamp_secs(*secs));
                for value in *levels {
                    document.add_text(level, value);
                }
                writer.add_document(document).unwrap();
            }
            writer.commit().unwrap();
        }
    }

    fn spec() -> VolumeSpec {
        VolumeSpec {
            timestamp_field: Some("ts".to_string()),
            tag_fields: vec!["level".to_string()],
        }
    }

    #[test]
    fn counts_minutes_and_tag_values_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let docs: &[(i64, &[&str])] = &[
            (0, &["INFO"]),
            (59, &["WARN"]),
            (60, &["INFO"]),
            (-1, &["INFO"]),
            (3_600, &[]),
            (61, &["INFO", "WARN"]),
        ];
        build_index(dir.path(), docs, 2);
        let counts = VolumeCounts::compute(dir.path(), &spec()).unwrap().unwrap();
        assert_eq!(counts.totals, vec![(-1, 1), (0, 2), (1, 2), (60, 1)]);
        assert_eq!(counts.tags["level"]["INFO"], vec![(-1, 1), (0, 1), (1, 2)]);
        assert_eq!(counts.tags["level"]["WARN"], vec![(0, 1), (1, 1)]);
        assert_eq!(counts.total_between(0, 2), 4);
        // The first segment's three timestamps rise; the second's go back in time.
        assert_eq!(counts.time_runs.len(), 1);
        let decoded = VolumeCounts::decode(&counts.encode()).unwrap();
        assert_eq!(decoded, counts);
    }

    #[test]
    fn version_1_files_without_time_runs_still_read() {
        let dir = tempfile::tempdir().unwrap();
        build_index(dir.path(), &[(0, &["INFO"]), (120, &["WARN"])], 1);
        let mut counts = VolumeCounts::compute(dir.path(), &spec()).unwrap().unwrap();
        assert_eq!(counts.time_runs.len(), 1);
        counts.time_runs = Arc::default();
        let mut version_1 = counts.encode();
        // Version 1 ended where version 2 writes the number of segments (here 0).
        assert_eq!(version_1.pop(), Some(0));
        version_1[MAGIC.len()] = 1;
        assert_eq!(VolumeCounts::decode(&version_1).unwrap(), counts);
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        build_index(dir.path(), &[(0, &["INFO"]), (120, &["WARN"])], 1);
        let encoded = VolumeCounts::compute(dir.path(), &spec())
            .unwrap()
            .unwrap()
            .encode();
        for len in 0..encoded.len() {
            assert!(
                VolumeCounts::decode(&encoded[..len]).is_err(),
                "prefix {len}"
            );
        }
        let mut flipped = encoded.clone();
        flipped[6] ^= 0xff;
        let _ = VolumeCounts::decode(&flipped);
    }

    #[test]
    fn no_timestamp_field_means_no_counts() {
        let dir = tempfile::tempdir().unwrap();
        build_index(dir.path(), &[(0, &["INFO"])], 1);
        assert_eq!(
            VolumeCounts::compute(dir.path(), &VolumeSpec::default()).unwrap(),
            None
        );
    }
}
