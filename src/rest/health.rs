use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/health/livez",
    tag = "health",
    responses((status = 200, description = "Alive.", body = Status)),
)]
pub(crate) async fn livez() -> impl IntoResponse {
    Json(Status { status: "alive" })
}

/// The node serves requests: not starting, not shutting down, no failed shard.
#[utoipa::path(
    get,
    path = "/health/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready.", body = Status),
        (status = 503, description = "Not ready, and why.", body = super::error::ErrorBody),
    ),
)]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let failed_shards = state.ingest_service.failed_shards();
    if !failed_shards.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "error": "some shards failed and take no writes", "failed_shards": failed_shards }),
            ),
        );
    }
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!(Status { status: "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the node is not ready (starting or shutting down)" })),
        )
    }
}

/// Metrics in Prometheus' text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")),
)]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    crate::metrics::METRICS
        .failed_shards
        .set(state.ingest_service.failed_shards().len() as i64);
    let (hits, misses, bytes) = state.search_service.range_cache_stats();
    let metrics = &crate::metrics::METRICS;
    metrics.range_cache_hits.set(hits as i64);
    metrics.range_cache_misses.set(misses as i64);
    metrics.range_cache_bytes.set(bytes as i64);
    metrics
        .split_cache_bytes
        .set(state.search_service.split_cache_bytes() as i64);
    let (result_hits, result_misses) = state.search_service.result_cache_stats();
    metrics.result_cache_hits.set(result_hits as i64);
    metrics.result_cache_misses.set(result_misses as i64);
    crate::metrics::METRICS
        .wal_fsyncs
        .set(quarry_indexer::WAL_FSYNCS.load(std::sync::atomic::Ordering::Relaxed) as i64);
    let leaf_stats = &state.search_service.leaf().stats;
    metrics
        .leaf_requests
        .set(leaf_stats.requests.load(Ordering::Relaxed) as i64);
    metrics
        .leaf_remote_requests
        .set(leaf_stats.remote_requests.load(Ordering::Relaxed) as i64);
    metrics
        .leaf_splits_searched
        .set(leaf_stats.splits_searched.load(Ordering::Relaxed) as i64);
    metrics
        .own_shards
        .set(state.ingest_service.num_own_shards().await as i64);
    metrics
        .adopted_shards
        .set(state.ingest_service.adopted_shards().await.len() as i64);
    let snapshot = state.cluster.snapshot();
    metrics
        .cluster_live_nodes
        .set(snapshot.live_nodes.len() as i64);
    metrics
        .cluster_dead_nodes
        .set(snapshot.dead_nodes.len() as i64);
    metrics
        .cluster_rejected_gossip_datagrams
        .set(state.cluster.rejected_gossip_datagrams() as i64);
    for (gauge, counter) in metrics.background.iter().chain(&metrics.searcher_counters) {
        gauge.set(counter.load(std::sync::atomic::Ordering::Relaxed) as i64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// `/api/v1/cluster`: the members, and the control plane's indexing plan.
#[derive(serde::Serialize)]
struct ClusterState {
    #[serde(flatten)]
    snapshot: quarry_control_plane::ClusterSnapshot,
    /// The node whose plan counts (the live, ready control plane with the lowest id).
    control_plane: Option<String>,
    /// Which indexer drains which orphan shard; absent before a control plane published one.
    indexing_plan: Option<quarry_control_plane::IndexingPlan>,
}

/// The cluster's members as this node sees them, and the indexing plan.
#[utoipa::path(
    get,
    path = "/api/v1/cluster",
    tag = "cluster",
    responses((status = 200, description = "Live and dead nodes, the acting control plane and its indexing plan.", body = Object)),
)]
pub(crate) async fn cluster(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(ClusterState {
        snapshot: state.cluster.snapshot(),
        control_plane: quarry_control_plane::acting_control_plane(&state.cluster)
            .map(|member| member.node_id),
        indexing_plan: quarry_control_plane::current_plan(&state.cluster),
    })
}
