use serde::{Deserialize, Serialize};

/// `start_offset + max_hits` may not exceed this: deep pages belong to `search_after`.
pub const MAX_HITS_CAP: usize = 10_000;

fn default_max_hits() -> usize {
    20
}

/// The native search API's request (GET query parameters or POST JSON body).
#[derive(
    Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams,
)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchRequest {
    #[serde(default)]
    pub query: String,
    /// Seconds since the epoch, inclusive.
    #[serde(default)]
    pub start_timestamp: Option<i64>,
    /// Seconds since the epoch, exclusive.
    #[serde(default)]
    pub end_timestamp: Option<i64>,
    #[serde(default = "default_max_hits")]
    pub max_hits: usize,
    #[serde(default)]
    pub start_offset: usize,
    /// `field` sorts ascending, `-field` descending; `_score` by relevance. Default:
    /// the timestamp field, newest first.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// Fields that unqualified terms search, instead of the index's default fields.
    #[serde(default, deserialize_with = "comma_list")]
    #[param(value_type = Option<String>)]
    #[schema(value_type = Option<FieldList>)]
    pub search_field: Option<Vec<String>>,
    /// Text fields to return highlighted fragments of (`<b>` around matched terms).
    #[serde(default, deserialize_with = "comma_list")]
    #[param(value_type = Option<String>)]
    #[schema(value_type = Option<FieldList>)]
    pub snippet_fields: Option<Vec<String>>,
    /// Splits not searched within this many milliseconds are left out and listed in
    /// `errors` (default 30 s).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Aggregations in Elasticsearch syntax (POST bodies).
    #[serde(default, alias = "aggregations")]
    #[param(ignore)]
    pub aggs: Option<serde_json::Value>,
    /// An Elasticsearch DSL query, used instead of `query` (set by the ES-compatible API).
    #[serde(skip)]
    pub es_query: Option<serde_json::Value>,
    /// Where the previous page ended: the last hit's sort value and, to break ties, its
    /// `split:segment:doc` (as the ES API's `sort` values give them).
    #[serde(default)]
    #[param(ignore)]
    pub search_after: Option<Vec<serde_json::Value>>,
    /// Highlighting options of the ES API: tags around matches, fragment length.
    #[serde(skip)]
    pub highlight: Option<HighlightOptions>,
    /// Restricts the search to these splits (a scroll's snapshot), when set.
    #[serde(skip)]
    pub only_splits: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

/// Field names as `comma_list` reads them, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum FieldList {
    /// Comma-separated.
    Text(String),
    List(Vec<String>),
}

/// Accepts `"a,b"` (query strings) as well as `["a", "b"]` (JSON bodies).
fn comma_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(deserializer)? {
        None => None,
        Some(Raw::Text(text)) => Some(
            text.split(',')
                .map(|part| part.trim().to_string())
                .filter(|part| !part.is_empty())
                .collect(),
        ),
        Some(Raw::List(list)) => Some(list),
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResponse {
    /// Exact number of matching documents.
    pub num_hits: u64,
    /// The documents, each as it was sent when its index keeps the source.
    #[schema(value_type = Vec<Object>)]
    pub hits: Vec<Box<serde_json::value::RawValue>>,
    /// With `snippet_fields`: one object per hit, field → fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippets: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregations: Option<serde_json::Value>,
    /// The cursor after the last hit: send it as `search_after` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_search_after: Option<Vec<serde_json::Value>>,
    pub elapsed_time_micros: u64,
    /// Splits that could not be searched; their hits are missing from the response.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighlightOptions {
    pub pre_tag: String,
    pub post_tag: String,
    pub max_chars: usize,
}
