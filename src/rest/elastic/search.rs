//! `{index}/_search` and `{index}/_count` in Elasticsearch's request and response shapes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use quarry_common::api_keys::IndexAction;
use quarry_searcher::{HighlightOptions, SearchError, SearchRequest};
use serde_json::{json, Value};

use super::es_error;
use super::fields::{doc_mappers_for, render_options, RenderOptions};
use super::render::{render, SearchResponseBody};
use super::scroll::{parse_keep_alive, PageEnd};
use crate::auth::Principal;
use crate::rest::auth::refused_indexes;
use crate::rest::AppState;

/// Elasticsearch's default page size.
const DEFAULT_SIZE: usize = 10;

pub(super) fn search_error(error: SearchError, index_id: &str) -> Response {
    match error {
        SearchError::IndexNotFound(_) => es_error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index_id}]"),
        ),
        SearchError::InvalidRequest(reason) => es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &reason,
        ),
        SearchError::Internal(reason) => {
            es_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", &reason)
        }
    }
}

/// `sort` as ES clients write it (`"field"`, `{"field": "desc"}`, `{"field": {"order": …}}`,
/// or a list of those) → our `sort_by`, keys comma-separated. `_doc` means index order,
/// which the tiebreaker every hit carries gives already.
fn sort_by(sort: &Value) -> Result<Option<String>, String> {
    let keys = match sort {
        Value::Array(keys) => keys.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let mut sort_by: Vec<String> = Vec::new();
    for key in keys {
        if let Some(key) = sort_key(key)? {
            sort_by.push(key);
        }
    }
    Ok((!sort_by.is_empty()).then(|| sort_by.join(",")))
}

fn sort_key(key: &Value) -> Result<Option<String>, String> {
    let (field, order) = match key {
        Value::String(text) => match text.split_once(':') {
            Some((field, order)) => (field.to_string(), Some(order.to_string())),
            None => (text.clone(), None),
        },
        Value::Object(object) => {
            let (field, spec) = object
                .iter()
                .next()
                .ok_or_else(|| "empty sort object".to_string())?;
            let order = match spec {
                Value::String(order) => Some(order.clone()),
                Value::Object(options) => options
                    .get("order")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            };
            (field.clone(), order)
        }
        other => return Err(format!("invalid sort {other}")),
    };
    if field == "_doc" {
        return Ok(None);
    }
    // Fields sort ascending by default in ES, `_score` descending.
    let descending = match order.as_deref() {
        Some("desc") => true,
        Some("asc") => false,
        None => field == "_score",
        Some(other) => return Err(format!("sort order must be asc or desc, got `{other}`")),
    };
    Ok(Some(if field == "_score" || !descending {
        field
    } else {
        format!("-{field}")
    }))
}

fn build_request(
    params: &HashMap<String, String>,
    body: &Bytes,
    count_only: bool,
) -> Result<SearchRequest, String> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|error| format!("request body is not valid JSON: {error}"))?
    };
    if !body.is_object() {
        return Err("request body must be a JSON object".to_string());
    }
    let number = |key: &str| -> Result<Option<usize>, String> {
        match (body.get(key), params.get(key)) {
            (Some(value), _) => value
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
            (None, Some(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| format!("`{key}` must be a non-negative integer")),
            (None, None) => Ok(None),
        }
    };
    let mut request = SearchRequest {
        max_hits: if count_only {
            0
        } else {
            number("size")?.unwrap_or(DEFAULT_SIZE)
        },
        start_offset: if count_only {
            0
        } else {
            number("from")?.unwrap_or(0)
        },
        ..SearchRequest::default()
    };
    match (body.get("query"), params.get("q")) {
        (Some(query), _) => request.es_query = Some(query.clone()),
        (None, Some(q)) => request.es_query = Some(json!({"query_string": {"query": q}})),
        (None, None) => request.es_query = Some(json!({"match_all": {}})),
    }
    if !count_only {
        let sort = match (body.get("sort"), params.get("sort")) {
            (Some(sort), _) => sort_by(sort)?,
            (None, Some(sort)) => sort_by(&Value::String(sort.clone()))?,
            (None, None) => None,
        };
        request.sort_by = sort;
        if let Some(after) = body.get("search_after") {
            request.search_after = Some(
                after
                    .as_array()
                    .cloned()
                    .ok_or("`search_after` must be an array of sort values")?,
            );
        }
        request.aggs = body
            .get("aggs")
            .or_else(|| body.get("aggregations"))
            .cloned();
        if let Some(highlight) = body.get("highlight") {
            request.snippet_fields = Some(highlight_fields(highlight));
            request.highlight = Some(highlight_options(highlight));
        }
    }
    Ok(request)
}

