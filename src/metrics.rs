//! Process-wide Prometheus metrics, served at `/metrics`.

use quarry_common::split::{fetch_stats, source_store};
use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    pub ingested_docs: IntCounter,
    pub rejected_docs: IntCounter,
    pub ingested_bytes: IntCounter,
    pub http_requests: IntCounterVec,
    /// Requests refused for a missing, unknown, expired or invalidated API key.
    pub auth_failures: IntCounter,
    /// Requests refused because their address failed to authenticate too often.
    pub auth_lockouts: IntCounter,
    /// Requests refused with 429 for a key's limits, by key id and limit.
    pub tenant_throttled: IntCounterVec,
    /// Ingest body bytes received, by key id (keys with an ingest limit).
    pub tenant_ingest_bytes: IntCounterVec,
    pub search_latency: HistogramVec,
    /// Node-to-node requests served, by route: leaf searches, fetches, metastore calls.
    pub internal_request_latency: HistogramVec,
    /// Flushes of the logs on object storage, written.
    pub wal_flush_latency: prometheus::Histogram,
    /// This node's own shards, and other nodes' it drains.
    pub own_shards: IntGauge,
    pub cluster_live_nodes: IntGauge,
    pub cluster_dead_nodes: IntGauge,
    pub cluster_rejected_gossip_datagrams: IntGauge,
    pub adopted_shards: IntGauge,
    /// Counters kept by the searcher crate, copied in at each scrape.
    pub searcher_counters: Vec<(IntGauge, &'static std::sync::atomic::AtomicU64)>,
    pub leaf_requests: IntGauge,
    pub leaf_remote_requests: IntGauge,
    pub leaf_splits_searched: IntGauge,
    /// Shards whose write-ahead log is damaged and that take no writes.
    pub failed_shards: IntGauge,
    pub wal_fsyncs: IntGauge,
    pub range_cache_hits: IntGauge,
    pub range_cache_misses: IntGauge,
    pub range_cache_bytes: IntGauge,
    pub split_cache_bytes: IntGauge,
    pub result_cache_hits: IntGauge,
    pub result_cache_misses: IntGauge,
    /// Counters kept by the indexer crate, copied in at each scrape.
    pub background: Vec<(IntGauge, &'static std::sync::atomic::AtomicU64)>,
}

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("quarry".to_string()), None).unwrap_or_default();
    let ingested_docs = IntCounter::new("ingested_docs_total", "Documents accepted by ingest")
        .unwrap_or_else(|_| unreachable!());
    let rejected_docs = IntCounter::new("rejected_docs_total", "Documents rejected by ingest")
        .unwrap_or_else(|_| unreachable!());
    let ingested_bytes = IntCounter::new("ingested_bytes_total", "Bytes of accepted documents")
        .unwrap_or_else(|_| unreachable!());
    let http_requests = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests by route and status"),
        &["route", "status"],
    )
    .unwrap_or_else(|_| unreachable!());
    let auth_failures = IntCounter::new(
        "auth_failures_total",
        "Requests refused with 401: missing, unknown, expired or invalidated API keys",
    )
    .unwrap_or_else(|_| unreachable!());
    let auth_lockouts = IntCounter::new(
        "auth_lockouts_total",
        "Requests refused with 429 because their address failed to authenticate too often",
    )
    .unwrap_or_else(|_| unreachable!());
    let tenant_throttled = IntCounterVec::new(
        Opts::new(
            "tenant_throttled_total",
            "Requests refused with 429 because an API key was over one of its limits",
        ),
        &["key_id", "limit"],
    )
    .unwrap_or_else(|_| unreachable!());
    let tenant_ingest_bytes = IntCounterVec::new(
        Opts::new(
            "tenant_ingest_bytes_total",
            "Ingest and _bulk body bytes received from API keys with an ingest limit",
        ),
        &["key_id"],
    )
    .unwrap_or_else(|_| unreachable!());
    let search_latency = HistogramVec::new(
        HistogramOpts::new("search_duration_seconds", "Search latency").buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ]),
        &["index"],
    )
    .unwrap_or_else(|_| unreachable!());
    let internal_request_latency = HistogramVec::new(
        HistogramOpts::new(
            "internal_request_duration_seconds",
            "Latency of /internal/v1 requests this node served, by route",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ]),
        &["route"],
    )
    .unwrap_or_else(|_| unreachable!());
    let wal_flush_latency = prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "wal_object_flush_duration_seconds",
            "Time to encode and write one flush of a log on object storage",
        )
        .buckets(vec![
            0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
    )
    .unwrap_or_else(|_| unreachable!());
    let failed_shards = IntGauge::new(
        "failed_shards",
        "Shards that failed to start (e.g. corrupt write-ahead log)",
    )
    .unwrap_or_else(|_| unreachable!());
    let wal_fsyncs = IntGauge::new(
        "wal_fsyncs_total",
        "fsyncs of the write-ahead logs since start",
    )
    .unwrap_or_else(|_| unreachable!());
    let gauge =
        |name: &str, help: &str| IntGauge::new(name, help).unwrap_or_else(|_| unreachable!());
    let range_cache_hits = gauge(
        "searcher_range_cache_hits_total",
        "Split byte ranges served from the cache",
    );
    let range_cache_misses = gauge(
        "searcher_range_cache_misses_total",
        "Split byte ranges fetched from storage",
    );
    let split_cache_bytes = gauge(
        "searcher_split_footer_cache_bytes",
        "Bytes of split footers and hotcaches held by the opened-split cache",
    );
    let range_cache_bytes = gauge(
        "searcher_range_cache_bytes",
        "Bytes held by the split byte-range cache",
    );
    let result_cache_hits = gauge(
        "searcher_partial_result_cache_hits_total",
        "Split results served from the cache",
    );
    let result_cache_misses = gauge(
        "searcher_partial_result_cache_misses_total",
        "Split results computed",
    );
    let background = vec![
        (
            gauge("merges_completed_total", "Merges published since start"),
            &quarry_indexer::MERGES_COMPLETED,
        ),
        (
            gauge("merges_failed_total", "Merges that failed since start"),
            &quarry_indexer::MERGES_FAILED,
        ),
        (
            gauge(
                "searcher_source_block_cache_hits_total",
                "Hit fetches that found their source block decoded in the cache",
            ),
            &source_store::BLOCK_CACHE_HITS,
        ),
        (
            gauge(
                "searcher_source_block_cache_misses_total",
                "Source blocks read, decompressed and decoded for hit fetches",
            ),
            &source_store::BLOCK_CACHE_MISSES,
        ),
        (
            gauge(
                "searcher_source_block_cache_bytes",
                "Bytes of decoded source blocks the cache holds (bounded by searcher.source_block_cache_bytes)",
            ),
            &source_store::BLOCK_CACHE_HELD_BYTES,
        ),
        (
            gauge("merge_input_bytes_total", "Split bytes merged since start"),
            &quarry_indexer::MERGED_INPUT_BYTES,
        ),
        (
            gauge(
                "delete_task_rewrites_total",
                "Splits rewritten or dropped to apply delete tasks",
            ),
            &quarry_indexer::DELETE_REWRITES,
        ),
        (
            gauge(
                "janitor_deleted_staged_splits_total",
                "Splits of uploads that never published, deleted by the janitor",
            ),
            &quarry_indexer::JANITOR_DELETED_STAGED,
        ),
        (
            gauge(
                "janitor_deleted_marked_splits_total",
                "Splits marked for deletion, deleted by the janitor after the grace period",
            ),
            &quarry_indexer::JANITOR_DELETED_MARKED,
        ),
        (
            gauge(
                "janitor_expired_splits_total",
                "Splits the retention policy marked for deletion",
            ),
            &quarry_indexer::JANITOR_EXPIRED_BY_RETENTION,
        ),
        (
            gauge(
                "wal_object_flushes_total",
                "Write-ahead log flushes to object storage (one PUT each)",
            ),
            &quarry_indexer::WAL_OBJECT_FLUSHES,
        ),
        (
            gauge(
                "wal_object_flush_records_total",
                "Ingest requests the write-ahead log flushes carried (records per flush: divide by the flushes)",
            ),
            &quarry_indexer::WAL_OBJECT_RECORDS,
        ),
        (
            gauge(
                "wal_object_flush_shards_total",
                "Index shards the write-ahead log flushes carried (one object holds every shard of a flush: divide by the flushes)",
            ),
            &quarry_indexer::WAL_OBJECT_SECTIONS,
        ),
        (
            gauge(
                "wal_object_flush_bytes_total",
                "Bytes written to object storage by write-ahead log flushes",
            ),
            &quarry_indexer::WAL_OBJECT_BYTES,
        ),
        (
            gauge(
                "wal_object_flush_micros_total",
                "Time spent in write-ahead log flushes, microseconds (mean latency: divide by the flushes)",
            ),
            &quarry_indexer::WAL_OBJECT_FLUSH_MICROS,
        ),
        (
            gauge(
                "wal_object_flush_failures_total",
                "Write-ahead log flushes that failed (their requests were answered with an error)",
            ),
            &quarry_indexer::WAL_OBJECT_FLUSH_FAILURES,
        ),
        (
            gauge(
                "adopted_shards_closed_total",
                "Other nodes' log shards this node drained, published and deleted",
            ),
            &quarry_indexer::ADOPTED_SHARDS_CLOSED,
        ),
        (
            gauge(
                "indexing_plan_version",
                "Version of the indexing plan this node last published as the acting control plane",
            ),
            &quarry_control_plane::PLAN_VERSION,
        ),
        (
            gauge(
                "indexing_plan_orphan_shards",
                "Shards in the write-ahead logs of dead writers, as the acting control plane last saw them (0 once all are drained and their objects deleted)",
            ),
            &quarry_control_plane::ORPHAN_SHARDS,
        ),
    ];
    let searcher_counters = vec![
        (
            gauge(
                "searcher_leaf_retries_total",
                "Splits whose leaf search was retried on another node",
            ),
            &quarry_searcher::LEAF_RETRIES,
        ),
        (
            gauge(
                "searcher_remote_leaf_requests_total",
                "Leaf and fetch requests this node sent to other nodes",
            ),
            &quarry_searcher::REMOTE_LEAF_REQUESTS,
        ),
        (
            gauge(
                "searcher_remote_leaf_failures_total",
                "Leaf and fetch requests to other nodes that failed",
            ),
            &quarry_searcher::REMOTE_LEAF_FAILURES,
        ),
        (
            gauge(
                "searcher_histograms_from_counts_total",
                "Split searches whose date histogram was read from the split's per-minute counts instead of visiting its documents",
            ),
            &quarry_searcher::HISTOGRAMS_FROM_COUNTS,
        ),
        (
            gauge(
                "searcher_storage_gets_total",
                "Ranged GETs of split bytes by searches (warmup and blocking alike)",
            ),
            &fetch_stats::GETS,
        ),
        (
            gauge(
                "searcher_storage_get_bytes_total",
                "Bytes of split data searches fetched from storage",
            ),
            &fetch_stats::BYTES,
        ),
        (
            gauge(
                "searcher_storage_round_trips_total",
                "Sequential storage round trips of searches: warmup stages that fetched, plus blocking GETs",
            ),
            &fetch_stats::ROUND_TRIPS,
        ),
        (
            gauge(
                "searcher_storage_blocking_gets_total",
                "GETs a search waited for in the middle of running: ranges the warmup did not foresee",
            ),
            &fetch_stats::BLOCKING_GETS,
        ),
    ];
    let leaf_requests = gauge(
        "searcher_leaf_requests_total",
        "Leaf search requests this node ran, for its own roots and others'",
    );
    let leaf_remote_requests = gauge(
        "searcher_leaf_requests_from_other_nodes_total",
        "Leaf search requests this node ran for other nodes' roots",
    );
    let leaf_splits_searched = gauge(
        "searcher_leaf_splits_searched_total",
        "Splits this node searched (partial-result cache misses)",
    );
    let own_shards = gauge(
        "indexer_own_shards",
        "Shards of this node's own logs (one per index it took ingest for)",
    );
    let adopted_shards = gauge(
        "indexer_adopted_shards",
        "Other nodes' log shards the indexing plan gives this node now",
    );
    let cluster_live_nodes = gauge(
        "cluster_live_nodes",
        "Live nodes this node sees, itself included",
    );
    let cluster_dead_nodes = gauge(
        "cluster_dead_nodes",
        "Nodes this node saw die and still lists",
    );
    let cluster_rejected_gossip_datagrams = gauge(
        "cluster_rejected_gossip_datagrams",
        "Gossip datagrams dropped since start because they did not open with the cluster secret: forged, damaged, or from a node with another secret",
    );
    for (gauge, _) in background.iter().chain(&searcher_counters) {
        let _ = registry.register(Box::new(gauge.clone()));
    }
    for collector in [
        Box::new(wal_fsyncs.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(result_cache_hits.clone()),
        Box::new(result_cache_misses.clone()),
        Box::new(range_cache_hits.clone()),
        Box::new(range_cache_misses.clone()),
        Box::new(range_cache_bytes.clone()),
        Box::new(split_cache_bytes.clone()),
        Box::new(failed_shards.clone()),
        Box::new(ingested_docs.clone()),
        Box::new(rejected_docs.clone()),
        Box::new(ingested_bytes.clone()),
        Box::new(http_requests.clone()),
        Box::new(auth_failures.clone()),
        Box::new(auth_lockouts.clone()),
        Box::new(tenant_throttled.clone()),
        Box::new(tenant_ingest_bytes.clone()),
        Box::new(search_latency.clone()),
        Box::new(internal_request_latency.clone()),
        Box::new(leaf_requests.clone()),
        Box::new(leaf_remote_requests.clone()),
        Box::new(leaf_splits_searched.clone()),
        Box::new(cluster_live_nodes.clone()),
        Box::new(cluster_dead_nodes.clone()),
        Box::new(cluster_rejected_gossip_datagrams.clone()),
        Box::new(adopted_shards.clone()),
        Box::new(own_shards.clone()),
        Box::new(wal_flush_latency.clone()),
    ] {
        let _ = registry.register(collector);
    }
    Metrics {
        background,
        registry,
        ingested_docs,
        rejected_docs,
        ingested_bytes,
        http_requests,
        auth_failures,
        auth_lockouts,
        tenant_throttled,
        tenant_ingest_bytes,
        search_latency,
        internal_request_latency,
        cluster_live_nodes,
        cluster_dead_nodes,
        cluster_rejected_gossip_datagrams,
        adopted_shards,
        own_shards,
        wal_flush_latency,
        searcher_counters,
        leaf_requests,
        leaf_remote_requests,
        leaf_splits_searched,
        failed_shards,
        wal_fsyncs,
        range_cache_hits,
        range_cache_misses,
        range_cache_bytes,
        split_cache_bytes,
        result_cache_hits,
        result_cache_misses,
    }
});

pub(crate) fn render() -> String {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if encoder
        .encode(&METRICS.registry.gather(), &mut buffer)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}
