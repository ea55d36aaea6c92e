//! The Elasticsearch-compatible API under `/api/v1/_elastic/`: what ES clients and log
//! shippers send, answered in the shapes they parse.

mod bulk;
mod fields;
mod filter_path;
mod meta;
mod render;
mod schemas;
mod scroll;
mod search;
mod typed_keys;

pub(crate) use scroll::ScrollStore;

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};

use super::{api_keys, AppState, Routes};

pub(crate) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/_elastic", get(meta::info).head(meta::info))
        .route("/api/v1/_elastic/", get(meta::info).head(meta::info))
        .route(
            "/api/v1/_elastic/_cluster/health",
            get(meta::cluster_health),
        )
        .route("/api/v1/_elastic/_cat/indices", get(meta::cat_indices))
        .route("/api/v1/_elastic/_cat/health", get(meta::cat_health))
        .route(
            "/api/v1/_elastic/{index_id}",
            get(meta::index)
                .head(meta::index)
                .put(meta::create_index_refused),
        )
        .route("/api/v1/_elastic/{index_id}/_mapping", get(meta::mapping))
        .route("/api/v1/_elastic/{index_id}/_mappings", get(meta::mapping))
        .route(
            "/api/v1/_elastic/{index_id}/_field_caps",
            get(meta::field_caps).post(meta::field_caps),
        )
        .route(
            "/api/v1/_elastic/_resolve/index/{expression}",
            get(meta::resolve_index),
        )
        .route(
            "/api/v1/_elastic/_search/scroll",
            post(scroll::scroll)
                .get(scroll::scroll)
                .delete(scroll::clear_scroll),
        )
        .route(
            "/api/v1/_elastic/_search/scroll/{scroll_id}",
            post(scroll::scroll_by_path)
                .get(scroll::scroll_by_path)
                .delete(scroll::clear_scroll_by_path),
        )
        .route("/api/v1/_elastic/_msearch", post(search::msearch))
        .route(
            "/api/v1/_elastic/{index_id}/_msearch",
            post(search::msearch_into),
        )
        .route("/api/v1/_elastic/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route(
            "/api/v1/_elastic/{index_id}/_bulk",
            post(bulk::bulk_into).put(bulk::bulk_into),
        )
        .route(
            "/api/v1/_elastic/{index_id}/_search",
            post(search::search).get(search::search),
        )
        .route(
            "/api/v1/_elastic/{index_id}/_count",
            post(search::count).get(search::count),
        )
        .route(
            "/api/v1/_elastic/{index_id}/_doc/{doc_id}",
            get(search::get_doc).head(search::get_doc),
        )
        .route(
            "/api/v1/_elastic/_security/api_key",
            post(api_keys::create_elastic)
                .put(api_keys::create_elastic)
                .get(api_keys::list_elastic)
                .delete(api_keys::invalidate_elastic),
        )
        .route(
            "/api/v1/_elastic/_security/_authenticate",
            get(api_keys::authenticate_elastic),
        )
        .map(|router| {
            router
                .layer(axum::middleware::from_fn(filter_path::apply_filter_path))
                .layer(axum::middleware::map_response(add_product_header))
        })
}

/// Clients with `http_compress` gzip every body, searches included. `_bulk` streams and
/// decompresses its own body under the same limit.
pub(crate) async fn decompress_body(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let encoded = request
        .headers()
        .get(axum::http::header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes() != b"identity");
    if !encoded || request.uri().path().ends_with("/_bulk") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match super::ingest::read_body(body, &parts.headers, state.max_request_body).await {
        Ok(decoded) => {
            parts.headers.remove(axum::http::header::CONTENT_ENCODING);
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(decoded),
            ))
            .await
        }
        Err(error) => {
            let mut response = es_error(error.status, "parse_exception", &error.message);
            response.headers_mut().insert(
                HeaderName::from_static("x-elastic-product"),
                HeaderValue::from_static("Elasticsearch"),
            );
            response
        }
    }
}

/// ES clients check this header to believe they talk to Elasticsearch.
async fn add_product_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static("x-elastic-product"),
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// Elasticsearch's error object, as clients parse it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EsErrorBody {
    error: EsError,
    /// The HTTP status, repeated.
    status: u16,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EsError {
    root_cause: Vec<EsErrorCause>,
    #[serde(rename = "type")]
    error_type: String,
    reason: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EsErrorCause {
    #[serde(rename = "type")]
    error_type: String,
    reason: String,
}

pub(crate) fn es_error(status: axum::http::StatusCode, error_type: &str, reason: &str) -> Response {
    let body = EsErrorBody {
        error: EsError {
            root_cause: vec![EsErrorCause {
                error_type: error_type.to_string(),
                reason: reason.to_string(),
            }],
            error_type: error_type.to_string(),
            reason: reason.to_string(),
        },
        status: status.as_u16(),
    };
    axum::response::IntoResponse::into_response((status, axum::Json(body)))
}

/// Unknown routes under `/api/v1/_elastic/`, answered the way ES clients parse.
pub(crate) fn unknown_route(uri: &axum::http::Uri) -> Response {
    let message = format!(
        "`{}` is not part of Quarry's Elasticsearch-compatible API",
        uri.path()
    );
    let mut response = es_error(
        axum::http::StatusCode::NOT_FOUND,
        "unsupported_operation_exception",
        &message,
    );
    response.headers_mut().insert(
        HeaderName::from_static("x-elastic-product"),
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// The Elasticsearch-compatible API's part of the OpenAPI document (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    meta::info,
    meta::cluster_health,
    meta::cat_indices,
    meta::cat_health,
    meta::index,
    meta::create_index_refused,
    meta::mapping,
    meta::field_caps,
    meta::resolve_index,
    scroll::scroll,
    scroll::clear_scroll,
    scroll::scroll_by_path,
    scroll::clear_scroll_by_path,
    search::msearch,
    search::msearch_into,
    search::search,
    search::count,
    search::get_doc,
    bulk::bulk,
    bulk::bulk_into,
    api_keys::create_elastic,
    api_keys::list_elastic,
    api_keys::invalidate_elastic,
    api_keys::authenticate_elastic,
))]
pub(crate) struct ElasticApiDoc;
