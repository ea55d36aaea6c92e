//! A hit's `fields` section: the values of the fields a client listed in `fields` or
//! `docvalue_fields`, always as arrays, dates in the requested `format`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use quarry_common::doc_mapper::{
    parse_date_time_integer, parse_date_time_number, parse_date_time_str, DocMapper, ResolvedField,
};
use quarry_config::LeafFieldType;
use quarry_searcher::SearchResult;
use serde_json::{json, Value};

use super::filter_path::FilterPath;
use crate::rest::AppState;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RequestedField {
    pub name: String,
    pub format: Option<DateFormat>,
}

/// The ES date formats Quarry renders.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DateFormat {
    /// `strict_date_optional_time` and its aliases: milliseconds, as ES stores dates.
    IsoMillis,
    /// `strict_date_optional_time_nanos`: as many fraction digits as the value has.
    IsoNanos,
    EpochMillis,
    EpochSecond,
    /// A java-time pattern such as `yyyy-MM-dd HH:mm:ss`, rendered in UTC.
    Pattern(time::format_description::OwnedFormatItem),
}

/// Translates the common java-time pattern letters into a `time` format description.
fn java_pattern(pattern: &str) -> Result<time::format_description::OwnedFormatItem, String> {
    let unsupported = |letters: &str| {
        format!("date format [{pattern}]: pattern letters `{letters}` are not supported (y, M, d, H, m, s, S, X, Z and quoted text are)")
    };
    let mut description = String::new();
    let characters: Vec<char> = pattern.chars().collect();
    let mut position = 0;
    while position < characters.len() {
        let letter = characters[position];
        let run = characters[position..]
            .iter()
            .take_while(|other| **other == letter)
            .count();
        let letters: String = characters[position..position + run].iter().collect();
        match letter {
            'y' | 'u' => description.push_str("[year]"),
            'M' if run == 2 => description.push_str("[month]"),
            'd' if run == 2 => description.push_str("[day]"),
            'H' if run == 2 => description.push_str("[hour]"),
            'm' if run == 2 => description.push_str("[minute]"),
            's' if run == 2 => description.push_str("[second]"),
            'S' if matches!(run, 1..=9) => {
                description.push_str(&format!("[subsecond digits:{run}]"))
            }
            // Rendered in UTC, so the zone is always `Z`.
            'X' | 'Z' => description.push('Z'),
            '\'' => {
                let end = characters[position + 1..]
                    .iter()
                    .position(|other| *other == '\'')
                    .ok_or_else(|| format!("date format [{pattern}]: unclosed quote"))?;
                let literal: String = characters[position + 1..position + 1 + end]
                    .iter()
                    .collect();
                description.push_str(&literal.replace('[', "[["));
                position += end + 2;
                continue;
            }
            other if other.is_ascii_alphabetic() => return Err(unsupported(&letters)),
            '[' => description.push_str("[["),
            other => {
                for _ in 0..run {
                    description.push(other);
                }
            }
        }
        position += run;
    }
    time::format_description::parse_owned::<2>(&description)
        .map_err(|error| format!("date format [{pattern}]: {error}"))
}

impl DateFormat {
    fn parse(name: &str) -> Result<DateFormat, String> {
        match name {
            "strict_date_optional_time"
            | "date_optional_time"
            | "strict_date_time"
            | "date_time" => Ok(DateFormat::IsoMillis),
            "strict_date_optional_time_nanos" => Ok(DateFormat::IsoNanos),
            "epoch_millis" => Ok(DateFormat::EpochMillis),
            "epoch_second" => Ok(DateFormat::EpochSecond),
            pattern => java_pattern(pattern).map(DateFormat::Pattern),
        }
    }

    fn render(&self, date_time: tantivy::DateTime) -> Value {
        let nanos = date_time.into_timestamp_nanos();
        match self {
            DateFormat::Pattern(format) => date_time
                .into_utc()
                .format(format)
                .map(Value::String)
                .unwrap_or_else(|_| Value::String(nanos.to_string())),
            DateFormat::EpochMillis => Value::String(nanos.div_euclid(1_000_000).to_string()),
            DateFormat::EpochSecond => Value::String(nanos.div_euclid(1_000_000_000).to_string()),
            DateFormat::IsoNanos => {
                Value::String(quarry_common::doc_mapper::format_rfc3339(date_time))
            }
            DateFormat::IsoMillis => {
                let millis = tantivy::DateTime::from_timestamp_millis(nanos.div_euclid(1_000_000));
                let text = quarry_common::doc_mapper::format_rfc3339(millis);
                // ES always writes the three millisecond digits.
                Value::String(match text.strip_suffix('Z') {
                    Some(head) if !head.contains('.') => format!("{head}.000Z"),
                    _ => text,
                })
            }
        }
    }
}

