//! What ES clients ask before they search: who we are, how the cluster is, which indexes
//! and fields exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use quarry_common::api_keys::IndexAction;

use crate::auth::Principal;
use quarry_config::{FieldMapping, FieldType, IndexConfig, LeafFieldType, TokenizerName};
use quarry_searcher::pattern::wildcard_match;
use quarry_searcher::JsonFieldPath;
use serde_json::{json, Map, Value};
use tantivy::columnar::ColumnType;

use super::es_error;
use crate::index_service::IndexServiceError;
use crate::rest::AppState;

/// The Elasticsearch version we answer as: clients pick their protocol from it.
const ES_VERSION: &str = "8.13.0";

/// The cluster's name and the Elasticsearch version Quarry answers as.
#[utoipa::path(
    method(get, head),
    path = "/api/v1/_elastic",
    tag = "elasticsearch",
    responses((status = 200, description = "Node and version.", body = Object)),
)]
pub(crate) async fn info(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.cluster.snapshot();
    Json(json!({
        "name": snapshot.self_node_id,
        "cluster_name": snapshot.cluster_id,
        "cluster_uuid": snapshot.cluster_id,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "quarry",
            "lucene_version": "9.10.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
            "distribution": "quarry",
            "quarry_version": env!("CARGO_PKG_VERSION"),
        },
        "tagline": "You Know, for Search",
    }))
    .into_response()
}

/// The cluster's health as one line (`format=json`: a JSON array of one row). Shippers
/// such as rsyslog's `omelasticsearch` ask it before sending.
#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_cat/health",
    tag = "elasticsearch",
    params(
        ("format" = Option<String>, Query, pattern = "^(json|text|txt)$", description = "`json` for a JSON array, `text` (the default) for a line."),
        ("v" = Option<String>, Query, description = "A header line first (present with any value, as in Elasticsearch)."),
    ),
    responses((status = 200, description = "The cluster's health.", content(
        (String = "text/plain"),
        (Vec<Object> = "application/json"),
    ))),
)]
pub(crate) async fn cat_health(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let snapshot = state.cluster.snapshot();
    let failed = state.ingest_service.failed_shards().len();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let nodes = snapshot.ready_nodes.len().to_string();
    let row = vec![
        ("epoch", now.to_string()),
        (
            "timestamp",
            format!(
                "{:02}:{:02}:{:02}",
                now / 3600 % 24,
                now / 60 % 60,
                now % 60
            ),
        ),
        ("cluster", snapshot.cluster_id.clone()),
        (
            "status",
            if failed == 0 { "green" } else { "yellow" }.to_string(),
        ),
        ("node.total", nodes.clone()),
        ("node.data", nodes),
        ("unassign", failed.to_string()),
    ];
    let columns: Vec<&str> = row.iter().map(|(column, _)| *column).collect();
    cat_table(&columns, vec![row], &params)
}

#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_cluster/health",
    tag = "elasticsearch",
    responses((status = 200, description = "`green`, or `yellow` when a shard failed.", body = Object)),
)]
pub(crate) async fn cluster_health(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.cluster.snapshot();
    let failed = state.ingest_service.failed_shards().len();
    Json(json!({
        "cluster_name": snapshot.cluster_id,
        "status": if failed == 0 { "green" } else { "yellow" },
        "timed_out": false,
        "number_of_nodes": snapshot.ready_nodes.len(),
        "number_of_data_nodes": snapshot.ready_nodes.len(),
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": failed,
    }))
    .into_response()
}

fn index_error(error: IndexServiceError, index_id: &str) -> Response {
    match error {
        IndexServiceError::Metastore(quarry_common::metastore::MetastoreError::IndexNotFound(
            _,
        )) => es_error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index_id}]"),
        ),
        other => es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &other.to_string(),
        ),
    }
}