fn highlight_fields(highlight: &Value) -> Vec<String> {
    match &highlight["fields"] {
        Value::Object(fields) => fields.keys().cloned().collect(),
        Value::Array(fields) => fields
            .iter()
            .filter_map(|field| {
                field
                    .as_object()
                    .and_then(|object| object.keys().next())
                    .cloned()
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn highlight_options(highlight: &Value) -> HighlightOptions {
    let tag = |key: &str, default: &str| {
        highlight[key]
            .as_array()
            .and_then(|tags| tags.first())
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    // ES's default fragment is 100 characters; Grafana asks for whole fields.
    let max_chars = highlight["fragment_size"]
        .as_u64()
        .map(|size| size.min(1 << 20) as usize)
        .unwrap_or(100);
    HighlightOptions {
        pre_tag: tag("pre_tags", "<em>"),
        post_tag: tag("post_tags", "</em>"),
        max_chars,
    }
}

/// Elasticsearch's search API.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/_elastic/{index_id}/_search",
    tag = "elasticsearch",
    params(
        ("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list."),
        ("q" = Option<String>, Query, description = "A query string, when the body has no `query`."),
        ("size" = Option<u64>, Query, description = "Hits per page (default 10)."),
        ("from" = Option<u64>, Query, description = "Hits to skip."),
        ("sort" = Option<String>, Query, description = "`field:asc` or `field:desc`, comma-separated."),
        ("_source" = Option<String>, Query, description = "`true`, `false`, or fields to return."),
        ("scroll" = Option<String>, Query, pattern = "^[0-9]+(d|h|m|s|ms|micros|nanos)$", description = "Opens a scroll kept alive this long (`1m`)."),
    ),
    request_body(content = Option<super::schemas::EsSearchBody>, description = "An empty body matches everything."),
    responses((status = 200, description = "The hits.", body = super::schemas::EsSearchResponse)),
)]
pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let scroll = match params.get("scroll").map(|text| parse_keep_alive(text)) {
        Some(Ok(keep_alive)) => Some(keep_alive),
        Some(Err(reason)) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
            )
        }
        None => None,
    };
    let (request, fields) = match build_request(&params, &body, false)
        .and_then(|request| Ok((request, render_options(&params, &body)?)))
    {
        Ok(parsed) => parsed,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    let Some(keep_alive) = scroll else {
        return match run_search(&state, &principal, &index_id, request, &fields).await {
            Ok((rendered, _)) => Json(rendered).into_response(),
            Err(response) => response,
        };
    };
    if request.search_after.is_some() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: using [search_after] is not allowed in a scroll context;",
        );
    }
    if request.start_offset > 0 {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: using [from] is not allowed in a scroll context;",
        );
    }
    let (mut rendered, page_end) =
        match run_search(&state, &principal, &index_id, request.clone(), &fields).await {
            Ok(searched) => searched,
            Err(response) => return response,
        };
    let next = page_end.next_request(&request);
    match state.scrolls.open(
        &index_id,
        next,
        &page_end,
        fields,
        keep_alive,
        principal.key_id(),
    ) {
        Ok(scroll_id) => {
            rendered.scroll_id = Some(scroll_id);
            Json(rendered).into_response()
        }
        Err(_) => es_error(
            StatusCode::TOO_MANY_REQUESTS,
            "es_rejected_execution_exception",
            "Trying to create too many scroll contexts: clear the ones you are done with",
        ),
    }
}

