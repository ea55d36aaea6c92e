//! `_bulk`: NDJSON action/source pairs. `index` and `create` are accepted; other actions
//! are refused per item, as are documents the mapping rejects and unknown indexes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quarry_indexer::{CommitMode, IngestError};
use serde_json::{json, Value};

use super::es_error;
use crate::rest::ingest::read_body;
use crate::rest::{ApiError, AppState};

pub(crate) async fn bulk(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(&state, None, &params, &headers, body).await
}

pub(crate) async fn bulk_into(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(&state, Some(index_id), &params, &headers, body).await
}

/// `refresh` as ES clients send it, mapped to our commit modes.
fn commit_mode(params: &HashMap<String, String>) -> Result<CommitMode, String> {
    match params.get("refresh").map(String::as_str) {
        None | Some("false") => Ok(CommitMode::Auto),
        Some("") | Some("true") => Ok(CommitMode::Force),
        Some("wait_for") => Ok(CommitMode::WaitFor),
        Some(other) => Err(format!(
            "unknown value [{other}] for parameter [refresh] (expected true, false or wait_for)"
        )),
    }
}

struct BulkItem {
    action: String,
    index_id: Option<String>,
    doc_id: Option<String>,
    /// Set once the item's fate is known.
    outcome: Option<Value>,
}

fn item_error(status: StatusCode, error_type: &str, reason: &str) -> Value {
    json!({"status": status.as_u16(), "error": {"type": error_type, "reason": reason}})
}

async fn run_bulk(
    state: &AppState,
    default_index: Option<String>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let commit = match commit_mode(params) {
        Ok(commit) => commit,
        Err(reason) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
            )
        }
    };
    let body = match read_body(body, headers, state.max_request_body).await {
        Ok(body) => body,
        Err(ApiError { status, message }) => {
            let error_type = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "content_too_long_exception"
            } else {
                "parse_exception"
            };
            return es_error(status, error_type, &message);
        }
    };
    let (mut items, sources) = match parse_bulk(&body, default_index.as_deref()) {
        Ok(parsed) => parsed,
        Err(reason) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
            )
        }
    };

    // One ingest request per index, with the item each line came from.
    let mut by_index: BTreeMap<String, Vec<(usize, &[u8])>> = BTreeMap::new();
    for (item_index, source) in sources {
        if let Some(index_id) = items[item_index].index_id.clone() {
            by_index
                .entry(index_id)
                .or_default()
                .push((item_index, source));
        }
    }
    for (index_id, lines) in by_index {
        let mut ndjson = Vec::new();
        for (_, source) in &lines {
            ndjson.extend_from_slice(source);
            ndjson.push(b'\n');
        }
        match state
            .ingest_service
            .ingest_detailed(&index_id, Bytes::from(ndjson), commit)
            .await
        {
            Ok((_, failures)) => {
                let failed: HashMap<usize, String> = failures.into_iter().collect();
                for (line, (item_index, _)) in lines.iter().enumerate() {
                    items[*item_index].outcome = Some(match failed.get(&(line + 1)) {
                        Some(reason) => item_error(
                            StatusCode::BAD_REQUEST,
                            "document_parsing_exception",
                            reason,
                        ),
                        None => {
                            json!({"status": 201, "result": "created", "_version": 1, "_shards": {"total": 1, "successful": 1, "failed": 0}})
                        }
                    });
                }
            }
            Err(error) => {
                let (status, error_type) = match &error {
                    IngestError::IndexNotFound(_) => {
                        (StatusCode::NOT_FOUND, "index_not_found_exception")
                    }
                    IngestError::TooManyRequests(_) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "es_rejected_execution_exception",
                    ),
                    IngestError::ShuttingDown | IngestError::ShardFailed(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable_shards_exception",
                    ),
                    IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
                };
                let reason = match &error {
                    IngestError::IndexNotFound(_) => format!("no such index [{index_id}]"),
                    other => other.to_string(),
                };
                for (item_index, _) in &lines {
                    items[*item_index].outcome = Some(item_error(status, error_type, &reason));
                }
            }
        }
    }

    let mut has_errors = false;
    let rendered: Vec<Value> = items
        .into_iter()
        .map(|item| {
            let mut outcome = item.outcome.unwrap_or_else(|| {
                item_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "item was not processed",
                )
            });
            if outcome.get("error").is_some() {
                has_errors = true;
            }
            // Elasticsearch writes `_index` and `_id` first.
            let mut rendered = serde_json::Map::new();
            rendered.insert("_index".to_string(), json!(item.index_id));
            rendered.insert("_id".to_string(), json!(item.doc_id));
            if let Some(object) = outcome.as_object_mut() {
                rendered.append(object);
            }
            json!({ item.action: rendered })
        })
        .collect();
    Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": has_errors,
        "items": rendered,
    }))
    .into_response()
}

type ParsedBulk<'a> = (Vec<BulkItem>, Vec<(usize, &'a [u8])>);

/// Splits the body into items and the source line of each `index`/`create` item. Only a
/// malformed action line fails the whole request, as in Elasticsearch.
fn parse_bulk<'a>(body: &'a [u8], default_index: Option<&str>) -> Result<ParsedBulk<'a>, String> {
    let mut lines = body
        .split(|byte| *byte == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    let mut items = Vec::new();
    let mut sources = Vec::new();
    while let Some((line_index, action_line)) = lines.next() {
        let action: Value = serde_json::from_slice(action_line).map_err(|error| {
            format!(
                "Malformed action/metadata line [{}], expected a JSON object: {error}",
                line_index + 1
            )
        })?;
        let Some((action_name, metadata)) = action
            .as_object()
            .filter(|object| object.len() == 1)
            .and_then(|object| object.iter().next())
        else {
            return Err(format!(
                "Malformed action/metadata line [{}], expected an object with one action",
                line_index + 1
            ));
        };
        let index_id = metadata
            .get("_index")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| default_index.map(str::to_string));
        let doc_id = metadata
            .get("_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| Some(ulid::Ulid::new().to_string()));
        let mut item = BulkItem {
            action: action_name.clone(),
            index_id,
            doc_id,
            outcome: None,
        };
        match action_name.as_str() {
            "index" | "create" => {
                let (_, source) = lines.next().ok_or_else(|| {
                    format!(
                        "the `{action_name}` action on line [{}] has no source line after it",
                        line_index + 1
                    )
                })?;
                if item.index_id.is_none() {
                    item.outcome = Some(item_error(
                        StatusCode::BAD_REQUEST,
                        "action_request_validation_exception",
                        "index is missing",
                    ));
                } else {
                    sources.push((items.len(), source));
                }
            }
            "update" => {
                // Its partial document follows and is skipped with it.
                lines.next();
                item.outcome = Some(unsupported(action_name));
            }
            "delete" => item.outcome = Some(unsupported(action_name)),
            other => {
                return Err(format!(
                    "Malformed action/metadata line [{}], unknown action [{other}]",
                    line_index + 1
                ))
            }
        }
        items.push(item);
    }
    Ok((items, sources))
}

fn unsupported(action: &str) -> Value {
    item_error(
        StatusCode::BAD_REQUEST,
        "illegal_argument_exception",
        &format!("the `{action}` action is not supported: Quarry indexes are append-only (use `index` or `create`)"),
    )
}
