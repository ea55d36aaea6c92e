//! OTLP logs (`ExportLogsServiceRequest`, from the `opentelemetry-proto` crate's generated
//! types) to documents in the OpenTelemetry log mapping of Quickwit's `otel-logs-v0_9`
//! index, so that dashboards written for it read Quarry's the same way.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{Map, Value};

pub(crate) const DEFAULT_INDEX: &str = "otel-logs-v0_9";

/// Attribute values nest; deeper than this they are kept as their JSON text.
const MAX_VALUE_DEPTH: usize = 16;

/// The config of an index made on first export when no index template matches its name.
pub(crate) const DEFAULT_TEMPLATE: &str = "template_id: otel-logs
index_id_patterns: ['*']
doc_mapping:
  mode: strict
  field_mappings:
    - {name: timestamp_nanos, type: datetime, input_formats: [unix_timestamp_nanos], output_format: unix_timestamp_nanos, fast: true, fast_precision: nanoseconds}
    - {name: observed_timestamp_nanos, type: datetime, input_formats: [unix_timestamp_nanos], output_format: unix_timestamp_nanos, indexed: false}
    - {name: service_name, type: text, tokenizer: raw, fast: true}
    - {name: severity_text, type: text, tokenizer: raw, fast: true}
    - {name: severity_number, type: u64, fast: true}
    - {name: body, type: json, tokenizer: default}
    - {name: attributes, type: json, tokenizer: raw, fast: true}
    - {name: dropped_attributes_count, type: u64, indexed: false}
    - {name: trace_id, type: bytes, input_format: hex, output_format: hex, fast: true}
    - {name: span_id, type: bytes, input_format: hex, output_format: hex}
    - {name: trace_flags, type: u64, indexed: false}
    - {name: event_name, type: text, tokenizer: raw}
    - {name: resource_attributes, type: json, tokenizer: raw, fast: true}
    - {name: resource_dropped_attributes_count, type: u64, indexed: false}
    - {name: scope_name, type: text, tokenizer: raw}
    - {name: scope_version, type: text, tokenizer: raw}
    - {name: scope_attributes, type: json, tokenizer: raw}
    - {name: scope_dropped_attributes_count, type: u64, indexed: false}
  timestamp_field: timestamp_nanos
  tag_fields: [service_name]
indexing_settings:
  commit_timeout_secs: 5
search_settings:
  default_search_fields: [body.message]
";

/// The documents of one export request, and the records refused with why.
pub(crate) struct Documents {
    pub ndjson: Vec<u8>,
    pub count: usize,
    pub rejected: Vec<String>,
}

pub(crate) fn decode_protobuf(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    <ExportLogsServiceRequest as prost::Message>::decode(body)
        .map_err(|error| format!("the body is not an OTLP ExportLogsServiceRequest: {error}"))
}

pub(crate) fn decode_json(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    serde_json::from_slice(body)
        .map_err(|error| format!("the body is not an OTLP/JSON ExportLogsServiceRequest: {error}"))
}

