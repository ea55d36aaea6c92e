//! The benchmark harness: indexing and a fixed query set, for Quarry (or any engine that
//! speaks the native search API) over HTTP, next to a plain tantivy index of the same
//! documents and schema queried in-process, so figures read as ratios to raw tantivy.
//!
//! cargo run --release --bin bench -- --target http://127.0.0.1:7280 --index bench-logs --input logs.ndjson
//!
//! `--target` must already hold the documents (bench/run.sh loads them); `--input` is the
//! same NDJSON file, indexed again here into the raw tantivy baseline.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::{VolumeCounts, VolumeSpec};
use quarry_config::{ConfigFormat, IndexConfig};
use quarry_query::query_builder::{time_window_clause, QueryBuilder};
use quarry_query::query_string::parse_query_string;
use quarry_searcher::aggregations::parse_aggregations;
use serde_json::{json, Value};
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Count, TopDocs};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{DateTime, HasLen, Index, IndexSettings, Order, TantivyDocument};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    /// Engine speaking the native search API.
    #[arg(long)]
    target: Option<String>,
    #[arg(long, default_value = "bench-logs")]
    index: String,
    /// Another index on the target to time every query against, run for run in turn with
    /// `--index`, so that both see the same machine: the ratio is `--index` over it.
    #[arg(long)]
    vs_index: Option<String>,
    /// The NDJSON dataset, for the raw tantivy baseline.
    #[arg(long)]
    input: Option<PathBuf>,
    #[arg(long, default_value = "bench/bench-logs.yaml")]
    index_config: PathBuf,
    #[arg(long, default_value_t = 15)]
    repetitions: usize,
    /// Times the raw baseline is built; the median is reported.
    #[arg(long, default_value_t = 1)]
    index_runs: usize,
    /// Prints the raw index's bytes per component and field: where storage goes.
    #[arg(long)]
    space_usage: bool,
    /// Prints the bytes per component and field of these Quarry split files (as in
    /// `qdata/indexes/<index>/`), then exits: where a node's storage goes.
    #[arg(long)]
    split_file: Vec<PathBuf>,
    /// Runs every query within a window of this many seconds (replacing the queries' own
    /// windows), `--window-offset-secs` after the dataset's first timestamp.
    #[arg(long)]
    window_secs: Option<i64>,
    #[arg(long, default_value_t = 0)]
    window_offset_secs: i64,
}

struct BenchQuery {
    name: &'static str,
    request: Value,
}

