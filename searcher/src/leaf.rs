use quarry_common::doc_mapper::format_rfc3339;
use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::VolumeCounts;
use quarry_query::query_ast::{QueryAst, RangeBound};
use quarry_query::query_builder::{
    as_timestamp_window, required_timestamp_window, QueryBuilder, TimestampWindow,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::columnar::MonotonicallyMappableToU64;
use tantivy::fastfield::FastValue;
use tantivy::query::{EnableScoring, Query};
use tantivy::{DateTime, DocAddress, Executor, Order, Searcher};

use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;

use crate::aggregations::{leaf_collector_within, LeafAggCollector};
use crate::cached_sort::SortByCachedDatetime;
use crate::search_after::{AfterCursorCollector, Cursor};
use crate::sort::{FastKind, SortField, SortKey, SortOrder, SortSpec};
use crate::volume_histogram::{minute_span_nanos, VolumeHistogram};
use crate::warmup::{columns_to_warm, warm_up_search, SecondsRange, WarmupPlan};

/// Searches the segments of a split in parallel when it has several: a split cut by two
/// writer threads holds two until merged, and on an idle node both cores then work on the
/// query. Segments come back in order, so results do not depend on the thread count.
fn search_segments<C: Collector>(
    searcher: &Searcher,
    query: &dyn Query,
    collector: &C,
) -> tantivy::Result<C::Fruit> {
    static SEGMENT_EXECUTOR: OnceLock<Option<Executor>> = OnceLock::new();
    let executor = SEGMENT_EXECUTOR.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        Executor::multi_thread(threads, "leaf-segment-").ok()
    });
    match executor {
        Some(executor) if searcher.segment_readers().len() > 1 => {
            let scoring = if collector.requires_scoring() {
                EnableScoring::enabled_from_searcher(searcher)
            } else {
                EnableScoring::disabled_from_searcher(searcher)
            };
            searcher.search_with_executor(query, collector, executor, scoring)
        }
        _ => searcher.search(query, collector),
    }
}

/// Hits of one split with the value they are ranked by.
type KeyedHits = Vec<(Option<SortKey>, DocAddress)>;

/// A hit before its document is fetched.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct PartialHit {
    pub split_ord: usize,
    pub address: DocAddress,
    pub sort_key: Option<SortKey>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct LeafResult {
    pub num_hits: u64,
    pub hits: Vec<PartialHit>,
    pub aggregations: Option<IntermediateAggregationResults>,
}

impl LeafResult {
    fn new(
        split_ord: usize,
        num_hits: usize,
        hits: KeyedHits,
        aggregations: Option<IntermediateAggregationResults>,
    ) -> LeafResult {
        LeafResult {
            num_hits: num_hits as u64,
            aggregations,
            hits: hits
                .into_iter()
                .map(|(sort_key, address)| PartialHit {
                    split_ord,
                    address,
                    sort_key,
                })
                .collect(),
        }
    }
}

/// What a leaf computes over one split.
pub(crate) struct LeafRequest<'a> {
    pub doc_mapper: &'a DocMapper,
    pub query_ast: &'a QueryAst,
    pub sort: &'a SortSpec,
    pub limit: usize,
    pub aggs: Option<&'a Aggregations>,
    /// With search_after: where the previous page ended.
    pub cursor: Option<&'a Cursor>,
    /// Breaks ties between hits in the same way across splits.
    pub split_id: &'a str,
    /// The split's per-minute counts, which can answer a log-volume histogram.
    pub volume: Option<&'a VolumeCounts>,
    /// Where to fetch what the search will read ahead of it (`warmup`); without one, the
    /// search fetches as it goes.
    pub warmup: Option<&'a tokio::runtime::Handle>,
}