pub(crate) fn to_documents(request: &ExportLogsServiceRequest) -> Documents {
    let mut documents = Documents {
        ndjson: Vec::new(),
        count: 0,
        rejected: Vec::new(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    for resource_logs in &request.resource_logs {
        let (resource_attributes, resource_dropped) = match &resource_logs.resource {
            Some(resource) => (
                key_values(&resource.attributes),
                resource.dropped_attributes_count,
            ),
            None => (Map::new(), 0),
        };
        let service_name = resource_attributes
            .get("service.name")
            .and_then(Value::as_str)
            .unwrap_or("unknown_service")
            .to_string();
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref();
            for record in &scope_logs.log_records {
                if !(0..=24).contains(&record.severity_number) {
                    documents.rejected.push(format!(
                        "severity_number {} is not an OpenTelemetry severity (0 to 24)",
                        record.severity_number
                    ));
                    continue;
                }
                if !matches!(record.trace_id.len(), 0 | 16)
                    || !matches!(record.span_id.len(), 0 | 8)
                {
                    documents.rejected.push(format!(
                        "trace_id must be 16 bytes and span_id 8 (got {} and {})",
                        record.trace_id.len(),
                        record.span_id.len()
                    ));
                    continue;
                }
                let observed = if record.observed_time_unix_nano > 0 {
                    record.observed_time_unix_nano
                } else {
                    now
                };
                let timestamp = if record.time_unix_nano > 0 {
                    record.time_unix_nano
                } else {
                    observed
                };
                if timestamp > i64::MAX as u64 {
                    documents
                        .rejected
                        .push(format!("time_unix_nano {timestamp} is past the year 2262"));
                    continue;
                }
                let mut document = Map::new();
                document.insert("timestamp_nanos".into(), timestamp.into());
                document.insert(
                    "observed_timestamp_nanos".into(),
                    observed.min(i64::MAX as u64).into(),
                );
                document.insert("service_name".into(), service_name.clone().into());
                document.insert("severity_text".into(), record.severity_text.clone().into());
                document.insert("severity_number".into(), record.severity_number.into());
                if let Some(body) = &record.body {
                    document.insert("body".into(), body_object(body));
                }
                document.insert(
                    "attributes".into(),
                    Value::Object(key_values(&record.attributes)),
                );
                document.insert(
                    "dropped_attributes_count".into(),
                    record.dropped_attributes_count.into(),
                );
                if !record.trace_id.is_empty() {
                    document.insert("trace_id".into(), hex(&record.trace_id).into());
                }
                if !record.span_id.is_empty() {
                    document.insert("span_id".into(), hex(&record.span_id).into());
                }
                document.insert("trace_flags".into(), (record.flags & 0xff).into());
                if !record.event_name.is_empty() {
                    document.insert("event_name".into(), record.event_name.clone().into());
                }
                document.insert(
                    "resource_attributes".into(),
                    Value::Object(resource_attributes.clone()),
                );
                document.insert(
                    "resource_dropped_attributes_count".into(),
                    resource_dropped.into(),
                );
                if let Some(scope) = scope {
                    document.insert("scope_name".into(), scope.name.clone().into());
                    document.insert("scope_version".into(), scope.version.clone().into());
                    document.insert(
                        "scope_attributes".into(),
                        Value::Object(key_values(&scope.attributes)),
                    );
                    document.insert(
                        "scope_dropped_attributes_count".into(),
                        scope.dropped_attributes_count.into(),
                    );
                }
                // A map of strings and numbers always serializes.
                let _ = serde_json::to_writer(&mut documents.ndjson, &Value::Object(document));
                documents.ndjson.push(b'\n');
                documents.count += 1;
            }
        }
    }
    documents
}

/// A string body is `{"message": …}`; a map is kept as the object it is; anything else
/// goes under `message`.
fn body_object(body: &AnyValue) -> Value {
    match json_value(body, 0) {
        Value::Object(object) => Value::Object(object),
        other => {
            let mut object = Map::new();
            object.insert("message".into(), other);
            Value::Object(object)
        }
    }
}

fn key_values(pairs: &[KeyValue]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|pair| {
            let value = pair
                .value
                .as_ref()
                .map_or(Value::Null, |value| json_value(value, 0));
            (pair.key.clone(), value)
        })
        .collect()
}

