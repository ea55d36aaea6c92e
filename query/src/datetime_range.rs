//! A range on a fast datetime field (the time window of nearly every log query), decided
//! per segment from the column's bounds:
//! - every value inside: every document, without reading a value;
//! - none inside: nothing;
//! - a narrow slice of the segment's time span, on an indexed field: the postings of the
//!   whole seconds covering the range (the inverted index keeps seconds), each candidate
//!   checked on the column, so the cost follows the matches instead of the segment's size;
//! - otherwise tantivy's range, which scans the column.
//!
//! Segments are not sorted by time, so without this a one-minute window over a split of
//! ten days of logs reads every timestamp of the split.

use std::ops::Bound;
use std::sync::Arc;

use crate::column_cache::datetime_column;
use crate::sorted_docs::SortedDocs;

use tantivy::columnar::{Cardinality, Column, MonotonicallyMappableToU64};
use tantivy::query::{
    AllScorer, ConstScorer, EmptyScorer, EnableScoring, ExistsQuery, Explanation,
    InvertedIndexRangeQuery, Query, RangeQuery, Scorer, Weight,
};
use tantivy::schema::Field;
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, DocId, DocSet, Score, SegmentReader, Term, TERMINATED};

/// Below this share of a segment's time span, the inverted index is cheaper than a scan.
const NARROW_SHARE: f64 = 1.0 / 16.0;
/// Up to `max_doc / FEW_DOCS_DIVISOR` documents, a narrow range's postings are merged in a
/// sorted list; past it, in tantivy's bitset of the segment (which costs about
/// `max_doc / 8` bytes to clear and `max_doc / 64` words to walk).
const FEW_DOCS_DIVISOR: u64 = 32;

#[derive(Clone, Debug)]
pub struct DatetimeRangeQuery {
    field: Field,
    indexed: bool,
    /// Inclusive bounds in nanoseconds: values compare at full precision.
    lowest: i64,
    highest: i64,
    /// tantivy's range on the column, or (with no bound at all, which tantivy's range
    /// refuses) the documents with a value.
    on_column: Arc<dyn Query>,
}

impl DatetimeRangeQuery {
    pub fn new(
        field: Field,
        field_name: &str,
        indexed: bool,
        lower: Bound<DateTime>,
        upper: Bound<DateTime>,
    ) -> DatetimeRangeQuery {
        let nanos = DateTime::into_timestamp_nanos;
        let lowest = match lower {
            Bound::Unbounded => i64::MIN,
            Bound::Included(date) => nanos(date),
            Bound::Excluded(date) => nanos(date).saturating_add(1),
        };
        let highest = match upper {
            Bound::Unbounded => i64::MAX,
            Bound::Included(date) => nanos(date),
            Bound::Excluded(date) => nanos(date).saturating_sub(1),
        };
        let term = |date| Term::from_field_date(field, date);
        let on_column: Arc<dyn Query> = match (lower, upper) {
            (Bound::Unbounded, Bound::Unbounded) => {
                Arc::new(ExistsQuery::new(field_name.to_string(), false))
            }
            (lower, upper) => Arc::new(RangeQuery::new(lower.map(term), upper.map(term))),
        };
        DatetimeRangeQuery {
            field,
            indexed,
            lowest,
            highest,
            on_column,
        }
    }
}

impl Query for DatetimeRangeQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let on_seconds = if self.indexed && self.lowest <= self.highest {
            let second = |nanos| {
                Term::from_field_date_for_search(self.field, DateTime::from_timestamp_nanos(nanos))
            };
            let seconds = InvertedIndexRangeQuery::new(
                Bound::Included(second(self.lowest)),
                Bound::Included(second(self.highest)),
            );
            Some(seconds.weight(scoring)?)
        } else {
            None
        };
        Ok(Box::new(DatetimeRangeWeight {
            field: self.field,
            field_name: scoring.schema().get_field_name(self.field).to_string(),
            lowest: self.lowest,
            highest: self.highest,
            on_column: self.on_column.weight(scoring)?,
            on_seconds,
        }))
    }
}

struct DatetimeRangeWeight {
    field: Field,
    field_name: String,
    lowest: i64,
    highest: i64,
    on_column: Box<dyn Weight>,
    on_seconds: Option<Box<dyn Weight>>,
}