/// ES type, searchable, aggregatable.
fn es_type(mapping: &FieldMapping) -> (&'static str, bool, bool) {
    let leaf = mapping.field_type.leaf().unwrap_or(LeafFieldType::Json);
    let es_type = match leaf {
        LeafFieldType::Text if mapping.effective_tokenizer() == TokenizerName::Raw => "keyword",
        LeafFieldType::Text => "text",
        LeafFieldType::U64 => "unsigned_long",
        LeafFieldType::I64 => "long",
        LeafFieldType::F64 => "double",
        LeafFieldType::Bool => "boolean",
        LeafFieldType::Datetime => "date_nanos",
        LeafFieldType::Ip => "ip",
        LeafFieldType::Bytes => "binary",
        // As in ES, an object is searched and aggregated through its paths, not whole.
        LeafFieldType::Json => return ("object", false, false),
    };
    (es_type, mapping.indexed, mapping.fast)
}

/// `properties` of an ES mapping, nesting object fields.
fn properties(mappings: &[FieldMapping]) -> Map<String, Value> {
    mappings
        .iter()
        .map(|mapping| {
            let value = match mapping.field_type {
                FieldType::Object => {
                    json!({"type": "object", "properties": properties(&mapping.field_mappings)})
                }
                _ => json!({"type": es_type(mapping).0}),
            };
            (mapping.name.clone(), value)
        })
        .collect()
}

fn mapping_of(config: &IndexConfig) -> Value {
    let doc_mapping = &config.doc_mapping;
    json!({
        "dynamic": match doc_mapping.mode {
            quarry_config::Mode::Dynamic => json!(true),
            quarry_config::Mode::Strict => json!("strict"),
            quarry_config::Mode::Lenient => json!(false),
        },
        "properties": properties(&doc_mapping.field_mappings),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/_elastic/{index_id}/_mapping",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "One index id.")),
    responses((status = 200, description = "The index's mapping, by index name.", body = Object)),
)]
pub(crate) async fn mapping(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Response {
    match state.index_service.describe_index(&index_id).await {
        Ok(description) => {
            Json(json!({ index_id: {"mappings": mapping_of(&description.index_config)} }))
                .into_response()
        }
        Err(error) => index_error(error, &index_id),
    }
}

/// `GET /{index}` (`indices.get`) and `HEAD /{index}` (`indices.exists`).
#[utoipa::path(
    method(get, head),
    path = "/api/v1/_elastic/{index_id}",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "One index id.")),
    responses((status = 200, description = "Mappings and settings, by index name.", body = Object)),
)]
pub(crate) async fn index(
    State(state): State<Arc<AppState>>,
    Path(index_id): Path<String>,
) -> Response {
    match state.index_service.describe_index(&index_id).await {
        Ok(description) => Json(json!({ index_id.clone(): {
            "aliases": {},
            "mappings": mapping_of(&description.index_config),
            "settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0", "provided_name": index_id}},
        }}))
        .into_response(),
        Err(error) => index_error(error, &index_id),
    }
}

/// `PUT /{index}`: Quarry indexes need a doc mapping in Quarry's config shape.
/// Indexes are created with a Quarry index config (`POST /api/v1/indexes`).
#[utoipa::path(
    put,
    path = "/api/v1/_elastic/{index_id}",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "An index id.")),
    responses((status = 400, description = "Always refused, with the way to do it.", body = super::EsErrorBody)),
)]
pub(crate) async fn create_index_refused(Path(index_id): Path<String>) -> Response {
    es_error(
        StatusCode::BAD_REQUEST,
        "illegal_argument_exception",
        &format!("creating index [{index_id}] through the Elasticsearch API is not supported: create it with POST /api/v1/indexes and a Quarry index config"),
    )
}