/// Counts the matches in one split and collects its best `limit` hits. Blocking.
pub(crate) fn leaf_search(
    searcher: &Searcher,
    split_ord: usize,
    request: LeafRequest<'_>,
) -> Result<LeafResult, String> {
    if let Some(answer) = volume_search(searcher, split_ord, &request)? {
        return Ok(answer);
    }
    let LeafRequest {
        doc_mapper,
        query_ast,
        sort,
        limit,
        aggs,
        cursor,
        split_id,
        volume,
        warmup,
    } = request;
    let query = QueryBuilder::new(doc_mapper)
        .build(query_ast)
        .map_err(|error| error.to_string())?;
    let window = required_timestamp_window(query_ast, doc_mapper);
    if let Some(runtime) = warmup {
        let plan = WarmupPlan::new(
            query.as_ref(),
            columns_to_warm(sort, aggs, query_ast),
            window.and_then(|window| SecondsRange::of(window, doc_mapper)),
        );
        warm_up_search(runtime, searcher, &plan)?;
    }
    let search_error = |error: tantivy::TantivyError| format!("leaf search failed: {error}");
    // Every document the query matches lies in its required window: a histogram's table
    // need span no more.
    let agg_collector = aggs.map(|aggs| leaf_collector_within(aggs, doc_mapper, window, volume));
    if limit == 0 {
        let (num_hits, aggregations) =
            search_segments(searcher, &query, &(Count, agg_collector)).map_err(search_error)?;
        return Ok(LeafResult {
            num_hits: num_hits as u64,
            hits: Vec::new(),
            aggregations,
        });
    }
    if cursor.is_some() || !sort.then_by.is_empty() {
        let collector = AfterCursorCollector {
            sort: sort.clone(),
            cursor: cursor.cloned(),
            split_id: split_id.to_string(),
            limit,
        };
        let (num_hits, hits, aggregations) =
            search_segments(searcher, &query, &(Count, collector, agg_collector))
                .map_err(search_error)?;
        return Ok(LeafResult::new(split_ord, num_hits, hits, aggregations));
    }
    let top = TopDocs::with_limit(limit);
    let order = match sort.order {
        SortOrder::Asc => Order::Asc,
        SortOrder::Desc => Order::Desc,
    };
    let (num_hits, hits, aggregations) = match &sort.field {
        SortField::Score => {
            let collector = (Count, top.order_by_score(), agg_collector);
            let (count, hits, aggregations) =
                search_segments(searcher, &query, &collector).map_err(search_error)?;
            let keyed: KeyedHits = hits
                .into_iter()
                .map(|(score, address)| {
                    (
                        Some(SortKey::Numeric(tantivy::f64_to_u64(f64::from(score)))),
                        address,
                    )
                })
                .collect();
            (count, keyed, aggregations)
        }
        SortField::FastField { name, kind } => match kind {
            FastKind::U64 => search_fast::<u64>(searcher, &query, top, name, order, agg_collector)?,
            FastKind::I64 => search_fast::<i64>(searcher, &query, top, name, order, agg_collector)?,
            FastKind::F64 => search_fast::<f64>(searcher, &query, top, name, order, agg_collector)?,
            FastKind::Bool => {
                search_fast::<bool>(searcher, &query, top, name, order, agg_collector)?
            }
            FastKind::Date => {
                let collector = (
                    Count,
                    top.order_by((SortByCachedDatetime::for_field(name), order)),
                    agg_collector,
                );
                let (count, hits, aggregations) =
                    search_segments(searcher, &query, &collector).map_err(search_error)?;
                let keyed: KeyedHits = hits
                    .into_iter()
                    .map(|(value, address)| {
                        (value.map(|value| SortKey::Numeric(value.to_u64())), address)
                    })
                    .collect();
                (count, keyed, aggregations)
            }
            FastKind::Str => {
                let collector = (
                    Count,
                    top.order_by_string_fast_field(name, order),
                    agg_collector,
                );
                let (count, hits, aggregations) =
                    search_segments(searcher, &query, &collector).map_err(search_error)?;
                let keyed: KeyedHits = hits
                    .into_iter()
                    .map(|(value, address)| (value.map(SortKey::Text), address))
                    .collect();
                (count, keyed, aggregations)
            }
        },
    };
    Ok(LeafResult::new(split_ord, num_hits, hits, aggregations))
}

/// Split searches answered by `volume_search`, for `/metrics`.
pub static HISTOGRAMS_FROM_COUNTS: AtomicU64 = AtomicU64::new(0);

