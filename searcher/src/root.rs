mod fan_out;
pub mod json_paths;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quarry_common::doc_mapper::DocMapper;
use quarry_common::metastore::{IndexMetadata, ListSplitsQuery, Metastore, MetastoreError, Split};
use quarry_config::SearcherConfig;
use quarry_query::elastic_dsl::parse_es_query;
use quarry_query::query_ast::QueryAst;
use quarry_query::query_builder::{within_time_window, QueryBuilder};
use quarry_query::query_string::parse_query_string;

use quarry_common::storage::StorageResolver;
use quarry_common::IndexUid;
use tracing::warn;

use tantivy::aggregation::agg_req::Aggregations;

use crate::aggregations::{finalize, fold_calendar_buckets, parse_aggregations, shape_top_hits};
use crate::leaf::{LeafResult, PartialHit};
use crate::leaf_client::{LeafClient, LocalSearcherPool, SearcherPool};
use crate::leaf_service::LeafService;
use crate::pattern::wildcard_match;
use crate::pruning::split_may_match;
use crate::request::{SearchRequest, SearchResponse, MAX_HITS_CAP};
use crate::search_after::Cursor;
use crate::sort::SortSpec;
use quarry_common::node_transport::NodeTransport;

/// How long leaves may take unless the request says otherwise.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("index `{0}` not found")]
    IndexNotFound(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Internal(String),
}

impl From<MetastoreError> for SearchError {
    fn from(error: MetastoreError) -> Self {
        match error {
            MetastoreError::IndexNotFound(index_id) => SearchError::IndexNotFound(index_id),
            other => SearchError::Internal(other.to_string()),
        }
    }
}

/// One hit with its provenance: `split_id`, `segment_ord` and `doc_id` make a stable id
/// while the split lives.
#[derive(Clone, Debug)]
pub struct SearchHit {
    pub index_id: String,
    /// The document as JSON text: the bytes it was indexed from when its index keeps the
    /// source (the default), so that clients get back exactly what they sent.
    pub doc: Box<serde_json::value::RawValue>,
    /// The `_id` the client gave the document, if it gave one.
    pub external_id: Option<String>,
    /// Highlighted fragments per requested snippet field.
    pub snippets: Option<serde_json::Value>,
    pub split_id: String,
    pub segment_ord: u32,
    pub doc_id: u32,
    pub sort_value: Option<serde_json::Value>,
}

impl SearchHit {
    /// The values that resume a search after this hit: one per sort key, then the
    /// `split:segment:doc` tiebreaker.
    pub fn search_after(&self) -> Option<Vec<serde_json::Value>> {
        let mut values = match self.sort_value.clone()? {
            serde_json::Value::Array(values) => values,
            value => vec![value],
        };
        values.push(serde_json::Value::String(Cursor::tiebreaker(
            &self.split_id,
            self.segment_ord,
            self.doc_id,
        )));
        Some(values)
    }
}

#[derive(Clone, Debug)]
pub struct SearchResult {
    pub num_hits: u64,
    pub hits: Vec<SearchHit>,
    pub aggregations: Option<serde_json::Value>,
    pub elapsed_time_micros: u64,
    pub errors: Vec<String>,
    pub num_splits: usize,
    /// The splits the request covered: a scroll searches these and no newer ones.
    pub split_ids: Vec<String>,
}

/// `[value]` or `[value, "split:segment:doc"]`. Without a tiebreaker, every hit with the
/// same value counts as seen, as in Elasticsearch.
fn parse_cursor(values: &[serde_json::Value], sort: &SortSpec) -> Result<Cursor, String> {
    let sort_key = sort.cursor_key_from_json(values)?;
    let (split_id, segment_ord, doc_id) = match values.get(sort.num_keys()) {
        Some(tiebreaker) => tiebreaker
            .as_str()
            .and_then(Cursor::parse_tiebreaker)
            .ok_or_else(|| {
                format!("search_after tiebreaker `{tiebreaker}` is not `split:segment:doc`")
            })?,
        None => (char::MAX.to_string(), u32::MAX, u32::MAX),
    };
    Ok(Cursor {
        sort_key,
        split_id,
        segment_ord,
        doc_id,
    })
}

