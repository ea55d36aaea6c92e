use quarry_config::{ConfigFormat, IndexConfig};
use serde_json::json;

use super::*;

fn mapper(yaml: &str) -> DocMapper {
    DocMapper::new(&IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml).unwrap())
}

pub(super) const ALL_TYPES: &str = r#"
index_id: all-types
doc_mapping:
  mode: MODE
  field_mappings:
    - {name: ts, type: datetime, fast: true, input_formats: [rfc3339, unix_timestamp, "%Y-%m-%d %H:%M:%S"]}
    - {name: message, type: text, tokenizer: default}
    - {name: level, type: text, tokenizer: raw, fast: true}
    - {name: count, type: u64, fast: true}
    - {name: delta, type: i64}
    - {name: ratio, type: f64}
    - {name: ok, type: bool}
    - {name: client_ip, type: ip}
    - {name: blob, type: bytes}
    - {name: attributes, type: json}
    - {name: labels, type: array<text>, tokenizer: raw}
    - name: resource
      type: object
      field_mappings:
        - {name: service, type: text, tokenizer: raw}
  timestamp_field: ts
  tag_fields: [level]
  # These tests rebuild hits from stored fields; `with_source` turns this on.
  store_source: false
"#;

fn all_types(mode: &str) -> DocMapper {
    mapper(&ALL_TYPES.replace("MODE", mode))
}

#[test]
fn maps_every_field_type_and_rebuilds_the_document() {
    let mapper = all_types("strict");
    let doc = json!({
        "ts": "2026-01-01T00:00:00.5Z",
        "message": "Connection reset by peer",
        "level": "ERROR",
        "count": 42,
        "delta": -7,
        "ratio": 0.25,
        "ok": true,
        "client_ip": "10.0.0.1",
        "blob": "aGVsbG8=",
        "attributes": {"http.status_code": 500, "region": "eu"},
        "labels": ["a", "b"],
        "resource": {"service": "payments"}
    });
    let parsed = mapper
        .doc_from_json_bytes(doc.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        parsed.timestamp,
        Some(tantivy::DateTime::from_timestamp_millis(1_767_225_600_500))
    );
    assert_eq!(parsed.tags, vec!["level:ERROR".to_string()]);
    let rebuilt = serde_json::Value::Object(mapper.doc_to_json(&parsed.doc));
    let expected = json!({
        "ts": "2026-01-01T00:00:00.500Z",
        "message": "Connection reset by peer",
        "level": "ERROR",
        "count": 42,
        "delta": -7,
        "ratio": 0.25,
        "ok": true,
        "client_ip": "10.0.0.1",
        "blob": "aGVsbG8=",
        "attributes": {"http.status_code": 500, "region": "eu"},
        "labels": ["a", "b"],
        "resource": {"service": "payments"}
    });
    assert_eq!(rebuilt, expected);
}

