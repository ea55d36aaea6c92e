//! The log-volume histogram, from per-minute counts or from our histogram collector,
//! must be tantivy's own aggregation result, bucket for bucket and term for term,
//! whatever the window, the query and the bucket geometry.

use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::{VolumeCounts, VolumeSpec};
use quarry_config::{ConfigFormat, IndexConfig};
use quarry_query::query_ast::{QueryAst, RangeBound};
use quarry_query::query_builder::{within_time_window, QueryBuilder};
use serde_json::{json, Value};
use tantivy::collector::Count;
use tantivy::{Index, IndexWriter, ReloadPolicy, Searcher};

use super::{leaf_search, volume_search, LeafRequest, LeafResult};
use crate::aggregations::{finalize, parse_aggregations, tantivy_collector};
use crate::sort::SortSpec;

const CONFIG: &str = "index_id: volume-test
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, input_formats: [unix_timestamp], fast: true, fast_precision: milliseconds}
    - {name: level, type: text, tokenizer: raw, fast: true}
    - {name: service, type: text, tokenizer: raw, fast: true}
    - {name: body, type: text}
  timestamp_field: ts
  tag_fields: [level, service]
";

/// Seconds since the epoch of the first document: 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

struct Fixture {
    _dir: tempfile::TempDir,
    mapper: DocMapper,
    searcher: Searcher,
    counts: VolumeCounts,
}

fn fixture() -> Fixture {
    fixture_with(CONFIG, Order::Random)
}

/// How the fixture's documents lie in time.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// Scattered over three hours: no time runs.
    Random,
    /// As logs arrive: in time order per chunk of 1,000, 1,500 and 1,500 documents, the
    /// first two in one segment (two time runs), the last in the other.
    Chunks,
    /// Runs of 100 documents in time order, alternately over 90 and 30 minutes from the
    /// start: where one run meets the next, time falls back into an earlier bucket.
    Sawtooth,
}

fn fixture_with(config: &str, order: Order) -> Fixture {
    let config = IndexConfig::parse(config.as_bytes(), ConfigFormat::Yaml).unwrap();
    let mapper = DocMapper::new(&config);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create_in_dir(dir.path(), mapper.schema().clone()).unwrap();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
    let mut state = 42u64;
    let mut next = move |bound: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    // About three hours, with millisecond parts, some minutes empty.
    let mut times: Vec<i64> = (0..4_000)
        .map(|_| START * 1_000 + (next(3 * 3_600) * 1_000 + next(1_000)) as i64)
        .collect();
    match order {
        Order::Random => {}
        Order::Chunks => {
            for chunk in [0..1_000, 1_000..2_500, 2_500..4_000] {
                times[chunk].sort_unstable();
            }
        }
        Order::Sawtooth => {
            for (position, time) in times.iter_mut().enumerate() {
                let minutes = if (position / 100) % 2 == 0 { 90 } else { 30 };
                *time = START * 1_000 + (position % 100) as i64 * minutes * 600 + 7;
            }
        }
    }
    for (position, millis) in times.into_iter().enumerate() {
        let mut doc = json!({"ts": millis as f64 / 1_000.0, "body": "a line"});
        match next(5) {
            0 => {}
            level => doc["level"] = json!(["DEBUG", "INFO", "WARN", "ERROR"][level as usize - 1]),
        }
        doc["service"] = json!(format!("svc-{}", next(7)));
        let parsed = mapper
            .doc_from_json_bytes(doc.to_string().as_bytes())
            .unwrap();
        writer.add_document(parsed.doc).unwrap();
        if position == 2_499 {
            writer.commit().unwrap();
        }
    }
    writer.commit().unwrap();
    drop(writer);
    let spec = VolumeSpec::of(&config);
    let counts = VolumeCounts::compute(dir.path(), &spec).unwrap().unwrap();
    let searcher = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map(|reader: tantivy::IndexReader| reader.searcher())
        .unwrap();
    assert_eq!(searcher.segment_readers().len(), 2);
    let time_runs = match order {
        Order::Random => 0,
        Order::Chunks | Order::Sawtooth => 2,
    };
    assert_eq!(counts.time_runs.len(), time_runs);
    Fixture {
        _dir: dir,
        mapper,
        searcher,
        counts,
    }
}

/// How the leaf computes the histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// From the split's counts (and our collector for cut minutes).
    Counts,
    /// Our histogram collector.
    Collector,
    /// Our histogram collector, with the split's time runs.
    CollectorWithRuns,
}