/// The fields of the indexes matching a pattern, with their types.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/_elastic/{index_id}/_field_caps",
    tag = "elasticsearch",
    params(("index_id" = String, Path, description = "An index id, a pattern (`logs-*`) or a comma list."), ("fields" = Option<String>, Query, description = "Field names or patterns, comma-separated (default `*`).")),
    responses((status = 200, description = "Field capabilities.", body = super::schemas::EsFieldCapsResponse)),
)]
pub(crate) async fn field_caps(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(index_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    // Grafana and Kibana ask for the fields of index patterns (`logs-*`).
    let visible = principal.index_filter(IndexAction::ViewMetadata);
    let indexes = match state
        .search_service
        .resolve_indexes(&index_id, &visible)
        .await
    {
        Ok(indexes) => indexes,
        Err(error) => return resolve_error(error),
    };
    // The 8.x and 9.x clients send `fields` in the body, as a string or a list.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let listed: Option<Vec<String>> = match &body["fields"] {
        Value::String(fields) => Some(vec![fields.clone()]),
        Value::Array(fields) => Some(
            fields
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => params.get("fields").map(|fields| vec![fields.clone()]),
    };
    let patterns: Vec<String> = listed
        .map(|lists| {
            lists
                .iter()
                .flat_map(|list| list.split(','))
                .map(str::trim)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| vec!["*".to_string()]);
    let wanted = |name: &str| patterns.iter().any(|pattern| wildcard_match(pattern, name));
    // A field mapped differently in two indexes gets one entry per type, as in ES.
    let mut fields: Map<String, Value> = Map::new();
    let mut failures: Vec<Value> = Vec::new();
    for index in &indexes {
        let leaf_fields = index.index_config.doc_mapping.leaf_fields();
        for (path, mapping) in &leaf_fields {
            if wanted(path) {
                let (es_type, searchable, aggregatable) = es_type(mapping);
                add_capability(&mut fields, path, es_type, searchable, aggregatable);
            }
        }
        // Paths inside json fields are not in the mapping: the splits know them.
        match state.search_service.json_field_paths(index).await {
            Ok(paths) => {
                for found in paths {
                    let mapped = leaf_fields.iter().any(|(path, _)| *path == found.path);
                    if !mapped && wanted(&found.path) {
                        let es_type = json_path_es_type(&found);
                        add_capability(&mut fields, &found.path, es_type, found.indexed, true);
                    }
                }
            }
            Err(error) => failures.push(json!({
                "indices": [index.index_id()],
                "failure": {"type": "exception", "reason": error.to_string()},
            })),
        }
    }
    let names: Vec<&str> = indexes.iter().map(|index| index.index_id()).collect();
    let mut response = json!({"indices": names, "fields": fields});
    if !failures.is_empty() {
        response["failed_indices"] = json!(failures.len());
        response["failures"] = json!(failures);
    }
    Json(response).into_response()
}

/// Records that `path` has `es_type` in one more index. Across indexes a capability holds
/// only where it holds everywhere.
fn add_capability(
    fields: &mut Map<String, Value>,
    path: &str,
    es_type: &str,
    searchable: bool,
    aggregatable: bool,
) {
    let types = fields.entry(path.to_string()).or_insert_with(|| json!({}));
    let Some(types) = types.as_object_mut() else {
        return;
    };
    let capability = types.entry(es_type.to_string()).or_insert_with(|| {
        json!({"type": es_type, "metadata_field": false, "searchable": searchable, "aggregatable": aggregatable})
    });
    capability["searchable"] = json!(capability["searchable"] == json!(true) && searchable);
    capability["aggregatable"] = json!(capability["aggregatable"] == json!(true) && aggregatable);
}

/// The ES type of a value type found in a json field. Strings are `keyword` when the
/// field keeps them whole, `text` when it tokenizes them; either way the fast column makes
/// them aggregatable.
fn json_path_es_type(found: &JsonFieldPath) -> &'static str {
    match found.column_type {
        ColumnType::Str if found.tokenizer == TokenizerName::Raw => "keyword",
        ColumnType::Str => "text",
        ColumnType::I64 => "long",
        ColumnType::U64 => "unsigned_long",
        ColumnType::F64 => "double",
        ColumnType::Bool => "boolean",
        ColumnType::DateTime => "date_nanos",
        ColumnType::IpAddr => "ip",
        ColumnType::Bytes => "binary",
    }
}

fn resolve_error(error: quarry_searcher::SearchError) -> Response {
    match error {
        quarry_searcher::SearchError::IndexNotFound(name) => es_error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{name}]"),
        ),
        error => es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &error.to_string(),
        ),
    }
}

