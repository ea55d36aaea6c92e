use super::*;

fn parse(query: &str) -> Result<QueryAst, QueryParseError> {
    parse_query_string(query, &["body".to_string()])
}

/// Each query next to its AST (as compact JSON), so any change of meaning shows in review.
#[test]
fn query_table() {
    let queries = [
        "failed",
        "body:failed",
        "severity_text:ERROR AND service_name:payments",
        "severity_text:ERROR service_name:payments",
        "a OR b c",
        "(a OR b) AND c",
        "NOT severity_text:INFO",
        "failed -severity_text:INFO +host:h1",
        "\"connection reset by peer\"",
        "body:\"connection reset\"~2",
        "status:[400 TO 499]",
        "status:{400 TO *]",
        "duration_ms:>=100",
        "duration_ms:<5",
        "timestamp:[2026-01-01T00:00:00Z TO 2026-01-02T00:00:00Z}",
        "service_name:pay*",
        "body:*timeout",
        "trace_id:*",
        "*",
        "",
        "service_name:IN [auth billing cart]",
        "attributes.http.status_code:500",
        "service_name:(auth OR billing)",
        "path:\\/api\\/v1",
        "tenant_id:-5",
        "a && b || c",
        "host:api-gateway",
        "body:file\\*name",
    ];
    let mut report = String::new();
    for query in queries {
        let ast = parse(query).unwrap_or_else(|error| panic!("`{query}` failed: {error}"));
        report.push_str(&format!(
            "{query}\n  => {}\n",
            serde_json::to_string(&ast).unwrap()
        ));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn errors_say_where_and_what() {
    let bad = [
        "(a OR b",
        "a)",
        "\"unterminated",
        "status:[1 TO",
        "status:[1 2]",
        "body:",
        "AND b",
        "a AND",
        "field:IN a",
        "x:()",
        "a \\",
        "body:\"a\"~x",
    ];
    let mut report = String::new();
    for query in bad {
        let error = parse(query).expect_err(query);
        report.push_str(&format!("{query}\n  => {error}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn unqualified_terms_need_default_fields() {
    let error = parse_query_string("failed", &[]).unwrap_err();
    assert!(error.message.contains("default_search_fields"), "{error}");
    let multi = parse_query_string("failed", &["a".to_string(), "b".to_string()]).unwrap();
    assert_eq!(
        multi,
        QueryAst::or(vec![
            QueryAst::Term {
                field: "a".to_string(),
                value: "failed".to_string()
            },
            QueryAst::Term {
                field: "b".to_string(),
                value: "failed".to_string()
            },
        ])
    );
}

#[test]
fn the_ast_round_trips_through_json() {
    let ast = parse("(a OR body:\"x y\"~1) AND -status:[1 TO 5} AND host:h*").unwrap();
    let json = serde_json::to_string(&ast).unwrap();
    let back: QueryAst = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ast);
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let nested = |depth: usize| format!("{}a{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(
        parse(&nested(MAX_QUERY_DEPTH)).unwrap(),
        parse("a").unwrap()
    );
    let error = parse(&nested(100_000)).unwrap_err();
    assert_eq!(error.position, MAX_QUERY_DEPTH);
    assert!(error.message.contains("nested deeper than 32"), "{error}");
    // Prefix operators chain without recursion: any number is fine.
    let negations = format!("{}a", "-".repeat(1_000_001));
    assert_eq!(parse(&negations).unwrap(), parse("-a").unwrap());
    let nots = format!("{}a", "NOT ".repeat(100_000));
    assert_eq!(parse(&nots).unwrap(), parse("a").unwrap());
    assert!(parse(&"(".repeat(100_000)).is_err());
}

/// Found by the property tests: a trailing `\` in a range bound or a phrase pointed the
/// error past the end of the query.
#[test]
fn a_trailing_backslash_is_an_error_inside_the_query() {
    for query in ["\"\">=\\", "a:>=\\", "\"abc\\"] {
        let error = parse(query).unwrap_err();
        assert!(error.position < query.chars().count(), "{query:?}: {error}");
    }
    assert!(parse("a:>=\\")
        .unwrap_err()
        .message
        .contains("escapes nothing"));
}