/// A log-volume histogram from the split's counts (see `volume_histogram`): `None` when
/// the request is not one or the split has no counts.
pub(crate) fn volume_search(
    searcher: &Searcher,
    split_ord: usize,
    request: &LeafRequest<'_>,
) -> Result<Option<LeafResult>, String> {
    let (Some(aggs), Some(counts)) = (request.aggs, request.volume) else {
        return Ok(None);
    };
    let Some(histogram) = VolumeHistogram::plan(aggs, counts) else {
        return Ok(None);
    };
    let Some(window) = as_timestamp_window(request.query_ast, request.doc_mapper) else {
        return Ok(None);
    };
    let counted = histogram.read_counts(counts, window)?;
    HISTOGRAMS_FROM_COUNTS.fetch_add(1, Ordering::Relaxed);
    let mut aggregations = counted.aggregations;
    let mut num_hits = counted.num_docs;
    // The parts of minutes the window cuts, as `[start, end)` nanoseconds.
    let cut_pieces: Vec<(i64, i64)> = counted
        .cut_minutes
        .iter()
        .map(|minute| {
            let (start, end) = minute_span_nanos(*minute);
            (
                window.start_nanos.map_or(start, |from| from.max(start)),
                window.end_nanos.map_or(end, |to| to.min(end)),
            )
        })
        .collect();
    for (start, end) in cut_pieces {
        // A narrow range: `DatetimeRangeQuery` reads it from the postings of its seconds
        // rather than scanning the column.
        let rfc3339 = |nanos| format_rfc3339(DateTime::from_timestamp_nanos(nanos));
        let piece = QueryAst::Range {
            field: counts.timestamp_field.clone(),
            lower: RangeBound::Included(rfc3339(start)),
            upper: RangeBound::Excluded(rfc3339(end)),
        };
        let query = QueryBuilder::new(request.doc_mapper)
            .build(&piece)
            .map_err(|error| error.to_string())?;
        let piece_window = TimestampWindow {
            start_nanos: Some(start),
            end_nanos: Some(end),
        };
        let collector =
            leaf_collector_within(aggs, request.doc_mapper, Some(piece_window), Some(counts));
        let (cut_hits, cut_aggregations) =
            search_segments(searcher, &query, &(Count, collector))
                .map_err(|error| format!("leaf search failed: {error}"))?;
        aggregations
            .merge_fruits(cut_aggregations)
            .map_err(|error| format!("merging histogram buckets: {error}"))?;
        num_hits += cut_hits as u64;
    }
    let exact_count = if window == TimestampWindow::default() {
        // Match-all: documents without a timestamp count too.
        Some(searcher.num_docs())
    } else {
        (!counts.multi_valued).then_some(num_hits)
    };
    if let (0, Some(num_hits)) = (request.limit, exact_count) {
        return Ok(Some(LeafResult {
            num_hits,
            hits: Vec::new(),
            aggregations: Some(aggregations),
        }));
    }
    let mut result = leaf_search(
        searcher,
        split_ord,
        LeafRequest {
            aggs: None,
            volume: None,
            ..*request
        },
    )?;
    result.aggregations = Some(aggregations);
    Ok(Some(result))
}

fn search_fast<T>(
    searcher: &Searcher,
    query: &dyn Query,
    top: TopDocs,
    field: &str,
    order: Order,
    agg_collector: Option<LeafAggCollector>,
) -> Result<(usize, KeyedHits, Option<IntermediateAggregationResults>), String>
where
    T: FastValue,
    tantivy::collector::sort_key::ComparatorEnum:
        tantivy::collector::sort_key::Comparator<Option<T>>,
{
    let collector = (
        Count,
        top.order_by_fast_field::<T>(field, order),
        agg_collector,
    );
    let (count, hits, aggregations) = search_segments(searcher, query, &collector)
        .map_err(|error| format!("leaf search failed: {error}"))?;
    Ok((
        count,
        hits.into_iter()
            .map(|(value, address)| (value.map(|value| SortKey::Numeric(value.to_u64())), address))
            .collect(),
        aggregations,
    ))
}

#[cfg(test)]
mod volume_tests;
