//! The read path: a query string becomes a `QueryAst`; the root lists and prunes splits,
//! leaves search them on blocking threads, the root merges top hits and fetches the
//! documents of the final page.
//!
//! `root` → `leaf` → `fetch_docs`. The query language (`query_string` / `elastic_dsl` →
//! `QueryAst` → tantivy `Query`) lives in `quarry-query`, below the searcher and the indexer.

pub mod aggregations;
mod cached_sort;
mod date_histogram;
#[doc(hidden)]
pub mod encoding_bench;
mod fetch_docs;
mod leaf;
mod leaf_client;
mod leaf_service;
mod lru;
pub use quarry_common::pattern;
mod placer;
mod protocol;
pub mod pruning;
mod request;
mod result_cache;
mod root;
pub mod search_after;
mod sort;
mod split_cache;
mod time_buckets;
mod volume_histogram;
mod warmup;

pub use leaf::HISTOGRAMS_FROM_COUNTS;
pub use leaf_client::{
    LocalSearcherPool, SearcherPool, LEAF_RETRIES, REMOTE_LEAF_FAILURES, REMOTE_LEAF_REQUESTS,
};
pub use leaf_service::{LeafService, LeafStats};
pub use placer::{rendezvous_order, SearcherNode};
pub use protocol::ProtocolError;
pub use request::{HighlightOptions, SearchRequest, SearchResponse, MAX_HITS_CAP};
pub use root::json_paths::JsonFieldPath;
pub use root::{every_index, IndexFilter, SearchError, SearchHit, SearchResult, SearchService};
