//! `{index}/_search` and `{index}/_count` in Elasticsearch's request and response shapes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use quarry_searcher::{SearchError, SearchRequest, SearchResult};
use serde_json::{json, Value};

use super::es_error;
use crate::rest::AppState;

/// Elasticsearch's default page size.
const DEFAULT_SIZE: usize = 10;

fn search_error(error: SearchError, index_id: &str) -> Response {
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
/// or a list of those) → our `sort_by`. Only the first key is used for now; `_doc` means
/// index order, which is our default order.
fn sort_by(sort: &Value) -> Result<Option<String>, String> {
    let first = match sort {
        Value::Array(keys) => match keys.first() {
            Some(first) => first,
            None => return Ok(None),
        },
        other => other,
    };
    let (field, order) = match first {
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
        request.aggs = body
            .get("aggs")
            .or_else(|| body.get("aggregations"))
            .cloned();
    }
    Ok(request)
}

fn render(index_id: &str, result: SearchResult) -> Value {
    let hits: Vec<Value> = result
        .hits
        .into_iter()
        .map(|hit| {
            let mut rendered = json!({
                "_index": index_id,
                "_id": format!("{}:{}:{}", hit.split_id, hit.segment_ord, hit.doc_id),
                "_score": null,
                "_source": hit.doc,
            });
            if let Some(sort_value) = hit.sort_value {
                rendered["sort"] = json!([sort_value]);
            }
            rendered
        })
        .collect();
    let mut response = json!({
        "took": result.elapsed_time_micros / 1000,
        "timed_out": false,
        "_shards": {"total": result.num_splits, "successful": result.num_splits - result.errors.len().min(result.num_splits), "skipped": 0, "failed": result.errors.len()},
        "hits": {"total": {"value": result.num_hits, "relation": "eq"}, "max_score": null, "hits": hits},
    });
    if let Some(mut aggregations) = result.aggregations {
        integer_date_keys(&mut aggregations);
        response["aggregations"] = aggregations;
    }
    response
}

/// Date buckets carry epoch milliseconds; Elasticsearch writes them as integers.
fn integer_date_keys(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.contains_key("key_as_string") {
                if let Some(key) = object
                    .get("key")
                    .and_then(Value::as_f64)
                    .filter(|key| key.fract() == 0.0)
                {
                    object.insert("key".to_string(), json!(key as i64));
                }
            }
            object.values_mut().for_each(integer_date_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(integer_date_keys),
        _ => {}
    }
}

pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request = match build_request(&params, &body, false) {
        Ok(request) => request,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    match state
        .search_service
        .search_detailed(&index_id, request)
        .await
    {
        Ok(result) => Json(render(&index_id, result)).into_response(),
        Err(error) => search_error(error, &index_id),
    }
}

pub(crate) async fn count(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request = match build_request(&params, &body, true) {
        Ok(request) => request,
        Err(reason) => return es_error(StatusCode::BAD_REQUEST, "parsing_exception", &reason),
    };
    match state.search_service.search_detailed(&index_id, request).await {
        Ok(result) => Json(json!({
            "count": result.num_hits,
            "_shards": {"total": result.num_splits, "successful": result.num_splits, "skipped": 0, "failed": 0},
        }))
        .into_response(),
        Err(error) => search_error(error, &index_id),
    }
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
        ];
        for (sort, expected) in cases {
            assert_eq!(sort_by(&sort).unwrap().as_deref(), expected, "{sort}");
        }
        assert!(sort_by(&json!({"timestamp": {"order": "sideways"}})).is_err());
    }
}