#[test]
fn coerces_lossless_values_and_other_date_formats() {
    let mapper = all_types("strict");
    let parsed = mapper
        .doc_from_json_bytes(br#"{"ts": 1767225600000, "count": "12", "ratio": "1.5", "ok": "false", "message": 404}"#)
        .unwrap();
    assert_eq!(
        parsed.timestamp,
        Some(tantivy::DateTime::from_timestamp_secs(1_767_225_600))
    );
    let rebuilt = serde_json::Value::Object(mapper.doc_to_json(&parsed.doc));
    assert_eq!(rebuilt["count"], json!(12));
    assert_eq!(rebuilt["ratio"], json!(1.5));
    assert_eq!(rebuilt["ok"], json!(false));
    assert_eq!(rebuilt["message"], json!("404"));
    let strptime = mapper
        .doc_from_json_bytes(br#"{"ts": "2026-01-01 00:00:00"}"#)
        .unwrap();
    assert_eq!(
        strptime.timestamp,
        Some(tantivy::DateTime::from_timestamp_secs(1_767_225_600))
    );
}

#[test]
fn bad_documents_are_rejected_with_a_reason() {
    let mapper = all_types("strict");
    let cases: &[(&str, &str)] = &[
        (r#"{"ts": "2026-01-01T00:00:00Z""#, "invalid JSON: EOF while parsing an object at line 1 column 29"),
        (r#"[1, 2]"#, "document is not a JSON object"),
        (r#""just a string""#, "document is not a JSON object"),
        (r#"{"message": "no time"}"#, "timestamp field `ts` is missing"),
        (r#"{"ts": "yesterday"}"#, "field `ts`: expected a datetime in one of the formats [rfc3339, unix_timestamp, %Y-%m-%d %H:%M:%S], got \"yesterday\""),
        (r#"{"ts": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]}"#, "timestamp field `ts` must hold a single value"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "unknown": 1}"#, "field `unknown` is not in the doc mapping and the mapping mode is strict"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "resource": {"service": "a", "zone": "b"}}"#, "field `resource.zone` is not in the doc mapping and the mapping mode is strict"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "count": -1}"#, "field `count`: expected an unsigned integer (u64), got -1"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "count": 1.5}"#, "field `count`: expected an unsigned integer (u64), got 1.5"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "delta": "x"}"#, "field `delta`: expected an integer (i64), got \"x\""),
        (r#"{"ts": "2026-01-01T00:00:00Z", "ok": 1}"#, "field `ok`: expected a boolean, got 1"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "client_ip": "300.1.1.1"}"#, "field `client_ip`: expected an IPv4 or IPv6 address, got \"300.1.1.1\""),
        (r#"{"ts": "2026-01-01T00:00:00Z", "blob": "***"}"#, "field `blob`: expected base64-encoded bytes, got \"***\""),
        (r#"{"ts": "2026-01-01T00:00:00Z", "attributes": 3}"#, "field `attributes`: expected a JSON object, got 3"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "message": {"nested": true}}"#, "field `message`: expected a string, got {\"nested\":true}"),
        (r#"{"ts": "2026-01-01T00:00:00Z", "resource": "flat"}"#, "field `resource`: expected an object, got \"flat\""),
        (r#"{"ts": "2026-01-01T00:00:00Z", "labels": [["nested"]]}"#, "field `labels`: expected a text or a flat array of them, got [\"nested\"]"),
    ];
    for (line, expected) in cases {
        let err = mapper.doc_from_json_bytes(line.as_bytes()).unwrap_err();
        assert_eq!(&err.to_string(), expected, "for {line}");
    }
}

#[test]
fn dynamic_mode_keeps_unknown_fields_searchable() {
    let mapper = all_types("dynamic");
    let parsed = mapper
        .doc_from_json_bytes(br#"{"ts": "2026-01-01T00:00:00Z", "user": {"name": "alice"}, "resource": {"service": "a", "zone": "b"}}"#)
        .unwrap();
    let rebuilt = serde_json::Value::Object(mapper.doc_to_json(&parsed.doc));
    assert_eq!(rebuilt["user"], json!({"name": "alice"}));
    assert_eq!(rebuilt["resource"], json!({"service": "a", "zone": "b"}));
    match mapper.resolve_field("user.name").unwrap() {
        ResolvedField::JsonPath {
            field_name,
            json_path,
            ..
        } => {
            assert_eq!(field_name, "_dynamic");
            assert_eq!(json_path, "user.name");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn lenient_mode_drops_unknown_fields() {
    let mapper = all_types("lenient");
    let parsed = mapper
        .doc_from_json_bytes(br#"{"ts": "2026-01-01T00:00:00Z", "user": "alice", "level": "INFO"}"#)
        .unwrap();
    let rebuilt = serde_json::Value::Object(mapper.doc_to_json(&parsed.doc));
    assert_eq!(
        rebuilt,
        json!({"ts": "2026-01-01T00:00:00Z", "level": "INFO"})
    );
    assert_eq!(
        mapper.resolve_field("user").unwrap_err(),
        "unknown field `user`: it is not in the index's doc mapping"
    );
}

#[test]
fn resolves_fields_for_queries() {
    let mapper = all_types("strict");
    assert!(
        matches!(mapper.resolve_field("resource.service"), Ok(ResolvedField::Mapped(field)) if field.path == "resource.service")
    );
    match mapper.resolve_field("attributes.http.status_code").unwrap() {
        ResolvedField::JsonPath {
            field_name,
            json_path,
            expand_dots,
            ..
        } => {
            assert_eq!(field_name, "attributes");
            assert_eq!(json_path, "http.status_code");
            assert!(expand_dots);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        mapper.resolve_field("count.sub").unwrap_err(),
        "field `count` is a `u64`, it has no sub-field `sub`"
    );
}

#[test]
fn store_source_returns_the_original_document() {
    let mapper = mapper("index_id: with-source\ndoc_mapping:\n  mode: lenient\n  store_source: true\n  field_mappings:\n    - {name: a, type: u64}");
    let parsed = mapper
        .doc_from_json_bytes(
            br#"{"a": "5", "dropped": [1, 2], "at": "2026-01-05T00:00:00.000Z", "_id": "x1"}"#,
        )
        .unwrap();
    let rebuilt = serde_json::Value::Object(mapper.doc_to_json(&parsed.doc));
    // Date-like strings keep their exact text; `_id` is metadata, kept beside the source.
    assert_eq!(
        rebuilt,
        json!({"a": "5", "dropped": [1, 2], "at": "2026-01-05T00:00:00.000Z"})
    );
    assert_eq!(mapper.doc_id(&parsed.doc).as_deref(), Some("x1"));
}

#[test]
fn bytes_fields_take_and_show_hex_or_base64() {
    let mapper = mapper(
        "index_id: traces\ndoc_mapping:\n  mode: strict\n  store_source: false\n  field_mappings:\n    - {name: trace_id, type: bytes, input_format: hex, output_format: hex}\n    - {name: blob, type: bytes}\n",
    );
    let line = br#"{"trace_id": "8FADC1A606CB0FB39A1DE644815EF6D1", "blob": "aGVsbG8="}"#;
    let parsed = mapper.doc_from_json_bytes(line).unwrap();
    let trace_field = mapper.schema().get_field("trace_id").unwrap();
    assert_eq!(
        tantivy::schema::document::Value::as_bytes(&parsed.doc.get_first(trace_field).unwrap())
            .map(<[u8]>::len),
        Some(16),
        "stored as 16 bytes, not 32 characters"
    );
    assert_eq!(
        serde_json::Value::Object(mapper.doc_to_json(&parsed.doc)),
        json!({"trace_id": "8fadc1a606cb0fb39a1de644815ef6d1", "blob": "aGVsbG8="})
    );
    let error = mapper
        .doc_from_json_bytes(br#"{"trace_id": "not hex"}"#)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `trace_id`: expected hex-encoded bytes, got \"not hex\""
    );
}

#[test]
fn datetime_fields_show_their_output_format() {
    let mapper = mapper(
        "index_id: dates\ndoc_mapping:\n  mode: strict\n  store_source: false\n  field_mappings:\n    - {name: ms, type: datetime, input_formats: [unix_timestamp], output_format: unix_timestamp_millis, fast: true}\n    - {name: secs, type: datetime, output_format: unix_timestamp_secs}\n    - {name: day, type: datetime, output_format: \"%Y-%m-%d\"}\n    - {name: plain, type: datetime}\n  timestamp_field: ms\n",
    );
    let line = br#"{"ms": 1668422437.218, "secs": "2026-01-01T00:00:09.9Z", "day": "2026-01-02T03:04:05Z", "plain": "2026-01-01T00:00:19.184Z"}"#;
    let parsed = mapper.doc_from_json_bytes(line).unwrap();
    assert_eq!(
        serde_json::Value::Object(mapper.doc_to_json(&parsed.doc)),
        json!({"ms": 1668422437218i64, "secs": 1767225609, "day": "2026-01-02", "plain": "2026-01-01T00:00:19.184Z"})
    );
}
