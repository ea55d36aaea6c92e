use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::{Extension, Json};
use quarry_common::api_keys::IndexAction;
use quarry_config::ConfigFormat;
use serde_json::{json, Value};

use super::auth::index_refusal;
use super::{ApiError, AppState};
use crate::auth::Principal;

/// Accepts a YAML or JSON index config; JSON is told apart by `Content-Type`.
pub(crate) async fn create_index(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body must be an index config (YAML or JSON)",
        ));
    }
    // The index id is in the config: the caller must manage that name.
    if let Ok(config) = quarry_config::IndexConfig::parse(&body, ConfigFormat::sniff(content_type))
    {
        if !principal.allows_index(IndexAction::Manage, &config.index_id) {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: index_refusal(&principal, IndexAction::Manage, &config.index_id),
            });
        }
    }
    let metadata = state
        .index_service
        .create_index(&body, ConfigFormat::sniff(content_type))
        .await?;
    Ok(Json(serde_json::to_value(metadata).unwrap_or_default()))
}

pub(crate) async fn list_indexes(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let mut indexes = state.index_service.list_indexes().await?;
    indexes.retain(|index| principal.allows_index(IndexAction::ViewMetadata, index.index_id()));
    Ok(Json(serde_json::to_value(indexes).unwrap_or_default()))
}

pub(crate) async fn describe_index(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let description = state.index_service.describe_index(&index_id).await?;
    Ok(Json(serde_json::to_value(description).unwrap_or_default()))
}

pub(crate) async fn list_splits(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let splits = state.index_service.list_splits(&index_id).await?;
    Ok(Json(
        json!({ "num_splits": splits.len(), "splits": splits }),
    ))
}

pub(crate) async fn delete_index(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let split_ids = state.index_service.delete_index(&index_id).await?;
    Ok(Json(
        json!({ "index_id": index_id, "deleted_splits": split_ids }),
    ))
}

pub(crate) async fn create_delete_task(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: crate::index_service::DeleteTaskRequest = serde_json::from_slice(&body)
        .map_err(|error| {
            ApiError::bad_request(format!(
                "the body must be {{\"query\": …, \"start_timestamp\"?, \"end_timestamp\"?, \"search_field\"?}}: {error}"
            ))
        })?;
    let task = state
        .index_service
        .create_delete_task(&index_id, request)
        .await?;
    Ok(Json(json!(task)))
}

pub(crate) async fn list_delete_tasks(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        state.index_service.list_delete_tasks(&index_id).await?
    )))
}