impl Weight for DatetimeRangeWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let Some(column) = datetime_column(reader, &self.field_name)? else {
            return self.on_column.scorer(reader, boost);
        };
        if reader.num_docs() == 0 || self.lowest > self.highest {
            return Ok(Box::new(EmptyScorer));
        }
        let (min, max) = (
            i64::from_u64(column.min_value()),
            i64::from_u64(column.max_value()),
        );
        if self.highest < min || self.lowest > max {
            return Ok(Box::new(EmptyScorer));
        }
        if self.lowest <= min
            && max <= self.highest
            && column.get_cardinality() == Cardinality::Full
        {
            return Ok(Box::new(AllScorer::new(reader.max_doc())));
        }
        let covered = self.highest.min(max) as f64 - self.lowest.max(min) as f64;
        let span = max as f64 - min as f64;
        match &self.on_seconds {
            Some(on_seconds) if covered < span * NARROW_SHARE => {
                let candidates: Box<dyn Scorer> = match self.few_seconds_docs(reader)? {
                    Some(docs) => Box::new(ConstScorer::new(SortedDocs::new(docs), boost)),
                    None => on_seconds.scorer(reader, boost)?,
                };
                Ok(Box::new(ColumnChecked::new(
                    candidates,
                    column,
                    self.lowest,
                    self.highest,
                )))
            }
            _ => self.on_column.scorer(reader, boost),
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.on_column.explain(reader, doc)
    }
}

impl DatetimeRangeWeight {
    /// The documents of the range's whole seconds, read from their postings, when they are
    /// few next to the segment. tantivy's range over the inverted index fills a bitset of
    /// the whole segment and walks it, a cost that grows with the split (about 0.3 ms at
    /// 10M documents) instead of with the matches. `None`: many documents, the bitset is
    /// cheaper.
    fn few_seconds_docs(&self, reader: &SegmentReader) -> tantivy::Result<Option<Vec<DocId>>> {
        let inverted = reader.inverted_index(self.field)?;
        let second = |nanos| {
            Term::from_field_date_for_search(self.field, DateTime::from_timestamp_nanos(nanos))
        };
        let (low, high) = (second(self.lowest), second(self.highest));
        let mut seconds = inverted
            .terms()
            .range()
            .ge(low.serialized_value_bytes())
            .le(high.serialized_value_bytes())
            .into_stream()?;
        let most = u64::from(reader.max_doc()) / FEW_DOCS_DIVISOR;
        let mut term_infos = Vec::new();
        let mut num_docs = 0u64;
        while seconds.advance() {
            let term_info = seconds.value().clone();
            num_docs += u64::from(term_info.doc_freq);
            if num_docs > most {
                return Ok(None);
            }
            term_infos.push(term_info);
        }
        let mut docs = Vec::with_capacity(num_docs as usize);
        for term_info in &term_infos {
            let mut postings =
                inverted.read_postings_from_terminfo(term_info, IndexRecordOption::Basic)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                docs.push(doc);
                doc = postings.advance();
            }
        }
        // Each second's postings are sorted, and seconds follow one another in the order of
        // the documents within each part a merge put together: a few sorted runs, which the
        // standard library's stable sort merges instead of sorting from scratch. A document
        // with several timestamps may appear more than once.
        docs.sort();
        docs.dedup();
        Ok(Some(docs))
    }
}

/// Candidates from the inverted index whose timestamp (one of them) lies in the range.
struct ColumnChecked {
    candidates: Box<dyn Scorer>,
    column: Column<u64>,
    lowest: i64,
    highest: i64,
}

impl ColumnChecked {
    fn new(candidates: Box<dyn Scorer>, column: Column<u64>, lowest: i64, highest: i64) -> Self {
        let mut checked = ColumnChecked {
            candidates,
            column,
            lowest,
            highest,
        };
        let first = checked.candidates.doc();
        if first != TERMINATED && !checked.matches(first) {
            checked.advance();
        }
        checked
    }

    fn matches(&self, doc: DocId) -> bool {
        self.column
            .values_for_doc(doc)
            .map(i64::from_u64)
            .any(|nanos| (self.lowest..=self.highest).contains(&nanos))
    }
}

