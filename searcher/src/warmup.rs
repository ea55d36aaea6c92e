//! Fetches what a search is about to read before it runs, concurrently, in as few round
//! trips as possible. tantivy reads synchronously, so every byte range missing from the
//! caches stops a search for a whole round trip to object storage (20–50 ms on S3), one
//! after another. Fetched ahead, the same ranges cost one round trip per stage:
//! 1. term dictionary blocks of the query's terms, and the names of the columns to read;
//! 2. postings (and positions, for phrases) of the terms, and those columns whole;
//! 3. after collection, the hits' doc-store blocks and their log-id columns.
//!
//! Ranges land in the split directory's range cache (and decompressed doc-store blocks in
//! the searcher's block cache), where the search then finds them. What the warmup does not
//! foresee (wildcards, the seconds of a narrow time window) is still fetched on demand.
//! The stages run on the searching (blocking) thread with `block_on`.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use futures::future::{try_join_all, LocalBoxFuture};
use futures::FutureExt;
use quarry_common::doc_mapper::log_ids::{
    LOG_LINE_FIELD_NAME, LOG_POSITION_FIELD_NAME, LOG_SHARD_FIELD_NAME,
};
use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::fetch_stats;
use quarry_common::split::source_store::SourceStoreReader;
use quarry_query::query_ast::QueryAst;
use quarry_query::query_builder::TimestampWindow;
use tantivy::aggregation::agg_req::{get_fast_field_names, Aggregations};
use tantivy::columnar::DynamicColumnHandle;
use tantivy::query::Query;
use tantivy::schema::Field;
use tantivy::DateTime;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument, Term};
use tokio::runtime::Handle;

use crate::sort::{SortField, SortSpec};

/// What a search reads, as far as it can be known before running it.
#[derive(Debug, Default)]
pub(crate) struct WarmupPlan {
    /// The query's terms, with whether their positions are read too.
    terms: Vec<(Term, bool)>,
    /// Fast fields read whole (sorts, aggregations, ranges).
    columns: BTreeSet<String>,
    /// The seconds of the query's time window in the timestamp field's inverted index,
    /// which a narrow window is read from (`DatetimeRangeQuery`).
    seconds: Option<SecondsRange>,
}

#[derive(Debug)]
pub(crate) struct SecondsRange {
    field: Field,
    low: Bound<Term>,
    high: Bound<Term>,
}

impl SecondsRange {
    /// The seconds `window` covers, when the timestamp field is indexed.
    pub(crate) fn of(window: TimestampWindow, doc_mapper: &DocMapper) -> Option<SecondsRange> {
        let timestamp = doc_mapper.timestamp_field()?;
        if !timestamp.mapping.indexed || window == TimestampWindow::default() {
            return None;
        }
        let second = |nanos: i64| {
            Term::from_field_date_for_search(timestamp.field, DateTime::from_timestamp_nanos(nanos))
        };
        Some(SecondsRange {
            field: timestamp.field,
            low: window
                .start_nanos
                .map_or(Bound::Unbounded, |start| Bound::Included(second(start))),
            high: window
                .end_nanos
                .map_or(Bound::Unbounded, |end| Bound::Included(second(end))),
        })
    }
}

impl WarmupPlan {
    pub(crate) fn new(
        query: &dyn Query,
        columns: BTreeSet<String>,
        seconds: Option<SecondsRange>,
    ) -> Self {
        let mut terms: Vec<(Term, bool)> = Vec::new();
        query.query_terms(&mut |term, with_positions| match terms
            .iter_mut()
            .find(|(known, _)| known == term)
        {
            Some((_, positions)) => *positions |= with_positions,
            None => terms.push((term.clone(), with_positions)),
        });
        WarmupPlan {
            terms,
            columns,
            seconds,
        }
    }
}

type Fetch<'a> = LocalBoxFuture<'a, std::io::Result<()>>;

/// Runs one stage's fetches concurrently; returns their outputs and whether the stage went
/// to storage (a round trip).
fn run_stage<'a, T>(
    runtime: &Handle,
    fetches: Vec<LocalBoxFuture<'a, std::io::Result<T>>>,
) -> Result<(Vec<T>, u32), String> {
    if fetches.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let before = fetch_stats::async_gets_on_this_thread();
    let outputs = runtime
        .block_on(try_join_all(fetches))
        .map_err(|error| format!("warming up the split: {error}"))?;
    let fetched = fetch_stats::async_gets_on_this_thread() > before;
    if fetched {
        fetch_stats::record_round_trip();
    }
    Ok((outputs, u32::from(fetched)))
}

/// The handles of `columns` in every segment: free when the split's hotcache holds the
/// column names (splits packaged since it does), a round trip otherwise.
fn column_handles(
    runtime: &Handle,
    searcher: &Searcher,
    columns: &BTreeSet<String>,
) -> Result<(Vec<DynamicColumnHandle>, u32), String> {
    let mut listings = Vec::new();
    for segment in searcher.segment_readers() {
        for column in columns {
            let fast_fields = segment.fast_fields();
            listings.push(
                async move {
                    fast_fields
                        .list_dynamic_column_handles(column)
                        .await
                        .map_err(std::io::Error::other)
                }
                .boxed_local(),
            );
        }
    }
    let (listed, round_trips) = run_stage(runtime, listings)?;
    Ok((listed.into_iter().flatten().collect(), round_trips))
}

fn read_columns(handles: &[DynamicColumnHandle]) -> impl Iterator<Item = Fetch<'_>> {
    handles.iter().map(|handle| {
        async move { handle.file_slice().read_bytes_async().await.map(|_| ()) }.boxed_local()
    })
}

