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

#[test]
fn hostile_date_math_is_an_error_not_a_panic() {
    for expression in [
        "now+99999999999999999d",
        "now+9223372036854775807s",
        "now-9223372036854775807m",
        "now+9223372036854775807w",
        "now+9223372036854775807M",
        "now-9223372036854775807y",
        "now+99999999999d",
        "now+1é",
        "now+1日/d",
        "now-1ñ",
        "now/é",
        "-9999-01-01||/w",
        "9999-12-31||/y",
    ] {
        for round_up in [false, true] {
            let outcome = std::panic::catch_unwind(|| date_math(expression, now(), round_up));
            assert!(outcome.is_ok(), "`{expression}` panicked");
        }
    }
    let message = date_math("now+99999999999d", now(), false)
        .unwrap_err()
        .to_string();
    assert!(message.contains("out of the supported range"), "{message}");
    assert!(date_math("now+1日", now(), false).is_err());
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let mut query = json!({"match_all": {}});
    for _ in 0..MAX_QUERY_DEPTH {
        query = json!({"bool": {"must": [query]}});
    }
    assert!(parse_es_query(&query, &[], now()).is_err());
    let mut query = json!({"match_all": {}});
    for _ in 0..MAX_QUERY_DEPTH - 1 {
        query = json!({"bool": {"must": [query]}});
    }
    assert!(parse_es_query(&query, &[], now()).is_ok());
    let deep =
        json!({"query_string": {"query": format!("{}a{}", "(".repeat(5000), ")".repeat(5000))}});
    let message = parse_es_query(&deep, &["body".to_string()], now())
        .unwrap_err()
        .to_string();
    assert!(message.contains("nested deeper than"), "{message}");
}