/// A snippet field must be a stored text field: fragments are cut from its stored text.
fn snippet_field(
    doc_mapper: &DocMapper,
    name: &str,
) -> Result<(String, tantivy::schema::Field), String> {
    match doc_mapper.resolve_field(name)? {
        quarry_common::doc_mapper::ResolvedField::Mapped(mapped)
            if mapped.leaf_type == quarry_config::LeafFieldType::Text && mapped.mapping.stored =>
        {
            Ok((mapped.path.clone(), mapped.field))
        }
        _ => Err(format!(
            "cannot make snippets of `{name}`: snippet fields must be stored text fields"
        )),
    }
}

/// How many nodes a split's leaf search is tried on before it is reported in `errors`.
const MAX_LEAF_ATTEMPTS: usize = 3;

/// Which indexes a request may see, by index id: its caller's (API keys, in the binary).
/// Every search names one, so no path can forget to.
pub type IndexFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The filter of a caller who may see every index.
pub fn every_index() -> IndexFilter {
    Arc::new(|_| true)
}

/// The root of a search: plans, places splits on searcher nodes, fans out, merges.
pub struct SearchService {
    metastore: Arc<dyn Metastore>,
    resolver: StorageResolver,
    leaf: Arc<LeafService>,
    pool: Arc<dyn SearcherPool>,
    client: LeafClient,
    doc_mappers: Mutex<HashMap<IndexUid, Arc<DocMapper>>>,
}

struct Plan {
    cursor: Option<Cursor>,
    index_id: String,
    index_uid: IndexUid,
    index_config: quarry_config::IndexConfig,
    doc_mapper: Arc<DocMapper>,
    highlight: Option<crate::request::HighlightOptions>,
    snippet_fields: Vec<(String, tantivy::schema::Field)>,
    query_ast: QueryAst,
    sort: SortSpec,
    aggs: Option<Aggregations>,
    splits: Vec<Split>,
}

