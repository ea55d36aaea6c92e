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
use quarry_indexer::{CommitMode, IdClaim, IngestError};
use serde_json::{json, Value};

use super::es_error;
use crate::auth::Principal;
use crate::rest::auth::index_refusal;
use crate::rest::ingest::read_body;
use crate::rest::{ApiError, AppState};
use axum::Extension;
use quarry_common::api_keys::IndexAction;
use quarry_common::doc_mapper::LogDocId;

/// Elasticsearch's bulk API: NDJSON action and document lines (gzip bodies too).
#[utoipa::path(
    method(post, put),
    path = "/api/v1/_elastic/_bulk",
    tag = "elasticsearch",
    params(("refresh" = Option<String>, Query, description = "`true` or `wait_for`: searchable before the answer; `false` (default).")),
    request_body(content = Vec<Object>, content_type = "application/x-ndjson", description = "One JSON object per line."),
    responses((status = 200, description = "One item per action.", body = super::schemas::EsBulkResponse)),
)]
pub(crate) async fn bulk(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(&state, &principal, None, &params, &headers, body).await
}

#[utoipa::path(
    method(post, put),
    path = "/api/v1/_elastic/{index_id}/_bulk",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "The index of actions that name none."), ("refresh" = Option<String>, Query, description = "`true` or `wait_for`: searchable before the answer; `false` (default).")),
    request_body(content = Vec<Object>, content_type = "application/x-ndjson", description = "One JSON object per line."),
    responses((status = 200, description = "One item per action.", body = super::schemas::EsBulkResponse)),
)]
pub(crate) async fn bulk_into(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_bulk(&state, &principal, Some(index_id), &params, &headers, body).await
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
    /// The client's `_id`, or once indexed, the log id Quarry gave the document. `None`
    /// for a document that was not indexed and had no `_id`.
    doc_id: Option<String>,
    /// The client named the id, so a retry of this item must not index it twice.
    explicit_id: bool,
    /// Set once the item's fate is known.
    outcome: Option<Value>,
}

fn item_error(status: StatusCode, error_type: &str, reason: &str) -> Value {
    json!({"status": status.as_u16(), "error": {"type": error_type, "reason": reason}})
}

/// What Elasticsearch answers a bulk or multi-search body with no action in it.
pub(crate) fn no_requests_added() -> Response {
    es_error(
        StatusCode::BAD_REQUEST,
        "action_request_validation_exception",
        "Validation Failed: 1: no requests added;",
    )
}

