//! Which splits can be skipped before any is opened: by time range (in the metastore
//! query) and by tags, the values of `doc_mapping.tag_fields` each split records.

use std::collections::{BTreeSet, HashSet};

use quarry_query::query_ast::QueryAst;

/// Whether a split with these tags may hold a match. Conservative: `true` unless a clause
/// every hit must satisfy names a tag value the split does not have.
pub fn split_may_match(
    query: &QueryAst,
    tag_fields: &HashSet<String>,
    split_tags: &BTreeSet<String>,
) -> bool {
    match query {
        QueryAst::Term { field, value } if tag_fields.contains(field) => {
            has_tag(field, value, split_tags)
        }
        QueryAst::TermSet { field, values } if tag_fields.contains(field) => {
            values.iter().any(|value| has_tag(field, value, split_tags))
        }
        QueryAst::MatchNone => false,
        QueryAst::Bool(bool_query) => {
            let required_hold = bool_query
                .must
                .iter()
                .chain(&bool_query.filter)
                .all(|clause| split_may_match(clause, tag_fields, split_tags));
            let only_should = bool_query.must.is_empty()
                && bool_query.filter.is_empty()
                && !bool_query.should.is_empty();
            let should_holds = !only_should
                || bool_query
                    .should
                    .iter()
                    .any(|clause| split_may_match(clause, tag_fields, split_tags));
            required_hold && should_holds
        }
        _ => true,
    }
}

fn has_tag(field: &str, value: &str, split_tags: &BTreeSet<String>) -> bool {
    // `field!` marks a field with too many values to list: anything may be there.
    split_tags.contains(&format!("{field}:{value}")) || split_tags.contains(&format!("{field}!"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_query::query_string::parse_query_string;

    fn may_match(query: &str, tags: &[&str]) -> bool {
        let ast = parse_query_string(query, &["body".to_string()]).unwrap();
        let tag_fields: HashSet<String> =
            ["service_name".to_string(), "severity_text".to_string()].into();
        let tags: BTreeSet<String> = tags.iter().map(|tag| tag.to_string()).collect();
        split_may_match(&ast, &tag_fields, &tags)
    }

    #[test]
    fn prunes_only_what_cannot_match() {
        let split = ["service_name:auth", "severity_text:ERROR"];
        let table = [
            ("service_name:auth", true),
            ("service_name:billing", false),
            ("service_name:billing AND body:failed", false),
            ("service_name:billing OR body:failed", true),
            ("service_name:billing OR service_name:auth", true),
            ("service_name:IN [billing cart]", false),
            ("service_name:IN [billing auth]", true),
            ("NOT service_name:billing", true),
            ("severity_text:ERROR AND service_name:auth", true),
            ("severity_text:WARN AND service_name:auth", false),
            ("body:failed", true),
            ("host:h1", true),
            ("*", true),
        ];
        for (query, expected) in table {
            assert_eq!(may_match(query, &split), expected, "{query}");
        }
        assert!(may_match("service_name:anything", &["service_name!"]));
    }
}
