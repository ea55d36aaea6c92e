//! The query language, shared by the searcher and by the indexer's delete tasks.
//!
//! `query_string` (the native API's Lucene-style syntax) and `elastic_dsl` (the
//! Elasticsearch query DSL) parse into one `QueryAst`, independent of any split;
//! `query_builder` turns a `QueryAst` into a tantivy `Query` against an index's
//! `DocMapper`. `delete_query` turns a delete task (a query string and a time window, in
//! the search API's terms) into the `QueryAst` the indexer runs over a split.
//!
//! `query_string` / `elastic_dsl` → `query_ast` → `query_builder`. It sits below both the
//! searcher and the indexer, which never import each other.

pub mod column_cache;
pub mod datetime_range;
pub mod delete_query;
pub mod elastic_dsl;
pub mod log_ids_query;
pub mod query_ast;
pub mod query_builder;
pub mod query_string;
mod sorted_docs;

#[cfg(test)]
mod property_tests;
