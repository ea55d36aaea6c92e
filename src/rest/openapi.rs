//! The OpenAPI 3.1 document of the native and Elasticsearch-compatible APIs, served at
//! `/api/v1/openapi.json`. Operations and schemas come from the handlers' own annotations
//! and types; what every operation shares (credentials, error answers, the privilege it
//! needs) is added here from the router's access rules (`auth::RULES`), so the document
//! cannot disagree with what the node enforces.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDocument, Ref, ResponseBuilder};
use utoipa::OpenApi;

use super::auth::{rule_for, Rule};
use super::elastic::EsErrorBody;
use super::error::ErrorBody;
use super::{api_keys, health, indexes, ingest, search};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quarry",
        description = "Log search: the native REST API and the Elasticsearch-compatible API under `/api/v1/_elastic`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health::livez,
        health::readyz,
        health::metrics,
        health::cluster,
        openapi_json,
        indexes::create_index,
        indexes::list_indexes,
        indexes::describe_index,
        indexes::delete_index,
        indexes::list_splits,
        indexes::create_delete_task,
        indexes::list_delete_tasks,
        ingest::ingest,
        super::loki::push,
        super::otlp::export_logs,
        search::search_get,
        search::search_post,
        api_keys::create_native,
        api_keys::list_native,
        api_keys::invalidate_native,
    ),
    components(schemas(ErrorBody, EsErrorBody))
)]
struct NativeApiDoc;

/// Paths served by the same handler as another, documented as copies of it.
const ALIASES: &[(&str, &str)] = &[
    ("/api/v1/_elastic/", "/api/v1/_elastic"),
    (
        "/api/v1/_elastic/{index_id}/_mappings",
        "/api/v1/_elastic/{index_id}/_mapping",
    ),
];

const API_KEY_SCHEME: &str = "api_key";
const BASIC_SCHEME: &str = "basic";

/// The document, built once: it depends on nothing but the code.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&document()).unwrap_or_else(|error| {
        // Serialising our own types cannot fail; if it ever did, say so in the answer.
        serde_json::json!({ "error": format!("the OpenAPI document failed to serialise: {error}") })
            .to_string()
    })
});

/// This document, in OpenAPI 3.1.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI document.", body = Object)),
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

pub(crate) fn document() -> OpenApiDocument {
    let mut document = NativeApiDoc::openapi();
    document.merge(super::elastic::ElasticApiDoc::openapi());
    add_aliases(&mut document);
    add_security_schemes(&mut document);
    add_error_response_components(&mut document);
    for (path, item) in document.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let rule = rule_for(&method_of(&method), path);
            describe_access(operation, rule);
            add_error_responses(operation, path.starts_with("/api/v1/_elastic"), rule);
        }
    }
    document
}

fn add_aliases(document: &mut OpenApiDocument) {
    for (alias, canonical) in ALIASES {
        let Some(mut item) = document.paths.paths.get(*canonical).cloned() else {
            continue;
        };
        for (_, operation) in operations_mut(&mut item) {
            // Operation ids must stay unique across the document.
            if let Some(id) = &operation.operation_id {
                operation.operation_id = Some(format!("{id}_alias"));
            }
        }
        document.paths.paths.insert(alias.to_string(), item);
    }
}

fn add_security_schemes(document: &mut OpenApiDocument) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        API_KEY_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`ApiKey <encoded>`, where `encoded` is what key creation answers (base64 of `id:api_key`).",
        ))),
    );
    components.add_security_scheme(
        BASIC_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("The key's id as user name and the key as password."))
                .build(),
        ),
    );
}

