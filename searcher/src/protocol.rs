//! What a root and a leaf on another node say to each other over `/internal/v1`.
//!
//! Requests are JSON: the query AST and aggregation requests are internally tagged enums,
//! which only self-describing formats read. Leaf results are postcard: tantivy's
//! intermediate aggregation results have non-string map keys, which JSON cannot carry,
//! and postcard is also the smaller and faster of the two for hit lists. Fetched
//! documents are JSON values, which only JSON carries.
//!
//! Each request owns its data and names splits by id, so it means the same on any node.

use std::ops::Range;

use quarry_common::IndexUid;
use quarry_common::SplitId;
use quarry_config::IndexConfig;
use quarry_query::query_ast::QueryAst;
use serde::{Deserialize, Serialize};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::DocAddress;

use crate::fetch_docs::FetchedDoc;
use crate::leaf::LeafResult;
use crate::request::HighlightOptions;
use crate::search_after::Cursor;
use crate::sort::SortSpec;

/// One split a leaf request covers. `split_ord` is the root's number for it, echoed in
/// the hits so the root can tell splits apart without comparing ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SplitTarget {
    pub split_ord: usize,
    pub split_id: SplitId,
    pub footer_offsets: Range<u64>,
}

/// The first phase on some splits of one index: count, top `limit` hits, aggregations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeafSearchRequest {
    pub index_uid: IndexUid,
    /// The leaf builds (and caches by `index_uid`) the doc mapper from it, so it needs no
    /// metastore round trip.
    pub index_config: IndexConfig,
    pub query_ast: QueryAst,
    pub sort: SortSpec,
    pub aggs: Option<Aggregations>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    /// How long the leaf may take; a split still running then answers a timeout error.
    pub timeout_ms: u64,
    pub splits: Vec<SplitTarget>,
}

/// One result per split of the request, in its order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LeafSearchResponse {
    pub results: Vec<Result<LeafResult, String>>,
}

/// What highlighting needs on the leaf: fields are `(path, tantivy field id)`, which the
/// same index config gives the same ids on every node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SnippetSpec {
    pub query_ast: QueryAst,
    pub fields: Vec<(String, u32)>,
    pub highlight: Option<HighlightOptions>,
}

/// The second phase: the documents of the final page that live in one split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FetchDocsRequest {
    pub index_uid: IndexUid,
    pub index_config: IndexConfig,
    pub split: SplitTarget,
    pub addresses: Vec<DocAddress>,
    pub snippets: Option<SnippetSpec>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FetchDocsResponse {
    pub docs: Vec<FetchedDoc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed internal request: {0}")]
    MalformedRequest(String),
    #[error("malformed internal response: {0}")]
    MalformedResponse(String),
    #[error("cannot encode internal message: {0}")]
    Encode(String),
}

pub(crate) fn encode_request<T: Serialize>(request: &T) -> Result<Vec<u8>, ProtocolError> {
    serde_json::to_vec(request).map_err(|error| ProtocolError::Encode(error.to_string()))
}

pub(crate) fn decode_request<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
) -> Result<T, ProtocolError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ProtocolError::MalformedRequest(error.to_string()))
}

/// Messages above this size (leaf requests naming thousands of splits, responses with
/// many aggregation buckets) take milliseconds to decode, too long to hold an executor
/// thread; below it the hand-off to the blocking pool costs more than the decoding.
const BLOCKING_DECODE_BYTES: usize = 256 * 1024;

/// Runs `decode` on the message, on the blocking pool when the message is large.
pub(crate) async fn off_executor_if_large<T: Send + 'static>(
    bytes: Vec<u8>,
    decode: impl FnOnce(&[u8]) -> Result<T, ProtocolError> + Send + 'static,
) -> Result<T, ProtocolError> {
    if bytes.len() <= BLOCKING_DECODE_BYTES {
        return decode(&bytes);
    }
    tokio::task::spawn_blocking(move || decode(&bytes))
        .await
        .map_err(|error| ProtocolError::MalformedResponse(format!("decoding panicked: {error}")))?
}

pub(crate) fn encode_leaf_response(
    response: &LeafSearchResponse,
) -> Result<Vec<u8>, ProtocolError> {
    postcard::to_allocvec(response).map_err(|error| ProtocolError::Encode(error.to_string()))
}

pub(crate) fn decode_leaf_response(bytes: &[u8]) -> Result<LeafSearchResponse, ProtocolError> {
    postcard::from_bytes(bytes).map_err(|error| ProtocolError::MalformedResponse(error.to_string()))
}

pub(crate) fn encode_fetch_response(
    response: &FetchDocsResponse,
) -> Result<Vec<u8>, ProtocolError> {
    serde_json::to_vec(response).map_err(|error| ProtocolError::Encode(error.to_string()))
}

pub(crate) fn decode_fetch_response(bytes: &[u8]) -> Result<FetchDocsResponse, ProtocolError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ProtocolError::MalformedResponse(error.to_string()))
}
