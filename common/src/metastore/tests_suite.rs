//! The `Metastore` contract as tests, run against every implementation: each backend's
//! test module invokes `metastore_suite!` with a function that opens it. What one
//! implementation does, the others must do too, errors included.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use quarry_config::IndexConfig;

use super::{
    now_secs, CheckpointDelta, ListSplitsQuery, Metastore, Position, Split, SplitMaturity,
    SplitMetadata, SplitState,
};
use crate::time_range::TimeRange;
use crate::{IndexUid, SplitId};

mod api_keys;
mod delete_tasks;
mod lifecycle;
mod publish;

pub(crate) use api_keys::api_keys_are_created_once_listed_and_invalidated;
pub(crate) use delete_tasks::delete_tasks_get_increasing_opstamps_and_splits_catch_up;
pub(crate) use lifecycle::{
    index_lifecycle, mark_and_delete_rules, stage_publish_and_list_by_state_and_time, stage_rules,
};
pub(crate) use publish::{
    publish_is_atomic_with_checkpoint, racing_publishers_replacing_the_same_splits,
    racing_publishers_with_the_same_checkpoint, replace_publishes_merged_split_and_marks_inputs,
};

/// One metastore under test: opening it again must show the same state (that is how the
/// suite checks persistence), and `teardown` removes what the tests left.
pub(crate) struct TestBackend {
    pub(crate) index_root: String,
    open: Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Metastore>> + Send + Sync>,
    teardown: Option<BoxFuture<'static, ()>>,
}

impl TestBackend {
    pub(crate) fn new(
        index_root: String,
        open: impl Fn() -> BoxFuture<'static, Arc<dyn Metastore>> + Send + Sync + 'static,
    ) -> TestBackend {
        TestBackend {
            index_root,
            open: Box::new(open),
            teardown: None,
        }
    }

    pub(crate) fn with_teardown(mut self, teardown: BoxFuture<'static, ()>) -> TestBackend {
        self.teardown = Some(teardown);
        self
    }

    pub(crate) async fn open(&self) -> Arc<dyn Metastore> {
        (self.open)().await
    }

    pub(crate) async fn teardown(self) {
        if let Some(teardown) = self.teardown {
            teardown.await;
        }
    }
}

/// Runs every test of the suite against one backend. `$backend` is an expression giving a
/// future of `Option<TestBackend>`, `None` when the backend is not available here (the
/// backend says so loudly).
macro_rules! metastore_suite {
    ($backend:expr) => {
        $crate::metastore::tests_suite::metastore_suite!(@tests $backend;
            index_lifecycle,
            stage_publish_and_list_by_state_and_time,
            publish_is_atomic_with_checkpoint,
            replace_publishes_merged_split_and_marks_inputs,
            racing_publishers_replacing_the_same_splits,
            racing_publishers_with_the_same_checkpoint,
            stage_rules,
            mark_and_delete_rules,
            delete_tasks_get_increasing_opstamps_and_splits_catch_up,
            api_keys_are_created_once_listed_and_invalidated,
        );
    };
    (@tests $backend:expr; $($test:ident),* $(,)?) => {
        $(
            // Several worker threads, so that the racing tests really race.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(backend) = $backend.await else {
                    return;
                };
                $crate::metastore::tests_suite::$test(&backend).await;
                backend.teardown().await;
            }
        )*
    };
}
pub(crate) use metastore_suite;

pub(crate) fn config(index_id: &str, root: &str) -> IndexConfig {
    let mut config = IndexConfig::parse(
        format!("index_id: {index_id}").as_bytes(),
        quarry_config::ConfigFormat::Yaml,
    )
    .unwrap();
    config.index_uri = Some(format!("{root}/{index_id}"));
    config
}

pub(crate) fn split(index_uid: &IndexUid, start: i64, end: i64) -> SplitMetadata {
    SplitMetadata {
        split_id: SplitId::generate(),
        index_uid: index_uid.clone(),
        source_id: "ingest".to_string(),
        partition_id: 0,
        num_docs: 10,
        uncompressed_docs_size_bytes: 100,
        file_size_bytes: 50,
        time_range: Some(TimeRange { start, end }),
        create_timestamp: 0,
        maturity: SplitMaturity::Mature,
        tags: BTreeSet::new(),
        footer_offsets: 10..50,
        num_merge_ops: 0,
        delete_opstamp: 0,
        schema_fingerprint: 0,
    }
}

pub(super) fn delta(from: Position, to: Position) -> CheckpointDelta {
    CheckpointDelta {
        source_id: "ingest".to_string(),
        partitions: [("wal".to_string(), (from, to))].into_iter().collect(),
    }
}

pub(super) fn ids(splits: &[Split]) -> BTreeSet<SplitId> {
    splits
        .iter()
        .map(|split| split.split_metadata.split_id.clone())
        .collect()
}

pub(super) fn id_set<'a>(split_ids: impl IntoIterator<Item = &'a SplitId>) -> BTreeSet<SplitId> {
    split_ids.into_iter().cloned().collect()
}

pub(super) fn sorted(mut splits: Vec<Split>) -> Vec<Split> {
    splits.sort_by(|left, right| {
        left.split_metadata
            .split_id
            .cmp(&right.split_metadata.split_id)
    });
    splits
}

pub(super) async fn all_splits(metastore: &dyn Metastore, index_uid: &IndexUid) -> Vec<Split> {
    sorted(
        metastore
            .list_splits(index_uid, &ListSplitsQuery::default())
            .await
            .unwrap(),
    )
}

pub(super) async fn state_of(
    metastore: &dyn Metastore,
    index_uid: &IndexUid,
    split_id: &SplitId,
) -> Split {
    all_splits(metastore, index_uid)
        .await
        .into_iter()
        .find(|split| &split.split_metadata.split_id == split_id)
        .unwrap_or_else(|| panic!("split {split_id:?} is gone"))
}

pub(super) fn published_window(start: Option<i64>, end: Option<i64>) -> ListSplitsQuery {
    ListSplitsQuery {
        states: vec![SplitState::Published],
        start_timestamp: start,
        end_timestamp: end,
    }
}
