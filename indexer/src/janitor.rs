//! The janitor: deletes what nothing will read again. Splits staged but never published
//! (uploads of an indexer that crashed), splits marked for deletion once their grace period
//! is over (searches that started before may still read them), and splits whose whole time
//! range fell out of their index's retention period.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quarry_common::metastore::{
    IndexMetadata, ListSplitsQuery, Metastore, MetastoreResult, Split, SplitState,
};
use quarry_common::storage::StorageResolver;
use quarry_common::SplitId;
use tracing::{info, warn};

/// Split files the janitor deleted since start: staged orphans, and marked splits whose
/// grace period was over (replaced by merges, expired, or of deleted indexes).
pub static JANITOR_DELETED_STAGED: AtomicU64 = AtomicU64::new(0);
pub static JANITOR_DELETED_MARKED: AtomicU64 = AtomicU64::new(0);
/// Splits the retention policy marked for deletion since start.
pub static JANITOR_EXPIRED_BY_RETENTION: AtomicU64 = AtomicU64::new(0);

/// How old things must be before the janitor acts on them.
#[derive(Clone, Copy, Debug)]
pub struct JanitorPolicy {
    /// A staged split older than this belongs to an upload that will never publish.
    pub staged_timeout: Duration,
    /// Time searches get to finish reading a split after it was marked for deletion.
    pub deletion_grace_period: Duration,
}

impl Default for JanitorPolicy {
    fn default() -> Self {
        JanitorPolicy {
            staged_timeout: Duration::from_secs(3600),
            deletion_grace_period: Duration::from_secs(300),
        }
    }
}

/// What one pass did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JanitorReport {
    pub expired_by_retention: usize,
    pub deleted_staged: usize,
    pub deleted_marked: usize,
}

pub struct Janitor {
    metastore: Arc<dyn Metastore>,
    resolver: StorageResolver,
    policy: JanitorPolicy,
    ownership: crate::IndexOwnership,
}

impl Janitor {
    pub fn new(
        metastore: Arc<dyn Metastore>,
        resolver: StorageResolver,
        policy: JanitorPolicy,
    ) -> Janitor {
        Janitor {
            metastore,
            resolver,
            policy,
            ownership: crate::owns_every_index(),
        }
    }

    /// Cleans only the indexes this node owns.
    pub fn with_ownership(mut self, ownership: crate::IndexOwnership) -> Janitor {
        self.ownership = ownership;
        self
    }