fn run(
    fixture: &Fixture,
    query: &QueryAst,
    aggs: &Value,
    limit: usize,
    path: Path,
) -> (LeafResult, Value) {
    let aggs = parse_aggregations(aggs, &fixture.mapper).unwrap();
    let sort = SortSpec::parse(None, &fixture.mapper).unwrap();
    let request = LeafRequest {
        doc_mapper: &fixture.mapper,
        query_ast: query,
        sort: &sort,
        limit,
        aggs: Some(&aggs),
        cursor: None,
        split_id: "split",
        volume: (path != Path::Collector).then_some(&fixture.counts),
        warmup: None,
    };
    let answered = volume_search(&fixture.searcher, 0, &request).unwrap();
    assert_eq!(answered.is_some(), path == Path::Counts, "{query:?}");
    let result = leaf_search(&fixture.searcher, 0, request).unwrap();
    let finalized = finalize(&aggs, result.aggregations.clone().into_iter().collect()).unwrap();
    (result, finalized)
}

/// tantivy's aggregation collector over the same query: the reference.
fn reference(fixture: &Fixture, query: &QueryAst, aggs: &Value) -> (u64, Value) {
    let aggs = parse_aggregations(aggs, &fixture.mapper).unwrap();
    let query = QueryBuilder::new(&fixture.mapper).build(query).unwrap();
    let (count, intermediate) = fixture
        .searcher
        .search(&query, &(Count, tantivy_collector(&aggs)))
        .unwrap();
    (count as u64, finalize(&aggs, vec![intermediate]).unwrap())
}

fn window(start: Option<i64>, end: Option<i64>, mapper: &DocMapper) -> QueryAst {
    within_time_window(QueryAst::MatchAll, mapper, "volume-test", start, end).unwrap()
}

#[test]
fn counts_answer_as_the_collector_does() {
    compare_on_windows(&fixture());
}

/// The minutes a window cuts are counted with the segments' time runs.
#[test]
fn counts_answer_as_the_collector_does_with_time_runs() {
    compare_on_windows(&fixture_with(CONFIG, Order::Chunks));
}

/// Without an inverted index on the timestamp, the minutes a window cuts are searched
/// with a range on the column.
#[test]
fn counts_answer_as_the_collector_does_with_an_unindexed_timestamp() {
    let config = CONFIG.replace(
        "fast_precision: milliseconds}",
        "fast_precision: milliseconds, indexed: false}",
    );
    assert_ne!(config, CONFIG);
    compare_on_windows(&fixture_with(&config, Order::Random));
}

fn compare_on_windows(fixture: &Fixture) {
    let mapper = &fixture.mapper;
    let millis_range = |start_ms: i64, end_ms: i64| QueryAst::Range {
        field: "ts".to_string(),
        lower: RangeBound::Included((start_ms as f64 / 1_000.0).to_string()),
        upper: RangeBound::Included((end_ms as f64 / 1_000.0).to_string()),
    };
    let windows = [
        ("everything", QueryAst::MatchAll),
        (
            "whole minutes",
            window(Some(START + 600), Some(START + 3_600), mapper),
        ),
        (
            "cut at both ends",
            window(Some(START + 630), Some(START + 7_201), mapper),
        ),
        ("open start", window(None, Some(START + 5_000), mapper)),
        ("open end", window(Some(START + 125), None, mapper)),
        (
            "within one minute",
            window(Some(START + 61), Some(START + 100), mapper),
        ),
        (
            "empty",
            window(Some(START + 100), Some(START + 100), mapper),
        ),
        (
            "outside the data",
            window(Some(START - 600), Some(START - 60), mapper),
        ),
        (
            "Grafana's millisecond bounds",
            QueryAst::MatchAll.filtered(millis_range(
                START * 1_000 + 1_234,
                START * 1_000 + 5_432_100,
            )),
        ),
    ];
    let requests = [
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "60s"}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1h", "min_doc_count": 1}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "5m", "offset": "-2m"}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "10m", "extended_bounds": {"min": START * 1_000 - 3_600_000, "max": (START + 4 * 3_600) * 1_000}}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "60s"}, "aggs": {"l": {"terms": {"field": "level"}}}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "15m"}, "aggs": {"s": {"terms": {"field": "service", "size": 2, "order": {"_key": "asc"}}}}}}),
    ];
    for (window_name, query) in &windows {
        for request in &requests {
            let (expected_hits, expected_aggs) = reference(fixture, query, request);
            let mut hits_of_paths = Vec::new();
            for path in [Path::Counts, Path::Collector] {
                for limit in [0, 5] {
                    let what = format!("{window_name}, {request}, {path:?}, limit {limit}");
                    let (result, aggs) = run(fixture, query, request, limit, path);
                    assert_eq!(result.num_hits, expected_hits, "{what}");
                    assert_eq!(aggs, expected_aggs, "{what}");
                    let addresses: Vec<_> = result.hits.iter().map(|hit| hit.address).collect();
                    hits_of_paths.push((limit, addresses));
                }
            }
            assert_eq!(hits_of_paths[0], hits_of_paths[2]);
            assert_eq!(hits_of_paths[1], hits_of_paths[3]);
        }
    }
}