/// Searches and renders; where the page ended is returned too, for scroll.
/// Concrete index names the caller may not read are refused (403); patterns reach only
/// the indexes it may read.
pub(super) async fn run_search(
    state: &AppState,
    principal: &Principal,
    index_id: &str,
    request: SearchRequest,
    options: &RenderOptions,
) -> Result<(SearchResponseBody, PageEnd), Response> {
    refused_indexes(principal, IndexAction::Read, index_id)
        .map_err(|reason| es_error(StatusCode::FORBIDDEN, "security_exception", &reason))?;
    let result = state
        .search_service
        .search_detailed(
            index_id,
            &principal.index_filter(IndexAction::Read),
            request,
        )
        .await
        .map_err(|error| search_error(error, index_id))?;
    let doc_mappers = doc_mappers_for(state, &result, &options.fields).await;
    let page_end = PageEnd::of(&result);
    Ok((render(result, options, &doc_mappers), page_end))
}

/// Elasticsearch's count API.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/_elastic/{index_id}/_count",
    tag = "elasticsearch",
    params(
        ("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list."),
        ("q" = Option<String>, Query, description = "A query string, when the body has no `query`."),
    ),
    request_body(content = Option<super::schemas::EsCountBody>),
    responses((status = 200, description = "The number of matching documents.", body = super::schemas::EsCountResponse)),
)]
pub(crate) async fn count(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request = match build_request(&params, &body, true) {
        Ok(request) => request,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    let visible = principal.index_filter(IndexAction::Read);
    match state
        .search_service
        .search_detailed(&index_id, &visible, request)
        .await
    {
        Ok(result) => Json(json!({
            "count": result.num_hits,
            "_shards": {"total": result.num_splits, "successful": result.num_splits, "skipped": 0, "failed": 0},
        }))
        .into_response(),
        Err(error) => search_error(error, &index_id),
    }
}

/// Elasticsearch's get API, `GET /{index}/_doc/{id}`: the document with that stable id.
#[utoipa::path(
    method(get, head),
    path = "/api/v1/_elastic/{index_id}/_doc/{doc_id}",
    tag = "elasticsearch",
    params(
        ("index_id" = String, Path, description = "One concrete index id."),
        ("doc_id" = String, Path, description = "The document's `_id`."),
    ),
    responses(
        (status = 200, description = "The document.", body = super::schemas::EsGetResponse),
        (status = 404, description = "No document has this id (`found: false`), or no such index.", body = Object),
    ),
)]
pub(crate) async fn get_doc(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path((index_id, doc_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if index_id.contains('*') || index_id.contains(',') {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &format!("the get API needs one concrete index, not [{index_id}]"),
        );
    }
    let body = Bytes::from(json!({"query": {"ids": {"values": [doc_id]}}, "size": 1}).to_string());
    let request = match build_request(&HashMap::new(), &body, false) {
        Ok(request) => request,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    let options = match render_options(&params, &body) {
        Ok(options) => options,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    let (rendered, _) = match run_search(&state, &principal, &index_id, request, &options).await {
        Ok(searched) => searched,
        Err(response) => return response,
    };
    match rendered.hits.hits.into_iter().next() {
        Some(hit) => Json(GetResponseBody {
            index: index_id,
            id: doc_id,
            version: 1,
            seq_no: 0,
            primary_term: 1,
            found: true,
            source: hit.source,
        })
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"_index": index_id, "_id": doc_id, "found": false})),
        )
            .into_response(),
    }
}

/// A found document, its `_source` as it was sent.
#[derive(serde::Serialize)]
struct GetResponseBody {
    #[serde(rename = "_index")]
    index: String,
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_version")]
    version: u64,
    #[serde(rename = "_seq_no")]
    seq_no: u64,
    #[serde(rename = "_primary_term")]
    primary_term: u64,
    found: bool,
    #[serde(rename = "_source", skip_serializing_if = "Option::is_none")]
    source: Option<Box<serde_json::value::RawValue>>,
}

/// Not a `json!` tree, which would parse the sources back into values.
#[derive(serde::Serialize)]
struct MultiSearchBody {
    took: u64,
    responses: Vec<MultiSearchItem>,
}

