//! Merges and deletes: the planner first rewrites the splits that hold documents of pending
//! delete tasks, then asks the stable-log policy which published splits of each index
//! should merge, and the executor runs them, one operation at a time so that this work
//! never takes more than one core from ingest and search.

mod executor;
mod policy;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quarry_common::doc_mapper::DocMapper;
use quarry_common::metastore::{IndexMetadata, ListSplitsQuery, Metastore, Split};
use quarry_common::storage::StorageResolver;
use quarry_query::delete_query::any_of;
use quarry_query::query_builder::QueryBuilder;
use tracing::{info, warn};

pub use executor::{Deletes, MergeError, MergeExecutor, MergeOutcome, RewriteOutcome};
pub use policy::{plan_merges, split_maturity, MergeOperation};

/// Merges published since start, merges that failed, and split bytes read by merges.
pub static MERGES_COMPLETED: AtomicU64 = AtomicU64::new(0);
pub static MERGES_FAILED: AtomicU64 = AtomicU64::new(0);
pub static MERGED_INPUT_BYTES: AtomicU64 = AtomicU64::new(0);
/// Splits rewritten (or dropped whole) to apply delete tasks.
pub static DELETE_REWRITES: AtomicU64 = AtomicU64::new(0);

pub struct MergePlanner {
    metastore: Arc<dyn Metastore>,
    executor: MergeExecutor,
    ownership: crate::IndexOwnership,
}

impl MergePlanner {
    /// `data_dir/merging` holds merges in progress; leftovers of a crash are removed.
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        data_dir: PathBuf,
    ) -> std::io::Result<MergePlanner> {
        let scratch_dir = data_dir.join("merging");
        if scratch_dir.exists() {
            std::fs::remove_dir_all(&scratch_dir)?;
        }
        std::fs::create_dir_all(&scratch_dir)?;
        Ok(MergePlanner {
            executor: MergeExecutor {
                metastore: metastore.clone(),
                resolver,
                scratch_dir,
                fault_injection_delay: std::env::var("QUARRY_FAULT_INJECTION_DELAY_MS")
                    .ok()
                    .and_then(|millis| millis.parse().ok())
                    .map(Duration::from_millis),
            },
            metastore,
            ownership: crate::owns_every_index(),
        })
    }

    /// Plans merges only for the indexes this node owns.
    pub fn with_ownership(mut self, ownership: crate::IndexOwnership) -> MergePlanner {
        self.ownership = ownership;
        self
    }

    /// Plans and runs the merges every index needs now; returns those that published.
    pub async fn run_once(&self) -> Vec<MergeOutcome> {
        let mut outcomes = Vec::new();
        let indexes = match self.metastore.list_indexes().await {
            Ok(indexes) => indexes,
            Err(error) => {
                warn!("merge planner cannot list indexes: {error}");
                return outcomes;
            }
        };
        for index_metadata in indexes {
            if !(self.ownership)(&index_metadata.index_uid) {
                continue;
            }
            let published = match self
                .metastore
                .list_splits(&index_metadata.index_uid, &ListSplitsQuery::published())
                .await
            {
                Ok(splits) => splits,
                Err(error) => {
                    warn!(
                        index_id = index_metadata.index_id(),
                        "merge planner cannot list splits: {error}"
                    );
                    continue;
                }
            };
            let last_delete_opstamp = match self.apply_deletes(&index_metadata, &published).await {
                Ok(opstamp) => opstamp,
                Err(error) => {
                    warn!(
                        index_id = index_metadata.index_id(),
                        "applying delete tasks failed: {error}"
                    );
                    continue;
                }
            };
            // Splits with deletes still to apply wait: a merge would carry their documents
            // into a split that looks clean.
            let clean: Vec<_> = published
                .into_iter()
                .filter(|split| split.split_metadata.delete_opstamp >= last_delete_opstamp)
                .collect();
            let operations = plan_merges(
                &clean,
                &index_metadata.index_config.indexing_settings,
                crate::packager::now_secs(),
            );
            for operation in operations {
                match self.executor.execute(&index_metadata, &operation).await {
                    Ok(outcome) => {
                        MERGES_COMPLETED.fetch_add(1, Ordering::Relaxed);
                        MERGED_INPUT_BYTES.fetch_add(outcome.input_bytes, Ordering::Relaxed);
                        outcomes.push(outcome);
                    }
                    Err(error) => {
                        MERGES_FAILED.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            index_id = index_metadata.index_id(),
                            num_splits = operation.splits.len(),
                            "merge failed: {error}"
                        );
                    }
                }
            }
        }
        outcomes
    }

    /// Rewrites each published split older than the newest delete task without the
    /// documents the newer tasks match; returns that newest opstamp.
    async fn apply_deletes(
        &self,
        index_metadata: &IndexMetadata,
        published: &[Split],
    ) -> Result<u64, MergeError> {
        let index_uid = &index_metadata.index_uid;
        let last_opstamp = self.metastore.last_delete_opstamp(index_uid).await?;
        let behind: Vec<&Split> = published
            .iter()
            .filter(|split| split.split_metadata.delete_opstamp < last_opstamp)
            .collect();
        if behind.is_empty() {
            return Ok(last_opstamp);
        }
        let doc_mapper = DocMapper::new(&index_metadata.index_config);
        for split in behind {
            let tasks = self
                .metastore
                .list_delete_tasks(index_uid, split.split_metadata.delete_opstamp)
                .await?;
            let queries: Vec<_> = tasks.into_iter().map(|task| task.delete_query).collect();
            let query = any_of(&queries, &doc_mapper)
                .and_then(|ast| {
                    QueryBuilder::new(&doc_mapper)
                        .build(&ast)
                        .map_err(|error| error.to_string())
                })
                .map_err(MergeError::DeleteQuery)?;
            let deletes = Deletes {
                query,
                opstamp: last_opstamp,
            };
            let split_ids = std::slice::from_ref(&split.split_metadata.split_id);
            match self
                .executor
                .rewrite(index_metadata, std::slice::from_ref(split), Some(deletes))
                .await?
            {
                RewriteOutcome::Replaced(outcome) => {
                    DELETE_REWRITES.fetch_add(1, Ordering::Relaxed);
                    info!(
                        index_id = index_metadata.index_id(),
                        split_id = %split.split_metadata.split_id,
                        num_docs_left = outcome.merged.num_docs,
                        "deleted documents: split rewritten"
                    );
                }
                RewriteOutcome::NothingDeleted => {
                    self.metastore
                        .update_splits_delete_opstamp(index_uid, split_ids, last_opstamp)
                        .await?;
                }
                RewriteOutcome::AllDeleted => {
                    DELETE_REWRITES.fetch_add(1, Ordering::Relaxed);
                    info!(
                        index_id = index_metadata.index_id(),
                        split_id = %split.split_metadata.split_id,
                        "deleted documents: every document of the split matched"
                    );
                    self.metastore
                        .mark_splits_for_deletion(index_uid, split_ids)
                        .await?;
                }
            }
        }
        Ok(last_opstamp)
    }

    pub async fn run(self, interval: Duration) {
        loop {
            self.run_once().await;
            tokio::time::sleep(interval).await;
        }
    }
}
