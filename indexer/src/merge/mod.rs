//! Merges: the planner asks the stable-log policy which published splits of each index
//! should merge, and the executor merges them, one operation at a time so that merging
//! never takes more than one core from ingest and search.

mod executor;
mod policy;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quarry_common::metastore::{ListSplitsQuery, Metastore};
use quarry_common::storage::StorageResolver;
use tracing::warn;

pub use executor::{MergeError, MergeExecutor, MergeOutcome};
pub use policy::{plan_merges, split_maturity, MergeOperation};

/// Merges published since start, merges that failed, and split bytes read by merges.
pub static MERGES_COMPLETED: AtomicU64 = AtomicU64::new(0);
pub static MERGES_FAILED: AtomicU64 = AtomicU64::new(0);
pub static MERGED_INPUT_BYTES: AtomicU64 = AtomicU64::new(0);

pub struct MergePlanner {
    metastore: Arc<dyn Metastore>,
    executor: MergeExecutor,
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
            },
            metastore,
        })
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
            let operations = plan_merges(
                &published,
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

    pub async fn run(self, interval: Duration) {
        loop {
            self.run_once().await;
            tokio::time::sleep(interval).await;
        }
    }
}
