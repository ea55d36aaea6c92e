//! Aggregations in Elasticsearch syntax, computed by tantivy: leaves return intermediate
//! results, which the root merges into the final ones, so that results over many splits
//! equal results over one index.

use quarry_common::doc_mapper::{DocMapper, ResolvedField};
use serde_json::Value;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::tokenizer::TokenizerManager;

/// Bounds one request's aggregation state, per leaf and at the root.
const MEMORY_LIMIT_BYTES: u64 = 500_000_000;
const BUCKET_LIMIT: u32 = 65_000;

fn limits() -> AggregationLimitsGuard {
    AggregationLimitsGuard::new(Some(MEMORY_LIMIT_BYTES), Some(BUCKET_LIMIT))
}

/// Parses the request's `aggs`, pointing each `field` at the column that holds it (paths
/// in the dynamic catch-all field live under `_dynamic.`).
pub fn parse_aggregations(aggs: &Value, doc_mapper: &DocMapper) -> Result<Aggregations, String> {
    // GET requests carry the aggregations as a JSON string.
    let mut aggs = match aggs {
        Value::String(text) => serde_json::from_str(text)
            .map_err(|error| format!("`aggs` is not valid JSON: {error}"))?,
        other => other.clone(),
    };
    rewrite_fields(&mut aggs, doc_mapper)?;
    serde_json::from_value(aggs).map_err(|error| format!("invalid aggregation: {error}"))
}

fn rewrite_fields(aggs: &mut Value, doc_mapper: &DocMapper) -> Result<(), String> {
    let Some(named) = aggs.as_object_mut() else {
        return Err("`aggs` must be an object of named aggregations".to_string());
    };
    for (name, definition) in named.iter_mut() {
        let Some(definition) = definition.as_object_mut() else {
            return Err(format!("aggregation `{name}` must be an object"));
        };
        for (kind, body) in definition.iter_mut() {
            if kind == "aggs" || kind == "aggregations" {
                rewrite_fields(body, doc_mapper)?;
                continue;
            }
            if kind == "date_histogram" {
                if let Some(options) = body.as_object_mut() {
                    // Grafana asks for `epoch_millis` keys, which are what buckets carry anyway.
                    if options.get("format").and_then(Value::as_str) == Some("epoch_millis") {
                        options.remove("format");
                    }
                    if let Some(zone) = options.remove("time_zone") {
                        shift_for_time_zone(name, &zone, options)?;
                    }
                    // In UTC, calendar minutes, hours, days and weeks are fixed lengths.
                    if let Some(calendar) = options.remove("calendar_interval") {
                        let fixed = match calendar.as_str() {
                            Some("minute" | "1m") => "1m",
                            Some("hour" | "1h") => "1h",
                            Some("day" | "1d") => "1d",
                            Some("week" | "1w") => {
                                if options.contains_key("offset") {
                                    return Err(format!(
                                        "aggregation `{name}`: `offset` with calendar_interval week is not supported"
                                    ));
                                }
                                // Buckets start at the epoch plus the offset; the epoch was a
                                // Thursday and ES weeks start on Monday.
                                options.insert(
                                    "offset".to_string(),
                                    Value::String("4d".to_string()),
                                );
                                "7d"
                            }
                            _ => {
                                return Err(format!(
                                    "aggregation `{name}`: calendar_interval {calendar} is not supported yet (minute, hour, day and week are); use fixed_interval"
                                ))
                            }
                        };
                        options.insert(
                            "fixed_interval".to_string(),
                            Value::String(fixed.to_string()),
                        );
                    }
                }
            }
            let Some(field) = body.get_mut("field") else {
                continue;
            };
            let Some(path) = field.as_str() else {
                return Err(format!("aggregation `{name}`: `field` must be a string"));
            };
            let column = match doc_mapper
                .resolve_field(path)
                .map_err(|error| format!("aggregation `{name}`: {error}"))?
            {
                ResolvedField::Mapped(mapped) => {
                    if !mapped.mapping.fast {
                        return Err(format!("aggregation `{name}`: field `{path}` is not a fast field (set `fast: true` in its mapping)"));
                    }
                    mapped.path.clone()
                }
                ResolvedField::JsonPath {
                    field_name,
                    json_path,
                    fast,
                    ..
                } => {
                    if !fast {
                        return Err(format!(
                            "aggregation `{name}`: field `{path}` is not in a fast json field"
                        ));
                    }
                    if json_path.is_empty() {
                        field_name
                    } else {
                        format!("{field_name}.{json_path}")
                    }
                }
            };
            *field = Value::String(column);
        }
    }
    Ok(())
}

/// A fixed `time_zone` (`+02:00`) moves bucket boundaries to local midnight, which is an
/// `offset` of minus the zone's offset. Named zones change offset with daylight saving,
/// which fixed-length buckets cannot follow.
fn shift_for_time_zone(
    name: &str,
    zone: &Value,
    options: &mut serde_json::Map<String, Value>,
) -> Result<(), String> {
    let text = zone.as_str().unwrap_or_default();
    let minutes = match text {
        "UTC" | "Z" | "Etc/UTC" | "GMT" => 0,
        _ => {
            let invalid = || {
                format!(
                    "aggregation `{name}`: time_zone `{zone}` is not supported: give a fixed offset such as +02:00 (named zones are not supported yet)"
                )
            };
            let (sign, rest) = match text.as_bytes().first() {
                Some(b'+') => (1, &text[1..]),
                Some(b'-') => (-1, &text[1..]),
                _ => return Err(invalid()),
            };
            let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
            let hours: i64 = hours.parse().map_err(|_| invalid())?;
            let minutes: i64 = minutes.parse().map_err(|_| invalid())?;
            if hours > 18 || minutes > 59 {
                return Err(invalid());
            }
            sign * (hours * 60 + minutes)
        }
    };
    if minutes == 0 {
        return Ok(());
    }
    if options.contains_key("offset") {
        return Err(format!(
            "aggregation `{name}`: `offset` together with a non-UTC `time_zone` is not supported"
        ));
    }
    options.insert(
        "offset".to_string(),
        Value::String(format!("{}m", -minutes)),
    );
    Ok(())
}

pub(crate) fn leaf_collector(aggs: &Aggregations) -> DistributedAggregationCollector {
    DistributedAggregationCollector::from_aggs(
        aggs.clone(),
        AggContextParams::new(limits(), TokenizerManager::default()),
    )
}

/// Merges the leaves' intermediate results into the final JSON.
pub(crate) fn finalize(
    aggs: &Aggregations,
    partials: Vec<IntermediateAggregationResults>,
) -> Result<Value, String> {
    let mut merged = IntermediateAggregationResults::default();
    for partial in partials {
        merged
            .merge_fruits(partial)
            .map_err(|error| format!("merging aggregations failed: {error}"))?;
    }
    let results = merged
        .into_final_result(aggs.clone(), limits())
        .map_err(|error| format!("aggregation failed: {error}"))?;
    serde_json::to_value(results).map_err(|error| format!("aggregation results: {error}"))
}
