//! The log-volume histogram — a fixed-interval date histogram, optionally split by the
//! values of a keyword field — computed without tantivy's generic aggregation code:
//! either from a split's per-minute counts (`volume_histogram`) or by a collector that
//! reads the timestamp column of the matching documents directly (`HistogramCollector`).
//! Both produce tantivy's intermediate results, bucket keys computed as tantivy computes
//! them, so roots merge them with any other leaf's.

use std::collections::HashMap;
use std::sync::Arc;

use quarry_common::doc_mapper::{DocMapper, ResolvedField};
use quarry_common::split::time_order::{SplitTimeRuns, TimeRuns};
use quarry_config::LeafFieldType;
use quarry_query::column_cache::datetime_column;
use quarry_query::query_builder::TimestampWindow;

use crate::time_buckets::Unit;
use serde::Serialize;
use tantivy::aggregation::agg_req::{AggregationVariants, Aggregations};
use tantivy::aggregation::intermediate_agg_result::{
    IntermediateAggregationResult, IntermediateAggregationResults, IntermediateBucketResult,
    IntermediateHistogramBucketEntry, IntermediateTermBucketResult,
};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::MonotonicallyMappableToU64;
use tantivy::columnar::{Cardinality, Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

const NANOS_PER_MILLI: i64 = 1_000_000;

/// A bucket table is a dense array when it has at most this many cells, or no more cells
/// than the segment has documents; otherwise a map, so that a fine interval over a long
/// span costs memory in proportion to the matches.
const SMALL_DENSE_CELLS: usize = 1 << 16;

/// Matches in one time run are counted by halving until both ends of a piece lie in one
/// bucket; a piece this short is cheaper to read document by document.
const READ_PIECE_LEN: usize = 8;

/// One date histogram with fixed buckets, and at most a plain terms aggregation under it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistogramShape {
    pub name: String,
    pub field: String,
    pub interval_nanos: i64,
    pub offset_nanos: i64,
    /// `(name, field)` of the terms sub-aggregation.
    pub split_by: Option<(String, String)>,
}

/// One bucket before it becomes tantivy's: documents, and per value of the split-by field.
pub(crate) struct Bucket {
    pub position: i64,
    pub doc_count: u64,
    pub terms: Vec<(String, u64)>,
}

impl HistogramShape {
    /// `Some` when `aggs` is exactly one date histogram with a `fixed_interval` and no
    /// `hard_bounds`, with nothing or one terms aggregation (no `missing`, `include`,
    /// `exclude` or sub-aggregations) under it. `min_doc_count`, `extended_bounds`,
    /// `order` and `size` apply at the root, whoever computed the buckets.
    pub(crate) fn of(aggs: &Aggregations) -> Option<HistogramShape> {
        let mut named = aggs.iter();
        let (name, aggregation) = named.next()?;
        if named.next().is_some() {
            return None;
        }
        let AggregationVariants::DateHistogram(histogram) = &aggregation.agg else {
            return None;
        };
        if histogram.hard_bounds.is_some()
            || histogram.interval.is_some()
            || histogram.calendar_interval.is_some()
        {
            return None;
        }
        let interval_millis = parse_millis(histogram.fixed_interval.as_deref()?)?;
        let offset_millis = match histogram.offset.as_deref() {
            None => 0,
            Some(offset) => parse_offset_millis(offset)?,
        };
        if interval_millis <= 0 {
            return None;
        }
        let mut sub_aggregations = aggregation.sub_aggregation.iter();
        let split_by = match sub_aggregations.next() {
            None => None,
            Some((sub_name, sub)) => {
                let AggregationVariants::Terms(terms) = &sub.agg else {
                    return None;
                };
                let plain = sub.sub_aggregation.is_empty()
                    && terms.missing.is_none()
                    && terms.include.is_none()
                    && terms.exclude.is_none();
                if !plain || sub_aggregations.next().is_some() {
                    return None;
                }
                Some((sub_name.clone(), terms.field.clone()))
            }
        };
        Some(HistogramShape {
            name: name.clone(),
            field: histogram.field.clone(),
            interval_nanos: interval_millis.checked_mul(NANOS_PER_MILLI)?,
            offset_nanos: offset_millis.checked_mul(NANOS_PER_MILLI)?,
            split_by,
        })
    }

