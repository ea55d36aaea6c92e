use serde_json::json;

use super::*;

fn now() -> OffsetDateTime {
    // 2026-01-15T10:20:30Z, a Thursday.
    OffsetDateTime::from_unix_timestamp(1_768_472_430).unwrap()
}

fn parse(query: Value) -> Result<QueryAst, DslError> {
    parse_es_query(&query, &["body".to_string()], now())
}

/// Each DSL query next to its AST, so a change of meaning shows up in review.
#[test]
fn dsl_table() {
    let queries = vec![
        json!({"match_all": {}}),
        json!({"match": {"body": "connection reset"}}),
        json!({"match": {"body": {"query": "connection reset", "operator": "and"}}}),
        json!({"match_phrase": {"body": {"query": "connection reset", "slop": 1}}}),
        json!({"match_phrase_prefix": {"service_name": "pay"}}),
        json!({"term": {"severity_text": "ERROR"}}),
        json!({"term": {"tenant_id": {"value": 5}}}),
        json!({"terms": {"service_name": ["auth", "cart"]}}),
        json!({"range": {"tenant_id": {"gte": 10, "lt": 20}}}),
        json!({"range": {"timestamp": {"gte": "now-15m", "lte": "now/d"}}}),
        json!({"range": {"timestamp": {"gte": 1668422437218i64, "lte": 1668422625668i64, "format": "epoch_millis"}}}),
        json!({"exists": {"field": "trace_id"}}),
        json!({"prefix": {"host": "host-1"}}),
        json!({"wildcard": {"host": {"value": "host-?1*"}}}),
        json!({"query_string": {"query": "failed timeout -severity_text:INFO"}}),
        json!({"query_string": {"query": "failed timeout", "default_operator": "AND", "default_field": "body"}}),
        json!({"multi_match": {"query": "declined", "fields": ["body", "service_name^2"]}}),
        json!({"bool": {"must": {"term": {"severity_text": "ERROR"}}, "filter": [{"range": {"tenant_id": {"gt": 3}}}], "must_not": [{"term": {"host": "h1"}}]}}),
        json!({"bool": {"should": [{"term": {"a": "1"}}, {"term": {"b": "2"}}], "minimum_should_match": "2"}}),
        json!({"bool": {"should": [{"term": {"a": "1"}}]}}),
    ];
    let mut report = String::new();
    for query in queries {
        let ast = parse(query.clone()).unwrap_or_else(|error| panic!("{query}: {error}"));
        report.push_str(&format!(
            "{query}\n  => {}\n",
            serde_json::to_string(&ast).unwrap()
        ));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn unsupported_and_malformed_clauses_are_named() {
    let bad = vec![
        json!({"fuzzy": {"body": "fail"}}),
        json!({"match": {"body": "a", "host": "b"}}),
        json!({"bool": {"must": [{"nope": {}}]}}),
        json!({"bool": {"shoulds": []}}),
        json!({"range": {"timestamp": {"gte": "now-3x"}}}),
        json!({"range": {"timestamp": {"after": 1}}}),
        json!({"query_string": {"query": "a AND"}}),
        json!({"match_phrase_prefix": {"body": "connection res"}}),
        json!({"term": {"a": [1, 2]}}),
        json!({"match_all": {}, "match_none": {}}),
    ];
    let mut report = String::new();
    for query in bad {
        let error = parse(query.clone()).expect_err(&query.to_string());
        report.push_str(&format!("{query}\n  => {error}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn date_math_rounds_and_offsets() {
    let format = |expression: &str| {
        date_math(expression, now(), false)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(format("now"), "2026-01-15T10:20:30Z");
    assert_eq!(format("now-15m"), "2026-01-15T10:05:30Z");
    assert_eq!(format("now-1d/d"), "2026-01-14T00:00:00Z");
    assert_eq!(format("now/w"), "2026-01-12T00:00:00Z");
    assert_eq!(format("now-1M/M"), "2025-12-01T00:00:00Z");
    assert_eq!(format("now+2h/h"), "2026-01-15T12:00:00Z");
    let up = date_math("now/d", now(), true)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(up, "2026-01-15T23:59:59.999Z");
    // Anchored on a date instead of now, and bare dates rounded like `||/d`.
    assert_eq!(format("2026-01-15T13:00:00Z||/d"), "2026-01-15T00:00:00Z");
    assert_eq!(
        format("2026-02-10T05:00:00Z||+1d/d"),
        "2026-02-11T00:00:00Z"
    );
    assert_eq!(format("2026-02-10||-1M"), "2026-01-10T00:00:00Z");
    assert_eq!(format("2026-01-15"), "2026-01-15T00:00:00Z");
    let up = date_math("2026-01-17", now(), true)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(up, "2026-01-17T23:59:59.999Z");
    assert!(date_math("2026-13-45||/d", now(), false).is_err());
    assert!(date_math("now-", now(), false).is_err());
    assert!(date_math("yesterday", now(), false).is_err());
}