/// What the response shows beyond its fixed shape: each hit's `fields` section and how
/// much of its `_source`, and whether aggregation names carry their type.
#[derive(Clone, Debug, Default)]
pub(crate) struct RenderOptions {
    pub fields: Vec<RequestedField>,
    pub source: SourceFilter,
    /// The request's `aggs` when `typed_keys=true`, to name each result after its type.
    pub typed_keys: Option<Value>,
}

#[derive(Clone, Debug, Default)]
pub(crate) enum SourceFilter {
    #[default]
    Whole,
    Omitted,
    Paths(FilterPath),
}

fn path_list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(paths) => Ok(paths
            .split(',')
            .map(|path| path.trim().to_string())
            .collect()),
        Value::Array(paths) => paths
            .iter()
            .map(|path| {
                path.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`_source` paths must be strings, got {path}"))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "`_source` paths must be a string or a list, got {other}"
        )),
    }
}

/// `_source` as the body (`false`, `"a.*"`, `["a", "b"]`, `{"includes", "excludes"}`) or the
/// query string (`_source`, `_source_includes`, `_source_excludes`) gives it.
fn source_filter(
    params: &std::collections::HashMap<String, String>,
    body: &Value,
) -> Result<SourceFilter, String> {
    let from_params = |key: &str| -> Vec<String> {
        params
            .get(key)
            .map(|paths| {
                paths
                    .split(',')
                    .map(|path| path.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (includes, excludes) = match (&body["_source"], params.get("_source")) {
        (Value::Bool(false), _) => return Ok(SourceFilter::Omitted),
        (Value::Bool(true), _) => (Vec::new(), Vec::new()),
        (Value::Object(spec), _) => (
            path_list(spec.get("includes").unwrap_or(&Value::Null))?,
            path_list(spec.get("excludes").unwrap_or(&Value::Null))?,
        ),
        (Value::Null, Some(text)) if text == "false" => return Ok(SourceFilter::Omitted),
        (Value::Null, Some(text)) if text == "true" => (Vec::new(), Vec::new()),
        (Value::Null, Some(text)) => (path_list(&Value::String(text.clone()))?, Vec::new()),
        (Value::Null, None) => (Vec::new(), Vec::new()),
        (paths, _) => (path_list(paths)?, Vec::new()),
    };
    let includes = [includes, from_params("_source_includes")].concat();
    let excludes = [excludes, from_params("_source_excludes")].concat();
    if includes.is_empty() && excludes.is_empty() {
        return Ok(SourceFilter::Whole);
    }
    Ok(SourceFilter::Paths(FilterPath::from_lists(
        &includes, &excludes,
    )))
}

/// The hit options of a search request.
pub(crate) fn render_options(
    params: &std::collections::HashMap<String, String>,
    body: &Bytes,
) -> Result<RenderOptions, String> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let typed_keys = params
        .get("typed_keys")
        .is_some_and(|value| value.is_empty() || value == "true")
        .then(|| {
            json.get("aggs")
                .or_else(|| json.get("aggregations"))
                .cloned()
        })
        .flatten();
    Ok(RenderOptions {
        fields: requested_fields(body)?,
        source: source_filter(params, &json)?,
        typed_keys,
    })
}

/// `fields` and `docvalue_fields` of a search body, as names or `{field, format}` objects.
fn requested_fields(body: &Bytes) -> Result<Vec<RequestedField>, String> {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Ok(Vec::new());
    };
    let mut requested: Vec<RequestedField> = Vec::new();
    for key in ["fields", "docvalue_fields"] {
        for field in body[key].as_array().into_iter().flatten() {
            let Some(name) = field.as_str().or_else(|| field["field"].as_str()) else {
                continue;
            };
            let format = field["format"]
                .as_str()
                .map(DateFormat::parse)
                .transpose()?;
            if !requested.iter().any(|known| known.name == name) {
                requested.push(RequestedField {
                    name: name.to_string(),
                    format,
                });
            }
        }
    }
    Ok(requested)
}

/// The doc mappers of the indexes the hits come from, needed to read dates by their
/// mapping; empty when no date format was asked for.
pub(crate) async fn doc_mappers_for(
    state: &AppState,
    result: &SearchResult,
    fields: &[RequestedField],
) -> HashMap<String, Arc<DocMapper>> {
    let mut mappers = HashMap::new();
    if fields.iter().all(|field| field.format.is_none()) {
        return mappers;
    }
    for hit in &result.hits {
        if mappers.contains_key(&hit.index_id) {
            continue;
        }
        if let Ok(mapper) = state.search_service.doc_mapper_of(&hit.index_id).await {
            mappers.insert(hit.index_id.clone(), mapper);
        }
    }
    mappers
}

/// The value at a dotted path of a document: `a.b` is `{"a": {"b": …}}` or `{"a.b": …}`.
fn value_at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(value) = doc.get(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    value_at(doc.get(head)?, rest)
}

fn format_date(value: &Value, format: &DateFormat, doc_mapper: &DocMapper, path: &str) -> Value {
    let Ok(ResolvedField::Mapped(mapped)) = doc_mapper.resolve_field(path) else {
        return value.clone();
    };
    if mapped.leaf_type != LeafFieldType::Datetime {
        return value.clone();
    }
    let input_formats = mapped.mapping.effective_input_formats();
    let parsed = match value {
        Value::String(text) => parse_date_time_str(text, &input_formats),
        Value::Number(number) => match number.as_i64() {
            Some(whole) => parse_date_time_integer(whole, &input_formats),
            None => number
                .as_f64()
                .and_then(|float| parse_date_time_number(float, &input_formats)),
        },
        _ => None,
    };
    parsed
        .map(|date_time| format.render(date_time))
        .unwrap_or_else(|| value.clone())
}

/// The `fields` object of one hit.
pub(crate) fn render_fields(
    doc: &Value,
    fields: &[RequestedField],
    doc_mapper: Option<&DocMapper>,
) -> Value {
    let mut values = serde_json::Map::new();
    for field in fields {
        let items: Vec<Value> = match value_at(doc, &field.name) {
            Some(Value::Array(items)) => items.clone(),
            Some(value) => vec![value.clone()],
            None => continue,
        };
        let items = match (&field.format, doc_mapper) {
            (Some(format), Some(doc_mapper)) => items
                .iter()
                .map(|item| format_date(item, format, doc_mapper, &field.name))
                .collect(),
            _ => items,
        };
        values.insert(field.name.clone(), json!(items));
    }
    Value::Object(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_mapper() -> DocMapper {
        let config = quarry_config::IndexConfig::parse(
            br#"{"index_id": "logs", "doc_mapping": {"field_mappings": [
                {"name": "timestamp", "type": "datetime", "input_formats": ["rfc3339", "unix_timestamp"], "fast": true},
                {"name": "message", "type": "text"}],
                "timestamp_field": "timestamp"}}"#,
            quarry_config::ConfigFormat::Json,
        )
        .unwrap();
        DocMapper::new(&config)
    }

    #[test]
    fn dates_take_the_requested_format() {
        let body = Bytes::from_static(
            br#"{"fields": ["message", {"field": "timestamp", "format": "strict_date_optional_time_nanos"}],
                 "docvalue_fields": [{"field": "timestamp", "format": "epoch_millis"}]}"#,
        );
        let fields = requested_fields(&body).unwrap();
        // The first mention of a field wins, as its format is what the client reads.
        assert_eq!(fields.len(), 2);
        let mapper = doc_mapper();
        let doc = json!({"timestamp": "2026-01-02T03:04:05.123456789+01:00", "message": "hi"});
        assert_eq!(
            render_fields(&doc, &fields, Some(&mapper)),
            json!({"message": ["hi"], "timestamp": ["2026-01-02T02:04:05.123456789Z"]})
        );
        let cases = [
            (
                DateFormat::EpochMillis,
                json!(1767323045123_i64),
                json!("1767323045123"),
            ),
            (
                DateFormat::EpochSecond,
                json!(1767323045123_i64),
                json!("1767323045"),
            ),
            (
                DateFormat::IsoMillis,
                json!("2026-01-02T02:04:05Z"),
                json!("2026-01-02T02:04:05.000Z"),
            ),
            (
                DateFormat::IsoMillis,
                json!(1767323045),
                json!("2026-01-02T03:04:05.000Z"),
            ),
            (
                DateFormat::IsoNanos,
                json!("not a date"),
                json!("not a date"),
            ),
        ];
        for (format, value, expected) in cases {
            let fields = [RequestedField {
                name: "timestamp".to_string(),
                format: Some(format.clone()),
            }];
            assert_eq!(
                render_fields(&json!({"timestamp": value}), &fields, Some(&mapper)),
                json!({"timestamp": [expected]}),
                "{format:?} of {value}"
            );
        }
    }

    #[test]
    fn java_patterns_render_and_unknown_letters_are_refused_by_name() {
        let mapper = doc_mapper();
        let doc = json!({"timestamp": "2026-01-02T03:04:05.123Z"});
        for (pattern, expected) in [
            ("yyyy-MM-dd", "2026-01-02"),
            ("yyyy/MM/dd HH:mm:ss.SSS", "2026/01/02 03:04:05.123"),
            ("yyyy-MM-dd'T'HH:mm:ssX", "2026-01-02T03:04:05Z"),
        ] {
            let body = json!({"fields": [{"field": "timestamp", "format": pattern}]}).to_string();
            let fields = requested_fields(&Bytes::from(body)).unwrap();
            assert_eq!(
                render_fields(&doc, &fields, Some(&mapper)),
                json!({"timestamp": [expected]}),
                "{pattern}"
            );
        }
        let body =
            Bytes::from_static(br#"{"fields": [{"field": "timestamp", "format": "EEE yyyy"}]}"#);
        let error = requested_fields(&body).unwrap_err();
        assert!(
            error.contains("[EEE yyyy]") && error.contains("`EEE`"),
            "{error}"
        );
    }
}
