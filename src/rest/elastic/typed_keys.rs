//! `typed_keys=true`: aggregation names prefixed with their type (`sterms#by_service`), so
//! that clients such as elasticsearch-dsl know how to parse each result.

use serde_json::Value;

/// ES's type name of one aggregation result; `terms` is named after its key type.
fn type_name(kind: &str, result: &Value) -> String {
    match kind {
        "terms" => {
            let first_key = result["buckets"]
                .as_array()
                .and_then(|buckets| buckets.first())
                .map(|bucket| &bucket["key"]);
            match first_key {
                Some(Value::Number(number)) if number.is_f64() => "dterms",
                Some(Value::Number(_)) => "lterms",
                _ => "sterms",
            }
            .to_string()
        }
        "percentiles" => "tdigest_percentiles".to_string(),
        other => other.to_string(),
    }
}

/// Renames the results of `request_aggs` (and of their sub-aggregations, bucket by bucket).
pub(crate) fn apply(request_aggs: &Value, results: &mut Value) {
    let Some(named) = request_aggs.as_object() else {
        return;
    };
    for (name, definition) in named {
        let Some(kind) = definition.as_object().and_then(|definition| {
            definition
                .keys()
                .find(|key| !matches!(key.as_str(), "aggs" | "aggregations" | "meta"))
        }) else {
            continue;
        };
        let Some(mut result) = results
            .as_object_mut()
            .and_then(|results| results.remove(name))
        else {
            continue;
        };
        let sub_aggs = definition
            .get("aggs")
            .or_else(|| definition.get("aggregations"));
        if let Some(sub_aggs) = sub_aggs {
            match &mut result["buckets"] {
                Value::Array(buckets) => buckets
                    .iter_mut()
                    .for_each(|bucket| apply(sub_aggs, bucket)),
                Value::Object(buckets) => buckets
                    .values_mut()
                    .for_each(|bucket| apply(sub_aggs, bucket)),
                _ => {}
            }
        }
        let typed = format!("{}#{name}", type_name(kind, &result));
        if let Some(results) = results.as_object_mut() {
            results.insert(typed, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_take_their_type_down_the_tree() {
        let request = json!({
            "by_service": {"terms": {"field": "service"}, "aggs": {
                "p": {"percentiles": {"field": "duration"}},
                "per_minute": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}}
            }},
            "by_status": {"terms": {"field": "status"}},
            "avg_duration": {"avg": {"field": "duration"}}
        });
        let mut results = json!({
            "by_service": {"buckets": [{"key": "api", "doc_count": 1, "p": {"values": {}}, "per_minute": {"buckets": []}}]},
            "by_status": {"buckets": [{"key": 500, "doc_count": 1}]},
            "avg_duration": {"value": 2.0}
        });
        apply(&request, &mut results);
        assert_eq!(
            results,
            json!({
                "sterms#by_service": {"buckets": [{"key": "api", "doc_count": 1, "tdigest_percentiles#p": {"values": {}}, "date_histogram#per_minute": {"buckets": []}}]},
                "lterms#by_status": {"buckets": [{"key": 500, "doc_count": 1}]},
                "avg#avg_duration": {"value": 2.0}
            })
        );
    }
}
