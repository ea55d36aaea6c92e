//! `filter_path`: clients ask for the parts of a response they read (`hits.hits._source`,
//! `-took`), which saves them parsing the rest. Paths are dot-separated; `*` matches within
//! a key and `**` any number of keys; a leading `-` excludes.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::rest::elastic::es_error;

#[derive(Clone, Debug, Default)]
pub(crate) struct FilterPath {
    includes: Vec<Vec<String>>,
    excludes: Vec<Vec<String>>,
}

impl FilterPath {
    /// `_source` filtering uses the same path language, given as lists.
    pub(crate) fn from_lists(includes: &[String], excludes: &[String]) -> FilterPath {
        let split = |paths: &[String]| -> Vec<Vec<String>> {
            paths
                .iter()
                .map(|path| path.split('.').map(str::to_string).collect())
                .collect()
        };
        FilterPath {
            includes: split(includes),
            excludes: split(excludes),
        }
    }

    fn parse(text: &str) -> FilterPath {
        let mut filter = FilterPath {
            includes: Vec::new(),
            excludes: Vec::new(),
        };
        for path in text
            .split(',')
            .map(str::trim)
            .filter(|path| !path.is_empty())
        {
            let (target, path) = match path.strip_prefix('-') {
                Some(path) => (&mut filter.excludes, path),
                None => (&mut filter.includes, path),
            };
            target.push(path.split('.').map(str::to_string).collect());
        }
        filter
    }

    pub(crate) fn apply(&self, value: Value) -> Value {
        let value = if self.includes.is_empty() {
            value
        } else {
            let patterns: Vec<&[String]> = self.includes.iter().map(Vec::as_slice).collect();
            include(value, &patterns).unwrap_or_else(|| Value::Object(Map::new()))
        };
        let patterns: Vec<&[String]> = self.excludes.iter().map(Vec::as_slice).collect();
        exclude(value, &patterns)
    }
}

fn segment_matches(pattern: &str, key: &str) -> bool {
    quarry_searcher::pattern::wildcard_match(pattern, key)
}

/// What remains of `value` under the patterns; arrays are filtered element by element
/// (ES paths do not name array positions).
fn include(value: Value, patterns: &[&[String]]) -> Option<Value> {
    if patterns.iter().any(|pattern| pattern.is_empty()) {
        return Some(value);
    }
    match value {
        Value::Object(object) => {
            let mut kept = Map::new();
            for (key, child) in object {
                let mut next: Vec<&[String]> = Vec::new();
                for pattern in patterns {
                    if pattern[0] == "**" {
                        // `**` matches no key (try the rest here) or this key (stay on `**`).
                        if pattern.len() > 1 && segment_matches(&pattern[1], &key) {
                            next.push(&pattern[2..]);
                        }
                        next.push(pattern);
                    } else if segment_matches(&pattern[0], &key) {
                        next.push(&pattern[1..]);
                    }
                }
                if next.is_empty() {
                    continue;
                }
                if let Some(child) = include(child, &next) {
                    kept.insert(key, child);
                }
            }
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .into_iter()
                .filter_map(|item| include(item, patterns))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        // A leaf reached while patterns still go deeper: not what was asked for.
        _ => None,
    }
}

fn exclude(value: Value, patterns: &[&[String]]) -> Value {
    if patterns.is_empty() {
        return value;
    }
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter_map(|(key, child)| {
                    let mut next: Vec<&[String]> = Vec::new();
                    for pattern in patterns {
                        if segment_matches(&pattern[0], &key) {
                            if pattern.len() == 1 {
                                return None;
                            }
                            next.push(&pattern[1..]);
                        }
                    }
                    Some((key, exclude(child, &next)))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| exclude(item, patterns))
                .collect(),
        ),
        leaf => leaf,
    }
}

/// Applies `filter_path` to JSON responses of the Elasticsearch-compatible API.
pub(crate) async fn apply_filter_path(request: Request, next: Next) -> Response {
    let filter = request.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "filter_path")
            .map(|(_, value)| FilterPath::parse(&value))
    });
    let response = next.run(request).await;
    let Some(filter) = filter else {
        return response;
    };
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return es_error(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &format!("reading the response to filter it: {error}"),
            )
        }
    };
    // Big responses (thousands of hits) are parsed off the async threads.
    let filter_bytes = move |bytes: axum::body::Bytes| match serde_json::from_slice::<Value>(&bytes)
    {
        Ok(value) => Ok(filter.apply(value)),
        Err(_) => Err(bytes),
    };
    let filtered = if bytes.len() > 1 << 20 {
        match tokio::task::spawn_blocking(move || filter_bytes(bytes)).await {
            Ok(filtered) => filtered,
            Err(error) => {
                return es_error(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &format!("filtering the response failed: {error}"),
                )
            }
        }
    } else {
        filter_bytes(bytes)
    };
    match filtered {
        Ok(filtered) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            (parts, axum::Json(filtered)).into_response()
        }
        Err(bytes) => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filtered(filter_path: &str, value: Value) -> Value {
        FilterPath::parse(filter_path).apply(value)
    }

    #[test]
    fn includes_excludes_and_wildcards() {
        let response = json!({
            "took": 3,
            "hits": {"total": {"value": 2, "relation": "eq"}, "hits": [
                {"_id": "a", "_source": {"msg": "x", "level": "INFO"}},
                {"_id": "b", "_source": {"msg": "y"}}
            ]},
            "aggregations": {"per_minute": {"buckets": [{"key": 1, "doc_count": 2}]}}
        });
        assert_eq!(
            filtered("hits.hits._id,took", response.clone()),
            json!({"took": 3, "hits": {"hits": [{"_id": "a"}, {"_id": "b"}]}})
        );
        assert_eq!(
            filtered("hits.total.value", response.clone()),
            json!({"hits": {"total": {"value": 2}}})
        );
        assert_eq!(
            filtered("**.doc_count", response.clone()),
            json!({"aggregations": {"per_minute": {"buckets": [{"doc_count": 2}]}}})
        );
        assert_eq!(
            filtered("hits.hits._sou*.level", response.clone()),
            json!({"hits": {"hits": [{"_source": {"level": "INFO"}}]}})
        );
        assert_eq!(
            filtered("-hits,-took", response.clone()),
            json!({"aggregations": {"per_minute": {"buckets": [{"key": 1, "doc_count": 2}]}}})
        );
        assert_eq!(filtered("nothing.here", response), json!({}));
    }
}
