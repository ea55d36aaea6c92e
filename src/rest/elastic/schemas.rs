//! OpenAPI schemas of the Elasticsearch-compatible API's bodies. The handlers build these
//! answers as JSON in Elasticsearch's shapes, which clients parse field by field; these
//! types state those shapes for the OpenAPI document (named `Es…` apart from the native
//! API's), and the schemathesis run in CI holds
//! every answer to them (`tests/openapi.rs`).

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// A search in Elasticsearch's query DSL. Other keys of Elasticsearch's search body are
/// accepted and ignored.
#[derive(ToSchema)]
pub(crate) struct EsSearchBody {
    /// A query DSL object (`match`, `bool`, `range`, `query_string`, `ids`, …).
    #[schema(value_type = Option<Object>)]
    query: Option<Value>,
    size: Option<u64>,
    from: Option<u64>,
    /// `"field"`, `{"field": "desc"}`, `{"field": {"order": "asc"}}` or a list of those.
    #[schema(value_type = Option<Object>)]
    sort: Option<Value>,
    /// Aggregations: `date_histogram`, `terms`, `range`, `avg`, `min`, `max`, `sum`, …
    #[schema(value_type = Option<Object>)]
    aggs: Option<Value>,
    /// `true`, `false`, a field list or `{"includes": […], "excludes": […]}`.
    #[serde(rename = "_source")]
    #[schema(value_type = Option<Object>)]
    source: Option<Value>,
    /// The previous page's last `sort` values.
    #[schema(value_type = Option<Vec<Object>>)]
    search_after: Option<Vec<Value>>,
    #[schema(value_type = Option<Object>)]
    track_total_hits: Option<Value>,
    #[schema(value_type = Option<Object>)]
    highlight: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    docvalue_fields: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    fields: Option<Vec<Value>>,
}

/// What `_count` takes: a query only.
#[derive(ToSchema)]
pub(crate) struct EsCountBody {
    #[schema(value_type = Option<Object>)]
    query: Option<Value>,
}

#[derive(ToSchema)]
pub(crate) struct EsShards {
    total: u64,
    successful: u64,
    skipped: u64,
    failed: u64,
}

#[derive(ToSchema)]
pub(crate) struct EsTotalHits {
    value: u64,
    /// Always `eq`: counts are exact.
    relation: String,
}

#[derive(ToSchema)]
pub(crate) struct EsHit {
    #[serde(rename = "_index")]
    index: String,
    /// The document's stable id: the client's `_id`, or the one Quarry gave it.
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_score")]
    score: Option<f64>,
    #[serde(rename = "_source")]
    #[schema(value_type = Option<Object>)]
    source: Option<Value>,
    #[schema(value_type = Option<Object>)]
    fields: Option<Value>,
    #[schema(value_type = Option<Object>)]
    highlight: Option<Value>,
    /// The hit's sort values and tiebreaker: a complete `search_after` cursor.
    #[schema(value_type = Option<Vec<Object>>)]
    sort: Option<Vec<Value>>,
}

#[derive(ToSchema)]
pub(crate) struct EsHits {
    total: EsTotalHits,
    max_score: Option<f64>,
    hits: Vec<EsHit>,
}

#[derive(ToSchema)]
pub(crate) struct EsSearchResponse {
    /// Milliseconds.
    took: u64,
    timed_out: bool,
    #[serde(rename = "_shards")]
    shards: EsShards,
    hits: EsHits,
    #[schema(value_type = Option<Object>)]
    aggregations: Option<Value>,
    /// Set when the search opened a scroll.
    #[serde(rename = "_scroll_id")]
    scroll_id: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct EsCountResponse {
    count: u64,
    #[serde(rename = "_shards")]
    shards: EsShards,
}

/// One answer per search of the request, in order: a search response, or an error object
/// with its `status`.
#[derive(ToSchema)]
pub(crate) struct EsMultiSearchResponse {
    took: u64,
    #[schema(value_type = Vec<Object>)]
    responses: Vec<Value>,
}

/// One item per action line, `{"index": {...}}` or `{"create": {...}}`, each with
/// `_index`, `_id`, `status`, and `result` or `error`.
#[derive(ToSchema)]
pub(crate) struct EsBulkResponse {
    took: u64,
    /// Whether any item failed.
    errors: bool,
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
}

#[derive(ToSchema)]
pub(crate) struct EsGetResponse {
    #[serde(rename = "_index")]
    index: String,
    #[serde(rename = "_id")]
    id: String,
    found: bool,
    #[serde(rename = "_source")]
    #[schema(value_type = Option<Object>)]
    source: Option<Value>,
}

#[derive(ToSchema)]
pub(crate) struct EsClearScrollResponse {
    succeeded: bool,
    num_freed: u64,
}

/// Continues a scroll: the id, and optionally a new keep-alive (`1m`).
#[derive(ToSchema)]
pub(crate) struct EsScrollBody {
    scroll_id: Option<String>,
    #[schema(pattern = "^[0-9]+(d|h|m|s|ms|micros|nanos)$")]
    scroll: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct EsClearScrollBody {
    /// One id (or several, comma-separated), a list, or `_all`.
    scroll_id: Option<EsScrollIds>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub(crate) enum EsScrollIds {
    One(String),
    Many(Vec<String>),
}

#[derive(ToSchema)]
pub(crate) struct EsFieldCapsResponse {
    indices: Vec<String>,
    /// Field name → type → capabilities.
    #[schema(value_type = Object)]
    fields: BTreeMap<String, Value>,
}

#[derive(ToSchema)]
pub(crate) struct EsResolvedIndex {
    name: String,
    attributes: Vec<String>,
}

#[derive(ToSchema)]
pub(crate) struct EsResolveIndexResponse {
    indices: Vec<EsResolvedIndex>,
    #[schema(value_type = Vec<Object>)]
    aliases: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    data_streams: Vec<Value>,
}
