//! Loki's push API payloads (`POST /loki/api/v1/push`), as Promtail, Grafana Alloy and
//! Loki's clients send them: protobuf compressed with snappy (Loki's `push.proto`), or
//! JSON. Each entry becomes one document: its timestamp, its line, its stream's labels as
//! fields, and its structured metadata as an object.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The document fields an entry's own parts take; labels with these names are prefixed
/// with `label_` so that they cannot overwrite them.
pub(crate) const TIMESTAMP_FIELD: &str = "timestamp";
pub(crate) const LINE_FIELD: &str = "line";
pub(crate) const METADATA_FIELD: &str = "structured_metadata";

/// The config of an index made on first push when no index template matches its name.
/// Its documents are built from Loki entries, not sent as JSON, so hits are rebuilt from
/// stored fields (timestamps in RFC 3339) rather than returned as a stored source.
pub(crate) const DEFAULT_TEMPLATE: &str = "template_id: loki-push
index_id_patterns: ['*']
doc_mapping:
  mode: dynamic
  store_source: false
  field_mappings:
    - {name: timestamp, type: datetime, input_formats: [unix_timestamp_nanos], fast: true, fast_precision: nanoseconds}
    - {name: line, type: text}
    - {name: structured_metadata, type: json}
  timestamp_field: timestamp
search_settings:
  default_search_fields: [line]
";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PushError {
    #[error("the body is not snappy-compressed protobuf: {0}")]
    Snappy(String),
    #[error("the snappy body would decompress to {0} bytes, over the request limit")]
    TooLarge(usize),
    #[error("the body is not a Loki PushRequest: {0}")]
    Protobuf(String),
    #[error("the body is not Loki's JSON push format: {0}")]
    Json(String),
    #[error("stream {stream}: {reason}")]
    Stream { stream: usize, reason: String },
}

// Loki's `push.proto` (package logproto), field numbers as published.
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    /// Prometheus' label syntax: `{job="varlogs", host="web-1"}`.
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    line: String,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Loki's JSON push body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonStream {
    /// The stream's labels.
    stream: BTreeMap<String, String>,
    /// `["<unix nanoseconds as a string>", "<line>"]`, optionally with a third element:
    /// structured metadata, an object of strings.
    #[schema(value_type = Vec<Vec<Object>>)]
    values: Vec<Vec<Value>>,
}

/// One entry, ready to become a document.
#[derive(Debug, PartialEq)]
pub(crate) struct Entry {
    pub timestamp_nanos: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// One stream: its labels and its entries.
#[derive(Debug, PartialEq)]
pub(crate) struct Stream {
    pub labels: Vec<(String, String)>,
    pub entries: Vec<Entry>,
}

/// Decodes a snappy-compressed (block format) protobuf `PushRequest`. The decompressed
/// size is read from the header and checked against `limit` before anything is allocated.
pub(crate) fn decode_protobuf(body: &[u8], limit: usize) -> Result<Vec<Stream>, PushError> {
    let length =
        snap::raw::decompress_len(body).map_err(|error| PushError::Snappy(error.to_string()))?;
    if length > limit {
        return Err(PushError::TooLarge(length));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|error| PushError::Snappy(error.to_string()))?;
    let request = <PushRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|error| PushError::Protobuf(error.to_string()))?;
    request
        .streams
        .into_iter()
        .enumerate()
        .map(|(position, stream)| {
            let labels = parse_labels(&stream.labels).map_err(|reason| PushError::Stream {
                stream: position,
                reason,
            })?;
            let entries = stream
                .entries
                .into_iter()
                .map(|entry| {
                    let timestamp = entry.timestamp.unwrap_or_default();
                    let nanos = timestamp
                        .seconds
                        .checked_mul(1_000_000_000)
                        .and_then(|nanos| nanos.checked_add(i64::from(timestamp.nanos)))
                        .ok_or_else(|| PushError::Stream {
                            stream: position,
                            reason: format!(
                                "timestamp {}s {}ns is out of range",
                                timestamp.seconds, timestamp.nanos
                            ),
                        })?;
                    Ok(Entry {
                        timestamp_nanos: nanos,
                        line: entry.line,
                        metadata: entry
                            .structured_metadata
                            .into_iter()
                            .map(|pair| (pair.name, pair.value))
                            .collect(),
                    })
                })
                .collect::<Result<Vec<Entry>, PushError>>()?;
            Ok(Stream { labels, entries })
        })
        .collect()
}

/// Decodes Loki's JSON push body.
pub(crate) fn decode_json(body: &[u8]) -> Result<Vec<Stream>, PushError> {
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|error| PushError::Json(error.to_string()))?;
    push.streams
        .into_iter()
        .enumerate()
        .map(|(position, stream)| {
            let error = |reason: String| PushError::Stream {
                stream: position,
                reason,
            };
            let entries = stream
                .values
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    json_entry(value).map_err(|reason| error(format!("value {index}: {reason}")))
                })
                .collect::<Result<Vec<Entry>, PushError>>()?;
            Ok(Stream {
                labels: stream.stream.into_iter().collect(),
                entries,
            })
        })
        .collect()
}