/// One answer of `_msearch`: a search's response, or its error in place.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum MultiSearchItem {
    Searched(Box<SearchResponseBody>),
    Failed(Value),
}

/// Several searches in one request: NDJSON header/body line pairs.
#[utoipa::path(
    post,
    path = "/api/v1/_elastic/_msearch",
    tag = "elasticsearch",
    request_body(content = Vec<Object>, content_type = "application/x-ndjson", description = "One JSON object per line."),
    responses((status = 200, description = "One answer per search.", body = super::schemas::EsMultiSearchResponse)),
)]
pub(crate) async fn msearch(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    run_msearch(&state, &principal, None, &params, &body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/_elastic/{index_id}/_msearch",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list.")),
    request_body(content = Vec<Object>, content_type = "application/x-ndjson", description = "One JSON object per line."),
    responses((status = 200, description = "One answer per search.", body = super::schemas::EsMultiSearchResponse)),
)]
pub(crate) async fn msearch_into(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    run_msearch(&state, &principal, Some(index_id), &params, &body).await
}

/// One response per header/body pair; a failing search answers with its error object in
/// place, the others still run.
async fn run_msearch(
    state: &AppState,
    principal: &Principal,
    default_index: Option<String>,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return super::bulk::no_requests_added();
    }
    let started = std::time::Instant::now();
    let mut lines = body
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    let mut responses = Vec::new();
    while let Some(header_line) = lines.next() {
        let Ok(header) = serde_json::from_slice::<Value>(header_line) else {
            return es_error(
                StatusCode::BAD_REQUEST,
                "parsing_exception",
                "an _msearch header line is not a JSON object",
            );
        };
        let search_body = Bytes::copy_from_slice(lines.next().unwrap_or(b"{}"));
        let index = match header.get("index") {
            Some(Value::String(index)) => Some(index.clone()),
            Some(Value::Array(indexes)) => Some(
                indexes
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(_) => None,
            None => default_index.clone(),
        };
        let response = match index {
            Some(index) => match build_request(&HashMap::new(), &search_body, false)
                .and_then(|request| Ok((request, render_options(params, &search_body)?)))
            {
                Ok((request, fields)) => {
                    match run_search(state, principal, &index, request, &fields).await {
                        Ok((mut rendered, _)) => {
                            rendered.status = Some(200);
                            MultiSearchItem::Searched(Box::new(rendered))
                        }
                        Err(response) => MultiSearchItem::Failed(error_body(response).await),
                    }
                }
                Err(reason) => MultiSearchItem::Failed(
                    error_body(es_error(
                        StatusCode::BAD_REQUEST,
                        "parsing_exception",
                        &reason,
                    ))
                    .await,
                ),
            },
            None => MultiSearchItem::Failed(
                error_body(es_error(
                    StatusCode::BAD_REQUEST,
                    "action_request_validation_exception",
                    "no index given",
                ))
                .await,
            ),
        };
        responses.push(response);
    }
    Json(MultiSearchBody {
        took: started.elapsed().as_millis() as u64,
        responses,
    })
    .into_response()
}

/// The JSON of an error response, to embed in `responses`.
async fn error_body(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({"status": 500}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_shapes_map_to_sort_by() {
        let cases = [
            (json!("timestamp"), Some("timestamp")),
            (json!("timestamp:desc"), Some("-timestamp")),
            (
                json!([{"timestamp": {"order": "desc", "unmapped_type": "boolean"}}, "_doc"]),
                Some("-timestamp"),
            ),
            (json!({"timestamp": "asc"}), Some("timestamp")),
            (json!(["_score"]), Some("_score")),
            (json!([{"_doc": {"order": "asc"}}]), None),
            (json!([]), None),
            (
                json!([{"severity": "asc"}, {"ts": {"order": "desc"}}, "_doc"]),
                Some("severity,-ts"),
            ),
        ];
        for (sort, expected) in cases {
            assert_eq!(sort_by(&sort).unwrap().as_deref(), expected, "{sort}");
        }
        assert!(sort_by(&json!({"timestamp": {"order": "sideways"}})).is_err());
    }
}
