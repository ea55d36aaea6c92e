//! `POST /api/v1/otlp/v1/logs`: OTLP/HTTP logs, at Quickwit's path, so that an exporter's
//! endpoint is `http://host:7280/api/v1/otlp`. Protobuf and JSON bodies (gzip too); the
//! answer is an `ExportLogsServiceResponse` in the request's encoding, with
//! `partial_success` when records were refused. Errors follow the OTLP/HTTP spec: a
//! `google.rpc.Status` body, 400 for a bad payload, 413, 415, and 429/503 with
//! `Retry-After` so that exporters retry. Acknowledged means in the write-ahead log.

use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use quarry_common::api_keys::IndexAction;
use quarry_config::IndexTemplate;
use quarry_indexer::{CommitMode, IngestError};

use super::auth::index_refusal;
use super::ingest::read_body;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::metrics::METRICS;
use crate::otlp_logs::{
    decode_json, decode_protobuf, to_documents, DEFAULT_INDEX, DEFAULT_TEMPLATE,
};

/// Where records go: Quarry's header, or the one Quickwit's users already set.
const INDEX_HEADERS: [&str; 2] = ["x-quarry-index", "qw-otel-logs-index"];

static OTEL_TEMPLATE: LazyLock<Option<IndexTemplate>> =
    LazyLock::new(|| crate::index_templates::builtin(DEFAULT_TEMPLATE));

/// `google.rpc.Status`, the body of OTLP/HTTP error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// An OTLP/HTTP error in the request's encoding, with `Retry-After` when retrying helps.
fn otlp_error(encoding: Encoding, status: StatusCode, message: String) -> Response {
    if status.is_server_error() {
        tracing::error!(%status, "OTLP export failed: {message}");
    }
    // gRPC codes: INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED,
    // UNAVAILABLE, INTERNAL.
    let code = match status {
        StatusCode::FORBIDDEN => 7,
        StatusCode::NOT_FOUND => 5,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        status if status.is_server_error() => 13,
        _ => 3,
    };
    let mut response = match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            prost::Message::encode_to_vec(&RpcStatus { code, message }),
        )
            .into_response(),
        Encoding::Json => (
            status,
            axum::Json(serde_json::json!({"code": code, "message": message})),
        )
            .into_response(),
    };
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// OTLP/HTTP logs.
#[utoipa::path(
    post,
    path = "/api/v1/otlp/v1/logs",
    tag = "ingest",
    params(
        ("x-quarry-index" = Option<String>, Header, description = "The index records go to (default `otel-logs-v0_9`), created on first export. `qw-otel-logs-index` works too."),
    ),
    request_body(content(
        (super::loki::ProtobufBody = "application/x-protobuf"),
        (Object = "application/json"),
    ), description = "An ExportLogsServiceRequest, in protobuf or OTLP/JSON."),
    responses(
        (status = 200, description = "Every accepted record is in the write-ahead log; `partialSuccess` counts the refused ones.", content(
            (super::loki::ProtobufBody = "application/x-protobuf"),
            (Object = "application/json"),
        )),
        (status = 400, description = "Not an ExportLogsServiceRequest: a google.rpc.Status in the request's encoding.", content(
            (super::loki::ProtobufBody = "application/x-protobuf"),
            (Object = "application/json"),
        )),
        (status = 415, description = "Neither protobuf nor JSON.", body = Object),
    ),
)]
pub(crate) async fn export_logs(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let encoding = if content_type.starts_with("application/x-protobuf") {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return otlp_error(
            Encoding::Json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type `{content_type}`: OTLP/HTTP takes application/x-protobuf or application/json"),
        );
    };
    let fail = |error: ApiError| otlp_error(encoding, error.status, error.message);
    let index_id = match index_of(&headers) {
        Ok(index_id) => index_id,
        Err(error) => return fail(error),
    };
    if !principal.allows_index(IndexAction::Write, &index_id) {
        return otlp_error(
            encoding,
            StatusCode::FORBIDDEN,
            index_refusal(&principal, IndexAction::Write, &index_id),
        );
    }
    let body: Bytes = match read_body(body, &headers, state.max_request_body).await {
        Ok(body) => body,
        Err(error) => return fail(error),
    };
    let request = match encoding {
        Encoding::Protobuf => decode_protobuf(&body),
        Encoding::Json => decode_json(&body),
    };
    let request = match request {
        Ok(request) => request,
        Err(message) => return otlp_error(encoding, StatusCode::BAD_REQUEST, message),
    };
    let documents = to_documents(&request);
    let mut rejected = documents.rejected;
    if documents.count > 0 {
        let template = state.index_templates.template_or(&index_id, &OTEL_TEMPLATE);
        if let Some(template) = template {
            if let Err(error) = state
                .index_templates
                .ensure_index_from(&state.index_service, &index_id, template)
                .await
            {
                return fail(error.into());
            }
        }
        let bytes = documents.ndjson.len() as u64;
        match state
            .ingest_service
            .ingest_detailed(&index_id, Bytes::from(documents.ndjson), CommitMode::Auto)
            .await
        {
            Ok(quarry_indexer::IngestOutcome {
                response, failures, ..
            }) => {
                METRICS.ingested_bytes.inc_by(bytes);
                METRICS.ingested_docs.inc_by(response.num_ingested_docs);
                METRICS.rejected_docs.inc_by(response.num_rejected_docs);
                rejected.extend(
                    failures
                        .into_iter()
                        .map(|(_, reason)| format!("the record does not fit the index: {reason}")),
                );
            }
            Err(error) => {
                if matches!(error, IngestError::IndexNotFound(_)) {
                    state.index_templates.forget(&index_id);
                }
                return fail(error.into());
            }
        }
    }
    let partial_success = rejected.first().map(|first| ExportLogsPartialSuccess {
        rejected_log_records: rejected.len() as i64,
        error_message: format!("{} log records refused; the first: {first}", rejected.len()),
    });
    let answer = ExportLogsServiceResponse { partial_success };
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            prost::Message::encode_to_vec(&answer),
        )
            .into_response(),
        Encoding::Json => axum::Json(answer).into_response(),
    }
}

fn index_of(headers: &HeaderMap) -> Result<String, ApiError> {
    let named = INDEX_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).map(|value| (name, value)));
    let index_id = match named {
        Some((name, value)) => value
            .to_str()
            .map_err(|_| ApiError::bad_request(format!("the {name} header is not text")))?
            .to_string(),
        None => DEFAULT_INDEX.to_string(),
    };
    quarry_config::validate_index_id(&index_id)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(index_id)
}