/// The operations of a path item, with their methods.
fn operations_mut(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

fn method_of(method: &HttpMethod) -> axum::http::Method {
    match method {
        HttpMethod::Get => axum::http::Method::GET,
        HttpMethod::Put => axum::http::Method::PUT,
        HttpMethod::Post => axum::http::Method::POST,
        HttpMethod::Delete => axum::http::Method::DELETE,
        HttpMethod::Head => axum::http::Method::HEAD,
        HttpMethod::Patch => axum::http::Method::PATCH,
        HttpMethod::Options => axum::http::Method::OPTIONS,
        HttpMethod::Trace => axum::http::Method::TRACE,
    }
}

/// States the credential and privilege an operation needs, from its access rule.
fn describe_access(operation: &mut Operation, rule: Option<Rule>) {
    use utoipa::openapi::security::SecurityRequirement;
    let needs = match rule {
        Some(Rule::Open) | None => {
            // An empty list overrides nothing in utoipa; one empty requirement says "none".
            operation.security = Some(vec![SecurityRequirement::default()]);
            "Needs no credential.".to_string()
        }
        Some(rule) => {
            operation.security = Some(vec![
                SecurityRequirement::new(API_KEY_SCHEME, Vec::<String>::new()),
                SecurityRequirement::new(BASIC_SCHEME, Vec::<String>::new()),
            ]);
            match rule {
                Rule::Authenticated => "Needs any valid API key.".to_string(),
                Rule::Cluster(action) => {
                    format!("Needs the `{}` cluster privilege.", privilege_name(action))
                }
                Rule::IndexPath(action) => format!(
                    "Needs the `{}` privilege on the indexes the path names.",
                    privilege_name(action)
                ),
                Rule::Handler(action) => format!(
                    "Needs the `{}` privilege on the indexes the request names; listings show only those.",
                    privilege_name(action)
                ),
                Rule::Open => unreachable!("handled above"),
            }
        }
    };
    operation.description = Some(match operation.description.take() {
        Some(description) if !description.is_empty() => format!("{description}\n\n{needs}"),
        _ => needs,
    });
}

fn privilege_name(action: impl std::fmt::Debug) -> String {
    let name = format!("{action:?}");
    let mut snake = String::new();
    for (position, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && position > 0 {
            snake.push('_');
        }
        snake.push(character.to_ascii_lowercase());
    }
    snake
}

/// The error answers every operation may give, in its API's error shape: one response
/// object per API and status in the components, referenced by every operation that does
/// not document the status itself.
const ERROR_STATUSES: &[(&str, &str)] = &[
    (
        "400",
        "The request is malformed; the message names what is wrong.",
    ),
    (
        "401",
        "No credential, or one that is unknown, revoked or expired.",
    ),
    ("403", "The credential lacks the privilege."),
    ("404", "No such index or resource."),
    ("405", "The path does not take this method."),
    ("413", "The body is over the node's limit."),
    (
        "429",
        "Over a limit (tenant limit, back-pressure): retry after `Retry-After` seconds.",
    ),
    ("500", "The node failed; its log says why."),
    (
        "503",
        "The node is starting, shutting down, or cannot reach what it needs.",
    ),
];

fn error_response_name(elastic: bool, status: &str) -> String {
    let api = if elastic { "Elastic" } else { "Native" };
    format!("{api}Error{status}")
}

fn add_error_response_components(document: &mut OpenApiDocument) {
    let components = document.components.get_or_insert_with(Default::default);
    for elastic in [false, true] {
        let schema = if elastic { "EsErrorBody" } else { "ErrorBody" };
        for (status, description) in ERROR_STATUSES {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                )
                .build();
            components
                .responses
                .insert(error_response_name(elastic, status), response.into());
        }
    }
}

fn add_error_responses(operation: &mut Operation, elastic: bool, rule: Option<Rule>) {
    let open = matches!(rule, Some(Rule::Open) | None);
    for (status, _) in ERROR_STATUSES {
        if operation.responses.responses.contains_key(*status)
            || (open && matches!(*status, "401" | "403"))
        {
            continue;
        }
        let reference = Ref::from_response_name(error_response_name(elastic, status));
        operation
            .responses
            .responses
            .insert(status.to_string(), reference.into());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every public route and method the node serves, as the access rules list them.
    fn served_operations() -> BTreeSet<(String, String)> {
        super::super::auth::RULES
            .iter()
            // Node-to-node calls and the web UI's page are not the public API.
            .filter(|(_, path, _)| {
                !path.starts_with("/internal/")
                    && *path != "/"
                    && !super::super::ui::PAGE_PATHS.contains(path)
            })
            .map(|(method, path, _)| (method.to_string(), path.to_string()))
            .collect()
    }

    fn documented_operations() -> BTreeSet<(String, String)> {
        let mut document = document();
        let mut operations = BTreeSet::new();
        for (path, item) in document.paths.paths.iter_mut() {
            for (method, _) in operations_mut(item) {
                let method = method_of(&method);
                // HEAD follows GET in the access rules.
                if method == axum::http::Method::HEAD {
                    continue;
                }
                operations.insert((method.to_string(), path.clone()));
            }
        }
        operations
    }

    #[test]
    fn every_served_route_is_documented_and_nothing_else() {
        let served = served_operations();
        let documented = documented_operations();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let not_served: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in the OpenAPI document: {undocumented:?}"
        );
        assert!(
            not_served.is_empty(),
            "documented but not served: {not_served:?}"
        );
    }

    #[test]
    fn operations_state_their_credentials_and_errors() {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT.as_str()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let livez = &document["paths"]["/health/livez"]["get"];
        assert_eq!(livez["security"], serde_json::json!([{}]), "{livez}");
        let search = &document["paths"]["/api/v1/_elastic/{index_id}/_search"]["post"];
        assert!(
            search["description"]
                .as_str()
                .unwrap()
                .contains("`read` privilege"),
            "{search}"
        );
        assert_eq!(
            search["responses"]["401"]["$ref"],
            "#/components/responses/ElasticError401"
        );
        assert_eq!(
            document["components"]["responses"]["ElasticError401"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/EsErrorBody"
        );
        let ingest = &document["paths"]["/api/v1/{index_id}/ingest"]["post"];
        // Its own 429, with its own words.
        assert_eq!(
            ingest["responses"]["429"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(livez["responses"].get("401").is_none(), "{livez}");
        assert!(document["components"]["schemas"]["IndexConfig"].is_object());
        assert!(document["components"]["securitySchemes"]["api_key"].is_object());
    }
}
