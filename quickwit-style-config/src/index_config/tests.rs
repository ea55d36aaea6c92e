use super::*;

const LOGS_CONFIG: &str = r#"
version: 0.1
index_id: app-logs
doc_mapping:
  mode: dynamic
  field_mappings:
    - name: timestamp
      type: datetime
      input_formats: [rfc3339, unix_timestamp_millis, "%Y-%m-%d %H:%M:%S"]
      fast_precision: microseconds
      fast: true
    - name: severity_text
      type: text
      tokenizer: raw
      fast: true
    - name: body
      type: text
      tokenizer: default
      record: position
    - name: tenant_id
      type: u64
      fast: true
    - name: resource
      type: object
      field_mappings:
        - name: service
          type: text
          tokenizer: raw
    - name: attributes
      type: json
    - name: tags
      type: array<text>
      tokenizer: raw
  timestamp_field: timestamp
  tag_fields: [severity_text, resource.service]
search_settings:
  default_search_fields: [body]
indexing_settings:
  commit_timeout_secs: 5
retention:
  period: 30 days
"#;

#[test]
fn parses_yaml_with_defaults_filled_in() {
    let config = IndexConfig::parse(LOGS_CONFIG.as_bytes(), ConfigFormat::Yaml).unwrap();
    insta::assert_yaml_snapshot!(config);
    assert_eq!(
        config.retention.unwrap().period_secs().unwrap(),
        30 * 86_400
    );
}

#[test]
fn parses_minimal_json() {
    let json = r#"{"index_id": "minimal", "doc_mapping": {"field_mappings": [{"name": "msg", "type": "text"}]}}"#;
    let config = IndexConfig::parse(json.as_bytes(), ConfigFormat::Json).unwrap();
    insta::assert_yaml_snapshot!(config);
    // JSON also goes through the YAML parser when the format is unknown.
    assert_eq!(
        IndexConfig::parse(json.as_bytes(), ConfigFormat::Yaml).unwrap(),
        config
    );
}

#[test]
fn leaf_fields_flatten_objects_to_dotted_paths() {
    let config = IndexConfig::parse(LOGS_CONFIG.as_bytes(), ConfigFormat::Yaml).unwrap();
    let paths: Vec<String> = config
        .doc_mapping
        .leaf_fields()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        paths,
        [
            "timestamp",
            "severity_text",
            "body",
            "tenant_id",
            "resource.service",
            "attributes",
            "tags"
        ]
    );
}