/// Stages 1 and 2 for a search. Returns the round trips they took.
pub(crate) fn warm_up_search(
    runtime: &Handle,
    searcher: &Searcher,
    plan: &WarmupPlan,
) -> Result<u32, String> {
    let mut inverted_indexes = Vec::new();
    for segment in searcher.segment_readers() {
        for (term, with_positions) in &plan.terms {
            let inverted = segment
                .inverted_index(term.field())
                .map_err(|error| format!("opening the inverted index: {error}"))?;
            inverted_indexes.push((inverted, term, *with_positions));
        }
    }
    let mut seconds_indexes = Vec::new();
    if let Some(seconds) = &plan.seconds {
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(seconds.field)
                .map_err(|error| format!("opening the inverted index: {error}"))?;
            seconds_indexes.push((inverted, seconds));
        }
    }
    let mut dictionary_blocks: Vec<Fetch<'_>> = Vec::new();
    for (inverted, term, _) in &inverted_indexes {
        dictionary_blocks.push(
            async move {
                inverted
                    .terms()
                    .get_async(term.serialized_value_bytes())
                    .await
                    .map(|_| ())
            }
            .boxed_local(),
        );
    }
    for (inverted, seconds) in &seconds_indexes {
        dictionary_blocks.push(
            async move {
                let mut range = inverted.terms().range();
                if let Bound::Included(low) = &seconds.low {
                    range = range.ge(low.serialized_value_bytes());
                }
                if let Bound::Included(high) = &seconds.high {
                    range = range.le(high.serialized_value_bytes());
                }
                range.into_stream_async().await.map(|_| ())
            }
            .boxed_local(),
        );
    }
    // Column names come from the hotcache, so listing them does not delay the dictionary
    // blocks of stage 1 (on older splits it is a round trip of its own, counted).
    let (handles, mut round_trips) = column_handles(runtime, searcher, &plan.columns)?;
    round_trips += run_stage(runtime, dictionary_blocks)?.1;
    let mut postings_and_columns: Vec<Fetch<'_>> = read_columns(&handles).collect();
    for (inverted, term, with_positions) in &inverted_indexes {
        postings_and_columns.push(
            async move {
                inverted
                    .warm_postings(term, *with_positions)
                    .await
                    .map(|_| ())
            }
            .boxed_local(),
        );
    }
    for (inverted, seconds) in &seconds_indexes {
        postings_and_columns.push(
            async move {
                inverted
                    .warm_postings_range((seconds.low.clone(), seconds.high.clone()), None, false)
                    .await
                    .map(|_| ())
            }
            .boxed_local(),
        );
    }
    round_trips += run_stage(runtime, postings_and_columns)?.1;
    Ok(round_trips)
}

/// Stage 3: the doc-store blocks of `addresses` and the given columns (the log ids hits
/// are returned with). Returns the round trips taken.
pub(crate) fn warm_up_fetch(
    runtime: &Handle,
    searcher: &Searcher,
    sources: &[Option<Arc<SourceStoreReader>>],
    addresses: &[DocAddress],
    columns: &BTreeSet<String>,
) -> Result<u32, String> {
    let (handles, mut round_trips) = column_handles(runtime, searcher, columns)?;
    let mut fetches: Vec<Fetch<'_>> = read_columns(&handles).collect();
    for (segment_ord, store) in sources.iter().enumerate() {
        let Some(store) = store else {
            continue;
        };
        let docs: Vec<DocId> = addresses
            .iter()
            .filter(|address| address.segment_ord as usize == segment_ord)
            .map(|address| address.doc_id)
            .collect();
        if !docs.is_empty() {
            fetches.push(
                async move { store.warm(&docs).await.map_err(std::io::Error::other) }.boxed_local(),
            );
        }
    }
    // Hits in one doc-store block share its GET (the split directory joins equal reads).
    for address in addresses {
        fetches.push(
            async move {
                searcher
                    .doc_async::<TantivyDocument>(*address)
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            }
            .boxed_local(),
        );
    }
    round_trips += run_stage(runtime, fetches)?.1;
    Ok(round_trips)
}

/// The columns a hit's log id is read from (`fetch_docs`).
pub(crate) fn log_id_columns() -> BTreeSet<String> {
    [
        LOG_SHARD_FIELD_NAME,
        LOG_POSITION_FIELD_NAME,
        LOG_LINE_FIELD_NAME,
    ]
    .map(str::to_string)
    .into()
}

/// The fast fields a search reads whole: its sort keys, its aggregations' fields and the
/// fields of its ranges (time windows above all).
pub(crate) fn columns_to_warm(
    sort: &SortSpec,
    aggs: Option<&Aggregations>,
    query_ast: &QueryAst,
) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    let mut sorts = vec![sort];
    while let Some(sort) = sorts.pop() {
        if let SortField::FastField { name, .. } = &sort.field {
            columns.insert(name.clone());
        }
        sorts.extend(&sort.then_by);
    }
    if let Some(aggs) = aggs {
        columns.extend(get_fast_field_names(aggs));
    }
    let mut queries = vec![query_ast];
    while let Some(query) = queries.pop() {
        match query {
            QueryAst::Range { field, .. } => {
                columns.insert(field.clone());
            }
            QueryAst::Bool(bool_query) => queries.extend(
                bool_query
                    .must
                    .iter()
                    .chain(&bool_query.should)
                    .chain(&bool_query.filter)
                    .chain(&bool_query.must_not),
            ),
            _ => {}
        }
    }
    columns
}
