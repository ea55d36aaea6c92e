//! One HTTP server for the native REST API (and, later, the Elasticsearch-compatible and
//! internal APIs). Handlers translate HTTP to service calls and service errors to statuses.

mod api_keys;
mod auth;
mod elastic;
mod error;
mod health;
mod indexes;
mod ingest;
mod internal;
mod loki;
mod openapi;
mod otlp;
mod search;
mod ui;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use quarry_indexer::IngestService;
use quarry_searcher::SearchService;

pub use auth::access_rules;
pub(crate) use elastic::ScrollStore;
pub(crate) use error::ApiError;

use crate::IndexService;

/// What handlers share.
pub(crate) struct AppState {
    pub index_service: Arc<IndexService>,
    pub ingest_service: Arc<IngestService>,
    pub search_service: Arc<SearchService>,
    pub max_request_body: usize,
    pub cluster: quarry_control_plane::Cluster,
    /// The metastore this node serves to the others over `/internal/v1/metastore`: set
    /// when it runs the `metastore` service on a file-backed metastore.
    pub served_metastore: Option<Arc<dyn quarry_common::metastore::Metastore>>,
    /// False once shutdown starts: readiness fails so load balancers stop sending traffic.
    pub ready: Arc<AtomicBool>,
    /// What `/internal/v1` requests must carry (`cluster_secret`), when set.
    pub cluster_secret: Option<String>,
    /// How this node calls the others (their secret, TLS).
    pub transport: quarry_common::node_transport::NodeTransport,
    /// Where `_bulk` `_id`s are deduplicated (this node or the cluster's host).
    pub bulk_ids: Arc<crate::bulk_ids::BulkIds>,
    /// Open Elasticsearch scroll contexts.
    pub scrolls: elastic::ScrollStore,
    /// The API keys, which requests must carry when `auth_enabled`.
    pub keys: Arc<crate::auth::KeyStore>,
    pub auth_enabled: bool,
    /// Each key's share of this node (`ApiKeyRecord::limits`).
    pub tenant_limits: crate::auth::TenantLimiter,
    pub tenant_limits_scope: quarry_config::TenantLimitsScope,
    /// Failed authentications by client address.
    pub failed_attempts: crate::auth::FailedAttempts,
    /// What `_bulk` creates indexes on first use from.
    pub index_templates: crate::index_templates::IndexTemplates,
}

/// The router and every path it serves, so that a test can hold each path to an access
/// rule (`auth::RULES`).
pub(crate) struct Routes {
    router: Router<Arc<AppState>>,
    paths: Vec<&'static str>,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub(crate) fn route(
        mut self,
        path: &'static str,
        method_router: MethodRouter<Arc<AppState>>,
    ) -> Routes {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    pub(crate) fn map(
        mut self,
        wrap: impl FnOnce(Router<Arc<AppState>>) -> Router<Arc<AppState>>,
    ) -> Routes {
        self.router = wrap(self.router);
        self
    }
}

/// Every route, without the layers that need the state.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .route("/health/livez", get(health::livez))
        .route("/health/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/cluster", get(health::cluster))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/", get(ui::root))
        .route(ui::PAGE_PATHS[0], get(ui::page))
        .route(ui::PAGE_PATHS[1], get(ui::page))
        .route(ui::PAGE_PATHS[2], get(ui::page))
        .route(
            "/api/v1/indexes",
            post(indexes::create_index).get(indexes::list_indexes),
        )
        .route(
            "/api/v1/indexes/{index_id}",
            get(indexes::describe_index).delete(indexes::delete_index),
        )
        .route(
            "/api/v1/indexes/{index_id}/splits",
            get(indexes::list_splits),
        )
        .route("/api/v1/{index_id}/ingest", post(ingest::ingest))
        .route(
            "/api/v1/{index_id}/delete-tasks",
            post(indexes::create_delete_task).get(indexes::list_delete_tasks),
        )
        .route(
            "/api/v1/{index_id}/search",
            get(search::search_get).post(search::search_post),
        )
        .route("/loki/api/v1/push", post(loki::push))
        .route("/api/v1/otlp/v1/logs", post(otlp::export_logs))
        .route(
            "/api/v1/api-keys",
            post(api_keys::create_native).get(api_keys::list_native),
        )
        .route(
            "/api/v1/api-keys/{key_id}",
            axum::routing::delete(api_keys::invalidate_native),
        )
        .merge(internal_routes())
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let elastic = elastic::routes().map(|router| {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            elastic::decompress_body,
        ))
    });
    routes()
        .merge(elastic)
        .router
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            internal::require_cluster_secret,
        ))
        .layer(axum::middleware::from_fn(answer_panics))
        .layer(axum::middleware::from_fn(count_requests))
        .with_state(state)
}

/// A handler that panics answers 500 with a JSON error instead of dropping the connection
/// without a word. Parsers bound their input so that none should; this is the net under
/// them. The panic's own text goes to the log only: it may name internals.
async fn answer_panics(request: Request, next: Next) -> Response {
    use futures::FutureExt;
    let route = request.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(route, "request handler panicked: {message}");
            ApiError {
                status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                message: "internal error: the request failed unexpectedly (see the node's log)"
                    .to_string(),
            }
            .into_response()
        }
    }
}

/// Node-to-node routes. A leaf request names every split it covers, and a metastore call
/// may stage or list thousands: more than the 2 MiB axum allows a body by default.
fn internal_routes() -> Routes {
    Routes::new()
        .route(
            quarry_common::metastore::METASTORE_ENDPOINT,
            post(internal::metastore),
        )
        .route("/internal/v1/leaf_search", post(internal::leaf_search))
        .route("/internal/v1/fetch_docs", post(internal::fetch_docs))
        .route(crate::bulk_ids::DEDUP_ENDPOINT, post(internal::dedup))
        .map(|router| router.layer(axum::extract::DefaultBodyLimit::max(INTERNAL_MAX_BODY)))
}

/// Bounds what one internal request may hold (about 500,000 splits in a leaf request).
const INTERNAL_MAX_BODY: usize = 64 * 1024 * 1024;

async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if route.starts_with("/internal/") {
        crate::metrics::METRICS
            .internal_request_latency
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    crate::metrics::METRICS
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_a_json_error() {
        async fn panics() -> &'static str {
            panic!("secret internals")
        }
        let app = Router::new()
            .route("/boom", get(panics))
            .layer(axum::middleware::from_fn(answer_panics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{address}/boom"))
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("failed unexpectedly"), "{body}");
        assert!(!message.contains("secret"), "{body}");
    }
}
