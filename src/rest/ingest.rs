use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures::StreamExt;
use quarry_indexer::{CommitMode, IngestResponse};

use super::{ApiError, AppState};
use crate::metrics::METRICS;

pub(crate) fn payload_too_large(limit: usize) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body is larger than the {limit}-byte limit (ingest.max_request_body): split it into smaller batches"),
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// Past the limit, the rest of a body is read and dropped (up to this much) so that the
/// client, still sending, gets the 413 instead of a broken pipe.
const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;

/// The request body, gunzipped when `Content-Encoding: gzip` (log shippers compress).
/// Over `limit` before or after decompression: 413; a broken gzip stream: 400.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared_len = content_length(headers);
    let raw = read_raw_body(body, limit, declared_len)
        .await
        .ok_or_else(|| payload_too_large(limit))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => gunzip(&raw, limit),
        Some(other) => Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("unsupported Content-Encoding `{other}` (expected gzip or none)"),
        }),
    }
}

/// Decompresses at most `limit + 1` bytes, so a small bomb cannot expand without bound.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut decoded = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| {
            ApiError::bad_request(format!("the gzip request body is corrupt: {error}"))
        })?;
    if decoded.len() > limit {
        return Err(payload_too_large(limit));
    }
    Ok(Bytes::from(decoded))
}

/// The body, or `None` if it is over `limit`.
async fn read_raw_body(body: Body, limit: usize, declared_len: Option<usize>) -> Option<Bytes> {
    let mut buffer = Vec::with_capacity(declared_len.unwrap_or(0).min(limit));
    let mut total = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return None;
        };
        total += chunk.len();
        if total > limit || declared_len.is_some_and(|len| len > limit) {
            buffer = Vec::new();
            if total > limit + MAX_DRAINED_BYTES {
                return None;
            }
            continue;
        }
        buffer.extend_from_slice(&chunk);
    }
    (total <= limit).then(|| Bytes::from(buffer))
}

/// `POST /api/v1/{index}/ingest?commit=auto|wait_for|force` with an NDJSON body.
/// Ingests NDJSON documents (one JSON object per line; gzip bodies too). Acknowledged
/// documents are in the write-ahead log.
#[utoipa::path(
    post,
    path = "/api/v1/{index_id}/ingest",
    tag = "ingest",
    params(
        ("index_id" = String, Path, description = "The index id."),
        ("commit" = Option<String>, Query, description = "`auto` (default), `wait_for` (searchable before the answer) or `force` (a split now)."),
    ),
    request_body(content = Option<Vec<Object>>, content_type = "application/x-ndjson", description = "One JSON document per line; an empty body ingests nothing."),
    responses(
        (status = 200, description = "What was accepted and what was rejected, line by line.", body = IngestResponse),
        (status = 413, description = "The body is over `ingest.max_request_body`.", body = super::error::ErrorBody),
        (status = 429, description = "Back-pressure: retry after the delay.", body = super::error::ErrorBody),
    ),
)]
pub(crate) async fn ingest(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let mut commit_mode = CommitMode::Auto;
    for (key, value) in &params {
        match key.as_str() {
            "commit" => commit_mode = value.parse().map_err(ApiError::bad_request)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}` (expected `commit`)"
                )))
            }
        }
    }
    let limit = state.max_request_body;
    let body = read_body(body, &headers, limit).await?;
    let body_len = body.len() as u64;
    let response = state
        .ingest_service
        .ingest(&index_id, body, commit_mode)
        .await?;
    METRICS.ingested_bytes.inc_by(body_len);
    METRICS.ingested_docs.inc_by(response.num_ingested_docs);
    METRICS.rejected_docs.inc_by(response.num_rejected_docs);
    Ok(Json(response))
}

/// Property tests: gzip bodies come from clients. For any bytes, and for any damage to a
/// real gzip stream, decompression returns the body or an error (400, or 413 past the
/// limit), never a panic and never more than the limit.
#[cfg(test)]
mod property_tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::gunzip;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_gunzip_or_err(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = gunzip(&bytes, 1 << 20);
        }

        #[test]
        fn damaged_gzip_gunzips_or_errs_within_the_limit(
            body in prop::collection::vec(any::<u8>(), 0..2000),
            position in any::<prop::sample::Index>(),
            flip in any::<u8>(),
            limit in 0usize..3000,
        ) {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&body).unwrap();
            let mut compressed = encoder.finish().unwrap();
            let at = position.index(compressed.len());
            compressed[at] ^= flip;
            match gunzip(&compressed, limit) {
                Ok(decoded) => prop_assert!(decoded.len() <= limit),
                Err(error) => prop_assert!(error.status.is_client_error(), "{}", error.message),
            }
        }
    }
}
