//! Delete tasks name documents with the search API's query language and time window; this
//! turns them into the query the indexer runs over a split to find what to drop.

use quarry_common::doc_mapper::DocMapper;
use quarry_common::metastore::DeleteQuery;

use crate::query_ast::{BoolQuery, QueryAst};
use crate::query_builder::{within_time_window, QueryBuilder};
use crate::query_string::parse_query_string;

/// One delete query as a `QueryAst`, checked against the doc mapper so that a bad query is
/// refused when the task is created rather than when it is applied.
pub fn delete_query_ast(
    delete_query: &DeleteQuery,
    doc_mapper: &DocMapper,
) -> Result<QueryAst, String> {
    let default_fields = if delete_query.search_fields.is_empty() {
        doc_mapper.default_search_fields().to_vec()
    } else {
        delete_query.search_fields.clone()
    };
    let ast = parse_query_string(&delete_query.query, &default_fields)
        .map_err(|error| format!("{error} in `{}`", delete_query.query))?;
    let ast = within_time_window(
        ast,
        doc_mapper,
        delete_query.index_uid.index_id(),
        delete_query.start_timestamp,
        delete_query.end_timestamp,
    )?;
    QueryBuilder::new(doc_mapper)
        .build(&ast)
        .map_err(|error| error.to_string())?;
    Ok(ast)
}

/// Documents any of `delete_queries` matches.
pub fn any_of(delete_queries: &[DeleteQuery], doc_mapper: &DocMapper) -> Result<QueryAst, String> {
    let should = delete_queries
        .iter()
        .map(|delete_query| delete_query_ast(delete_query, doc_mapper))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(QueryAst::Bool(BoolQuery {
        should,
        minimum_should_match: Some(1),
        ..BoolQuery::default()
    }))
}