impl DocSet for ColumnChecked {
    fn advance(&mut self) -> DocId {
        loop {
            let doc = self.candidates.advance();
            if doc == TERMINATED || self.matches(doc) {
                return doc;
            }
        }
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let doc = self.candidates.seek(target);
        if doc == TERMINATED || self.matches(doc) {
            doc
        } else {
            self.advance()
        }
    }

    fn doc(&self) -> DocId {
        self.candidates.doc()
    }

    fn size_hint(&self) -> u32 {
        self.candidates.size_hint()
    }
}

impl Scorer for ColumnChecked {
    fn score(&mut self) -> Score {
        self.candidates.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::DocSetCollector;
    use tantivy::schema::{DateOptions, DateTimePrecision, Schema};
    use tantivy::{doc, Index, IndexWriter};

    /// Documents over ten "days" of one minute each, in three segments, millisecond
    /// timestamps; some documents of the last segment have two.
    fn index(indexed: bool) -> (Index, Field) {
        let mut builder = Schema::builder();
        let mut options = DateOptions::default()
            .set_fast()
            .set_precision(DateTimePrecision::Milliseconds);
        if indexed {
            options = options.set_indexed();
        }
        let ts = builder.add_date_field("ts", options);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let mut state = 7u64;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        for day in 0..10i64 {
            for _ in 0..300 {
                let millis = day * 86_400_000 + next(60_000) as i64;
                let mut document = doc!(ts => DateTime::from_timestamp_millis(millis));
                // Only the last segment holds documents with two timestamps, so the others
                // are single-valued and can be matched whole.
                if day >= 8 && next(50) == 0 {
                    document.add_date(ts, DateTime::from_timestamp_millis(millis + 3_600_000));
                }
                writer.add_document(document).unwrap();
            }
            if day % 4 == 3 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        (index, ts)
    }

    #[test]
    fn matches_what_a_range_on_the_column_matches() {
        for indexed in [true, false] {
            let (index, ts) = index(indexed);
            let searcher = index.reader().unwrap().searcher();
            assert!(searcher.segment_readers().len() >= 3);
            let millis = DateTime::from_timestamp_millis;
            let day = 86_400_000i64;
            let windows = [
                (Bound::Unbounded, Bound::Unbounded),
                (
                    Bound::Included(millis(0)),
                    Bound::Excluded(millis(10 * day)),
                ),
                (
                    Bound::Included(millis(3 * day + 1_234)),
                    Bound::Excluded(millis(3 * day + 2_500)),
                ),
                (
                    Bound::Excluded(millis(5 * day + 59_000)),
                    Bound::Included(millis(6 * day + 10)),
                ),
                (Bound::Included(millis(day + 30_000)), Bound::Unbounded),
                (Bound::Unbounded, Bound::Excluded(millis(2 * day + 17))),
                (
                    Bound::Included(millis(4 * day + 3_600_000)),
                    Bound::Included(millis(4 * day + 3_660_000)),
                ),
                (Bound::Included(millis(20 * day)), Bound::Unbounded),
                (
                    Bound::Included(millis(7 * day + 5_000)),
                    Bound::Excluded(millis(7 * day + 5_000)),
                ),
            ];
            let mut state = 3u64;
            let mut random_windows = Vec::new();
            for _ in 0..200 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let start = ((state >> 20) % (10 * day as u64)) as i64;
                let width = ((state >> 7) % 100_000) as i64;
                random_windows.push((
                    Bound::Included(millis(start)),
                    Bound::Excluded(millis(start + width)),
                ));
            }
            for (lower, upper) in windows.into_iter().chain(random_windows) {
                let ours = DatetimeRangeQuery::new(ts, "ts", indexed, lower, upper);
                let term = |date| Term::from_field_date(ts, date);
                let theirs: Box<dyn Query> = match (lower, upper) {
                    (Bound::Unbounded, Bound::Unbounded) => {
                        Box::new(ExistsQuery::new("ts".to_string(), false))
                    }
                    _ => Box::new(RangeQuery::new(lower.map(term), upper.map(term))),
                };
                let found = searcher.search(&ours, &DocSetCollector).unwrap();
                let expected = searcher.search(&theirs, &DocSetCollector).unwrap();
                assert_eq!(found, expected, "indexed {indexed}, {lower:?}..{upper:?}");
                assert_eq!(ours.count(&searcher).unwrap(), expected.len());
            }
        }
    }
}
