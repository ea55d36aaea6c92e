//! The leaf side of a search on this node: opens splits through its caches and runs the
//! collectors on blocking threads. The root calls it directly for the splits this node
//! wins, and other nodes' roots reach it through `/internal/v1/leaf_search` and
//! `/internal/v1/fetch_docs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use quarry_common::doc_mapper::DocMapper;
use quarry_common::split::{ByteRangeCache, SplitOpenInfo};
use quarry_common::storage::{LatencyStorage, Storage, StorageResolver};
use quarry_common::IndexUid;
use quarry_config::{IndexConfig, SearcherConfig};
use quarry_query::query_builder::QueryBuilder;

use crate::fetch_docs::{fetch_docs, FetchedDoc, SnippetRequest};
use crate::leaf::{leaf_search, LeafRequest, LeafResult};
use crate::lru::LruMap;
use crate::protocol::{
    self, FetchDocsRequest, FetchDocsResponse, LeafSearchRequest, LeafSearchResponse,
    ProtocolError, SplitTarget,
};
use crate::result_cache::PartialResultCache;
use crate::split_cache::{OpenSplit, SplitCache};
use crate::warmup::{log_id_columns, warm_up_fetch};

/// Indexes whose doc mapper and storage a leaf keeps at hand. A deleted index's entry ages
/// out; its uid is never reused.
const INDEX_CACHE_ENTRIES: usize = 1024;

/// What a leaf needs of an index, built once per index incarnation.
pub(crate) struct LeafIndex {
    pub doc_mapper: Arc<DocMapper>,
    pub storage: Arc<dyn Storage>,
    /// Whether searches fetch what they will read before running (see `warmup`).
    pub warm_up: bool,
}

/// Counts for `/metrics`: how much leaf work this node did for roots (its own and others').
#[derive(Default)]
pub struct LeafStats {
    pub requests: AtomicU64,
    pub remote_requests: AtomicU64,
    pub splits_searched: AtomicU64,
}

pub struct LeafService {
    resolver: StorageResolver,
    simulated_get_latency: Option<Duration>,
    warmup: bool,
    pub(crate) split_cache: SplitCache,
    pub(crate) range_cache: Arc<ByteRangeCache>,
    pub(crate) result_cache: PartialResultCache,
    indexes: LruMap<IndexUid, Arc<LeafIndex>>,
    pub stats: LeafStats,
}

impl LeafService {
    pub fn new(resolver: StorageResolver, config: &SearcherConfig) -> LeafService {
        quarry_common::split::source_store::set_block_cache_capacity(
            config.source_block_cache_bytes.as_u64() as usize,
        );
        LeafService {
            resolver,
            simulated_get_latency: (config.simulated_get_latency_ms > 0)
                .then(|| Duration::from_millis(config.simulated_get_latency_ms)),
            warmup: config.warmup,
            split_cache: SplitCache::new(config.split_footer_cache_capacity.as_u64() as usize),
            range_cache: Arc::new(ByteRangeCache::new(
                config.range_cache_bytes.as_u64() as usize
            )),
            result_cache: PartialResultCache::new(config.partial_result_cache_entries),
            indexes: LruMap::new(INDEX_CACHE_ENTRIES),
            stats: LeafStats::default(),
        }
    }

    pub(crate) fn index(
        &self,
        index_uid: &IndexUid,
        index_config: &IndexConfig,
    ) -> Result<Arc<LeafIndex>, String> {
        if let Some(index) = self.indexes.get(index_uid) {
            return Ok(index);
        }
        let index_uri = index_config.index_uri.as_deref().unwrap_or_default();
        let mut storage = self
            .resolver
            .resolve(index_uri)
            .map_err(|error| error.to_string())?;
        if let Some(latency) = self.simulated_get_latency {
            storage = Arc::new(LatencyStorage::new(storage, latency));
        }
        // On a local disk a read costs a system call, not a round trip: fetching ahead
        // would only do the dictionary lookups twice (10–24% of a warm small query).
        let on_local_disk = ["file://", "ram://"]
            .iter()
            .any(|scheme| index_uri.starts_with(scheme))
            && self.simulated_get_latency.is_none();
        let index = Arc::new(LeafIndex {
            doc_mapper: Arc::new(DocMapper::new(index_config)),
            storage,
            warm_up: self.warmup && !on_local_disk,
        });
        self.indexes.insert(index_uid.clone(), index.clone());
        Ok(index)
    }

    pub(crate) fn forget_index(&self, index_uid: &IndexUid) {
        self.indexes.remove(index_uid);
    }

    async fn open_split(
        &self,
        index: &LeafIndex,
        split: &SplitTarget,
    ) -> Result<Arc<OpenSplit>, String> {
        let info = SplitOpenInfo {
            storage: index.storage.clone(),
            split_path: split.split_id.file_name(),
            footer_offsets: split.footer_offsets.clone(),
            range_cache: Some(self.range_cache.clone()),
        };
        self.split_cache
            .get_or_open(&split.split_id, info)
            .await
            .map_err(|error| format!("split {}: {error}", split.split_id))
    }