fn json_entry(value: Vec<Value>) -> Result<Entry, String> {
    let mut parts = value.into_iter();
    let (Some(timestamp), Some(line)) = (parts.next(), parts.next()) else {
        return Err("expected [\"<unix nanoseconds>\", \"<line>\"]".to_string());
    };
    let timestamp_nanos = match &timestamp {
        Value::String(text) => text.parse::<i64>().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("the timestamp {timestamp} is not unix nanoseconds"))?;
    let Value::String(line) = line else {
        return Err(format!("the line {line} is not a string"));
    };
    let metadata = match parts.next() {
        None => Vec::new(),
        Some(Value::Object(object)) => object
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(value) => Ok((name, value)),
                other => Err(format!(
                    "structured metadata `{name}` is {other}, not a string"
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("structured metadata {other} is not an object")),
    };
    if parts.next().is_some() {
        return Err("an entry has at most three elements".to_string());
    }
    Ok(Entry {
        timestamp_nanos,
        line,
        metadata,
    })
}

/// Prometheus' label syntax, `{name="value", …}`, with `\"`, `\\` and `\n` escapes.
pub(crate) fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(|| format!("labels `{text}` are not of the form {{name=\"value\", …}}"))?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.peek().copied() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(format!("labels `{text}`: expected name=\"value\""));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return Err(format!(
                "labels `{text}`: the value of `{name}` is not quoted"
            ));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(escaped @ ('"' | '\\')) => value.push(escaped),
                    _ => return Err(format!("labels `{text}`: bad escape in `{name}`")),
                },
                Some(c) => value.push(c),
                None => {
                    return Err(format!(
                        "labels `{text}`: the value of `{name}` is not closed"
                    ))
                }
            }
        }
        labels.push((name, value));
    }
}

/// One NDJSON document per entry. Returns the body and the number of documents.
pub(crate) fn to_ndjson(streams: &[Stream]) -> (Vec<u8>, usize) {
    let mut ndjson = Vec::new();
    let mut count = 0;
    for stream in streams {
        let mut labels = Map::new();
        for (name, value) in &stream.labels {
            let field = if [TIMESTAMP_FIELD, LINE_FIELD, METADATA_FIELD].contains(&name.as_str()) {
                format!("label_{name}")
            } else {
                name.clone()
            };
            labels.insert(field, Value::String(value.clone()));
        }
        for entry in &stream.entries {
            let mut document = Map::new();
            document.insert(TIMESTAMP_FIELD.to_string(), entry.timestamp_nanos.into());
            document.insert(LINE_FIELD.to_string(), Value::String(entry.line.clone()));
            document.extend(labels.clone());
            if !entry.metadata.is_empty() {
                let metadata: Map<String, Value> = entry
                    .metadata
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                    .collect();
                document.insert(METADATA_FIELD.to_string(), Value::Object(metadata));
            }
            // A map of strings and numbers always serializes.
            let _ = serde_json::to_writer(&mut ndjson, &Value::Object(document));
            ndjson.push(b'\n');
            count += 1;
        }
    }
    (ndjson, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_escapes_and_refuse_what_is_not_labels() {
        assert_eq!(
            parse_labels(r#"{job="varlogs", host = "web-1",msg="say \"hi\"\n\\"}"#).unwrap(),
            vec![
                ("job".to_string(), "varlogs".to_string()),
                ("host".to_string(), "web-1".to_string()),
                ("msg".to_string(), "say \"hi\"\n\\".to_string()),
            ]
        );
        assert_eq!(parse_labels("{}").unwrap(), Vec::new());
        for bad in [
            "job=\"x\"",
            "{job=x}",
            "{job=\"x}",
            "{=\"x\"}",
            "{job=\"\\q\"}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn protobuf_entries_become_documents_with_their_labels() {
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="varlogs", line="shadowed"}"#.to_string(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1_767_225_600,
                        nanos: 5,
                    }),
                    line: "hello".to_string(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".to_string(),
                        value: "abc".to_string(),
                    }],
                }],
                hash: 0,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request))
            .unwrap();
        let streams = decode_protobuf(&body, 1 << 20).unwrap();
        let (ndjson, count) = to_ndjson(&streams);
        assert_eq!(count, 1);
        let document: Value = serde_json::from_slice(&ndjson).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "timestamp": 1_767_225_600_000_000_005i64,
                "line": "hello",
                "job": "varlogs",
                "label_line": "shadowed",
                "structured_metadata": {"trace_id": "abc"},
            })
        );
        assert_eq!(
            decode_protobuf(&body, 10),
            Err(PushError::TooLarge(streams_len(&request)))
        );
    }

    fn streams_len(request: &PushRequest) -> usize {
        prost::Message::encode_to_vec(request).len()
    }

    #[test]
    fn json_bodies_decode_and_bad_entries_are_named() {
        let body = br#"{"streams": [{"stream": {"job": "api"}, "values": [["1767225600000000000", "a"], ["1767225601000000000", "b", {"user": "u1"}]]}]}"#;
        let streams = decode_json(body).unwrap();
        assert_eq!(streams[0].entries.len(), 2);
        assert_eq!(
            streams[0].entries[1].metadata,
            vec![("user".to_string(), "u1".to_string())]
        );
        let bad = br#"{"streams": [{"stream": {}, "values": [["yesterday", "a"]]}]}"#;
        let error = decode_json(bad).unwrap_err().to_string();
        assert!(
            error.contains("stream 0: value 0") && error.contains("yesterday"),
            "{error}"
        );
        assert!(decode_json(b"{\"streams\": 3}").is_err());
        assert!(decode_protobuf(b"\xff\xff\xff\xff\xff\xff", 1 << 20).is_err());
    }
}

/// Property tests: push bodies come from agents over the network. For any bytes, decoding
/// returns streams or an error, never a panic.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_decode_or_err(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_protobuf(&bytes, 1 << 20);
            let _ = decode_json(&bytes);
        }

        #[test]
        fn any_label_text_parses_or_errs(text in ".{0,80}") {
            let _ = parse_labels(&text);
            let _ = parse_labels(&format!("{{{text}}}"));
        }
    }
}
