//! `POST /loki/api/v1/push`: Loki's push API, so that Promtail and Grafana Alloy can point
//! at Quarry. Entries go through the write-ahead log like any ingest: 204 means every entry
//! is durable. The index is named by `X-Quarry-Index` (default `loki-logs`) and created on
//! first push, from a matching index template or Loki's default mapping.

use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use quarry_common::api_keys::IndexAction;
use quarry_config::IndexTemplate;
use quarry_indexer::CommitMode;

use super::auth::index_refusal;
use super::ingest::read_body;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::loki_push::{decode_json, decode_protobuf, to_ndjson, PushError, DEFAULT_TEMPLATE};
use crate::metrics::METRICS;

pub(crate) const INDEX_HEADER: &str = "x-quarry-index";
pub(crate) const DEFAULT_INDEX: &str = "loki-logs";

static LOKI_TEMPLATE: LazyLock<Option<IndexTemplate>> =
    LazyLock::new(|| crate::index_templates::builtin(DEFAULT_TEMPLATE));

/// A protobuf push body: `PushRequest`, snappy-compressed (block format).
pub(crate) struct ProtobufBody;

impl utoipa::PartialSchema for ProtobufBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl utoipa::ToSchema for ProtobufBody {}

/// Loki's push API.
#[utoipa::path(
    post,
    path = "/loki/api/v1/push",
    tag = "ingest",
    params((
        "x-quarry-index" = Option<String>,
        Header,
        description = "The index the entries go to (default `loki-logs`), created on first push."
    )),
    request_body(content(
        (ProtobufBody = "application/x-protobuf"),
        (crate::loki_push::JsonPush = "application/json"),
    )),
    responses(
        (status = 204, description = "Every entry is in the write-ahead log."),
        (status = 400, description = "The body is malformed, or some entries were refused (the others are in).", body = super::error::ErrorBody),
        (status = 415, description = "Neither protobuf nor JSON.", body = super::error::ErrorBody),
    ),
)]
pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let index_id = headers
        .get(INDEX_HEADER)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("the X-Quarry-Index header is not text"))
        })
        .transpose()?
        .unwrap_or(DEFAULT_INDEX)
        .to_string();
    quarry_config::validate_index_id(&index_id)
        .map_err(|error| ApiError::bad_request(format!("X-Quarry-Index: {error}")))?;
    if !principal.allows_index(IndexAction::Write, &index_id) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: index_refusal(&principal, IndexAction::Write, &index_id),
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let limit = state.max_request_body;
    let body: Bytes = read_body(body, &headers, limit).await?;
    let streams = if content_type.starts_with("application/x-protobuf") {
        decode_protobuf(&body, limit)
    } else if content_type.starts_with("application/json") {
        decode_json(&body)
    } else {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "unsupported Content-Type `{content_type}`: send application/x-protobuf (snappy) or application/json"
            ),
        });
    }
    .map_err(|error| match error {
        PushError::TooLarge(_) => super::ingest::payload_too_large(limit),
        error => ApiError::bad_request(error.to_string()),
    })?;
    let (ndjson, entries) = to_ndjson(&streams);
    if entries == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let template = state.index_templates.template_or(&index_id, &LOKI_TEMPLATE);
    if let Some(template) = template {
        state
            .index_templates
            .ensure_index_from(&state.index_service, &index_id, template)
            .await?;
    }
    let bytes = ndjson.len() as u64;
    let quarry_indexer::IngestOutcome {
        response, failures, ..
    } = match state
        .ingest_service
        .ingest_detailed(&index_id, Bytes::from(ndjson), CommitMode::Auto)
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            if matches!(error, quarry_indexer::IngestError::IndexNotFound(_)) {
                state.index_templates.forget(&index_id);
            }
            return Err(error.into());
        }
    };
    METRICS.ingested_bytes.inc_by(bytes);
    METRICS.ingested_docs.inc_by(response.num_ingested_docs);
    METRICS.rejected_docs.inc_by(response.num_rejected_docs);
    match failures.first() {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        // As Loki does: the valid entries are in, and the answer says which were not.
        Some((line, reason)) => Err(ApiError::bad_request(format!(
            "{} of {entries} entries were refused (the others are in); entry {line}: {reason}",
            failures.len()
        ))),
    }
}