    /// The first phase over every split of the request, concurrently; one result per
    /// split, in the request's order. Time bounds are the caller's.
    pub(crate) async fn search(
        &self,
        request: Arc<LeafSearchRequest>,
    ) -> Vec<Result<LeafResult, String>> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let index = match self.index(&request.index_uid, &request.index_config) {
            Ok(index) => index,
            Err(error) => return request.splits.iter().map(|_| Err(error.clone())).collect(),
        };
        // What makes a split's result reusable by another request.
        let cache_key = if self.result_cache.is_enabled() {
            serde_json::to_string(&(
                &request.query_ast,
                &request.sort,
                &request.aggs,
                &request.cursor,
                request.limit,
            ))
            .unwrap_or_default()
        } else {
            String::new()
        };
        let searches = (0..request.splits.len()).map(|position| {
            let request = request.clone();
            let index = index.clone();
            let cache_key = format!("{}|{cache_key}", request.splits[position].split_id);
            async move {
                let split = &request.splits[position];
                let split_ord = split.split_ord;
                let split_id = split.split_id.clone();
                let open = self.open_split(&index, split).await?;
                if let Some(cached) = self.result_cache.get(&cache_key, split_ord) {
                    return Ok(cached);
                }
                self.stats.splits_searched.fetch_add(1, Ordering::Relaxed);
                let request = request.clone();
                let runtime = index.warm_up.then(tokio::runtime::Handle::current);
                let result = tokio::task::spawn_blocking(move || {
                    let searcher = open
                        .searcher()
                        .map_err(|error| format!("opening split: {error}"))?;
                    let split_id_text = request.splits[position].split_id.to_string();
                    let volume = open.volume();
                    leaf_search(
                        &searcher,
                        split_ord,
                        LeafRequest {
                            doc_mapper: &index.doc_mapper,
                            query_ast: &request.query_ast,
                            sort: &request.sort,
                            limit: request.limit,
                            aggs: request.aggs.as_ref(),
                            cursor: request.cursor.as_ref(),
                            split_id: &split_id_text,
                            volume: volume.as_deref(),
                            warmup: runtime.as_ref(),
                        },
                    )
                })
                .await
                .map_err(|error| format!("split {split_id}: leaf search panicked: {error}"))?
                .map_err(|error| format!("split {split_id}: {error}"))?;
                self.result_cache.put(cache_key, result.clone());
                Ok(result)
            }
        });
        // A split still running at the deadline is an error of its own; the others answer.
        let timeout_ms = request.timeout_ms;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let bounded = searches
            .zip(&request.splits)
            .map(|(search, split)| async move {
                tokio::time::timeout_at(deadline, search)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "split {}: timed out after {timeout_ms} ms",
                            split.split_id
                        ))
                    })
            });
        join_all(bounded).await
    }

    /// The second phase: documents (and snippets) of some hits of one split, in order.
    pub(crate) async fn fetch_docs(
        &self,
        request: FetchDocsRequest,
    ) -> Result<Vec<FetchedDoc>, String> {
        let index = self.index(&request.index_uid, &request.index_config)?;
        let open = self.open_split(&index, &request.split).await?;
        let split_id = request.split.split_id.clone();
        let runtime = index.warm_up.then(tokio::runtime::Handle::current);
        tokio::task::spawn_blocking(move || {
            let searcher = open.searcher().map_err(|error| error.to_string())?;
            let sources = open.sources(&searcher)?;
            let doc_mapper = &index.doc_mapper;
            if let Some(runtime) = &runtime {
                warm_up_fetch(
                    runtime,
                    &searcher,
                    &sources,
                    &request.addresses,
                    &log_id_columns(),
                )?;
            }
            let Some(spec) = &request.snippets else {
                return fetch_docs(&searcher, &sources, doc_mapper, &request.addresses, None);
            };
            let query = QueryBuilder::new(doc_mapper)
                .build(&spec.query_ast)
                .map_err(|error| error.to_string())?;
            let fields: Vec<(String, tantivy::schema::Field)> = spec
                .fields
                .iter()
                .map(|(name, id)| (name.clone(), tantivy::schema::Field::from_field_id(*id)))
                .collect();
            let snippets = SnippetRequest {
                query: query.as_ref(),
                fields: &fields,
                options: spec.highlight.as_ref(),
            };
            fetch_docs(
                &searcher,
                &sources,
                doc_mapper,
                &request.addresses,
                Some(snippets),
            )
        })
        .await
        .map_err(|error| format!("split {split_id}: fetching documents panicked: {error}"))?
        .map_err(|error| format!("split {split_id}: {error}"))
    }

    /// `/internal/v1/leaf_search`: a JSON `LeafSearchRequest` in, a postcard
    /// `LeafSearchResponse` out. A malformed request is an error, never a panic.
    pub async fn serve_leaf_search(&self, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let request: LeafSearchRequest =
            protocol::off_executor_if_large(body.to_vec(), protocol::decode_request).await?;
        self.stats.remote_requests.fetch_add(1, Ordering::Relaxed);
        let results = self.search(Arc::new(request)).await;
        protocol::encode_leaf_response(&LeafSearchResponse { results })
    }

    /// `/internal/v1/fetch_docs`: a JSON `FetchDocsRequest` in, JSON documents out; a
    /// failure to read them is the error string.
    pub async fn serve_fetch_docs(
        &self,
        body: &[u8],
    ) -> Result<Result<Vec<u8>, String>, ProtocolError> {
        let request: FetchDocsRequest = protocol::decode_request(body)?;
        match self.fetch_docs(request).await {
            Ok(docs) => protocol::encode_fetch_response(&FetchDocsResponse { docs }).map(Ok),
            Err(error) => Ok(Err(error)),
        }
    }
}
