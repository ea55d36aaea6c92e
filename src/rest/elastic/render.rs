//! The search response as written. It is typed rather than a JSON tree so that each hit's
//! `_source` goes out as the text the document was indexed from: a tree would re-spell its
//! numbers (`1.50`, integers past 2^64) and escapes and drop its spacing, where
//! Elasticsearch returns `_source` byte for byte.

use std::collections::HashMap;
use std::sync::Arc;

use quarry_common::doc_mapper::DocMapper;
use quarry_searcher::SearchResult;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::fields::{render_fields, RenderOptions, SourceFilter};

#[derive(Serialize)]
pub(super) struct SearchResponseBody {
    took: u64,
    timed_out: bool,
    #[serde(rename = "_shards")]
    shards: Value,
    pub hits: HitsBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregations: Option<Value>,
    #[serde(rename = "_scroll_id", skip_serializing_if = "Option::is_none")]
    pub scroll_id: Option<String>,
    /// Each response of `_msearch` carries its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Serialize)]
pub(super) struct HitsBody {
    total: Value,
    max_score: Option<f64>,
    pub hits: Vec<HitBody>,
}

#[derive(Serialize)]
pub(super) struct HitBody {
    #[serde(rename = "_index")]
    index: String,
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_score")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    highlight: Option<Value>,
    #[serde(rename = "_source", skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort: Option<Vec<Value>>,
}

pub(super) fn render(
    result: SearchResult,
    options: &RenderOptions,
    doc_mappers: &HashMap<String, Arc<DocMapper>>,
) -> SearchResponseBody {
    let hits = result
        .hits
        .into_iter()
        .map(|hit| {
            // The tiebreaker makes the values a complete `search_after` cursor.
            let sort = hit.search_after();
            let fields = (!options.fields.is_empty()).then(|| {
                let doc_mapper = doc_mappers.get(&hit.index_id).map(Arc::as_ref);
                let doc = serde_json::from_str(hit.doc.get()).unwrap_or(Value::Null);
                render_fields(&doc, &options.fields, doc_mapper)
            });
            let highlight = match hit.snippets {
                Some(Value::Object(snippets)) => {
                    let highlight: serde_json::Map<String, Value> = snippets
                        .into_iter()
                        .filter(|(_, fragments)| {
                            fragments
                                .as_array()
                                .is_some_and(|fragments| !fragments.is_empty())
                        })
                        .collect();
                    (!highlight.is_empty()).then_some(Value::Object(highlight))
                }
                _ => None,
            };
            HitBody {
                id: hit.external_id.clone().unwrap_or_else(|| {
                    format!("{}:{}:{}", hit.split_id, hit.segment_ord, hit.doc_id)
                }),
                index: hit.index_id,
                score: None,
                fields,
                highlight,
                source: filtered_source(&options.source, hit.doc),
                sort,
            }
        })
        .collect();
    let aggregations = result.aggregations.map(|mut aggregations| {
        integer_date_keys(&mut aggregations);
        if let Some(request_aggs) = &options.typed_keys {
            super::typed_keys::apply(request_aggs, &mut aggregations);
        }
        aggregations
    });
    let failed = result.errors.len().min(result.num_splits);
    SearchResponseBody {
        took: result.elapsed_time_micros / 1000,
        timed_out: false,
        shards: json!({"total": result.num_splits, "successful": result.num_splits - failed, "skipped": 0, "failed": result.errors.len()}),
        hits: HitsBody {
            total: json!({"value": result.num_hits, "relation": "eq"}),
            max_score: None,
            hits,
        },
        aggregations,
        scroll_id: None,
        status: None,
    }
}

/// The source as sent, unless the request filtered it: then, as in Elasticsearch, the
/// kept parts are written anew.
fn filtered_source(filter: &SourceFilter, doc: Box<RawValue>) -> Option<Box<RawValue>> {
    match filter {
        SourceFilter::Whole => Some(doc),
        SourceFilter::Omitted => None,
        SourceFilter::Paths(paths) => {
            let parsed: Value = serde_json::from_str(doc.get()).ok()?;
            serde_json::value::to_raw_value(&paths.apply(parsed)).ok()
        }
    }
}

/// Date buckets carry epoch milliseconds; Elasticsearch writes them as integers.
fn integer_date_keys(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.contains_key("key_as_string") {
                if let Some(key) = object
                    .get("key")
                    .and_then(Value::as_f64)
                    .filter(|key| key.fract() == 0.0)
                {
                    object.insert("key".to_string(), json!(key as i64));
                }
            }
            object.values_mut().for_each(integer_date_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(integer_date_keys),
        _ => {}
    }
}
