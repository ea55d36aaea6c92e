use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::{Extension, Json};
use quarry_common::api_keys::IndexAction;
use quarry_common::metastore::{DeleteTask, IndexMetadata, Split};
use quarry_common::SplitId;
use quarry_config::ConfigFormat;

use super::auth::index_refusal;
use super::{ApiError, AppState};
use crate::auth::Principal;

/// Creates an index from a YAML or JSON index config; JSON is told apart by `Content-Type`.
#[utoipa::path(
    post,
    path = "/api/v1/indexes",
    tag = "indexes",
    request_body(content(
        (quarry_config::IndexConfig = "application/json"),
        (String = "application/yaml"),
    )),
    responses(
        (status = 200, description = "The index was created.", body = IndexMetadata),
        (status = 409, description = "An index with this id exists.", body = super::error::ErrorBody),
    ),
)]
pub(crate) async fn create_index(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IndexMetadata>, ApiError> {
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
    Ok(Json(metadata))
}

/// The indexes the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/indexes",
    tag = "indexes",
    responses((status = 200, description = "The indexes.", body = Vec<IndexMetadata>)),
)]
pub(crate) async fn list_indexes(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Vec<IndexMetadata>>, ApiError> {
    let mut indexes = state.index_service.list_indexes().await?;
    indexes.retain(|index| principal.allows_index(IndexAction::ViewMetadata, index.index_id()));
    Ok(Json(indexes))
}

/// An index's config and the totals of its published splits.
#[utoipa::path(
    get,
    path = "/api/v1/indexes/{index_id}",
    tag = "indexes",
    params(("index_id" = String, Path, description = "The index id.")),
    responses((status = 200, description = "The index.", body = crate::index_service::IndexDescription)),
)]
pub(crate) async fn describe_index(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<crate::index_service::IndexDescription>, ApiError> {
    let description = state.index_service.describe_index(&index_id).await?;
    Ok(Json(description))
}

/// Every split of an index, in any state.
#[utoipa::path(
    get,
    path = "/api/v1/indexes/{index_id}/splits",
    tag = "indexes",
    params(("index_id" = String, Path, description = "The index id.")),
    responses((status = 200, description = "The splits.", body = SplitList)),
)]
pub(crate) async fn list_splits(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<SplitList>, ApiError> {
    let splits = state.index_service.list_splits(&index_id).await?;
    Ok(Json(SplitList {
        num_splits: splits.len(),
        splits,
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SplitList {
    num_splits: usize,
    splits: Vec<Split>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeletedIndex {
    index_id: String,
    /// The splits removed from storage.
    deleted_splits: Vec<SplitId>,
}

/// Deletes an index, its splits and its pipelines.
#[utoipa::path(
    delete,
    path = "/api/v1/indexes/{index_id}",
    tag = "indexes",
    params(("index_id" = String, Path, description = "The index id.")),
    responses((status = 200, description = "The index is gone.", body = DeletedIndex)),
)]
pub(crate) async fn delete_index(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<DeletedIndex>, ApiError> {
    let deleted_splits = state.index_service.delete_index(&index_id).await?;
    Ok(Json(DeletedIndex {
        index_id,
        deleted_splits,
    }))
}

/// Deletes the documents matching a query, in the background.
#[utoipa::path(
    post,
    path = "/api/v1/{index_id}/delete-tasks",
    tag = "indexes",
    params(("index_id" = String, Path, description = "The index id.")),
    request_body = crate::index_service::DeleteTaskRequest,
    responses((status = 200, description = "The task, with its place in the index's order of deletes.", body = DeleteTask)),
)]
pub(crate) async fn create_delete_task(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    body: Bytes,
) -> Result<Json<DeleteTask>, ApiError> {
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
    Ok(Json(task))
}

#[utoipa::path(
    get,
    path = "/api/v1/{index_id}/delete-tasks",
    tag = "indexes",
    params(("index_id" = String, Path, description = "The index id.")),
    responses((status = 200, description = "The index's delete tasks.", body = Vec<DeleteTask>)),
)]
pub(crate) async fn list_delete_tasks(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Result<Json<Vec<DeleteTask>>, ApiError> {
    Ok(Json(
        state.index_service.list_delete_tasks(&index_id).await?,
    ))
}