async fn run_bulk(
    state: &AppState,
    principal: &Principal,
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
    if items.is_empty() {
        return no_requests_added();
    }

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
        // Each item is refused on its own, as Elasticsearch does; the others go on.
        if !principal.allows_index(IndexAction::Write, &index_id) {
            let reason = index_refusal(principal, IndexAction::Write, &index_id);
            for (item_index, _) in &lines {
                items[*item_index].outcome = Some(item_error(
                    StatusCode::FORBIDDEN,
                    "security_exception",
                    &reason,
                ));
            }
            continue;
        }
        // Write on an index includes creating it from its template, as Elasticsearch's
        // `auto_configure` is part of `write`.
        if let Err(error) = state
            .index_templates
            .ensure_index(&state.index_service, &index_id)
            .await
        {
            let error = crate::rest::ApiError::from(error);
            for (item_index, _) in &lines {
                items[*item_index].outcome = Some(item_error(
                    error.status,
                    "index_creation_exception",
                    &format!(
                        "cannot create index [{index_id}] from its template: {}",
                        error.message
                    ),
                ));
            }
            continue;
        }
        let lines = match skip_duplicate_ids(state, &index_id, &mut items, &lines).await {
            Ok(new_lines) => new_lines,
            Err(reason) => {
                for (item_index, _) in &lines {
                    items[*item_index].outcome = Some(item_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "exception",
                        &reason,
                    ));
                }
                continue;
            }
        };
        if lines.is_empty() {
            continue;
        }
        let mut ndjson = Vec::new();
        for (item_index, source) in &lines {
            // A generated id is not written with the document: it is the document's log
            // id, known once the batch is logged, and kept in columns that cost far less
            // than a stored and indexed string.
            match items[*item_index].doc_id.as_deref() {
                Some(doc_id) => push_with_doc_id(&mut ndjson, source, doc_id),
                None => ndjson.extend_from_slice(source),
            }
            ndjson.push(b'\n');
        }
        let claimed_ids = |items: &[BulkItem], accepted: bool, failed: &HashMap<usize, String>| {
            lines
                .iter()
                .enumerate()
                .filter(|(line, _)| failed.contains_key(&(line + 1)) != accepted)
                .filter_map(|(_, (item_index, _))| {
                    let item = &items[*item_index];
                    item.doc_id.clone().filter(|_| item.explicit_id)
                })
                .collect::<Vec<String>>()
        };
        match state
            .ingest_service
            .ingest_detailed(&index_id, Bytes::from(ndjson), commit)
            .await
        {
            Ok(outcome) => {
                let failed: HashMap<usize, String> = outcome.failures.into_iter().collect();
                let accepted_ids = claimed_ids(&items, true, &failed);
                let rejected_ids = claimed_ids(&items, false, &failed);
                settle_ids(state, &index_id, accepted_ids, rejected_ids).await;
                // The n-th accepted document of the batch is line n of its log record.
                let mut accepted_rank = 0u64;
                for (line, (item_index, _)) in lines.iter().enumerate() {
                    let item = &mut items[*item_index];
                    item.outcome = Some(match failed.get(&(line + 1)) {
                        Some(reason) => item_error(
                            StatusCode::BAD_REQUEST,
                            "document_parsing_exception",
                            reason,
                        ),
                        None => {
                            if !item.explicit_id {
                                item.doc_id = outcome.first_log_id.map(|first| {
                                    LogDocId {
                                        line: accepted_rank,
                                        ..first
                                    }
                                    .encode()
                                });
                            }
                            accepted_rank += 1;
                            json!({"status": 201, "result": "created", "_version": 1, "_shards": {"total": 1, "successful": 1, "failed": 0}})
                        }
                    });
                }
            }
            Err(error) => {
                let none_accepted = HashMap::new();
                let rejected_ids = claimed_ids(&items, true, &none_accepted);
                if matches!(error, IngestError::IndexNotFound(_)) {
                    // Nothing to remember for an index that does not exist; names sent by
                    // mistake must not accumulate.
                    state.bulk_ids.forget_index(&index_id).await;
                    state.index_templates.forget(&index_id);
                } else {
                    settle_ids(state, &index_id, Vec::new(), rejected_ids).await;
                }
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

/// Answers items whose `_id` the index already accepted (or is accepting) and returns
/// the lines still to index; their ids are claimed until `settle_ids`.
async fn skip_duplicate_ids<'a>(
    state: &AppState,
    index_id: &str,
    items: &mut [BulkItem],
    lines: &[(usize, &'a [u8])],
) -> Result<Vec<(usize, &'a [u8])>, String> {
    let with_ids: Vec<(usize, String)> = lines
        .iter()
        .filter_map(|(item_index, _)| {
            let item = &items[*item_index];
            item.doc_id
                .clone()
                .filter(|_| item.explicit_id)
                .map(|doc_id| (*item_index, doc_id))
        })
        .collect();
    if with_ids.is_empty() {
        return Ok(lines.to_vec());
    }
    let ids: Vec<String> = with_ids.iter().map(|(_, doc_id)| doc_id.clone()).collect();
    let claims = state
        .bulk_ids
        .claim(index_id, ids)
        .await
        .map_err(|error| format!("`_id` deduplication failed: {error}"))?;
    for ((item_index, _), claim) in with_ids.iter().zip(claims) {
        items[*item_index].outcome = match claim {
            IdClaim::New => None,
            IdClaim::Duplicate => Some(
                json!({"status": 200, "result": "noop", "created": false, "_version": 1, "_shards": {"total": 1, "successful": 1, "failed": 0}}),
            ),
            IdClaim::InFlight => Some(item_error(
                StatusCode::TOO_MANY_REQUESTS,
                "es_rejected_execution_exception",
                "a document with this _id is being indexed by another request; retry",
            )),
        };
    }
    Ok(lines
        .iter()
        .filter(|(item_index, _)| items[*item_index].outcome.is_none())
        .copied()
        .collect())
}

/// Journals the ids of accepted documents, so retries are recognised even after a
/// restart, and frees the claims of rejected ones, so a corrected retry is indexed.
async fn settle_ids(
    state: &AppState,
    index_id: &str,
    accepted_ids: Vec<String>,
    rejected_ids: Vec<String>,
) {
    if accepted_ids.is_empty() && rejected_ids.is_empty() {
        return;
    }
    // The documents are durable already; only the protection against a retry is lost.
    if let Err(error) = state
        .bulk_ids
        .settle(index_id, accepted_ids, rejected_ids)
        .await
    {
        tracing::warn!(index_id, "cannot journal accepted _ids: {error}");
    }
}

/// The source line with `"_id"` as its first key, where the doc mapper picks it up.
fn push_with_doc_id(ndjson: &mut Vec<u8>, source: &[u8], doc_id: &str) {
    let start = source
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(source.len());
    let Some(body) = source[start..].strip_prefix(b"{") else {
        // Not an object: the doc mapper rejects it as it is.
        ndjson.extend_from_slice(source);
        return;
    };
    ndjson.extend_from_slice(b"{\"_id\":");
    // A string always serializes.
    let _ = serde_json::to_writer(&mut *ndjson, doc_id);
    let is_empty_object = body
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'}');
    if !is_empty_object {
        ndjson.push(b',');
    }
    ndjson.extend_from_slice(body);
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
        let explicit_id = metadata.get("_id").and_then(Value::as_str);
        let mut item = BulkItem {
            action: action_name.clone(),
            index_id,
            explicit_id: explicit_id.is_some(),
            doc_id: explicit_id.map(str::to_string),
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

/// Property tests: `_bulk` bodies come from shippers and clients. For any body, parsing
/// returns items or an error naming the line, never a panic, and every source line belongs
/// to an item.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::parse_bulk;

    fn bulk_body() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            Just(r#"{"index": {"_index": "logs", "_id": "1"}}"#.to_string()),
            Just(r#"{"create": {"_index": "logs"}}"#.to_string()),
            Just(r#"{"index": {}}"#.to_string()),
            Just(r#"{"delete": {"_index": "logs", "_id": "1"}}"#.to_string()),
            Just(r#"{"update": {"_id": "1"}}"#.to_string()),
            Just(r#"{"index": {"_index": 7, "_id": [1]}}"#.to_string()),
            Just(r#"{"index": {"_type": "_doc", "pipeline": "p", "routing": "r"}}"#.to_string()),
            Just(r#"{"message": "hello", "@timestamp": "2026-01-01T00:00:00Z"}"#.to_string()),
            Just("[]".to_string()),
            Just("{".to_string()),
            Just(String::new()),
            any::<String>(),
        ];
        prop::collection::vec(line, 0..16).prop_map(|lines| lines.join("\n").into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn any_bulk_body_is_items_or_an_error(body in bulk_body(), default_index in any::<bool>()) {
            let default_index = default_index.then_some("default");
            if let Ok((items, sources)) = parse_bulk(&body, default_index) {
                for (item, _) in &sources {
                    prop_assert!(*item < items.len());
                }
            }
        }

        #[test]
        fn any_bytes_are_items_or_an_error(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_bulk(&body, None);
        }
    }
}
