//! Where a segment's timestamps never decrease with the document id: its *time runs*,
//! recorded when a split is packaged, beside the per-minute counts (`volume`).
//!
//! Logs mostly arrive in time order, and an indexing thread numbers documents in the
//! order it receives them; a merge stacks its segments. So a segment is a few runs in
//! which time rises with the doc id. Inside a run, two documents in the same histogram
//! bucket have every document between them in that bucket too, and a histogram
//! collector can count a block of matches from the timestamps of its first and last
//! document instead of reading one timestamp per match.

use std::collections::BTreeMap;
use std::sync::Arc;

use tantivy::columnar::{Cardinality, Column};
use tantivy::{DateTime, DocId, SegmentReader};

use super::volume::{put_varint, Reader};

/// A segment whose runs are shorter than this on average is not worth recording: a block
/// of matches would seldom lie in one run.
const MIN_MEAN_RUN_LEN: u32 = 64;

/// Values read from the column at a time while looking for runs.
const SCAN_CHUNK: usize = 4_096;

/// The time runs of one segment: `[starts[i], starts[i + 1])`, the last ending at
/// `max_doc`. Deleted documents belong to runs too: their timestamps are still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeRuns {
    max_doc: DocId,
    /// Ascending, the first is 0.
    starts: Vec<DocId>,
}

impl TimeRuns {
    /// The runs of a segment's timestamp column; `None` when some document has no
    /// timestamp or several, or when the runs are too short to be of use. Reads the
    /// whole column: call it when packaging a split, not when searching one.
    pub fn of_segment(
        segment: &SegmentReader,
        timestamp_field: &str,
    ) -> tantivy::Result<Option<TimeRuns>> {
        let Some(column) = segment
            .fast_fields()
            .column_opt::<DateTime>(timestamp_field)?
        else {
            return Ok(None);
        };
        Ok(TimeRuns::of_column(&column, segment.max_doc()))
    }

    fn of_column(column: &Column<DateTime>, max_doc: DocId) -> Option<TimeRuns> {
        if max_doc == 0 || column.get_cardinality() != Cardinality::Full {
            return None;
        }
        let max_runs = (max_doc / MIN_MEAN_RUN_LEN).max(1) as usize;
        let mut starts = vec![0];
        let mut previous = None;
        let mut chunk = vec![DateTime::MIN; SCAN_CHUNK];
        for chunk_start in (0..max_doc).step_by(SCAN_CHUNK) {
            let len = SCAN_CHUNK.min((max_doc - chunk_start) as usize);
            column
                .values
                .get_range(u64::from(chunk_start), &mut chunk[..len]);
            for (offset, timestamp) in chunk[..len].iter().enumerate() {
                if previous.is_some_and(|previous| *timestamp < previous) {
                    starts.push(chunk_start + offset as DocId);
                    if starts.len() > max_runs {
                        return None;
                    }
                }
                previous = Some(*timestamp);
            }
        }
        Some(TimeRuns { max_doc, starts })
    }

    pub fn max_doc(&self) -> DocId {
        self.max_doc
    }

    pub fn num_runs(&self) -> usize {
        self.starts.len()
    }

    /// The run holding `doc`, as `[start, end)`; `None` past the segment's end.
    pub fn run_of(&self, doc: DocId) -> Option<(DocId, DocId)> {
        if doc >= self.max_doc {
            return None;
        }
        let index = self.starts.partition_point(|start| *start <= doc) - 1;
        let end = self.starts.get(index + 1).copied().unwrap_or(self.max_doc);
        Some((self.starts[index], end))
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.max_doc));
        put_varint(out, self.starts.len() as u64);
        let mut previous = 0;
        for &start in &self.starts {
            put_varint(out, u64::from(start - previous));
            previous = start;
        }
    }

    /// `None` unless the runs are well formed: they start at 0, rise, and end before
    /// `max_doc`.
    pub(super) fn decode(reader: &mut Reader<'_>) -> Option<TimeRuns> {
        let max_doc = DocId::try_from(reader.varint()?).ok()?;
        let num_runs = usize::try_from(reader.varint()?).ok()?;
        // Each start takes a byte at least: a damaged count cannot make us allocate more
        // than the file holds.
        if num_runs == 0 || num_runs > max_doc as usize || num_runs > reader.remaining() {
            return None;
        }
        let mut starts = Vec::with_capacity(num_runs);
        let mut previous: DocId = 0;
        for index in 0..num_runs {
            let delta = DocId::try_from(reader.varint()?).ok()?;
            if (index == 0) != (delta == 0) {
                return None;
            }
            previous = previous.checked_add(delta)?;
            if previous >= max_doc {
                return None;
            }
            starts.push(previous);
        }
        Some(TimeRuns { max_doc, starts })
    }
}

/// The time runs of a split's segments, by segment id (`SegmentId::uuid_string`).
pub type SplitTimeRuns = BTreeMap<String, Arc<TimeRuns>>;

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{Schema, FAST};
    use tantivy::{doc, Index, IndexWriter};

    fn segment_runs(seconds: &[i64]) -> Option<TimeRuns> {
        let mut builder = Schema::builder();
        let ts = builder.add_date_field("ts", FAST);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for secs in seconds {
            writer
                .add_document(doc!(ts => DateTime::from_timestamp_secs(*secs)))
                .unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        TimeRuns::of_segment(searcher.segment_reader(0), "ts").unwrap()
    }

    #[test]
    fn runs_break_where_time_goes_back() {
        // Two stacked segments of 200 rising timestamps, then one equal pair.
        let mut seconds: Vec<i64> = (0..200).collect();
        seconds.extend(100..300);
        seconds.extend([300, 300]);
        let runs = segment_runs(&seconds).unwrap();
        assert_eq!(runs.starts, vec![0, 200]);
        assert_eq!(runs.run_of(0), Some((0, 200)));
        assert_eq!(runs.run_of(199), Some((0, 200)));
        assert_eq!(runs.run_of(200), Some((200, 402)));
        assert_eq!(runs.run_of(401), Some((200, 402)));
        assert_eq!(runs.run_of(402), None);
    }

    #[test]
    fn runs_too_short_to_use_are_not_recorded() {
        let seconds: Vec<i64> = (0..256).map(|doc| doc % 2).collect();
        assert_eq!(segment_runs(&seconds), None);
    }

    #[test]
    fn encoding_round_trips_and_rejects_malformed_runs() {
        let runs = TimeRuns {
            max_doc: 1_000,
            starts: vec![0, 10, 900],
        };
        let mut out = Vec::new();
        runs.encode(&mut out);
        let decode = |bytes: &[u8]| TimeRuns::decode(&mut Reader::new(bytes));
        assert_eq!(decode(&out), Some(runs));
        // A first run not at 0, a repeated start, a start past the end, no runs, truncated.
        assert_eq!(decode(&[100, 2, 5, 10]), None);
        assert_eq!(decode(&[100, 2, 0, 0]), None);
        assert_eq!(decode(&[100, 2, 0, 100]), None);
        assert_eq!(decode(&[100, 0]), None);
        // Four billion runs claimed by a few bytes.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::from(u32::MAX));
        put_varint(&mut huge, u64::from(u32::MAX - 1));
        huge.extend([0, 1, 1]);
        assert_eq!(decode(&huge), None);
        assert_eq!(decode(&out[..out.len() - 1]), None);
    }
}