    /// The bucket an instant (nanoseconds) falls in, computed in `f64` as tantivy does:
    /// its rounding can move a value a few hundred nanoseconds from a boundary into the
    /// next bucket, and buckets computed here must be tantivy's so that they merge.
    /// (For whole-minute buckets over whole minutes the arithmetic is exact.)
    pub(crate) fn position(&self, nanos: i64) -> i64 {
        ((nanos as f64 - self.offset_nanos as f64) / self.interval_nanos as f64).floor() as i64
    }

    /// The key tantivy gives bucket `position`, computed as it does (in `f64`), so that
    /// buckets from here and from its collector merge.
    fn key(&self, position: i64) -> f64 {
        position as f64 * self.interval_nanos as f64 + self.offset_nanos as f64
    }

    /// Tantivy's intermediate result for `buckets` (positions ascending, none empty).
    pub(crate) fn result(
        &self,
        buckets: Vec<Bucket>,
    ) -> Result<IntermediateAggregationResults, String> {
        let mut entries = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let mut sub_aggregation = IntermediateAggregationResults::default();
            if let Some((sub_name, _)) = &self.split_by {
                sub_aggregation
                    .push(
                        sub_name.clone(),
                        IntermediateAggregationResult::Bucket(IntermediateBucketResult::Terms {
                            buckets: terms_result(bucket.terms)?,
                        }),
                    )
                    .map_err(|error| error.to_string())?;
            }
            entries.push(IntermediateHistogramBucketEntry {
                key: self.key(bucket.position),
                doc_count: bucket.doc_count,
                sub_aggregation,
            });
        }
        let mut aggregations = IntermediateAggregationResults::default();
        aggregations
            .push(
                self.name.clone(),
                IntermediateAggregationResult::Bucket(IntermediateBucketResult::Histogram {
                    is_date_agg: true,
                    buckets: entries,
                }),
            )
            .map_err(|error| error.to_string())?;
        Ok(aggregations)
    }

    /// The collector for this shape when its fields allow: a fast datetime field of the
    /// mapping, split by a fast keyword (text) field of the mapping.
    pub(crate) fn collector(&self, doc_mapper: &DocMapper) -> Option<HistogramCollector> {
        let mapped = |field: &str, leaf_type: LeafFieldType| match doc_mapper.resolve_field(field) {
            Ok(ResolvedField::Mapped(mapped)) => {
                mapped.leaf_type == leaf_type && mapped.mapping.fast
            }
            _ => false,
        };
        if !mapped(&self.field, LeafFieldType::Datetime) {
            return None;
        }
        if let Some((_, field)) = &self.split_by {
            if !mapped(field, LeafFieldType::Text) {
                return None;
            }
        }
        Some(HistogramCollector {
            shape: self.clone(),
            window: TimestampWindow::default(),
            time_runs: Arc::default(),
        })
    }
}

/// Counts the matching documents per bucket (and per value) from the columns.
pub(crate) struct HistogramCollector {
    shape: HistogramShape,
    /// `[start, end)` of the histogram's field that every matching document lies in.
    window: TimestampWindow,
    /// The time runs of the histogram's field, per segment, where the split has them.
    time_runs: Arc<SplitTimeRuns>,
}

/// A value the query admits lies at most one unit of the field's precision (a second at
/// most) outside the window it was written with, so the table spans this much more.
const WINDOW_MARGIN_NANOS: i64 = 1_000_000_000;

impl HistogramCollector {
    pub(crate) fn field(&self) -> &str {
        &self.shape.field
    }

    /// Sizes each segment's table by `window` rather than by the segment's time span (ten
    /// days of minutes for a query over one): every document the query matches must lie
    /// in `window`, on the histogram's field.
    pub(crate) fn within(mut self, window: TimestampWindow) -> HistogramCollector {
        self.window = window;
        self
    }

    /// Lets segments whose time runs on the histogram's field are known count a block of
    /// matches from the timestamps of a few of them (see `time_order`).
    pub(crate) fn with_time_runs(mut self, time_runs: Arc<SplitTimeRuns>) -> HistogramCollector {
        self.time_runs = time_runs;
        self
    }
}