fn json_value(value: &AnyValue, depth: usize) -> Value {
    let Some(value) = &value.value else {
        return Value::Null;
    };
    if depth >= MAX_VALUE_DEPTH {
        return Value::String(format!("{value:?}"));
    }
    match value {
        OtlpValue::StringValue(text) => Value::String(text.clone()),
        OtlpValue::BoolValue(flag) => Value::Bool(*flag),
        OtlpValue::IntValue(number) => Value::from(*number),
        OtlpValue::DoubleValue(number) => {
            serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number)
        }
        OtlpValue::ArrayValue(array) => Value::Array(
            array
                .values
                .iter()
                .map(|item| json_value(item, depth + 1))
                .collect(),
        ),
        OtlpValue::KvlistValue(list) => Value::Object(
            list.values
                .iter()
                .map(|pair| {
                    let value = pair
                        .value
                        .as_ref()
                        .map_or(Value::Null, |value| json_value(value, depth + 1));
                    (pair.key.clone(), value)
                })
                .collect(),
        ),
        OtlpValue::BytesValue(bytes) => Value::String(base64_encode(bytes)),
        // An index into a dictionary the logs signal does not send.
        OtlpValue::StringValueStrindex(index) => Value::from(*index),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn string(text: &str) -> AnyValue {
        AnyValue {
            value: Some(OtlpValue::StringValue(text.to_string())),
        }
    }

    fn pair(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(value),
            ..Default::default()
        }
    }

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![pair("service.name", string("checkout"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.logger".to_string(),
                        version: "1.0".to_string(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn records_become_documents_of_the_otel_mapping() {
        let record = LogRecord {
            time_unix_nano: 1_767_225_600_000_000_007,
            severity_number: 17,
            severity_text: "ERROR".to_string(),
            body: Some(string("payment failed")),
            attributes: vec![
                pair(
                    "http.status",
                    AnyValue {
                        value: Some(OtlpValue::IntValue(502)),
                    },
                ),
                pair(
                    "tags",
                    AnyValue {
                        value: Some(OtlpValue::ArrayValue(ArrayValue {
                            values: vec![string("a"), string("b")],
                        })),
                    },
                ),
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            flags: 0x101,
            ..Default::default()
        };
        let documents = to_documents(&request(vec![record]));
        assert_eq!((documents.count, documents.rejected.len()), (1, 0));
        let document: Value = serde_json::from_slice(&documents.ndjson).unwrap();
        assert_eq!(document["timestamp_nanos"], 1_767_225_600_000_000_007u64);
        assert_eq!(document["service_name"], "checkout");
        assert_eq!(document["severity_number"], 17);
        assert_eq!(
            document["body"],
            serde_json::json!({"message": "payment failed"})
        );
        assert_eq!(document["attributes"]["http.status"], 502);
        assert_eq!(
            document["attributes"]["tags"],
            serde_json::json!(["a", "b"])
        );
        assert_eq!(document["trace_id"], "ab".repeat(16));
        assert_eq!(document["span_id"], "cd".repeat(8));
        assert_eq!(document["trace_flags"], 1);
        assert_eq!(document["scope_name"], "app.logger");
    }

    #[test]
    fn bad_records_are_refused_one_by_one() {
        let map_body = LogRecord {
            time_unix_nano: 1,
            body: Some(AnyValue {
                value: Some(OtlpValue::KvlistValue(KeyValueList {
                    values: vec![pair("event", string("login"))],
                })),
            }),
            ..Default::default()
        };
        let unknown_severity = LogRecord {
            severity_number: 99,
            ..Default::default()
        };
        let short_trace = LogRecord {
            trace_id: vec![1, 2, 3],
            ..Default::default()
        };
        let documents = to_documents(&request(vec![map_body, unknown_severity, short_trace]));
        assert_eq!(documents.count, 1);
        assert_eq!(documents.rejected.len(), 2, "{:?}", documents.rejected);
        assert!(documents.rejected[0].contains("severity_number 99"));
        let document: Value = serde_json::from_slice(&documents.ndjson).unwrap();
        assert_eq!(document["body"], serde_json::json!({"event": "login"}));
        // No timestamp at all: the observed time, then the time it arrived.
        assert!(document["timestamp_nanos"].as_u64().unwrap() >= 1);
    }

    #[test]
    fn json_follows_the_otlp_json_encoding() {
        let body = br#"{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": "1767225600000000000", "severityNumber": 9,
            "body": {"stringValue": "hello"}, "traceId": "5b8efff798038103d269b633813fc60c",
            "attributes": [{"key": "n", "value": {"intValue": "3"}}]}]}]}]}"#;
        let request = decode_json(body).unwrap();
        let documents = to_documents(&request);
        let document: Value = serde_json::from_slice(&documents.ndjson).unwrap();
        assert_eq!(document["service_name"], "api");
        assert_eq!(document["attributes"]["n"], 3);
        assert_eq!(document["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert!(decode_json(b"{\"resourceLogs\": 7}").is_err());
        assert!(decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f").is_err());
    }
}

/// Property tests: export bodies come from agents over the network. For any bytes,
/// decoding and conversion return documents or an error, never a panic.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_decode_or_err(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(request) = decode_protobuf(&bytes) {
                let _ = to_documents(&request);
            }
            if let Ok(request) = decode_json(&bytes) {
                let _ = to_documents(&request);
            }
        }
    }
}
