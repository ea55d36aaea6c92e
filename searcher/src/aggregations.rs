//! Aggregations in Elasticsearch syntax, computed by tantivy: leaves return intermediate
//! results, which the root merges into the final ones, so that results over many splits
//! equal results over one index.

use quarry_common::doc_mapper::{DocMapper, ResolvedField};
use quarry_common::split::VolumeCounts;
use quarry_config::LeafFieldType;
use quarry_query::query_builder::TimestampWindow;

use crate::date_histogram::{HistogramCollector, HistogramShape};
use crate::time_buckets::{self, named_zone, Unit, FINE_INTERVAL};
use serde_json::Value;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

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
        let has_sub_aggregations =
            definition.contains_key("aggs") || definition.contains_key("aggregations");
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
                        match named_zone(zone.as_str().unwrap_or_default()) {
                            Some(Ok(_)) => {
                                count_fine_buckets_for_zone(name, options, has_sub_aggregations)?
                            }
                            Some(Err(reason)) => {
                                return Err(format!("aggregation `{name}`: {reason}"))
                            }
                            None => shift_for_time_zone(name, &zone, options)?,
                        }
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
                            Some(unit)
                                if Unit::calendar(unit).is_some_and(Unit::varies_in_length) =>
                            {
                                // Months and years vary in length: days are folded into them
                                // after the merge (`fold_calendar_buckets`).
                                check_foldable(
                                    name,
                                    &format!("calendar_interval {calendar}"),
                                    options,
                                    has_sub_aggregations,
                                )?;
                                "1d"
                            }
                            _ => {
                                return Err(format!(
                                    "aggregation `{name}`: calendar_interval {calendar} is not supported (minute, hour, day, week, month, quarter and year are)"
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
        // Grafana sends `utc` in lower case.
        text if ["UTC", "Z", "Etc/UTC", "GMT", "+00:00", "-00:00"]
            .iter()
            .any(|utc| utc.eq_ignore_ascii_case(text)) =>
        {
            0
        }
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
            // `+02:00`, `+0200` or `+2`.
            let (hours, minutes) = match rest.split_once(':') {
                Some(split) => split,
                None if rest.len() == 4 => rest.split_at(2),
                None => (rest, "0"),
            };
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

/// The request's `aggs` as JSON: GET requests carry them as a JSON string.
fn request_aggs_json(request_aggs: &Value) -> Value {
    match request_aggs {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// Buckets folded at the root carry only counts: their sub-aggregations and an `offset`
/// could not follow the fold.
fn check_foldable(
    name: &str,
    what: &str,
    options: &serde_json::Map<String, Value>,
    has_sub_aggregations: bool,
) -> Result<(), String> {
    if has_sub_aggregations {
        return Err(format!(
            "aggregation `{name}`: sub-aggregations under {what} are not supported yet"
        ));
    }
    if options.contains_key("offset") {
        return Err(format!(
            "aggregation `{name}`: `offset` with {what} is not supported"
        ));
    }
    Ok(())
}

/// With a named `time_zone`, leaves count fine UTC buckets that the root folds into the
/// requested interval in that zone (`fold_calendar_buckets`).
fn count_fine_buckets_for_zone(
    name: &str,
    options: &mut serde_json::Map<String, Value>,
    has_sub_aggregations: bool,
) -> Result<(), String> {
    let calendar = options.remove("calendar_interval");
    let unit = match (&calendar, options.get("fixed_interval")) {
        (Some(calendar), _) => calendar.as_str().and_then(Unit::calendar),
        (None, Some(fixed)) => fixed.as_str().and_then(Unit::fixed),
        (None, None) => None,
    }
    .ok_or_else(|| {
        format!(
            "aggregation `{name}`: a named time_zone needs a calendar_interval or fixed_interval"
        )
    })?;
    if !unit.folds_from_fine_buckets() {
        // Minutes and short intervals start on the same instants in every zone offset of
        // whole quarter hours; counting them in UTC is already right.
        if let Some(calendar) = calendar {
            options.insert("calendar_interval".to_string(), calendar);
        }
        return Ok(());
    }
    check_foldable(
        name,
        "a named time_zone (a fixed offset such as +02:00 works)",
        options,
        has_sub_aggregations,
    )?;
    options.insert(
        "fixed_interval".to_string(),
        Value::String(FINE_INTERVAL.to_string()),
    );
    Ok(())
}

/// Folds the fine buckets that month, quarter and year histograms, and histograms in a
/// named time zone, were computed with into the requested buckets, walking the request
/// and the results side by side.
pub(crate) fn fold_calendar_buckets(request_aggs: &Value, results: &mut Value) {
    let request_aggs = request_aggs_json(request_aggs);
    let Some(named) = request_aggs.as_object() else {
        return;
    };
    for (name, definition) in named {
        let Some(result) = results.get_mut(name) else {
            continue;
        };
        let histogram = &definition["date_histogram"];
        let calendar = histogram["calendar_interval"]
            .as_str()
            .and_then(Unit::calendar);
        let fixed = histogram["fixed_interval"].as_str().and_then(Unit::fixed);
        let zone = histogram["time_zone"]
            .as_str()
            .and_then(named_zone)
            .and_then(Result::ok);
        let min_doc_count = histogram["min_doc_count"].as_u64().unwrap_or(0);
        match (zone, calendar.or(fixed)) {
            (Some(zone), Some(unit)) if unit.folds_from_fine_buckets() => {
                time_buckets::fold(result, unit, &zone, min_doc_count)
            }
            (None, Some(unit)) if unit.varies_in_length() => {
                time_buckets::fold(result, unit, &jiff::tz::TimeZone::UTC, min_doc_count)
            }
            _ => {}
        }
        for key in ["aggs", "aggregations"] {
            if let Some(sub_aggs) = definition.get(key) {
                // Sub-aggregation results sit in each bucket of this one.
                let buckets = result["buckets"].as_array_mut();
                for bucket in buckets.into_iter().flatten() {
                    fold_calendar_buckets(sub_aggs, bucket);
                }
            }
        }
    }
}

/// Turns tantivy's `top_hits` results into Elasticsearch's shape: `hits.total` from the
/// enclosing bucket, and sort values decoded from the column encoding into the field's
/// type (dates in nanoseconds, as hit sort values are).
pub(crate) fn shape_top_hits(
    request_aggs: &Value,
    results: &mut Value,
    doc_mapper: &DocMapper,
    bucket_doc_count: Option<u64>,
) {
    let request_aggs = request_aggs_json(request_aggs);
    let Some(named) = request_aggs.as_object() else {
        return;
    };
    for (name, definition) in named {
        let Some(result) = results.get_mut(name) else {
            continue;
        };
        if let Some(top_hits) = definition.get("top_hits") {
            let sort_types: Vec<Option<LeafFieldType>> = top_hits["sort"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|key| {
                    let field = match key {
                        Value::String(field) => Some(field.as_str()),
                        Value::Object(object) => object.keys().next().map(String::as_str),
                        _ => None,
                    }?;
                    match doc_mapper.resolve_field(field).ok()? {
                        ResolvedField::Mapped(mapped) => Some(mapped.leaf_type),
                        ResolvedField::JsonPath { .. } => None,
                    }
                })
                .collect();
            let hits: Vec<Value> = result["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|hit| {
                    let sort: Vec<Value> = hit["sort"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(position, value)| {
                            decode_sort_value(value, sort_types.get(position).copied().flatten())
                        })
                        .collect();
                    serde_json::json!({"_score": null, "sort": sort, "fields": hit["docvalue_fields"].clone()})
                })
                .collect();
            let total = bucket_doc_count.unwrap_or(hits.len() as u64);
            *result = serde_json::json!({
                "hits": {"total": {"value": total, "relation": "eq"}, "max_score": null, "hits": hits}
            });
            continue;
        }
        for key in ["aggs", "aggregations"] {
            if let Some(sub_aggs) = definition.get(key) {
                let buckets: Vec<&mut Value> = match &mut result["buckets"] {
                    Value::Array(buckets) => buckets.iter_mut().collect(),
                    // Keyed buckets (ranges, filters) come as an object.
                    Value::Object(buckets) => buckets.values_mut().collect(),
                    _ => Vec::new(),
                };
                for bucket in buckets {
                    let doc_count = bucket["doc_count"].as_u64();
                    shape_top_hits(sub_aggs, bucket, doc_mapper, doc_count);
                }
            }
        }
    }
}

fn decode_sort_value(value: &Value, leaf_type: Option<LeafFieldType>) -> Value {
    use tantivy::columnar::MonotonicallyMappableToU64;
    let Some(encoded) = value.as_u64() else {
        return value.clone();
    };
    match leaf_type {
        Some(LeafFieldType::I64) | Some(LeafFieldType::Datetime) => {
            serde_json::json!(i64::from_u64(encoded))
        }
        Some(LeafFieldType::F64) => serde_json::json!(f64::from_u64(encoded)),
        Some(LeafFieldType::Bool) => serde_json::json!(encoded != 0),
        _ => value.clone(),
    }
}

pub(crate) fn tantivy_collector(aggs: &Aggregations) -> DistributedAggregationCollector {
    DistributedAggregationCollector::from_aggs(
        aggs.clone(),
        AggContextParams::new(limits(), TokenizerManager::default()),
    )
}

/// The collector of a leaf's aggregations: ours for a log-volume histogram (a date
/// histogram, optionally by a keyword field, read straight from the columns), tantivy's
/// for everything else.
pub(crate) fn leaf_collector(aggs: &Aggregations, doc_mapper: &DocMapper) -> LeafAggCollector {
    leaf_collector_within(aggs, doc_mapper, None, None)
}

/// Like `leaf_collector`, for a query whose every match lies in `window` on the index's
/// timestamp field: a histogram on that field then counts in a table of the window's
/// buckets only. With the split's `volume` file, a histogram on its timestamp field
/// also reads the time runs of its segments.
pub(crate) fn leaf_collector_within(
    aggs: &Aggregations,
    doc_mapper: &DocMapper,
    window: Option<TimestampWindow>,
    volume: Option<&VolumeCounts>,
) -> LeafAggCollector {
    match HistogramShape::of(aggs).and_then(|shape| shape.collector(doc_mapper)) {
        Some(mut histogram) => {
            let on_timestamp = doc_mapper
                .timestamp_field()
                .is_some_and(|timestamp| timestamp.path == histogram.field());
            if let Some(window) = window.filter(|_| on_timestamp) {
                histogram = histogram.within(window);
            }
            if let Some(volume) =
                volume.filter(|volume| volume.timestamp_field == histogram.field())
            {
                histogram = histogram.with_time_runs(volume.time_runs.clone());
            }
            LeafAggCollector::Histogram(histogram)
        }
        None => LeafAggCollector::Tantivy(tantivy_collector(aggs)),
    }
}

/// Whether a leaf collects `aggs` with its own histogram collector (for the benchmark).
pub fn is_collected_natively(aggs: &Aggregations, doc_mapper: &DocMapper) -> bool {
    matches!(
        leaf_collector(aggs, doc_mapper),
        LeafAggCollector::Histogram(_)
    )
}

/// Count and intermediate aggregations of `query` on one thread, collected as a leaf
/// collects them (`natively`, with the split's `volume` file if it has one) or by
/// tantivy's collector (for the benchmark).
pub fn collect_at_leaf(
    searcher: &tantivy::Searcher,
    query: &dyn tantivy::query::Query,
    aggs: &Aggregations,
    doc_mapper: &DocMapper,
    natively: bool,
    volume: Option<&VolumeCounts>,
) -> tantivy::Result<(u64, IntermediateAggregationResults)> {
    let collector = if natively {
        leaf_collector_within(aggs, doc_mapper, None, volume)
    } else {
        LeafAggCollector::Tantivy(tantivy_collector(aggs))
    };
    let (count, results) = searcher.search(query, &(tantivy::collector::Count, collector))?;
    Ok((count as u64, results))
}

pub(crate) enum LeafAggCollector {
    Histogram(HistogramCollector),
    Tantivy(DistributedAggregationCollector),
}

// One per segment searched, never in a collection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum LeafAggSegmentCollector {
    Histogram(<HistogramCollector as Collector>::Child),
    Tantivy(<DistributedAggregationCollector as Collector>::Child),
}

impl Collector for LeafAggCollector {
    type Fruit = IntermediateAggregationResults;
    type Child = LeafAggSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<LeafAggSegmentCollector> {
        Ok(match self {
            LeafAggCollector::Histogram(collector) => {
                LeafAggSegmentCollector::Histogram(collector.for_segment(segment_ord, segment)?)
            }
            LeafAggCollector::Tantivy(collector) => {
                LeafAggSegmentCollector::Tantivy(collector.for_segment(segment_ord, segment)?)
            }
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<tantivy::Result<IntermediateAggregationResults>>,
    ) -> tantivy::Result<IntermediateAggregationResults> {
        match self {
            LeafAggCollector::Histogram(collector) => collector.merge_fruits(fruits),
            LeafAggCollector::Tantivy(collector) => collector.merge_fruits(fruits),
        }
    }
}

impl SegmentCollector for LeafAggSegmentCollector {
    type Fruit = tantivy::Result<IntermediateAggregationResults>;

    fn collect(&mut self, doc: DocId, score: Score) {
        match self {
            LeafAggSegmentCollector::Histogram(collector) => collector.collect(doc, score),
            LeafAggSegmentCollector::Tantivy(collector) => collector.collect(doc, score),
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        match self {
            LeafAggSegmentCollector::Histogram(collector) => collector.collect_block(docs),
            LeafAggSegmentCollector::Tantivy(collector) => collector.collect_block(docs),
        }
    }

    fn harvest(self) -> tantivy::Result<IntermediateAggregationResults> {
        match self {
            LeafAggSegmentCollector::Histogram(collector) => collector.harvest(),
            LeafAggSegmentCollector::Tantivy(collector) => collector.harvest(),
        }
    }
}

/// Merges the leaves' intermediate results into the final JSON.
pub fn finalize(
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fold_calendar_buckets;

    fn day(date: &str, doc_count: u64) -> serde_json::Value {
        let date = time::Date::parse(
            date,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        json!({"key": (date.midnight().assume_utc().unix_timestamp() * 1000) as f64, "doc_count": doc_count})
    }

    #[test]
    fn fixed_time_zones_become_offsets() {
        let offset_of = |zone: &str| {
            let mut options = serde_json::Map::new();
            super::shift_for_time_zone("h", &json!(zone), &mut options)
                .map(|()| options.get("offset").cloned())
        };
        assert_eq!(offset_of("+02:00"), Ok(Some(json!("-120m"))));
        assert_eq!(offset_of("-0130"), Ok(Some(json!("90m"))));
        assert_eq!(offset_of("+5"), Ok(Some(json!("-300m"))));
        for utc in ["utc", "UTC", "Z", "+00:00"] {
            assert_eq!(offset_of(utc), Ok(None), "{utc}");
        }
        let error = offset_of("Europe/Paris").unwrap_err();
        assert!(error.contains("Europe/Paris"), "{error}");
        assert!(offset_of("+25:00").is_err());
    }

    #[test]
    fn days_fold_into_quarters_and_years_in_nested_aggregations() {
        let request = json!({"by_service": {"terms": {"field": "service"}, "aggs": {
            "per_quarter": {"date_histogram": {"field": "ts", "calendar_interval": "quarter"}},
            "per_year": {"date_histogram": {"field": "ts", "calendar_interval": "1y"}}}}});
        let days = json!([
            day("2025-12-31", 1),
            day("2026-01-01", 2),
            day("2026-03-31", 3),
            day("2026-04-01", 4)
        ]);
        let mut results = json!({"by_service": {"buckets": [
            {"key": "api", "doc_count": 10, "per_quarter": {"buckets": days}, "per_year": {"buckets": days}}]}});
        fold_calendar_buckets(&request, &mut results);
        let bucket = &results["by_service"]["buckets"][0];
        let keys_and_counts = |name: &str| -> Vec<(String, u64)> {
            bucket[name]["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b["key_as_string"].as_str().unwrap().to_string(),
                        b["doc_count"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(
            keys_and_counts("per_quarter"),
            vec![
                ("2025-10-01T00:00:00Z".to_string(), 1),
                ("2026-01-01T00:00:00Z".to_string(), 5),
                ("2026-04-01T00:00:00Z".to_string(), 4)
            ]
        );
        assert_eq!(
            keys_and_counts("per_year"),
            vec![
                ("2025-01-01T00:00:00Z".to_string(), 1),
                ("2026-01-01T00:00:00Z".to_string(), 9)
            ]
        );
    }
}
