use serde::{Deserialize, Serialize};

/// How deeply queries may nest (parentheses in a query string, compound clauses in the
/// Elasticsearch DSL). Parsing and building recurse once per level, and the root sends the
/// query to leaves as JSON, which readers refuse past 128 levels: deeper requests get a
/// 400 naming this bound instead of taking a node's stack.
pub const MAX_QUERY_DEPTH: usize = 32;

/// A parsed query, independent of any split: what the root sends to leaves. Query strings
/// (and later the Elasticsearch DSL) compile into it; `query_builder` turns it into a
/// tantivy query against one index's doc mapper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueryAst {
    MatchAll,
    MatchNone,
    Bool(BoolQuery),
    /// `field:value`: the value is analysed with the field's tokenizer; several tokens must
    /// all appear, in order where positions are indexed.
    Term {
        field: String,
        value: String,
    },
    Phrase {
        field: String,
        phrase: String,
        slop: u32,
    },
    Range {
        field: String,
        lower: RangeBound,
        upper: RangeBound,
    },
    /// `*` matches any run of characters, `?` exactly one.
    Wildcard {
        field: String,
        pattern: String,
    },
    Exists {
        field: String,
    },
    TermSet {
        field: String,
        values: Vec<String>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BoolQuery {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<QueryAst>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<QueryAst>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub should: Vec<QueryAst>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<QueryAst>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_should_match: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeBound {
    Unbounded,
    Included(String),
    Excluded(String),
}

impl QueryAst {
    pub fn and(clauses: Vec<QueryAst>) -> QueryAst {
        if clauses.len() == 1 {
            return clauses.into_iter().next().unwrap_or(QueryAst::MatchAll);
        }
        QueryAst::Bool(BoolQuery {
            must: clauses,
            ..Default::default()
        })
    }

    pub fn or(clauses: Vec<QueryAst>) -> QueryAst {
        if clauses.len() == 1 {
            return clauses.into_iter().next().unwrap_or(QueryAst::MatchNone);
        }
        QueryAst::Bool(BoolQuery {
            should: clauses,
            ..Default::default()
        })
    }

    /// Adds a filter that does not change scores (e.g. the request's time window).
    pub fn filtered(self, filter: QueryAst) -> QueryAst {
        QueryAst::Bool(BoolQuery {
            must: vec![self],
            filter: vec![filter],
            ..Default::default()
        })
    }
}
