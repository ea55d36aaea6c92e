use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;

pub(crate) async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the node is not ready (starting or shutting down)" })),
        )
    }
}

pub(crate) async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

pub(crate) async fn cluster(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(state.cluster.snapshot())
}