impl SearchService {
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        config: &SearcherConfig,
    ) -> SearchService {
        SearchService {
            leaf: Arc::new(LeafService::new(resolver.clone(), config)),
            metastore,
            resolver,
            pool: Arc::new(LocalSearcherPool),
            client: LeafClient::new(&NodeTransport::default()),
            doc_mappers: Mutex::new(HashMap::new()),
        }
    }

    /// Fans leaf searches out to the pool's searcher nodes instead of this node alone,
    /// over `transport` (the cluster secret, TLS).
    pub fn with_searcher_pool(
        mut self,
        pool: Arc<dyn SearcherPool>,
        transport: &NodeTransport,
    ) -> SearchService {
        self.pool = pool;
        self.client = LeafClient::new(transport);
        self
    }

    /// The leaf side of this node, which `/internal/v1` serves to other roots.
    pub fn leaf(&self) -> &LeafService {
        &self.leaf
    }

    fn doc_mapper(&self, index_metadata: &IndexMetadata) -> Arc<DocMapper> {
        let mut doc_mappers = self
            .doc_mappers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        doc_mappers
            .entry(index_metadata.index_uid.clone())
            .or_insert_with(|| Arc::new(DocMapper::new(&index_metadata.index_config)))
            .clone()
    }

    /// The doc mapper of an index, as searches use it.
    pub async fn doc_mapper_of(&self, index_id: &str) -> Result<Arc<DocMapper>, SearchError> {
        let index_metadata = self.metastore.index_metadata(index_id).await?;
        Ok(self.doc_mapper(&index_metadata))
    }

    /// Hits and misses of the partial-result cache.
    pub fn result_cache_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.leaf.result_cache.hits.load(Ordering::Relaxed),
            self.leaf.result_cache.misses.load(Ordering::Relaxed),
        )
    }

    /// Hits and misses of the byte-range cache, and the bytes it holds.
    /// Bytes of split footers and hotcaches the split cache holds.
    pub fn split_cache_bytes(&self) -> usize {
        self.leaf.split_cache.footer_bytes()
    }

    pub fn range_cache_stats(&self) -> (u64, u64, usize) {
        use std::sync::atomic::Ordering;
        (
            self.leaf.range_cache.hits.load(Ordering::Relaxed),
            self.leaf.range_cache.misses.load(Ordering::Relaxed),
            self.leaf.range_cache.used_bytes(),
        )
    }

    /// Forgets cached state of a deleted index.
    pub fn forget_index(&self, index_uid: &IndexUid, split_ids: &[quarry_common::SplitId]) {
        self.doc_mappers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(index_uid);
        self.leaf.forget_index(index_uid);
        for split_id in split_ids {
            self.leaf.split_cache.evict(split_id);
        }
    }

    async fn plan(
        &self,
        index_metadata: &IndexMetadata,
        request: &SearchRequest,
    ) -> Result<Plan, SearchError> {
        if request.start_offset.saturating_add(request.max_hits) > MAX_HITS_CAP {
            return Err(SearchError::InvalidRequest(format!(
                "start_offset + max_hits is {}, over the {MAX_HITS_CAP} cap: page deeper with search_after",
                request.start_offset.saturating_add(request.max_hits)
            )));
        }
        if let (Some(start), Some(end)) = (request.start_timestamp, request.end_timestamp) {
            if start > end {
                return Err(SearchError::InvalidRequest(format!(
                    "start_timestamp ({start}) is after end_timestamp ({end})"
                )));
            }
        }
        let doc_mapper = self.doc_mapper(index_metadata);
        let default_fields = request
            .search_field
            .clone()
            .unwrap_or_else(|| doc_mapper.default_search_fields().to_vec());
        let mut query_ast = match &request.es_query {
            Some(dsl) => parse_es_query(dsl, &default_fields, time::OffsetDateTime::now_utc())
                .map_err(|error| SearchError::InvalidRequest(error.to_string()))?,
            None => parse_query_string(&request.query, &default_fields).map_err(|error| {
                SearchError::InvalidRequest(format!("{error} in `{}`", request.query))
            })?,
        };
        query_ast = within_time_window(
            query_ast,
            &doc_mapper,
            index_metadata.index_id(),
            request.start_timestamp,
            request.end_timestamp,
        )
        .map_err(SearchError::InvalidRequest)?;
        // Building the query once here turns unknown fields and bad values into a 400
        // before any split is touched.
        QueryBuilder::new(&doc_mapper)
            .build(&query_ast)
            .map_err(|error| SearchError::InvalidRequest(error.to_string()))?;
        let sort = SortSpec::parse(request.sort_by.as_deref(), &doc_mapper)
            .map_err(SearchError::InvalidRequest)?;
        let list_query = ListSplitsQuery {
            start_timestamp: request.start_timestamp,
            end_timestamp: request.end_timestamp,
            ..ListSplitsQuery::published()
        };
        let tag_fields: HashSet<String> = doc_mapper
            .tag_fields()
            .map(|field| field.path.clone())
            .collect();
        let splits = self
            .metastore
            .list_splits(&index_metadata.index_uid, &list_query)
            .await?
            .into_iter()
            .filter(|split| split_may_match(&query_ast, &tag_fields, &split.split_metadata.tags))
            .filter(|split| {
                request
                    .only_splits
                    .as_ref()
                    .is_none_or(|only| only.contains(split.split_metadata.split_id.as_str()))
            })
            .collect();
        let aggs = request
            .aggs
            .as_ref()
            .map(|aggs| parse_aggregations(aggs, &doc_mapper))
            .transpose()
            .map_err(SearchError::InvalidRequest)?;
        let snippet_fields = request
            .snippet_fields
            .iter()
            .flatten()
            .flat_map(|name| {
                if name.contains('*') {
                    // Patterns (ES `highlight.fields`) pick the stored text fields they match.
                    doc_mapper
                        .fields()
                        .iter()
                        .filter(|field| {
                            field.leaf_type == quarry_config::LeafFieldType::Text
                                && field.mapping.stored
                                && wildcard_match(name, &field.path)
                        })
                        .map(|field| Ok((field.path.clone(), field.field)))
                        .collect::<Vec<_>>()
                } else {
                    vec![snippet_field(&doc_mapper, name)]
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(SearchError::InvalidRequest)?;
        let cursor = match &request.search_after {
            Some(values) => Some(parse_cursor(values, &sort).map_err(SearchError::InvalidRequest)?),
            None => None,
        };
        Ok(Plan {
            cursor,
            index_id: index_metadata.index_id().to_string(),
            index_uid: index_metadata.index_uid.clone(),
            index_config: index_metadata.index_config.clone(),
            highlight: request.highlight.clone(),
            snippet_fields,
            doc_mapper,
            query_ast,
            sort,
            aggs,
            splits,
        })
    }

    /// The native API's answer: documents only.
    pub async fn search(
        &self,
        index_id: &str,
        visible: &IndexFilter,
        request: SearchRequest,
    ) -> Result<SearchResponse, SearchError> {
        let request_wants_snippets = request
            .snippet_fields
            .as_ref()
            .is_some_and(|fields| !fields.is_empty());
        let result = self.search_detailed(index_id, visible, request).await?;
        let snippets = if request_wants_snippets {
            Some(
                result
                    .hits
                    .iter()
                    .map(|hit| hit.snippets.clone().unwrap_or_default())
                    .collect(),
            )
        } else {
            None
        };
        let next_search_after = result.hits.last().and_then(SearchHit::search_after);
        Ok(SearchResponse {
            num_hits: result.num_hits,
            next_search_after,
            snippets,
            hits: result.hits.into_iter().map(|hit| hit.doc).collect(),
            aggregations: result.aggregations,
            elapsed_time_micros: result.elapsed_time_micros,
            errors: result.errors,
        })
    }

    /// The indexes an expression names: comma-separated ids, `*` patterns, and `-pattern`
    /// exclusions, in order. A missing concrete id is an error; a pattern may match nothing.
    /// Patterns match only indexes `visible` lets through: what the caller may see. A
    /// concrete id it does not let through is reported missing, as if it did not exist
    /// (callers refuse those with 403 before asking).
    pub async fn resolve_indexes(
        &self,
        expression: &str,
        visible: &IndexFilter,
    ) -> Result<Vec<IndexMetadata>, SearchError> {
        let parts: Vec<&str> = expression
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect();
        let is_pattern = |part: &str| part.contains('*') || part.starts_with('-');
        if let Some(hidden) = parts
            .iter()
            .find(|part| !is_pattern(part) && !visible(part))
        {
            return Err(SearchError::IndexNotFound(hidden.to_string()));
        }
        if parts.len() == 1 && !is_pattern(parts[0]) {
            return Ok(vec![self.metastore.index_metadata(parts[0]).await?]);
        }
        let all = self.metastore.list_indexes().await?;
        let mut selected: Vec<IndexMetadata> = Vec::new();
        for part in &parts {
            if let Some(excluded) = part.strip_prefix('-') {
                selected.retain(|index| !wildcard_match(excluded, index.index_id()));
                continue;
            }
            let matching: Vec<&IndexMetadata> = all
                .iter()
                .filter(|index| visible(index.index_id()) && wildcard_match(part, index.index_id()))
                .collect();
            if matching.is_empty() && !part.contains('*') {
                return Err(SearchError::IndexNotFound(part.to_string()));
            }
            for index in matching {
                if !selected
                    .iter()
                    .any(|known| known.index_uid == index.index_uid)
                {
                    selected.push(index.clone());
                }
            }
        }
        Ok(selected)
    }

    /// Hits with where they come from and what they sorted by, for APIs that show it.
    /// `index_expression` may name several indexes (see `resolve_indexes`).
    pub async fn search_detailed(
        &self,
        index_expression: &str,
        visible: &IndexFilter,
        request: SearchRequest,
    ) -> Result<SearchResult, SearchError> {
        let started = Instant::now();
        let mut plans = Vec::new();
        for index_metadata in self.resolve_indexes(index_expression, visible).await? {
            plans.push(Arc::new(self.plan(&index_metadata, &request).await?));
        }
        // Hits from several indexes are merged by one order, so it must mean the same.
        if let Some(first) = plans.first() {
            if let Some(other) = plans.iter().find(|plan| plan.sort != first.sort) {
                return Err(SearchError::InvalidRequest(format!(
                    "indexes `{}` and `{}` sort differently: give `sort_by` explicitly",
                    first.index_id, other.index_id
                )));
            }
        }
        let targets: Vec<(Arc<Plan>, Split)> = plans
            .iter()
            .flat_map(|plan| {
                plan.splits
                    .iter()
                    .map(move |split| (plan.clone(), split.clone()))
            })
            .collect();

        // Counting everything needs no split: the metadata knows.
        let count_only = request.max_hits == 0
            && plans
                .iter()
                .all(|plan| plan.query_ast == QueryAst::MatchAll && plan.aggs.is_none());
        let covered_split_ids: Vec<String> = targets
            .iter()
            .map(|(_, split)| split.split_metadata.split_id.to_string())
            .collect();
        if count_only {
            return Ok(SearchResult {
                split_ids: covered_split_ids,
                num_splits: targets.len(),
                num_hits: targets
                    .iter()
                    .map(|(_, split)| split.split_metadata.num_docs)
                    .sum(),
                hits: Vec::new(),
                aggregations: None,
                elapsed_time_micros: started.elapsed().as_micros() as u64,
                errors: Vec::new(),
            });
        }

        let limit = request.start_offset + request.max_hits;
        // A split that runs over the deadline is reported in `errors`; the others answer.
        let timeout =
            std::time::Duration::from_millis(request.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        let deadline = tokio::time::Instant::from_std(started) + timeout;
        let (leaf_results, searched_on) =
            self.search_leaves(&targets, limit, deadline, timeout).await;

        let mut num_hits = 0;
        let mut errors = Vec::new();
        let mut all_hits: Vec<PartialHit> = Vec::new();
        let mut partial_aggregations = Vec::new();
        for result in leaf_results {
            match result {
                Ok(LeafResult {
                    num_hits: split_hits,
                    hits,
                    aggregations,
                }) => {
                    num_hits += split_hits;
                    all_hits.extend(hits);
                    partial_aggregations.extend(aggregations);
                }
                Err(error) => {
                    warn!("{error}");
                    errors.push(error);
                }
            }
        }
        let Some(first_plan) = plans.first() else {
            return Ok(SearchResult {
                split_ids: Vec::new(),
                num_splits: 0,
                num_hits: 0,
                hits: Vec::new(),
                aggregations: None,
                elapsed_time_micros: started.elapsed().as_micros() as u64,
                errors,
            });
        };
        let sort = &first_plan.sort;
        // Ties are broken by split id then doc address: a total order that does not depend
        // on which splits a request lists, which is what search_after cursors rely on.
        let split_ids: Vec<&str> = targets
            .iter()
            .map(|(_, split)| split.split_metadata.split_id.as_str())
            .collect();
        all_hits.sort_by(|left, right| {
            sort.compare(&left.sort_key, &right.sort_key)
                .then_with(|| split_ids[left.split_ord].cmp(split_ids[right.split_ord]))
                .then_with(|| left.address.cmp(&right.address))
        });
        let page: Vec<PartialHit> = all_hits
            .into_iter()
            .skip(request.start_offset)
            .take(request.max_hits)
            .collect();
        let docs = self
            .fetch_page(&targets, &page, &searched_on, deadline, &mut errors)
            .await;
        let hits = page
            .into_iter()
            .zip(docs)
            .filter_map(|(hit, fetched)| {
                let fetched = fetched?;
                let (plan, split) = &targets[hit.split_ord];
                Some(SearchHit {
                    index_id: plan.index_id.clone(),
                    doc: fetched.doc,
                    external_id: fetched.external_id,
                    snippets: fetched.snippets,
                    split_id: split.split_metadata.split_id.to_string(),
                    segment_ord: hit.address.segment_ord,
                    doc_id: hit.address.doc_id,
                    sort_value: hit.sort_key.as_ref().map(|key| sort.key_to_json(key)),
                })
            })
            .collect();
        let aggregations = match plans.iter().find_map(|plan| plan.aggs.as_ref()) {
            Some(aggs) => {
                let mut results =
                    finalize(aggs, partial_aggregations).map_err(SearchError::InvalidRequest)?;
                if let Some(request_aggs) = &request.aggs {
                    fold_calendar_buckets(request_aggs, &mut results);
                    shape_top_hits(request_aggs, &mut results, &first_plan.doc_mapper, None);
                }
                Some(results)
            }
            None => None,
        };
        Ok(SearchResult {
            split_ids: covered_split_ids,
            num_splits: targets.len(),
            num_hits,
            hits,
            aggregations,
            elapsed_time_micros: started.elapsed().as_micros() as u64,
            errors,
        })
    }
}