/// The fixed query set; `start`/`end` bound the dataset's time range in seconds.
fn query_set(start: i64, end: i64, trace_id: &str) -> Vec<BenchQuery> {
    vec![
        BenchQuery {
            name: "body:failed, top 20 by time",
            request: json!({"query": "body:failed", "max_hits": 20}),
        },
        BenchQuery {
            name: "phrase \"connection reset by peer\"",
            request: json!({"query": "body:\"connection reset by peer\"", "max_hits": 20}),
        },
        BenchQuery {
            name: "ERROR AND payments",
            request: json!({"query": "severity_text:ERROR AND service_name:payments", "max_hits": 20}),
        },
        BenchQuery {
            name: "WARN in first 10% of time",
            request: json!({"query": "severity_text:WARN", "max_hits": 20, "start_timestamp": start, "end_timestamp": start + (end - start) / 10}),
        },
        BenchQuery {
            name: "date_histogram 60s, no hits",
            request: json!({"query": "*", "max_hits": 0, "aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "60s"}}}}),
        },
        BenchQuery {
            name: "date_histogram 60s by severity",
            request: json!({"query": "*", "max_hits": 0, "aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "60s"}, "aggs": {"s": {"terms": {"field": "severity_text"}}}}}}),
        },
        BenchQuery {
            name: "date_histogram 60s, last 6 h (cut minutes)",
            request: json!({"query": "*", "max_hits": 0, "start_timestamp": end - 6 * 3_600 + 7, "end_timestamp": end - 13, "aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "60s"}}}}),
        },
        BenchQuery {
            name: "body:failed date_histogram 60s",
            request: json!({"query": "body:failed", "max_hits": 0, "aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "60s"}}}}),
        },
        BenchQuery {
            name: "terms(service)+avg(duration)",
            request: json!({"query": "*", "max_hits": 0, "aggs": {"s": {"terms": {"field": "service_name", "size": 20}, "aggs": {"d": {"avg": {"field": "attributes.duration_ms"}}}}}}),
        },
        BenchQuery {
            name: "one trace_id",
            request: json!({"query": format!("trace_id:{trace_id}"), "max_hits": 20}),
        },
        BenchQuery {
            name: "(declined OR exceeded) AND NOT INFO, 100",
            request: json!({"query": "(body:declined OR body:exceeded) AND NOT severity_text:INFO", "max_hits": 100}),
        },
    ]
}

fn median_and_p90(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |quantile: f64| {
        times[((times.len() - 1) as f64 * quantile).round() as usize].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.9))
}

struct RawTantivy {
    /// Kept across queries, as a searcher keeps its readers and doc-store cache.
    reader: tantivy::IndexReader,
    doc_mapper: DocMapper,
    /// What a split of this index would carry in its `quarry.volume` file, for our
    /// collector (packaging computes it; it is not counted in the indexing time).
    volume: Option<VolumeCounts>,
    _dir: tempfile::TempDir,
}

impl RawTantivy {
    /// One writer thread over an mmap directory, the same schema and doc store settings.
    fn build(config: &IndexConfig, input: &PathBuf) -> anyhow::Result<(RawTantivy, Duration, u64)> {
        // Plain tantivy keeps the fields in its doc store: the source store is Quarry's.
        let mut config = config.clone();
        config.doc_mapping.store_source = false;
        let config = &config;
        let doc_mapper = DocMapper::new(config);
        let dir = tempfile::tempdir()?;
        let settings = &config.indexing_settings;
        let index = Index::builder()
            .schema(doc_mapper.schema().clone())
            .settings(IndexSettings {
                docstore_compression: Compressor::Zstd(ZstdCompressor {
                    compression_level: Some(settings.docstore_compression_level),
                }),
                docstore_blocksize: settings.docstore_blocksize.as_u64() as usize,
                ..IndexSettings::default()
            })
            .create_in_dir(dir.path())?;
        let text = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
        let started = Instant::now();
        let mut writer =
            index.writer_with_num_threads(1, settings.resources.heap_size.as_u64() as usize)?;
        for line in text
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            writer.add_document(doc_mapper.doc_from_json_bytes(line)?.doc)?;
        }
        writer.commit()?;
        let segments = index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        writer.wait_merging_threads()?;
        let elapsed = started.elapsed();
        let bytes = std::fs::read_dir(dir.path())?
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .map(|metadata| metadata.len())
            .sum();
        let reader = index.reader()?;
        let volume = VolumeCounts::compute(dir.path(), &VolumeSpec::of(config))?;
        Ok((
            RawTantivy {
                reader,
                doc_mapper,
                volume,
                _dir: dir,
            },
            elapsed,
            bytes,
        ))
    }

    fn query(&self, request: &Value) -> anyhow::Result<Box<dyn tantivy::query::Query>> {
        let mut ast = parse_query_string(
            request["query"].as_str().unwrap_or("*"),
            self.doc_mapper.default_search_fields(),
        )?;
        if let Some(window) = time_window_clause(
            "timestamp",
            request["start_timestamp"].as_i64(),
            request["end_timestamp"].as_i64(),
        ) {
            ast = ast.filtered(window);
        }
        Ok(QueryBuilder::new(&self.doc_mapper).build(&ast)?)
    }

    /// A leaf's aggregation work over the whole index, with our collector or tantivy's.
    fn collect_at_leaf(
        &self,
        request: &Value,
        aggs: &tantivy::aggregation::agg_req::Aggregations,
        natively: bool,
    ) -> anyhow::Result<(u64, IntermediateAggregationResults)> {
        let query = self.query(request)?;
        Ok(quarry_searcher::aggregations::collect_at_leaf(
            &self.reader.searcher(),
            query.as_ref(),
            aggs,
            &self.doc_mapper,
            natively,
            self.volume.as_ref(),
        )?)
    }

    /// The same work as a leaf plus the doc fetch of the final hits.
    fn run(&self, request: &Value) -> anyhow::Result<u64> {
        let searcher = self.reader.searcher();
        let query = self.query(request)?;
        let max_hits = request["max_hits"].as_u64().unwrap_or(20) as usize;
        if let Some(aggs) = request.get("aggs") {
            let aggs = parse_aggregations(aggs, &self.doc_mapper).map_err(anyhow::Error::msg)?;
            let collector = AggregationCollector::from_aggs(
                aggs,
                AggContextParams::new(AggregationLimitsGuard::default(), Default::default()),
            );
            let (count, results) = searcher.search(&query, &(Count, collector))?;
            serde_json::to_string(&results)?;
            return Ok(count as u64);
        }
        let top = TopDocs::with_limit(max_hits.max(1))
            .order_by_fast_field::<DateTime>("timestamp", Order::Desc);
        let (count, hits) = searcher.search(&query, &(Count, top))?;
        for (_, address) in hits.iter().take(max_hits) {
            let doc: TantivyDocument = searcher.doc(*address)?;
            self.doc_mapper.doc_to_json(&doc);
        }
        Ok(count as u64)
    }
}

/// Opens a split file as a searcher does (through its footer and hotcache).
fn print_split_space_usage(path: &std::path::Path) -> anyhow::Result<()> {
    use quarry_common::split::{SplitDirectory, SplitOpenInfo, FOOTER_LEN};
    let len = std::fs::metadata(path)?.len();
    let bytes = std::fs::read(path)?;
    let footer = bytes
        .get(bytes.len().saturating_sub(FOOTER_LEN)..)
        .filter(|footer| footer.len() == FOOTER_LEN)
        .context("shorter than a split footer")?;
    let file_table_offset = u64::from_le_bytes(footer[..8].try_into()?);
    let dir = path.parent().context("no parent folder")?;
    let name = path
        .file_name()
        .context("no file name")?
        .to_string_lossy()
        .into_owned();
    let runtime = tokio::runtime::Runtime::new()?;
    let storage = quarry_common::storage::StorageResolver::new(Default::default())
        .resolve(&dir.to_string_lossy())?;
    let directory = runtime.block_on(SplitDirectory::open(SplitOpenInfo {
        storage,
        split_path: name.clone(),
        footer_offsets: file_table_offset..len,
        range_cache: None,
    }))?;
    let _context = runtime.enter();
    let searcher = Index::open(directory)?.reader()?.searcher();
    println!(
        "split {name}: {} docs, {len} bytes, of which {} past the segments (file table, hotcache, footer)",
        searcher.num_docs(),
        len - file_table_offset
    );
    print_space_usage("split", &searcher)?;
    print_time_runs(&searcher)?;
    print_fetch_cost(&searcher)
}

/// The time runs the split records per segment (see `quarry_common::split::time_order`):
/// a histogram collector counts blocks of matches in one run without reading them.
fn print_time_runs(searcher: &tantivy::Searcher) -> anyhow::Result<()> {
    use quarry_common::split::volume::VOLUME_FILE;
    use tantivy::Directory;
    let directory = searcher.index().directory();
    let path = std::path::Path::new(VOLUME_FILE);
    if !directory.exists(path)? {
        println!("time runs: the split has no {VOLUME_FILE}");
        return Ok(());
    }
    // `atomic_read`: the managed directory's `open_read` expects tantivy's file footer.
    let counts = VolumeCounts::decode(&directory.atomic_read(path)?)?;
    for segment in searcher.segment_readers() {
        match counts.time_runs.get(&segment.segment_id().uuid_string()) {
            Some(runs) => println!(
                "time runs: segment {}: {} over {} docs",
                segment.segment_id().short_uuid_string(),
                runs.num_runs(),
                runs.max_doc()
            ),
            None => println!(
                "time runs: segment {}: none recorded",
                segment.segment_id().short_uuid_string()
            ),
        }
    }
    Ok(())
}

/// What reading 20 hits' documents costs, from a cold reader (no decompressed block
/// cached): a page of consecutive documents (the newest), and 20 scattered ones (one
/// block each). From the source store when the segment has one, else tantivy's doc store.
fn print_fetch_cost(searcher: &tantivy::Searcher) -> anyhow::Result<()> {
    use quarry_common::split::source_store::SourceStoreReader;
    let Some((segment_ord, segment)) = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .max_by_key(|(_, segment)| segment.max_doc())
    else {
        return Ok(());
    };
    let max_doc = segment.max_doc();
    let page: Vec<u32> = (max_doc.saturating_sub(20)..max_doc).collect();
    let scattered: Vec<u32> = (0..20u32).map(|i| i * (max_doc / 20)).collect();
    let with_source_store = SourceStoreReader::open_segment(segment)?.is_some();
    let store_name = if with_source_store {
        "source store"
    } else {
        "tantivy doc store"
    };
    for (name, docs) in [("a page of 20", &page), ("20 scattered", &scattered)] {
        let mut times = Vec::new();
        let mut blocks = 0;
        let mut bytes = 0;
        for _ in 0..21 {
            // A reader of its own, so that no block is cached yet.
            let fresh = searcher
                .index()
                .reader_builder()
                .reload_policy(tantivy::ReloadPolicy::Manual)
                .doc_store_cache_num_blocks(100)
                .try_into()
                .map(|reader: tantivy::IndexReader| reader.searcher())?;
            let misses_before = fresh.doc_store_cache_stats().cache_misses;
            let started = Instant::now();
            if with_source_store {
                let store = SourceStoreReader::open_segment(segment)?.context("source store")?;
                let sources = store.sources(docs)?;
                bytes = sources.iter().flatten().map(Vec::len).sum::<usize>();
                let mut ranges: Vec<_> = docs
                    .iter()
                    .map(|doc| store.byte_range_of(*doc).map(|range| range.start))
                    .collect::<Result<_, _>>()?;
                ranges.dedup();
                blocks = ranges.len();
            } else {
                bytes = 0;
                for doc in docs.iter() {
                    let address = tantivy::DocAddress::new(segment_ord as u32, *doc);
                    let document: TantivyDocument = fresh.doc(address)?;
                    bytes +=
                        tantivy::schema::document::Document::to_json(&document, fresh.schema())
                            .len();
                }
                blocks = fresh.doc_store_cache_stats().cache_misses - misses_before;
            }
            times.push(started.elapsed());
        }
        let (median, _) = median_and_p90(times);
        println!(
            "fetch {name} from the {store_name}: {median:.2} ms, {blocks} block(s) decompressed, {:.1} KB of documents",
            bytes as f64 / 1e3
        );
    }
    Ok(())
}

/// Bytes per index component and field, summed over segments, largest first.
fn print_space_usage(title: &str, searcher: &tantivy::Searcher) -> anyhow::Result<()> {
    let usage = searcher.space_usage()?;
    let mut by_part: std::collections::BTreeMap<String, u64> = Default::default();
    for segment in usage.segments() {
        let per_field = [
            ("term dictionary", segment.termdict()),
            ("postings", segment.postings()),
            ("positions", segment.positions()),
            ("fast fields", segment.fast_fields()),
            ("fieldnorms", segment.fieldnorms()),
        ];
        for (component, fields) in per_field {
            for field in fields.fields() {
                *by_part
                    .entry(format!("{component} / {}", field.field_name()))
                    .or_default() += field.total().get_bytes();
            }
        }
        *by_part.entry("doc store".to_string()).or_default() += segment.store().total().get_bytes();
    }
    for segment in searcher.segment_readers() {
        let component = tantivy::index::SegmentComponent::Custom(
            quarry_common::split::source_store::SOURCE_EXTENSION.to_string(),
        );
        if let Ok(file) = segment.open_read(component) {
            *by_part.entry("source store".to_string()).or_default() += file.len() as u64;
        }
    }
    let mut parts: Vec<(String, u64)> = by_part.into_iter().collect();
    parts.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    println!("{title}, bytes by component and field:");
    for (part, bytes) in parts.iter().filter(|(_, bytes)| *bytes >= 100_000) {
        println!("  {:>8.2} MB  {part}", *bytes as f64 / 1e6);
    }
    Ok(())
}

/// CPU seconds this process has used, from /proc (user + system).
fn process_cpu_secs() -> f64 {
    let ticks_per_sec = 100.0; // USER_HZ, fixed on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are 14th and 15th.
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / ticks_per_sec)
        })
        .unwrap_or(0.0)
}

fn time_queries(
    repetitions: usize,
    mut run: impl FnMut() -> anyhow::Result<u64>,
) -> anyhow::Result<(f64, f64, u64)> {
    let mut num_hits = 0;
    for _ in 0..3 {
        num_hits = run()?;
    }
    let mut times = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let started = Instant::now();
        run()?;
        times.push(started.elapsed());
    }
    let (median, p90) = median_and_p90(times);
    Ok((median, p90, num_hits))
}

/// Times two runs in turn, one repetition each at a time, so that both see the same
/// load on a shared machine; `(median, p90)` of each.
fn time_in_turn(
    repetitions: usize,
    mut first: impl FnMut() -> anyhow::Result<u64>,
    mut second: impl FnMut() -> anyhow::Result<u64>,
) -> anyhow::Result<((f64, f64), (f64, f64))> {
    for _ in 0..3 {
        first()?;
        second()?;
    }
    let mut first_times = Vec::with_capacity(repetitions);
    let mut second_times = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let started = Instant::now();
        first()?;
        first_times.push(started.elapsed());
        let started = Instant::now();
        second()?;
        second_times.push(started.elapsed());
    }
    Ok((median_and_p90(first_times), median_and_p90(second_times)))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.split_file.is_empty() {
        for path in &args.split_file {
            print_split_space_usage(path)?;
        }
        return Ok(());
    }
    let config = IndexConfig::parse(&std::fs::read(&args.index_config)?, ConfigFormat::Yaml)?;
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let search_index = |target: &str, index: &str, request: &Value| -> anyhow::Result<Value> {
        runtime.block_on(async {
            let response = http
                .post(format!("{target}/api/v1/{index}/search"))
                .json(request)
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "{status}: {body}");
            Ok(body)
        })
    };
    let search = |target: &str, request: &Value| -> anyhow::Result<Value> {
        search_index(target, &args.index, request)
    };

    let raw = match &args.input {
        Some(input) => {
            let input_bytes = std::fs::metadata(input)?.len();
            let mut walls = Vec::new();
            let mut cpus = Vec::new();
            let mut last = None;
            for _ in 0..args.index_runs.max(1) {
                // The previous index is dropped first: one at a time on disk and in cache.
                drop(last.take());
                let cpu_before = process_cpu_secs();
                let built = RawTantivy::build(&config, input)?;
                cpus.push(process_cpu_secs() - cpu_before);
                walls.push(built.1.as_secs_f64());
                last = Some(built);
            }
            let (raw, _, bytes) = last.context("no raw index built")?;
            let median = |values: &[f64]| {
                let mut sorted = values.to_vec();
                sorted.sort_by(f64::total_cmp);
                sorted[sorted.len() / 2]
            };
            let wall = median(&walls);
            let num_docs = raw.reader.searcher().num_docs();
            let runs: Vec<String> = walls.iter().map(|wall| format!("{wall:.2}")).collect();
            println!(
                "raw tantivy indexing: {num_docs} docs; runs {} s; median {wall:.2} s -> {:.0}k docs/s, {:.1} MB/s (1 writer thread + final merge); CPU {:.1} s; index {:.3} x input",
                runs.join(", "),
                num_docs as f64 / wall / 1e3,
                input_bytes as f64 / wall / 1e6,
                median(&cpus),
                bytes as f64 / input_bytes as f64
            );
            if args.space_usage {
                print_space_usage("raw tantivy index", &raw.reader.searcher())?;
                print_fetch_cost(&raw.reader.searcher())?;
            }
            Some(raw)
        }
        None => None,
    };

    // The dataset's time range and a trace id, from the target if there is one.
    let (start, end, trace_id) = match &args.target {
        Some(target) => {
            let first = search(
                target,
                &json!({"query": "*", "max_hits": 1, "sort_by": "timestamp"}),
            )?;
            let last = search(target, &json!({"query": "*", "max_hits": 1}))?;
            let trace = search(target, &json!({"query": "trace_id:*", "max_hits": 1}))?;
            let secs = |hit: &Value| -> anyhow::Result<i64> {
                let text = hit["hits"][0]["timestamp"]
                    .as_str()
                    .context("no timestamp")?;
                Ok(time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )?
                .unix_timestamp())
            };
            (
                secs(&first)?,
                secs(&last)? + 1,
                trace["hits"][0]["trace_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
        // Without a target the trace id only has to parse; it matches nothing.
        None => (1_767_225_600, 1_767_226_600, "0".repeat(32)),
    };

    let with_window = |mut query: BenchQuery| {
        if let Some(window_secs) = args.window_secs {
            let window_start = start + args.window_offset_secs;
            query.request["start_timestamp"] = json!(window_start);
            query.request["end_timestamp"] = json!(window_start + window_secs);
        }
        query
    };
    if let (Some(target), Some(vs_index)) = (&args.target, &args.vs_index) {
        println!(
            "{:<42} {:>12} {:>12} {:>12} {:>12} {:>8}",
            "query",
            format!("{} med", args.index),
            "p90",
            format!("{vs_index} med"),
            "p90",
            "ratio"
        );
        for query in query_set(start, end, &trace_id)
            .into_iter()
            .map(with_window)
        {
            let hits = |index: &str| -> anyhow::Result<u64> {
                Ok(search_index(target, index, &query.request)?["num_hits"]
                    .as_u64()
                    .unwrap_or_default())
            };
            // Both must select the same documents, or the ratio compares different work.
            let (our_hits, their_hits) = (hits(&args.index)?, hits(vs_index)?);
            anyhow::ensure!(
                our_hits == their_hits,
                "`{}`: {} found {our_hits} hits, {vs_index} {their_hits}",
                query.name,
                args.index
            );
            let (ours, theirs) =
                time_in_turn(args.repetitions, || hits(&args.index), || hits(vs_index))?;
            println!(
                "{:<42} {:>9.2} ms {:>9.2} ms {:>9.2} ms {:>9.2} ms {:>7.2}x",
                query.name,
                ours.0,
                ours.1,
                theirs.0,
                theirs.1,
                ours.0 / theirs.0
            );
        }
        return Ok(());
    }

    println!(
        "{:<42} {:>12} {:>12} {:>10} {:>10}",
        "query", "target med", "target p90", "raw med", "ratio"
    );
    for query in query_set(start, end, &trace_id)
        .into_iter()
        .map(with_window)
    {
        let target = match &args.target {
            Some(target) => Some(time_queries(args.repetitions, || {
                Ok(search(target, &query.request)?["num_hits"]
                    .as_u64()
                    .unwrap_or_default())
            })?),
            None => None,
        };
        let raw_timing = match &raw {
            Some(raw) => Some(time_queries(args.repetitions, || raw.run(&query.request))?),
            None => None,
        };
        if let (Some((_, _, target_hits)), Some((_, _, raw_hits))) = (target, raw_timing) {
            anyhow::ensure!(
                target_hits == raw_hits,
                "`{}`: target found {target_hits} hits, raw tantivy {raw_hits}",
                query.name
            );
        }
        let fmt = |value: Option<f64>| {
            value
                .map(|ms| format!("{ms:.2} ms"))
                .unwrap_or_else(|| "-".to_string())
        };
        let ratio = match (target, raw_timing) {
            (Some((target, ..)), Some((raw, ..))) => format!("{:.2}x", target / raw),
            _ => "-".to_string(),
        };
        println!(
            "{:<42} {:>12} {:>12} {:>10} {:>10}",
            query.name,
            fmt(target.map(|timing| timing.0)),
            fmt(target.map(|timing| timing.1)),
            fmt(raw_timing.map(|timing| timing.0)),
            ratio
        );
    }

    // Our histogram collector against tantivy's, in process over the raw index: the
    // collector alone, without HTTP or the per-minute counts (ours reads the time runs a
    // split of this index would carry).
    if let Some(raw) = &raw {
        println!(
            "\nhistogram collectors over the raw index, in process, in turn (median of {} runs)",
            args.repetitions
        );
        for query in query_set(start, end, &trace_id) {
            let Some(aggs) = query.request.get("aggs") else {
                continue;
            };
            let aggs = parse_aggregations(aggs, &raw.doc_mapper).map_err(anyhow::Error::msg)?;
            if !quarry_searcher::aggregations::is_collected_natively(&aggs, &raw.doc_mapper) {
                continue;
            }
            let finalized = |natively| -> anyhow::Result<(u64, Value)> {
                let (count, results) = raw.collect_at_leaf(&query.request, &aggs, natively)?;
                let results = quarry_searcher::aggregations::finalize(&aggs, vec![results])
                    .map_err(anyhow::Error::msg)?;
                Ok((count, results))
            };
            // Both must find the same buckets, or the ratio compares different work.
            anyhow::ensure!(
                finalized(false)? == finalized(true)?,
                "`{}`: our collector's result differs from tantivy's",
                query.name
            );
            let count = |natively| {
                raw.collect_at_leaf(&query.request, &aggs, natively)
                    .map(|(count, results)| {
                        std::hint::black_box(results);
                        count
                    })
            };
            // In turn, run by run: timed one after the other, the ratio moved by 0.2.
            let (tantivy, ours) = time_in_turn(args.repetitions, || count(false), || count(true))?;
            println!(
                "{:<42} tantivy {:>8.2} ms   ours {:>8.2} ms   {:.2}x",
                query.name,
                tantivy.0,
                ours.0,
                ours.0 / tantivy.0
            );
        }
    }
    Ok(())
}
