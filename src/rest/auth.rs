//! Authentication and the first check of authorization, for every route: who sends the
//! request (an API key, see `crate::auth`) and whether the route's rule lets them in. A
//! route without a rule is refused, so a new route cannot slip through unguarded; the
//! rule table is also what the access matrix test walks.
//!
//! Index patterns in a path are narrowed by the handlers (`Principal::index_filter`):
//! the middleware only refuses concrete index names the caller may not touch, with 403
//! whether or not the index exists, so that a refusal never tells what exists.

use std::sync::Arc;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use quarry_common::api_keys::{ClusterAction, IndexAction};

use super::{ApiError, AppState};
use crate::auth::{cluster_privileges_for, index_privileges_for, AuthError, Principal};

/// What a route needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// No credential: health probes, and node-to-node routes (the cluster secret guards
    /// those).
    Open,
    /// Any valid key.
    Authenticated,
    Cluster(ClusterAction),
    /// The action on every index the path's index parameter names.
    IndexPath(IndexAction),
    /// The action on indexes the body names (`_bulk` lines, `_msearch` headers, a new
    /// index's config) or on the indexes a listing shows: the handler checks each.
    Handler(IndexAction),
}

/// Every route's rule: `(method, path as the router matches it, rule)`. HEAD follows GET.
pub(crate) const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/health/livez", Rule::Open),
    ("GET", "/health/readyz", Rule::Open),
    ("GET", "/api/v1/openapi.json", Rule::Open),
    // The web UI's page holds no data: its calls to the API carry the user's key.
    ("GET", "/", Rule::Open),
    ("GET", "/ui", Rule::Open),
    ("GET", "/ui/", Rule::Open),
    ("GET", "/ui/{*path}", Rule::Open),
    (
        "POST",
        "/loki/api/v1/push",
        Rule::Handler(IndexAction::Write),
    ),
    (
        "POST",
        "/api/v1/otlp/v1/logs",
        Rule::Handler(IndexAction::Write),
    ),
    ("GET", "/metrics", Rule::Cluster(ClusterAction::Monitor)),
    (
        "GET",
        "/api/v1/cluster",
        Rule::Cluster(ClusterAction::Monitor),
    ),
    (
        "POST",
        "/api/v1/indexes",
        Rule::Handler(IndexAction::Manage),
    ),
    (
        "GET",
        "/api/v1/indexes",
        Rule::Handler(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/indexes/{index_id}",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "DELETE",
        "/api/v1/indexes/{index_id}",
        Rule::IndexPath(IndexAction::Manage),
    ),
    (
        "GET",
        "/api/v1/indexes/{index_id}/splits",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "POST",
        "/api/v1/{index_id}/ingest",
        Rule::IndexPath(IndexAction::Write),
    ),
    (
        "POST",
        "/api/v1/{index_id}/delete-tasks",
        Rule::IndexPath(IndexAction::Write),
    ),
    (
        "GET",
        "/api/v1/{index_id}/delete-tasks",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/{index_id}/search",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/{index_id}/search",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/api-keys",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "GET",
        "/api/v1/api-keys",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    ("POST", "/internal/v1/metastore", Rule::Open),
    ("POST", "/internal/v1/leaf_search", Rule::Open),
    ("POST", "/internal/v1/fetch_docs", Rule::Open),
    ("POST", "/internal/v1/dedup", Rule::Open),
    ("GET", "/api/v1/_elastic", Rule::Authenticated),
    ("GET", "/api/v1/_elastic/", Rule::Authenticated),
    (
        "GET",
        "/api/v1/_elastic/_cluster/health",
        Rule::Cluster(ClusterAction::Monitor),
    ),
    (
        "GET",
        "/api/v1/_elastic/_cat/health",
        Rule::Cluster(ClusterAction::Monitor),
    ),
    (
        "GET",
        "/api/v1/_elastic/_cat/indices",
        Rule::Handler(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "PUT",
        "/api/v1/_elastic/{index_id}",
        Rule::IndexPath(IndexAction::Manage),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_mapping",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_mappings",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_field_caps",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "POST",
        "/api/v1/_elastic/{index_id}/_field_caps",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/_elastic/_resolve/index/{expression}",
        Rule::IndexPath(IndexAction::ViewMetadata),
    ),
    (
        "GET",
        "/api/v1/_elastic/_search/scroll",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/_search/scroll",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "DELETE",
        "/api/v1/_elastic/_search/scroll",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "GET",
        "/api/v1/_elastic/_search/scroll/{scroll_id}",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/_search/scroll/{scroll_id}",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "DELETE",
        "/api/v1/_elastic/_search/scroll/{scroll_id}",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/_msearch",
        Rule::Handler(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/{index_id}/_msearch",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/_bulk",
        Rule::Handler(IndexAction::Write),
    ),
    (
        "PUT",
        "/api/v1/_elastic/_bulk",
        Rule::Handler(IndexAction::Write),
    ),
    (
        "POST",
        "/api/v1/_elastic/{index_id}/_bulk",
        Rule::Handler(IndexAction::Write),
    ),
    (
        "PUT",
        "/api/v1/_elastic/{index_id}/_bulk",
        Rule::Handler(IndexAction::Write),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_search",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/{index_id}/_search",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_count",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/{index_id}/_count",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "GET",
        "/api/v1/_elastic/{index_id}/_doc/{doc_id}",
        Rule::IndexPath(IndexAction::Read),
    ),
    (
        "POST",
        "/api/v1/_elastic/_security/api_key",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "PUT",
        "/api/v1/_elastic/_security/api_key",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "GET",
        "/api/v1/_elastic/_security/api_key",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "DELETE",
        "/api/v1/_elastic/_security/api_key",
        Rule::Cluster(ClusterAction::ManageSecurity),
    ),
    (
        "GET",
        "/api/v1/_elastic/_security/_authenticate",
        Rule::Authenticated,
    ),
];

/// The rules as `(method, path, rule)` text, for tests outside the crate that walk every
/// route: `open`, `authenticated`, `cluster:<action>`, `index:<action>` (the path's
/// indexes) or `handler:<action>`, actions in lower case (`view_metadata`).
pub fn access_rules() -> Vec<(&'static str, &'static str, String)> {
    let action_name = |text: String| {
        let mut snake = String::new();
        for (position, c) in text.chars().enumerate() {
            if c.is_uppercase() && position > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        snake
    };
    RULES
        .iter()
        .map(|(method, path, rule)| {
            let text = match rule {
                Rule::Open => "open".to_string(),
                Rule::Authenticated => "authenticated".to_string(),
                Rule::Cluster(action) => format!("cluster:{}", action_name(format!("{action:?}"))),
                Rule::IndexPath(action) => format!("index:{}", action_name(format!("{action:?}"))),
                Rule::Handler(action) => format!("handler:{}", action_name(format!("{action:?}"))),
            };
            (*method, *path, text)
        })
        .collect()
}

/// The rule of a matched route; `None` for a route nobody gave one.
pub(crate) fn rule_for(method: &Method, path: &str) -> Option<Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .find(|(rule_method, rule_path, _)| *rule_method == method && *rule_path == path)
        .map(|(_, _, rule)| *rule)
}

/// Who may do what, checked before the handler runs; the `Principal` goes with the
/// request for the handler's own checks.
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_string());
    let rule = match &matched {
        Some(matched) => match rule_for(request.method(), matched) {
            Some(rule) => rule,
            // A method the path does not take. Answered here rather than by the router, so
            // that a routed method someone forgot to give a rule never runs unguarded.
            None if !allowed_methods(matched).is_empty() => {
                return method_not_allowed(&path, request.method(), &allowed_methods(matched))
            }
            None => {
                return refuse(
                    &path,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!(
                        "route `{} {matched}` has no access rule: refused until it has one",
                        request.method()
                    ),
                )
            }
        },
        // Unknown routes: a 404 to those who may ask, a 401 to the rest.
        None => Rule::Authenticated,
    };
    if !state.auth_enabled {
        request.extensions_mut().insert(Principal::Unrestricted);
        return next.run(request).await;
    }
    if rule == Rule::Open {
        // Node-to-node routes answer to the cluster secret alone (checked before this).
        // Without one they would be a way around every key: refused instead.
        if path.starts_with("/internal/") && state.cluster_secret.is_none() {
            return refuse(
                &path,
                StatusCode::FORBIDDEN,
                "internal routes are closed on a node with authentication on and no `cluster_secret`",
            );
        }
        return next.run(request).await;
    }
    let client_address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::auth::ClientAddress>>()
        .map(|info| info.0 .0.ip());
    if let Some(wait) = client_address.and_then(|address| state.failed_attempts.locked_out(address))
    {
        crate::metrics::METRICS.auth_lockouts.inc();
        let message = format!(
            "too many failed authentication attempts from this address: retry in {} s",
            wait.as_secs().max(1)
        );
        return retry_after(refuse(&path, StatusCode::TOO_MANY_REQUESTS, &message), wait);
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let principal = match state.keys.authenticate(authorization).await {
        Ok(record) => Principal::Key(record),
        Err(AuthError::Unavailable(message)) => {
            return refuse(
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot check credentials now: {message}"),
            )
        }
        Err(error) => {
            crate::metrics::METRICS.auth_failures.inc();
            // A request without credentials guesses nothing: only wrong ones count.
            let guessed = !matches!(
                error,
                AuthError::Credentials(quarry_common::api_keys::CredentialError::Missing)
            );
            if let Some(address) = client_address.filter(|_| guessed) {
                state.failed_attempts.record_failure(address);
            }
            // The error names the key id at most, never the secret.
            tracing::info!(path, client = ?client_address, "refused a request: {error}");
            return refuse(&path, StatusCode::UNAUTHORIZED, &error.to_string());
        }
    };
    if let Err(message) = check_rule(&principal, rule, params.as_ref().ok()) {
        return refuse(&path, StatusCode::FORBIDDEN, &message);
    }
    let limited = match &principal {
        Principal::Key(key) => key.limits.map(|limits| (key.id.clone(), limits)),
        Principal::Unrestricted => None,
    };
    request.extensions_mut().insert(principal);
    let Some((key_id, limits)) = limited else {
        return next.run(request).await;
    };
    let limits = crate::auth::node_share(
        limits,
        state.tenant_limits_scope,
        state
            .cluster
            .ready_members_with(quarry_config::Service::Indexer)
            .len(),
        state
            .cluster
            .ready_members_with(quarry_config::Service::Searcher)
            .len(),
    );
    match rule {
        Rule::IndexPath(IndexAction::Read) | Rule::Handler(IndexAction::Read) => {
            let permit = match state.tenant_limits.admit_search(&key_id, &limits) {
                Ok(permit) => permit,
                Err(throttled) => return too_many(&path, &key_id, "searches", throttled),
            };
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Rule::IndexPath(IndexAction::Write) | Rule::Handler(IndexAction::Write) => {
            if let Err(throttled) = state.tenant_limits.admit_ingest(&key_id, &limits) {
                return too_many(&path, &key_id, "ingest_bytes", throttled);
            }
            // The body is paid for as it is read: what was received, compressed or not.
            let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = received.clone();
            let (parts, body) = request.into_parts();
            let counted = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
                if let Ok(bytes) = &chunk {
                    counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                chunk
            });
            let request = Request::from_parts(parts, axum::body::Body::from_stream(counted));
            let response = next.run(request).await;
            let bytes = received.load(std::sync::atomic::Ordering::Relaxed);
            state.tenant_limits.charge_ingest(&key_id, &limits, bytes);
            crate::metrics::METRICS
                .tenant_ingest_bytes
                .with_label_values(&[key_id.as_str()])
                .inc_by(bytes);
            response
        }
        _ => next.run(request).await,
    }
}

/// 429 with `Retry-After`, so that clients and shippers back off and retry.
fn too_many(path: &str, key_id: &str, limit: &str, throttled: crate::auth::Throttled) -> Response {
    crate::metrics::METRICS
        .tenant_throttled
        .with_label_values(&[key_id, limit])
        .inc();
    let response = refuse(path, StatusCode::TOO_MANY_REQUESTS, &throttled.message);
    retry_after(response, throttled.retry_after)
}

/// Tells the client how long to wait, in whole seconds (at least one).
fn retry_after(mut response: Response, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn check_rule(
    principal: &Principal,
    rule: Rule,
    params: Option<&RawPathParams>,
) -> Result<(), String> {
    let key_id = principal.key_id().unwrap_or_default();
    match rule {
        Rule::Open | Rule::Authenticated | Rule::Handler(_) => Ok(()),
        Rule::Cluster(action) if principal.allows_cluster(action) => Ok(()),
        Rule::Cluster(action) => Err(format!(
            "action is unauthorized for API key id [{key_id}]: it needs one of the cluster privileges [{}]",
            cluster_privileges_for(action)
        )),
        Rule::IndexPath(action) => {
            let expression = params
                .and_then(|params| {
                    params
                        .iter()
                        .find(|(name, _)| matches!(*name, "index_id" | "expression"))
                        .map(|(_, value)| value.to_string())
                })
                .unwrap_or_default();
            refused_indexes(principal, action, &expression)
        }
    }
}

/// Refuses an index expression whose concrete names the caller may not `action`.
/// Patterns pass: the handler narrows them to what the caller may see.
pub(crate) fn refused_indexes(
    principal: &Principal,
    action: IndexAction,
    expression: &str,
) -> Result<(), String> {
    let refused: Vec<&str> = expression
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty() && !part.contains('*') && !part.starts_with('-'))
        .filter(|part| *part != "_all" && !principal.allows_index(action, part))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(index_refusal(principal, action, &refused.join(",")))
}

/// Elasticsearch's wording for a refused index action.
pub(crate) fn index_refusal(principal: &Principal, action: IndexAction, indexes: &str) -> String {
    format!(
        "action is unauthorized for API key id [{}] on indices [{indexes}]: it needs one of the index privileges [{}]",
        principal.key_id().unwrap_or_default(),
        index_privileges_for(action)
    )
}

/// The methods a route path takes, from its rules (HEAD wherever GET is).
fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = RULES
        .iter()
        .filter(|(_, rule_path, _)| *rule_path == path)
        .map(|(method, _, _)| *method)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}

/// 405 with `Allow`, in the route's API's error shape.
fn method_not_allowed(path: &str, method: &Method, allowed: &[&str]) -> Response {
    let message = format!(
        "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{}]",
        allowed.join(", ")
    );
    let mut response = error_for_route(
        path,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed_exception",
        &message,
    );
    if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// An error in the shape the route's clients parse: Elasticsearch's (of `es_error_type`) on
/// its API, ours elsewhere.
fn error_for_route(path: &str, status: StatusCode, es_error_type: &str, message: &str) -> Response {
    if path.starts_with("/api/v1/_elastic") {
        let mut response = super::elastic::es_error(status, es_error_type, message);
        response.headers_mut().insert(
            axum::http::HeaderName::from_static("x-elastic-product"),
            HeaderValue::from_static("Elasticsearch"),
        );
        response
    } else {
        ApiError {
            status,
            message: message.to_string(),
        }
        .into_response()
    }
}

/// A refusal in the shape the route's clients parse: Elasticsearch's on its API.
pub(crate) fn refuse(path: &str, status: StatusCode, message: &str) -> Response {
    let es_error_type = match status {
        StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
        status if status.is_server_error() => "exception",
        _ => "security_exception",
    };
    let mut response = error_for_route(path, status, es_error_type, message);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("ApiKey, Basic realm=\"quarry\", charset=\"UTF-8\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path served without a rule (or a rule for a path not served) fails here.
    #[test]
    fn every_served_path_has_a_rule_and_every_rule_a_path() {
        let mut served = crate::rest::routes().paths;
        served.extend(crate::rest::elastic::routes().paths);
        for path in &served {
            assert!(
                RULES.iter().any(|(_, rule_path, _)| rule_path == path),
                "`{path}` is served without an access rule: add it to RULES"
            );
        }
        for (method, path, _) in RULES {
            assert!(
                served.contains(path),
                "RULES has `{method} {path}`, which no route serves"
            );
        }
        let texts = access_rules();
        assert!(texts.contains(&("GET", "/metrics", "cluster:monitor".to_string())));
        assert!(texts.contains(&(
            "GET",
            "/api/v1/indexes/{index_id}",
            "index:view_metadata".to_string()
        )));
    }

    #[test]
    fn head_follows_get_and_unknown_routes_have_no_rule() {
        assert_eq!(
            rule_for(&Method::HEAD, "/api/v1/_elastic"),
            Some(Rule::Authenticated)
        );
        assert_eq!(rule_for(&Method::PATCH, "/api/v1/indexes"), None);
    }
}
