use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use quarry_common::api_keys::IndexAction;
use quarry_searcher::{SearchRequest, SearchResponse};

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::metrics::METRICS;

/// Searches an index (or a pattern or comma list of indexes) with the query language.
#[utoipa::path(
    get,
    path = "/api/v1/{index_id}/search",
    tag = "search",
    params(("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list."), SearchRequest),
    responses((status = 200, description = "The hits, newest first unless sorted otherwise.", body = SearchResponse)),
)]
pub(crate) async fn search_get(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    request: Result<Query<SearchRequest>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(request) = request.map_err(|rejection| {
        ApiError::bad_request(format!(
            "invalid search parameters: {}",
            rejection.body_text()
        ))
    })?;
    run_search(&state, &principal, &index_id, request).await
}

/// The same search with a JSON body, which may also hold aggregations and `search_after`.
#[utoipa::path(
    post,
    path = "/api/v1/{index_id}/search",
    tag = "search",
    params(("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list.")),
    request_body(content = Option<SearchRequest>, description = "An empty body searches everything."),
    responses((status = 200, description = "The hits.", body = SearchResponse)),
)]
pub(crate) async fn search_post(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    body: Bytes,
) -> Result<Json<SearchResponse>, ApiError> {
    let request: SearchRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SearchRequest {
            max_hits: 20,
            ..Default::default()
        }
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(format!("invalid search request body: {error}"))
        })?
    };
    run_search(&state, &principal, &index_id, request).await
}

async fn run_search(
    state: &AppState,
    principal: &Principal,
    index_id: &str,
    request: SearchRequest,
) -> Result<Json<SearchResponse>, ApiError> {
    let timer = METRICS
        .search_latency
        .with_label_values(&[index_id])
        .start_timer();
    let visible = principal.index_filter(IndexAction::Read);
    match state
        .search_service
        .search(index_id, &visible, request)
        .await
    {
        Ok(response) => {
            timer.observe_duration();
            Ok(Json(response))
        }
        Err(error) => {
            // Failed searches (e.g. unknown indexes) must not mint new label values.
            timer.stop_and_discard();
            Err(error.into())
        }
    }
}