    /// Runs a pass every `interval` until the task is dropped.
    pub async fn run(self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs() as i64)
                .unwrap_or_default();
            match self.run_pass(now).await {
                Ok(report) if report != JanitorReport::default() => info!(?report, "janitor pass"),
                Ok(_) => {}
                Err(error) => warn!("janitor pass failed: {error}"),
            }
        }
    }

    /// One pass over every index, as of `now` (seconds since the epoch).
    pub async fn run_pass(&self, now: i64) -> MetastoreResult<JanitorReport> {
        let mut report = JanitorReport::default();
        for index in self.metastore.list_indexes().await? {
            if !(self.ownership)(&index.index_uid) {
                continue;
            }
            self.clean_index(&index, now, &mut report).await?;
        }
        Ok(report)
    }

    async fn clean_index(
        &self,
        index: &IndexMetadata,
        now: i64,
        report: &mut JanitorReport,
    ) -> MetastoreResult<()> {
        let index_uid = &index.index_uid;
        if let Some(retention) = &index.index_config.retention {
            if let Ok(period) = retention.period_secs() {
                let cutoff = now - period as i64;
                let expired: Vec<SplitId> = self
                    .metastore
                    .list_splits(index_uid, &ListSplitsQuery::published())
                    .await?
                    .into_iter()
                    .filter(|split| {
                        split
                            .split_metadata
                            .time_range
                            .is_some_and(|range| range.end < cutoff)
                    })
                    .map(|split| split.split_metadata.split_id)
                    .collect();
                if !expired.is_empty() {
                    info!(
                        index_id = index.index_id(),
                        num_splits = expired.len(),
                        "retention: marking expired splits for deletion"
                    );
                    self.metastore
                        .mark_splits_for_deletion(index_uid, &expired)
                        .await?;
                    report.expired_by_retention += expired.len();
                    JANITOR_EXPIRED_BY_RETENTION.fetch_add(expired.len() as u64, Ordering::Relaxed);
                }
            }
        }
        let splits = self
            .metastore
            .list_splits(index_uid, &ListSplitsQuery::default())
            .await?;
        let older_than =
            |split: &Split, age: Duration| split.update_timestamp + age.as_secs() as i64 <= now;
        let staged: Vec<SplitId> = splits
            .iter()
            .filter(|split| {
                split.split_state == SplitState::Staged
                    && older_than(split, self.policy.staged_timeout)
            })
            .map(|split| split.split_metadata.split_id.clone())
            .collect();
        let marked: Vec<SplitId> = splits
            .iter()
            .filter(|split| {
                split.split_state == SplitState::MarkedForDeletion
                    && older_than(split, self.policy.deletion_grace_period)
            })
            .map(|split| split.split_metadata.split_id.clone())
            .collect();
        if staged.is_empty() && marked.is_empty() {
            return Ok(());
        }
        let storage = self.resolver.resolve(index.index_uri())?;
        // Files first, records second: a crash in between leaves records of missing files,
        // which the next pass deletes again (deleting a missing file is not an error).
        for split_id in staged.iter().chain(&marked) {
            storage.delete(&split_id.file_name()).await?;
            info!(index_id = index.index_id(), split_id = %split_id, "split file deleted");
        }
        self.metastore.delete_splits(index_uid, &staged).await?;
        self.metastore.delete_splits(index_uid, &marked).await?;
        report.deleted_staged += staged.len();
        report.deleted_marked += marked.len();
        JANITOR_DELETED_STAGED.fetch_add(staged.len() as u64, Ordering::Relaxed);
        JANITOR_DELETED_MARKED.fetch_add(marked.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::Bytes;
    use quarry_common::metastore::{FileBackedMetastore, SplitMaturity, SplitMetadata};
    use quarry_common::time_range::TimeRange;
    use quarry_config::{ConfigFormat, IndexConfig};

    use super::*;

    fn split(index: &IndexMetadata, end: i64) -> SplitMetadata {
        SplitMetadata {
            split_id: SplitId::generate(),
            index_uid: index.index_uid.clone(),
            source_id: "test".to_string(),
            partition_id: 0,
            num_docs: 1,
            uncompressed_docs_size_bytes: 1,
            file_size_bytes: 1,
            time_range: Some(TimeRange {
                start: end - 10,
                end,
            }),
            create_timestamp: 0,
            maturity: SplitMaturity::Mature,
            tags: BTreeSet::new(),
            footer_offsets: 0..1,
            num_merge_ops: 0,
            delete_opstamp: 0,
            schema_fingerprint: 0,
        }
    }

    #[tokio::test]
    async fn deletes_orphans_expired_and_marked_splits_after_their_delays() {
        let resolver = StorageResolver::default();
        let root = "ram:///janitor-test";
        let metastore: Arc<dyn Metastore> = Arc::new(FileBackedMetastore::new(
            resolver.resolve(root).unwrap(),
            resolver.clone(),
        ));
        let mut config = IndexConfig::parse(
            b"index_id: logs\nretention:\n  period: 1 day",
            ConfigFormat::Yaml,
        )
        .unwrap();
        config.index_uri = Some(format!("{root}/logs"));
        let index = metastore.create_index(config).await.unwrap();
        let storage = resolver.resolve(index.index_uri()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;

        let fresh = split(&index, now);
        let old = split(&index, now - 3 * 86_400);
        let orphan = split(&index, now);
        metastore
            .stage_splits(
                &index.index_uid,
                vec![fresh.clone(), old.clone(), orphan.clone()],
            )
            .await
            .unwrap();
        metastore
            .publish_splits(
                &index.index_uid,
                &[fresh.split_id.clone(), old.split_id.clone()],
                &[],
                None,
            )
            .await
            .unwrap();
        for split in [&fresh, &old, &orphan] {
            storage
                .put(&split.split_id.file_name(), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let janitor = Janitor::new(
            metastore.clone(),
            resolver.clone(),
            JanitorPolicy::default(),
        );
        let split_files = || async {
            let mut files: Vec<String> = storage
                .list("")
                .await
                .unwrap()
                .into_iter()
                .filter(|file| file.ends_with(".split"))
                .collect();
            files.sort();
            files
        };

        // Right away: the old split expires (marked), nothing is deleted yet.
        let report = janitor.run_pass(now).await.unwrap();
        assert_eq!(
            report,
            JanitorReport {
                expired_by_retention: 1,
                deleted_staged: 0,
                deleted_marked: 0
            }
        );
        assert_eq!(split_files().await.len(), 3);

        // Two hours later: the grace period and the staged timeout are over.
        let report = janitor.run_pass(now + 7_200).await.unwrap();
        assert_eq!(
            report,
            JanitorReport {
                expired_by_retention: 0,
                deleted_staged: 1,
                deleted_marked: 1
            }
        );
        assert_eq!(split_files().await, vec![fresh.split_id.file_name()]);
        let splits = metastore
            .list_splits(&index.index_uid, &ListSplitsQuery::default())
            .await
            .unwrap();
        assert_eq!(splits.len(), 1);
        assert_eq!(splits[0].split_state, SplitState::Published);
    }
}