impl Collector for HistogramCollector {
    type Fruit = IntermediateAggregationResults;
    type Child = SegmentHistogram;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentHistogram> {
        let fast_fields = segment.fast_fields();
        // The physical column (the typed one maps every value through a dynamic call),
        // opened once per segment.
        let timestamps = datetime_column(segment, &self.shape.field)?;
        let terms = match &self.shape.split_by {
            Some((_, field)) => fast_fields.str(field)?,
            None => None,
        };
        let (first_position, num_positions) = match &timestamps {
            Some(column) if segment.num_docs() > 0 => {
                let (mut lowest, mut highest) = (
                    i64::from_u64(column.min_value()),
                    i64::from_u64(column.max_value()),
                );
                // A document with several timestamps matches by one of them and is counted
                // by all, so only single values can be bounded by the window.
                if column.get_cardinality() != Cardinality::Multivalued {
                    if let Some(start) = self.window.start_nanos {
                        lowest = lowest.max(start.saturating_sub(WINDOW_MARGIN_NANOS));
                    }
                    if let Some(end) = self.window.end_nanos {
                        highest = highest.min(end.saturating_add(WINDOW_MARGIN_NANOS));
                    }
                    highest = highest.max(lowest);
                }
                let first = self.shape.position(lowest);
                let last = self.shape.position(highest);
                (
                    first,
                    usize::try_from(last - first + 1).unwrap_or(usize::MAX),
                )
            }
            _ => (0, 0),
        };
        let num_terms = terms.as_ref().map_or(0, |terms| terms.num_terms());
        let cells = num_positions.saturating_mul(num_terms.max(1));
        let table = if cells <= SMALL_DENSE_CELLS.max(segment.num_docs() as usize) {
            Table::Dense {
                totals: vec![0; num_positions],
                cells: vec![0; num_positions * num_terms],
            }
        } else {
            Table::Sparse(HashMap::new())
        };
        let time_runs = self
            .time_runs
            .get(&segment.segment_id().uuid_string())
            .filter(|runs| runs.max_doc() == segment.max_doc())
            .cloned();
        Ok(SegmentHistogram {
            shape: self.shape.clone(),
            time_runs,
            run: (0, 0),
            single_valued: timestamps
                .as_ref()
                .is_some_and(|column| column.get_cardinality() == Cardinality::Full),
            timestamps,
            terms_single_valued: terms
                .as_ref()
                .is_some_and(|terms| terms.ords().get_cardinality() == Cardinality::Full),
            terms,
            ords: Vec::new(),
            first_position,
            num_positions,
            num_terms,
            table,
            block: Vec::new(),
            positions: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<tantivy::Result<IntermediateAggregationResults>>,
    ) -> tantivy::Result<IntermediateAggregationResults> {
        let mut merged = IntermediateAggregationResults::default();
        for fruit in fruits {
            merged.merge_fruits(fruit?)?;
        }
        Ok(merged)
    }
}

enum Table {
    /// `totals[position - first]`, `cells[(position - first) * num_terms + ord]`.
    Dense { totals: Vec<u64>, cells: Vec<u64> },
    /// Per position: documents, and per term ordinal.
    Sparse(HashMap<i64, (u64, HashMap<u64, u64>)>),
}

pub(crate) struct SegmentHistogram {
    shape: HistogramShape,
    /// Nanoseconds since the epoch, as tantivy's order-preserving `u64`s.
    timestamps: Option<Column<u64>>,
    single_valued: bool,
    time_runs: Option<Arc<TimeRuns>>,
    /// The time run last looked up, `[start, end)`.
    run: (DocId, DocId),
    terms: Option<StrColumn>,
    /// Whether every document holds exactly one value of the split-by field.
    terms_single_valued: bool,
    ords: Vec<u64>,
    first_position: i64,
    num_positions: usize,
    num_terms: usize,
    table: Table,
    block: Vec<u64>,
    positions: Vec<i64>,
}

impl SegmentHistogram {
    fn count(&mut self, doc: DocId, position: i64) {
        match &mut self.table {
            Table::Dense { totals, cells } => {
                let slot = (position - self.first_position) as usize;
                totals[slot] += 1;
                if let Some(terms) = &self.terms {
                    let mut previous = None;
                    for ord in terms.term_ords(doc) {
                        if previous != Some(ord) {
                            cells[slot * self.num_terms + ord as usize] += 1;
                        }
                        previous = Some(ord);
                    }
                }
            }
            Table::Sparse(buckets) => {
                let (total, per_term) = buckets.entry(position).or_default();
                *total += 1;
                if let Some(terms) = &self.terms {
                    let mut previous = None;
                    for ord in terms.term_ords(doc) {
                        if previous != Some(ord) {
                            *per_term.entry(ord).or_default() += 1;
                        }
                        previous = Some(ord);
                    }
                }
            }
        }
    }

    /// The bucket of a document of a single-valued column.
    fn position_of(&self, doc: DocId) -> i64 {
        let timestamp = self
            .timestamps
            .as_ref()
            .map_or(0, |timestamps| timestamps.values.get_val(doc));
        self.shape.position(i64::from_u64(timestamp))
    }

    /// The time run holding `doc`, `[start, end)`, remembered for the next block.
    fn run_of(&mut self, doc: DocId) -> Option<(DocId, DocId)> {
        if !(self.run.0..self.run.1).contains(&doc) {
            self.run = self.time_runs.as_ref()?.run_of(doc)?;
        }
        Some(self.run)
    }

    /// Counts `docs`, all in one time run, whose first and last lie in buckets `first`
    /// and `last`: timestamps do not decrease in a run, so when those are one bucket, so
    /// is every document between them.
    fn count_in_run(&mut self, docs: &[DocId], first: i64, last: i64) {
        if first == last {
            self.count_in_bucket(docs, first);
        } else if docs.len() <= READ_PIECE_LEN {
            self.count_by_reading(docs);
        } else {
            let (left, right) = docs.split_at(docs.len() / 2);
            let left_last = self.position_of(left[left.len() - 1]);
            let right_first = self.position_of(right[0]);
            self.count_in_run(left, first, left_last);
            self.count_in_run(right, right_first, last);
        }
    }

    /// Counts `docs`, all in bucket `position`.
    fn count_in_bucket(&mut self, docs: &[DocId], position: i64) {
        match (&mut self.table, &self.terms) {
            (Table::Dense { totals, .. }, None) => {
                totals[(position - self.first_position) as usize] += docs.len() as u64;
            }
            (Table::Dense { totals, cells }, Some(terms)) if self.terms_single_valued => {
                let slot = (position - self.first_position) as usize;
                totals[slot] += docs.len() as u64;
                self.ords.resize(docs.len(), 0);
                terms.ords().values.get_vals(docs, &mut self.ords);
                let row = &mut cells[slot * self.num_terms..(slot + 1) * self.num_terms];
                for &ord in &self.ords {
                    row[ord as usize] += 1;
                }
            }
            _ => {
                for &doc in docs {
                    self.count(doc, position);
                }
            }
        }
    }

    /// Counts `docs` (single-valued timestamps) from one timestamp read per document.
    fn count_by_reading(&mut self, docs: &[DocId]) {
        let Some(timestamps) = &self.timestamps else {
            return;
        };
        let mut block = std::mem::take(&mut self.block);
        block.resize(docs.len(), 0);
        timestamps.values.get_vals(docs, &mut block);
        match (&mut self.table, &self.terms) {
            // The log-volume histogram itself: one increment per document.
            (Table::Dense { totals, .. }, None) => {
                for &timestamp in &block {
                    let position = self.shape.position(i64::from_u64(timestamp));
                    totals[(position - self.first_position) as usize] += 1;
                }
            }
            // Split by a field every document has once (a severity): its ordinals in a block.
            (Table::Dense { totals, cells }, Some(terms)) if self.terms_single_valued => {
                self.ords.resize(docs.len(), 0);
                terms.ords().values.get_vals(docs, &mut self.ords);
                for (&timestamp, &ord) in block.iter().zip(&self.ords) {
                    let slot = (self.shape.position(i64::from_u64(timestamp)) - self.first_position)
                        as usize;
                    totals[slot] += 1;
                    cells[slot * self.num_terms + ord as usize] += 1;
                }
            }
            _ => {
                for (&doc, &timestamp) in docs.iter().zip(&block) {
                    let position = self.shape.position(i64::from_u64(timestamp));
                    self.count(doc, position);
                }
            }
        }
        self.block = block;
    }

    fn harvest_buckets(self) -> tantivy::Result<Vec<Bucket>> {
        let mut values: Vec<Option<String>> = vec![None; self.num_terms];
        let mut value_of = |ord: u64| -> tantivy::Result<String> {
            let slot = &mut values[ord as usize];
            if slot.is_none() {
                let mut text = String::new();
                if let Some(terms) = &self.terms {
                    terms.ord_to_str(ord, &mut text)?;
                }
                *slot = Some(text);
            }
            Ok(slot.clone().unwrap_or_default())
        };
        let mut buckets = Vec::new();
        match self.table {
            Table::Dense { totals, cells } => {
                for (slot, doc_count) in totals.into_iter().enumerate() {
                    if doc_count == 0 {
                        continue;
                    }
                    let mut terms = Vec::new();
                    let row = &cells[slot * self.num_terms..(slot + 1) * self.num_terms];
                    for (ord, count) in row.iter().enumerate() {
                        if *count > 0 {
                            terms.push((value_of(ord as u64)?, *count));
                        }
                    }
                    buckets.push(Bucket {
                        position: self.first_position + slot as i64,
                        doc_count,
                        terms,
                    });
                }
            }
            Table::Sparse(map) => {
                let mut positions: Vec<_> = map.into_iter().collect();
                positions.sort_unstable_by_key(|(position, _)| *position);
                for (position, (doc_count, per_term)) in positions {
                    let mut terms = Vec::with_capacity(per_term.len());
                    for (ord, count) in per_term {
                        terms.push((value_of(ord)?, count));
                    }
                    buckets.push(Bucket {
                        position,
                        doc_count,
                        terms,
                    });
                }
            }
        }
        Ok(buckets)
    }
}

impl SegmentCollector for SegmentHistogram {
    type Fruit = tantivy::Result<IntermediateAggregationResults>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(timestamps) = &self.timestamps else {
            return;
        };
        // A document counts once in each distinct bucket of its timestamps, as tantivy's.
        self.positions.clear();
        self.positions.extend(
            timestamps
                .values_for_doc(doc)
                .map(|timestamp| self.shape.position(i64::from_u64(timestamp))),
        );
        self.positions.sort_unstable();
        self.positions.dedup();
        for index in 0..self.positions.len() {
            let position = self.positions[index];
            self.count(doc, position);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        if self.timestamps.is_none() {
            return;
        }
        if !self.single_valued || self.num_positions == 0 {
            for &doc in docs {
                self.collect(doc, 0.0);
            }
            return;
        }
        if self.time_runs.is_none() {
            self.count_by_reading(docs);
            return;
        }
        let mut rest = docs;
        while let (Some(&first), Some(&last)) = (rest.first(), rest.last()) {
            let Some((_, run_end)) = self.run_of(first) else {
                self.count_by_reading(rest);
                return;
            };
            let in_run = if last < run_end {
                rest.len()
            } else {
                rest.partition_point(|doc| *doc < run_end)
            };
            let (piece, after) = rest.split_at(in_run);
            let (first_position, last_position) = (
                self.position_of(first),
                self.position_of(piece[piece.len() - 1]),
            );
            self.count_in_run(piece, first_position, last_position);
            rest = after;
        }
    }

    fn harvest(self) -> tantivy::Result<IntermediateAggregationResults> {
        let shape = self.shape.clone();
        let buckets = self.harvest_buckets()?;
        shape
            .result(buckets)
            .map_err(tantivy::TantivyError::InternalError)
    }
}

/// A tantivy terms result holding every value: the root cuts it to `size`, which makes
/// it at least as exact as the collector's (which cuts each segment at `shard_size`).
fn terms_result(mut terms: Vec<(String, u64)>) -> Result<IntermediateTermBucketResult, String> {
    // tantivy builds this type only inside its own collectors; its serde form is public
    // and is what leaves already send to roots, so it is built through that form. The
    // unit tests compare the outcome with tantivy's own collector.
    #[derive(Serialize)]
    enum Key {
        #[allow(dead_code)]
        IpAddr(std::net::Ipv6Addr),
        #[allow(dead_code)]
        Bool(bool),
        Str(String),
    }
    #[derive(Serialize)]
    struct Entry {
        doc_count: u64,
        sub_aggregation: IntermediateAggregationResults,
    }
    #[derive(Serialize)]
    struct Terms {
        entries: Vec<(Key, Entry)>,
        sum_other_doc_count: u64,
        doc_count_error_upper_bound: u64,
    }
    terms.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    let terms = Terms {
        entries: terms
            .into_iter()
            .map(|(value, doc_count)| {
                (
                    Key::Str(value),
                    Entry {
                        doc_count,
                        sub_aggregation: IntermediateAggregationResults::default(),
                    },
                )
            })
            .collect(),
        sum_other_doc_count: 0,
        doc_count_error_upper_bound: 0,
    };
    let bytes = postcard::to_allocvec(&terms).map_err(|error| error.to_string())?;
    postcard::from_bytes(&bytes).map_err(|error| format!("building a terms result: {error}"))
}

/// `60s`, `1m`, `5m`, `1h`, `1d`… as tantivy reads `fixed_interval`.
fn parse_millis(text: &str) -> Option<i64> {
    match Unit::fixed(text)? {
        Unit::Fixed(millis) => Some(millis),
        _ => None,
    }
}

fn parse_offset_millis(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => parse_millis(rest).map(|millis| -millis),
        None => parse_millis(text.strip_prefix('+').unwrap_or(text)),
    }
}