/// Each bad config next to the message a user gets, so a change to any message shows up
/// in review.
#[test]
fn validation_errors_name_the_field_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("bad index id", "index_id: 9lives"),
        ("index id with slash", "index_id: a/b/c"),
        ("unknown type", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: string}"),
        ("unknown array type", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: array<foo>}"),
        ("duplicate field", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text}\n    - {name: a, type: u64}"),
        ("unknown tokenizer", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text, tokenizer: klingon}"),
        ("tokenizer on number", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: u64, tokenizer: raw}"),
        ("unknown record", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text, record: everything}"),
        ("timestamp not mapped", "index_id: logs\ndoc_mapping:\n  timestamp_field: ts"),
        ("timestamp not datetime", "index_id: logs\ndoc_mapping:\n  timestamp_field: ts\n  field_mappings:\n    - {name: ts, type: u64, fast: true}"),
        ("timestamp not fast", "index_id: logs\ndoc_mapping:\n  timestamp_field: ts\n  field_mappings:\n    - {name: ts, type: datetime}"),
        ("bad date format", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: ts, type: datetime, input_formats: [julian]}"),
        ("bad strptime directive", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: ts, type: datetime, input_formats: ['%Y-%Q']}"),
        ("input_formats on text", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text, input_formats: [rfc3339]}"),
        ("input_format on text", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text, input_format: hex}"),
        ("unknown bytes format", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: bytes, input_format: base32}"),
        ("date output format on bytes", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: bytes, output_format: rfc3339}"),
        ("bytes output format on datetime", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: datetime, output_format: hex}"),
        ("output format on text", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: text, output_format: rfc3339}"),
        ("output format without a unit", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: datetime, output_format: unix_timestamp}"),
        ("reserved name", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: _source, type: text}"),
        ("dotted name", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a.b, type: text}"),
        ("empty object", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {name: a, type: object}"),
        ("duplicate nested field", "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - name: a\n      type: object\n      field_mappings:\n        - {name: b, type: text}\n        - {name: b, type: text}"),
        ("tag on tokenized text", "index_id: logs\ndoc_mapping:\n  tag_fields: [a]\n  field_mappings:\n    - {name: a, type: text}"),
        ("unknown mode", "index_id: logs\ndoc_mapping:\n  mode: chaotic"),
        ("unknown key", "index_id: logs\ndoc_mapping:\n  field_mapings: []"),
        ("default search field unknown in strict", "index_id: logs\ndoc_mapping:\n  mode: strict\nsearch_settings:\n  default_search_fields: [nope]"),
        ("zero commit timeout", "index_id: logs\nindexing_settings:\n  commit_timeout_secs: 0"),
        ("tiny heap", "index_id: logs\nindexing_settings:\n  resources:\n    heap_size: 1MB"),
        ("merge factor 1", "index_id: logs\nindexing_settings:\n  merge_policy:\n    type: stable_log\n    merge_factor: 1"),
        ("max below merge factor", "index_id: logs\nindexing_settings:\n  merge_policy:\n    type: stable_log\n    merge_factor: 10\n    max_merge_factor: 4"),
        ("bad maturation", "index_id: logs\nindexing_settings:\n  merge_policy:\n    type: stable_log\n    maturation_period: soon"),
        ("unknown merge policy", "index_id: logs\nindexing_settings:\n  merge_policy:\n    type: tiered"),
        ("bad retention", "index_id: logs\nretention:\n  period: 3 fortnights"),
        ("missing index id", "doc_mapping: {}"),
        ("not yaml", "index_id: [unclosed"),
    ];
    let mut report = String::new();
    for (name, yaml) in cases {
        let err = IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml)
            .expect_err(&format!("case `{name}` should fail"));
        report.push_str(&format!("{name}: {err}\n"));
    }
    insta::assert_snapshot!(report);
}

/// Quickwit's OTEL logs index searches `body.message`, a path inside the json field `body`.
#[test]
fn a_default_search_field_may_be_a_path_inside_a_json_field() {
    let config = "index_id: logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: body, type: json}\n    - {name: level, type: text}\nsearch_settings:\n  default_search_fields: [body.message]";
    IndexConfig::parse(config.as_bytes(), ConfigFormat::Yaml).unwrap();
    let not_json = config.replace("[body.message]", "[level.message]");
    let error = IndexConfig::parse(not_json.as_bytes(), ConfigFormat::Yaml).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`level.message` is not in field_mappings"),
        "{error}"
    );
}

/// Quickwit configs give datetime fields an `output_format`; they load as they are.
#[test]
fn datetime_output_formats_of_quickwit_configs_are_accepted() {
    for format in [
        "rfc3339",
        "rfc2822",
        "iso8601",
        "unix_timestamp_secs",
        "unix_timestamp_millis",
        "unix_timestamp_micros",
        "unix_timestamp_nanos",
        "'%Y-%m-%d %H:%M:%S'",
    ] {
        let yaml = format!(
            "index_id: logs\ndoc_mapping:\n  field_mappings:\n    - {{name: ts, type: datetime, fast: true, output_format: {format}}}\n  timestamp_field: ts"
        );
        let config = IndexConfig::parse(yaml.as_bytes(), ConfigFormat::Yaml)
            .unwrap_or_else(|error| panic!("{format}: {error}"));
        let round_trip = serde_json::to_string(&config).unwrap();
        assert_eq!(
            IndexConfig::parse(round_trip.as_bytes(), ConfigFormat::Json).unwrap(),
            config
        );
    }
}