#[test]
fn the_collector_answers_any_query_as_tantivy_does() {
    the_collector_answers_as_tantivy_does(&fixture(), Path::Collector);
}

#[test]
fn the_collector_answers_any_query_as_tantivy_does_with_time_runs() {
    let fixture = fixture_with(CONFIG, Order::Chunks);
    the_collector_answers_as_tantivy_does(&fixture, Path::Collector);
    the_collector_answers_as_tantivy_does(&fixture, Path::CollectorWithRuns);
    let fixture = fixture_with(CONFIG, Order::Sawtooth);
    the_collector_answers_as_tantivy_does(&fixture, Path::Collector);
    the_collector_answers_as_tantivy_does(&fixture, Path::CollectorWithRuns);
}

fn the_collector_answers_as_tantivy_does(fixture: &Fixture, path: Path) {
    let term = |field: &str, value: &str| QueryAst::Term {
        field: field.to_string(),
        value: value.to_string(),
    };
    let queries = [
        term("level", "WARN"),
        term("service", "svc-3").filtered(window(
            Some(START + 61),
            Some(START + 5_000),
            &fixture.mapper,
        )),
        term("body", "nothing"),
        // Every document: blocks of consecutive ones, across the two runs of a segment.
        term("body", "line"),
        // A narrow window inside one minute: the table spans only its buckets.
        term("level", "INFO").filtered(window(
            Some(START + 130),
            Some(START + 133),
            &fixture.mapper,
        )),
    ];
    let requests = [
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "30s"}}}),
        // Wide enough for the first and last of a block across two runs to share one.
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1h"}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1ms", "min_doc_count": 1}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1s"}}}),
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "7m", "offset": "+90s"}, "aggs": {"l": {"terms": {"field": "level", "size": 2}}}}}),
        // Every document has one service: its ordinals are read a block at a time.
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "60s"}, "aggs": {"s": {"terms": {"field": "service"}}}}}),
    ];
    for query in &queries {
        for request in &requests {
            let (expected_hits, expected_aggs) = reference(fixture, query, request);
            let (result, aggs) = run(fixture, query, request, 0, path);
            assert_eq!(result.num_hits, expected_hits, "{query:?} {request}");
            assert_eq!(aggs, expected_aggs, "{query:?} {request}");
        }
    }
}

#[test]
fn only_histograms_of_time_windows_take_the_counts() {
    let fixture = fixture();
    let mapper = &fixture.mapper;
    let sort = SortSpec::parse(None, mapper).unwrap();
    let takes_counts = |query: &QueryAst, aggs: Value| {
        let aggs = parse_aggregations(&aggs, mapper).unwrap();
        let request = LeafRequest {
            doc_mapper: mapper,
            query_ast: query,
            sort: &sort,
            limit: 0,
            aggs: Some(&aggs),
            cursor: None,
            split_id: "split",
            volume: Some(&fixture.counts),
            warmup: None,
        };
        volume_search(&fixture.searcher, 0, &request)
            .unwrap()
            .is_some()
    };
    let minute = json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}}});
    assert!(takes_counts(&QueryAst::MatchAll, minute.clone()));
    assert!(takes_counts(
        &window(Some(START + 1), Some(START + 999), mapper),
        minute.clone()
    ));
    let term = QueryAst::Term {
        field: "body".to_string(),
        value: "line".to_string(),
    };
    assert!(!takes_counts(&term, minute.clone()));
    assert!(!takes_counts(
        &QueryAst::MatchAll,
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "30s"}}})
    ));
    assert!(!takes_counts(
        &QueryAst::MatchAll,
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}, "aggs": {"l": {"terms": {"field": "level", "missing": "none"}}}}})
    ));
    assert!(!takes_counts(
        &QueryAst::MatchAll,
        json!({"h": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}}, "c": {"terms": {"field": "level"}}})
    ));
}
