//! Property tests: the query parsers take outside text, and for any input they either
//! parse or return an error, never panic or overflow the stack. Failing inputs proptest
//! finds are kept in `proptest-regressions/` and replayed first.

use proptest::prelude::*;
use serde_json::Value;

use crate::elastic_dsl::parse_es_query;
use crate::query_string::{parse_query_string, parse_query_string_with, DefaultOperator};

/// Text made of the query language's own symbols, keywords and words, in any order: far
/// more likely than random characters to reach deep into the parser.
fn query_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("("),
        Just(")"),
        Just("\""),
        Just(":"),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(" TO "),
        Just(" AND "),
        Just(" OR "),
        Just("NOT "),
        Just("-"),
        Just("+"),
        Just("!"),
        Just("*"),
        Just("?"),
        Just("~"),
        Just("~2"),
        Just("^"),
        Just("\\"),
        Just(">="),
        Just(">"),
        Just("<="),
        Just("<"),
        Just("IN "),
        Just("body"),
        Just("a.b"),
        Just("é"),
        Just("12"),
        Just("-3.5"),
        Just(" "),
        Just("&&"),
        Just("||"),
        Just("now-1d"),
        Just("2026-01-01T00:00:00Z"),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// Values a date may be written as in a range, date math included.
fn date_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("now"),
        Just("+"),
        Just("-"),
        Just("/"),
        Just("||"),
        Just("1"),
        Just("99999999999"),
        Just("9223372036854775807"),
        Just("d"),
        Just("M"),
        Just("y"),
        Just("w"),
        Just("h"),
        Just("H"),
        Just("m"),
        Just("s"),
        Just("é"),
        Just("2026-02-10"),
        Just("T05:00:00Z"),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// JSON shaped like query DSL: its clause and option names as keys, any values below.
fn dsl_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("bool"),
        Just("must"),
        Just("should"),
        Just("must_not"),
        Just("filter"),
        Just("term"),
        Just("terms"),
        Just("match"),
        Just("match_phrase"),
        Just("match_all"),
        Just("range"),
        Just("gte"),
        Just("lte"),
        Just("gt"),
        Just("lt"),
        Just("format"),
        Just("query_string"),
        Just("query"),
        Just("exists"),
        Just("field"),
        Just("wildcard"),
        Just("prefix"),
        Just("ids"),
        Just("values"),
        Just("value"),
        Just("ts"),
        Just("body"),
        Just("minimum_should_match"),
        Just("boost"),
        Just("default_field"),
        Just("operator"),
    ]
    .prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| serde_json::json!(number)),
        any::<String>().prop_map(Value::from),
        query_text().prop_map(Value::from),
        date_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-01-15 10:20:30 UTC)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_query_or_an_error(text in any::<String>()) {
        let _ = parse_query_string(&text, &["body".to_string()]);
        let _ = parse_query_string_with(&text, &[], DefaultOperator::Or);
    }

    #[test]
    fn query_like_text_is_a_query_or_an_error_placed_in_it(text in query_text()) {
        if let Err(error) = parse_query_string(&text, &["body".to_string()]) {
            prop_assert!(error.position <= text.chars().count(), "{error} in {text:?}");
        }
        let _ = parse_query_string_with(&text, &["body".to_string()], DefaultOperator::Or);
    }

    #[test]
    fn dsl_shaped_json_is_a_query_or_an_error(query in dsl_json()) {
        let _ = parse_es_query(&query, &["body".to_string()], now());
    }

    #[test]
    fn date_math_is_a_date_or_an_error(text in date_text(), round_up in any::<bool>()) {
        let _ = crate::elastic_dsl::date_math(&text, now(), round_up);
    }
}
