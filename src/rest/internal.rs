//! `/internal/v1`: what nodes ask each other. Not for users: leaf searches and document
//! fetches from other nodes' roots, and metastore calls from nodes that do not run the
//! metastore service. Malformed requests get a 400 naming what is wrong, never a panic.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quarry_common::metastore::{MetastoreRequest, WireError, WireErrorBody};

use super::{ApiError, AppState};

/// Internal requests must prove the cluster secret, when the node has one. Others pass.
pub(crate) async fn require_cluster_secret(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(secret) = &state.cluster_secret {
        if request.uri().path().starts_with("/internal/") {
            let given = request
                .headers()
                .get(quarry_common::cluster_secret::CLUSTER_SECRET_HEADER)
                .map(|value| value.as_bytes())
                .unwrap_or_default();
            if !quarry_common::cluster_secret::secrets_match(secret, given) {
                return ApiError {
                    status: StatusCode::UNAUTHORIZED,
                    message: format!(
                        "internal requests must carry the cluster secret in `{}`",
                        quarry_common::cluster_secret::CLUSTER_SECRET_HEADER
                    ),
                }
                .into_response();
            }
        }
    }
    next.run(request).await
}

pub(crate) async fn metastore(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(metastore) = state.served_metastore.clone() else {
        return ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "this node does not run the metastore service".to_string(),
        }
        .into_response();
    };
    let request: MetastoreRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return ApiError::bad_request(format!("malformed metastore request: {error}"))
                .into_response()
        }
    };
    match request.execute(metastore.as_ref()).await {
        Ok(value) => Json(value).into_response(),
        Err(wire_error) => {
            let status = match &wire_error {
                WireError::IndexNotFound { .. } | WireError::SplitsNotFound { .. } => {
                    StatusCode::NOT_FOUND
                }
                WireError::IndexAlreadyExists { .. }
                | WireError::SplitsNotInExpectedState { .. }
                | WireError::CheckpointConflict { .. } => StatusCode::CONFLICT,
                WireError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
                WireError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                WireError::Corrupt { .. } | WireError::Database { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let error = quarry_common::metastore::MetastoreError::from(wire_error.clone());
            (
                status,
                Json(WireErrorBody {
                    error: error.to_string(),
                    metastore_error: wire_error,
                }),
            )
                .into_response()
        }
    }
}

/// The cluster's `_bulk` `_id` window, on the node that hosts it.
pub(crate) async fn dedup(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: crate::bulk_ids::DedupRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return ApiError::bad_request(format!("malformed dedup request: {error}"))
                .into_response()
        }
    };
    match state.bulk_ids.serve(request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: error,
        }
        .into_response(),
    }
}

pub(crate) async fn leaf_search(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match state.search_service.leaf().serve_leaf_search(&body).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(error) => ApiError::bad_request(error.to_string()).into_response(),
    }
}

pub(crate) async fn fetch_docs(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match state.search_service.leaf().serve_fetch_docs(&body).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(error)) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: error,
        }
        .into_response(),
        Err(error) => ApiError::bad_request(error.to_string()).into_response(),
    }
}