/// Which indexes an expression (comma list, `*` patterns, `-exclusions`) names, resolved
/// exactly as searches resolve it.
#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_resolve/index/{expression}",
    tag = "elasticsearch",
    params(("expression" = String, Path, description = "Index names, patterns or a comma list.")),
    responses((status = 200, description = "The matching indexes.", body = super::schemas::EsResolveIndexResponse)),
)]
pub(crate) async fn resolve_index(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(expression): Path<String>,
) -> Response {
    let visible = principal.index_filter(IndexAction::ViewMetadata);
    match state
        .search_service
        .resolve_indexes(&expression, &visible)
        .await
    {
        Ok(indexes) => {
            let indices: Vec<Value> = indexes
                .iter()
                .map(|index| json!({"name": index.index_id(), "attributes": ["open"]}))
                .collect();
            Json(json!({"indices": indices, "aliases": [], "data_streams": []})).into_response()
        }
        Err(error) => resolve_error(error),
    }
}

/// One line per index (`format=json`: a JSON array).
#[utoipa::path(
    get,
    path = "/api/v1/_elastic/_cat/indices",
    tag = "elasticsearch",
    params(
        ("format" = Option<String>, Query, pattern = "^(json|text|txt)$", description = "`json` for a JSON array, `text` (the default) for lines."),
        ("v" = Option<String>, Query, description = "A header line first (present with any value, as in Elasticsearch)."),
    ),
    responses((status = 200, description = "The indexes.", content(
        (String = "text/plain"),
        (Vec<Object> = "application/json"),
    ))),
)]
pub(crate) async fn cat_indices(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let indexes = match state.index_service.list_indexes().await {
        Ok(indexes) => indexes,
        Err(error) => {
            return es_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &error.to_string(),
            )
        }
    };
    let mut rows = Vec::new();
    for index in indexes
        .into_iter()
        .filter(|index| principal.allows_index(IndexAction::ViewMetadata, index.index_id()))
    {
        let Ok(description) = state.index_service.describe_index(index.index_id()).await else {
            continue;
        };
        let size = description.size_published_splits_bytes.to_string();
        rows.push(vec![
            ("health", "green".to_string()),
            ("status", "open".to_string()),
            ("index", description.index_id),
            ("uuid", description.index_uid),
            ("pri", "1".to_string()),
            ("rep", "0".to_string()),
            ("docs.count", description.num_published_docs.to_string()),
            ("docs.deleted", "0".to_string()),
            ("store.size", size.clone()),
            ("pri.store.size", size),
        ]);
    }
    cat_table(&CAT_INDICES_COLUMNS, rows, &params)
}

const CAT_INDICES_COLUMNS: [&str; 10] = [
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
];

/// A `_cat` answer: space-separated lines (a header first with `v`), or with
/// `format=json` an array of objects, one per row.
fn cat_table(
    columns: &[&str],
    rows: Vec<Vec<(&'static str, String)>>,
    params: &HashMap<String, String>,
) -> Response {
    match params.get("format").map(String::as_str) {
        Some("json") => {
            let objects: Vec<Value> = rows
                .into_iter()
                .map(|row| {
                    Value::Object(
                        row.into_iter()
                            .map(|(column, value)| (column.to_string(), Value::String(value)))
                            .collect(),
                    )
                })
                .collect();
            return Json(Value::Array(objects)).into_response();
        }
        None | Some("text") | Some("txt") => {}
        Some(other) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!("unsupported format [{other}]: use json or text"),
            )
        }
    }
    let mut text = String::new();
    if params.contains_key("v") {
        text.push_str(&columns.join(" "));
        text.push('\n');
    }
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(|(_, value)| value.as_str()).collect();
        text.push_str(&cells.join(" "));
        text.push('\n');
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response()
}
