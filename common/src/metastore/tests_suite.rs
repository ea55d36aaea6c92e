//! The `Metastore` contract as tests, run against every implementation: each backend's
//! test module invokes `metastore_suite!` with a function that opens it. What one
//! implementation does, the others must do too, errors included.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use quarry_config::IndexConfig;

use super::{
    now_secs, CheckpointDelta, ListSplitsQuery, Metastore, MetastoreError, Position, Split,
    SplitMaturity, SplitMetadata, SplitState,
};
use crate::time_range::TimeRange;
use crate::{IndexUid, SplitId};

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
    }
}

fn delta(from: Position, to: Position) -> CheckpointDelta {
    CheckpointDelta {
        source_id: "ingest".to_string(),
        partitions: [("wal".to_string(), (from, to))].into_iter().collect(),
    }
}

fn ids(splits: &[Split]) -> BTreeSet<SplitId> {
    splits
        .iter()
        .map(|split| split.split_metadata.split_id.clone())
        .collect()
}

fn id_set<'a>(split_ids: impl IntoIterator<Item = &'a SplitId>) -> BTreeSet<SplitId> {
    split_ids.into_iter().cloned().collect()
}

fn sorted(mut splits: Vec<Split>) -> Vec<Split> {
    splits.sort_by(|left, right| {
        left.split_metadata
            .split_id
            .cmp(&right.split_metadata.split_id)
    });
    splits
}

async fn all_splits(metastore: &dyn Metastore, index_uid: &IndexUid) -> Vec<Split> {
    sorted(
        metastore
            .list_splits(index_uid, &ListSplitsQuery::default())
            .await
            .unwrap(),
    )
}

async fn state_of(metastore: &dyn Metastore, index_uid: &IndexUid, split_id: &SplitId) -> Split {
    all_splits(metastore, index_uid)
        .await
        .into_iter()
        .find(|split| &split.split_metadata.split_id == split_id)
        .unwrap_or_else(|| panic!("split {split_id:?} is gone"))
}

fn published_window(start: Option<i64>, end: Option<i64>) -> ListSplitsQuery {
    ListSplitsQuery {
        states: vec![SplitState::Published],
        start_timestamp: start,
        end_timestamp: end,
    }
}

pub(crate) async fn index_lifecycle(backend: &TestBackend) {
    let metastore = backend.open().await;
    let root = &backend.index_root;
    let logs = metastore.create_index(config("logs", root)).await.unwrap();
    assert_eq!(logs.index_id(), "logs");
    assert!(logs.checkpoints.is_empty());
    let err = metastore
        .create_index(config("logs", root))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MetastoreError::IndexAlreadyExists(id) if id == "logs"),
        "{err}"
    );
    let mut without_uri = config("no-uri", root);
    without_uri.index_uri = None;
    let err = metastore.create_index(without_uri).await.unwrap_err();
    assert!(matches!(err, MetastoreError::InvalidArgument(_)), "{err}");
    metastore.create_index(config("other", root)).await.unwrap();

    let index_ids = |indexes: Vec<super::IndexMetadata>| -> Vec<String> {
        indexes
            .iter()
            .map(|index| index.index_id().to_string())
            .collect()
    };
    assert_eq!(
        index_ids(metastore.list_indexes().await.unwrap()),
        ["logs", "other"]
    );
    assert_eq!(metastore.index_metadata("logs").await.unwrap(), logs);
    let err = metastore.index_metadata("missing").await.unwrap_err();
    assert!(matches!(err, MetastoreError::IndexNotFound(_)), "{err}");
    // Another instance over the same backing store sees the same indexes.
    assert_eq!(
        backend.open().await.index_metadata("logs").await.unwrap(),
        logs
    );

    let old_uid = logs.index_uid.clone();
    metastore
        .stage_splits(&old_uid, vec![split(&old_uid, 0, 1)])
        .await
        .unwrap();
    metastore.delete_index(&old_uid).await.unwrap();
    let err = metastore.index_metadata("logs").await.unwrap_err();
    assert!(matches!(err, MetastoreError::IndexNotFound(_)), "{err}");
    let err = metastore.delete_index(&old_uid).await.unwrap_err();
    assert!(matches!(err, MetastoreError::IndexNotFound(_)), "{err}");
    assert_eq!(
        index_ids(metastore.list_indexes().await.unwrap()),
        ["other"]
    );

    // A new incarnation under the same id is a different index: the old uid reaches
    // nothing, and the old splits are gone with the old index.
    let new_uid = metastore
        .create_index(config("logs", root))
        .await
        .unwrap()
        .index_uid;
    assert_ne!(new_uid, old_uid);
    assert!(all_splits(&*metastore, &new_uid).await.is_empty());
    let not_found = |result: Result<_, MetastoreError>| {
        let err = result.unwrap_err();
        assert!(matches!(err, MetastoreError::IndexNotFound(_)), "{err}");
    };
    not_found(
        metastore
            .list_splits(&old_uid, &ListSplitsQuery::default())
            .await
            .map(|_| ()),
    );
    not_found(
        metastore
            .stage_splits(&old_uid, vec![split(&old_uid, 0, 1)])
            .await,
    );
    not_found(metastore.publish_splits(&old_uid, &[], &[], None).await);
    not_found(metastore.mark_splits_for_deletion(&old_uid, &[]).await);
    not_found(metastore.delete_splits(&old_uid, &[]).await);
    not_found(metastore.delete_index(&old_uid).await);
    assert_eq!(
        metastore.index_metadata("logs").await.unwrap().index_uid,
        new_uid
    );
}

pub(crate) async fn stage_publish_and_list_by_state_and_time(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let before = now_secs();
    let early = split(&uid, 100, 199);
    let late = split(&uid, 200, 299);
    let mut timeless = split(&uid, 0, 0);
    timeless.time_range = None;
    timeless.tags = ["service:api".to_string(), "host!".to_string()].into();
    timeless.maturity = SplitMaturity::Immature {
        maturation_period_secs: 3600,
    };
    timeless.footer_offsets = 1_000..u64::MAX / 2;
    metastore
        .stage_splits(&uid, vec![early.clone(), late.clone(), timeless.clone()])
        .await
        .unwrap();
    assert!(metastore
        .list_splits(&uid, &ListSplitsQuery::published())
        .await
        .unwrap()
        .is_empty());
    let staged = all_splits(&*metastore, &uid).await;
    assert_eq!(staged.len(), 3);
    for split in &staged {
        assert_eq!(split.split_state, SplitState::Staged);
        assert!(split.update_timestamp >= before);
        assert_eq!(split.publish_timestamp, None);
        // The metadata comes back exactly as staged.
        let original = [&early, &late, &timeless]
            .into_iter()
            .find(|original| original.split_id == split.split_metadata.split_id)
            .unwrap();
        assert_eq!(&split.split_metadata, original);
    }

    metastore
        .publish_splits(
            &uid,
            &[early.split_id.clone(), late.split_id.clone()],
            &[],
            None,
        )
        .await
        .unwrap();
    let window = |start, end| {
        let metastore = metastore.clone();
        let uid = uid.clone();
        async move {
            ids(&metastore
                .list_splits(&uid, &published_window(start, end))
                .await
                .unwrap())
        }
    };
    assert_eq!(
        window(None, None).await,
        id_set([&early.split_id, &late.split_id])
    );
    // Start inclusive against a split's end, end exclusive against its start.
    assert_eq!(window(Some(250), None).await, id_set([&late.split_id]));
    assert_eq!(
        window(Some(199), Some(200)).await,
        id_set([&early.split_id])
    );
    assert_eq!(window(None, Some(200)).await, id_set([&early.split_id]));
    assert_eq!(window(None, Some(201)).await.len(), 2);
    assert!(window(Some(300), None).await.is_empty());
    assert!(window(None, Some(100)).await.is_empty());

    // A split without a time range cannot be pruned by time.
    let staged_late = ListSplitsQuery {
        states: vec![SplitState::Staged],
        start_timestamp: Some(10_000),
        end_timestamp: Some(20_000),
    };
    assert_eq!(
        ids(&metastore.list_splits(&uid, &staged_late).await.unwrap()),
        id_set([&timeless.split_id])
    );
    let both_states = ListSplitsQuery {
        states: vec![SplitState::Staged, SplitState::Published],
        ..Default::default()
    };
    assert_eq!(
        metastore
            .list_splits(&uid, &both_states)
            .await
            .unwrap()
            .len(),
        3
    );
    let marked = ListSplitsQuery {
        states: vec![SplitState::MarkedForDeletion],
        ..Default::default()
    };
    assert!(metastore
        .list_splits(&uid, &marked)
        .await
        .unwrap()
        .is_empty());

    let published = state_of(&*metastore, &uid, &early.split_id).await;
    assert_eq!(published.split_state, SplitState::Published);
    let publish_timestamp = published.publish_timestamp.unwrap();
    assert!(publish_timestamp >= before);
    assert!(published.update_timestamp >= publish_timestamp);

    // Publishing twice is refused: only staged splits can be published.
    let err = metastore
        .publish_splits(&uid, &[early.split_id.clone()], &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    let missing = SplitId::generate();
    let err = metastore
        .publish_splits(&uid, &[missing.clone()], &[], None)
        .await
        .unwrap_err();
    match err {
        MetastoreError::SplitsNotFound {
            index_id,
            split_ids,
        } => {
            assert_eq!(index_id, "logs");
            assert_eq!(split_ids, [missing.to_string()]);
        }
        other => panic!("{other}"),
    }

    // Another instance reads the same splits back, timestamps included.
    let everything = all_splits(&*metastore, &uid).await;
    assert_eq!(all_splits(&*backend.open().await, &uid).await, everything);
}

pub(crate) async fn publish_is_atomic_with_checkpoint(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let first = split(&uid, 0, 1);
    let second = split(&uid, 0, 1);
    metastore
        .stage_splits(&uid, vec![first.clone(), second.clone()])
        .await
        .unwrap();
    metastore
        .publish_splits(
            &uid,
            &[first.split_id.clone()],
            &[],
            Some(delta(Position::Beginning, Position::Offset(10))),
        )
        .await
        .unwrap();
    let checkpoint_at = |offset| {
        let metastore = metastore.clone();
        async move {
            let metadata = metastore.index_metadata("logs").await.unwrap();
            assert_eq!(
                metadata.checkpoints["ingest"].partitions["wal"],
                Position::Offset(offset)
            );
        }
    };
    checkpoint_at(10).await;
    let unchanged = all_splits(&*metastore, &uid).await;

    // A delta that does not continue the checkpoint (a replay) fails and publishes nothing.
    let err = metastore
        .publish_splits(
            &uid,
            &[second.split_id.clone()],
            &[],
            Some(delta(Position::Beginning, Position::Offset(20))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::CheckpointConflict { .. }),
        "{err}"
    );
    // So does one going backwards.
    let err = metastore
        .publish_splits(
            &uid,
            &[second.split_id.clone()],
            &[],
            Some(delta(Position::Offset(10), Position::Offset(5))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::CheckpointConflict { .. }),
        "{err}"
    );
    // A good delta with a missing split changes nothing either, checkpoint included.
    let err = metastore
        .publish_splits(
            &uid,
            &[second.split_id.clone(), SplitId::generate()],
            &[],
            Some(delta(Position::Offset(10), Position::Offset(20))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotFound { .. }),
        "{err}"
    );
    // And with a replaced split that is not published.
    let err = metastore
        .publish_splits(
            &uid,
            &[],
            &[second.split_id.clone()],
            Some(delta(Position::Offset(10), Position::Offset(20))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    assert_eq!(all_splits(&*metastore, &uid).await, unchanged);
    checkpoint_at(10).await;

    // The continuing delta publishes; other sources keep their own checkpoints.
    metastore
        .publish_splits(
            &uid,
            &[second.split_id.clone()],
            &[],
            Some(delta(Position::Offset(10), Position::Offset(20))),
        )
        .await
        .unwrap();
    checkpoint_at(20).await;
    let mut other_source = delta(Position::Beginning, Position::Offset(3));
    other_source.source_id = "kafka".to_string();
    metastore
        .publish_splits(&uid, &[], &[], Some(other_source))
        .await
        .unwrap();
    let metadata = backend.open().await.index_metadata("logs").await.unwrap();
    assert_eq!(
        metadata.checkpoints["kafka"].partitions["wal"],
        Position::Offset(3)
    );
    assert_eq!(
        metadata.checkpoints["ingest"].partitions["wal"],
        Position::Offset(20)
    );
    assert_eq!(
        ids(&metastore
            .list_splits(&uid, &ListSplitsQuery::published())
            .await
            .unwrap()),
        id_set([&first.split_id, &second.split_id])
    );
}

pub(crate) async fn replace_publishes_merged_split_and_marks_inputs(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let inputs = [split(&uid, 0, 10), split(&uid, 5, 20)];
    let input_ids: Vec<SplitId> = inputs.iter().map(|s| s.split_id.clone()).collect();
    metastore.stage_splits(&uid, inputs.to_vec()).await.unwrap();
    metastore
        .publish_splits(&uid, &input_ids, &[], None)
        .await
        .unwrap();
    let mut merged = split(&uid, 0, 20);
    merged.num_merge_ops = 1;
    metastore
        .stage_splits(&uid, vec![merged.clone()])
        .await
        .unwrap();
    let before = now_secs();
    metastore
        .publish_splits(&uid, &[merged.split_id.clone()], &input_ids, None)
        .await
        .unwrap();
    assert_eq!(
        ids(&metastore
            .list_splits(&uid, &ListSplitsQuery::published())
            .await
            .unwrap()),
        id_set([&merged.split_id])
    );
    for input_id in &input_ids {
        let input = state_of(&*metastore, &uid, input_id).await;
        assert_eq!(input.split_state, SplitState::MarkedForDeletion);
        assert!(input.update_timestamp >= before);
    }

    // Inputs already replaced cannot be replaced again.
    let second_merge = split(&uid, 0, 20);
    metastore
        .stage_splits(&uid, vec![second_merge.clone()])
        .await
        .unwrap();
    let err = metastore
        .publish_splits(&uid, &[second_merge.split_id.clone()], &input_ids, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    // Nor can staged ones, nor a split both published and replaced in one call.
    let staged_input = split(&uid, 0, 1);
    metastore
        .stage_splits(&uid, vec![staged_input.clone()])
        .await
        .unwrap();
    let err = metastore
        .publish_splits(
            &uid,
            &[second_merge.split_id.clone()],
            &[staged_input.split_id.clone()],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    let err = metastore
        .publish_splits(
            &uid,
            &[second_merge.split_id.clone()],
            &[second_merge.split_id.clone()],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    assert_eq!(
        state_of(&*metastore, &uid, &second_merge.split_id)
            .await
            .split_state,
        SplitState::Staged
    );
    assert_eq!(
        state_of(&*metastore, &uid, &staged_input.split_id)
            .await
            .split_state,
        SplitState::Staged
    );
}

/// Two merges of the same inputs publish at once: exactly one wins, the other is told the
/// inputs are gone and changes nothing (its merged split stays staged for the janitor).
pub(crate) async fn racing_publishers_replacing_the_same_splits(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let mut winners = BTreeSet::new();
    for _round in 0..5 {
        let inputs = [split(&uid, 0, 10), split(&uid, 10, 20)];
        let input_ids: Vec<SplitId> = inputs.iter().map(|s| s.split_id.clone()).collect();
        metastore.stage_splits(&uid, inputs.to_vec()).await.unwrap();
        metastore
            .publish_splits(&uid, &input_ids, &[], None)
            .await
            .unwrap();
        let merges = [split(&uid, 0, 20), split(&uid, 0, 20)];
        metastore.stage_splits(&uid, merges.to_vec()).await.unwrap();
        let publish = |merged: SplitId| {
            let metastore = metastore.clone();
            let uid = uid.clone();
            let input_ids = input_ids.clone();
            tokio::spawn(async move {
                metastore
                    .publish_splits(&uid, &[merged], &input_ids, None)
                    .await
            })
        };
        let (left, right) = tokio::join!(
            publish(merges[0].split_id.clone()),
            publish(merges[1].split_id.clone())
        );
        let results = [left.unwrap(), right.unwrap()];
        let winner = match &results {
            [Ok(()), Err(err)] | [Err(err), Ok(())] => {
                assert!(
                    matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
                    "the loser must be told its inputs are no longer published: {err}"
                );
                if results[0].is_ok() {
                    0
                } else {
                    1
                }
            }
            other => panic!("exactly one publisher must win: {other:?}"),
        };
        let loser = 1 - winner;
        winners.insert(merges[winner].split_id.clone());
        for input_id in &input_ids {
            assert_eq!(
                state_of(&*metastore, &uid, input_id).await.split_state,
                SplitState::MarkedForDeletion
            );
        }
        let lost = state_of(&*metastore, &uid, &merges[loser].split_id).await;
        assert_eq!(lost.split_state, SplitState::Staged);
        assert_eq!(lost.publish_timestamp, None);
    }
    assert_eq!(
        ids(&metastore
            .list_splits(&uid, &ListSplitsQuery::published())
            .await
            .unwrap()),
        winners
    );
}

/// Two publishers covering the same WAL range: only one may advance the checkpoint.
pub(crate) async fn racing_publishers_with_the_same_checkpoint(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    for round in 0..5u64 {
        let candidates = [split(&uid, 0, 1), split(&uid, 0, 1)];
        metastore
            .stage_splits(&uid, candidates.to_vec())
            .await
            .unwrap();
        let from = if round == 0 {
            Position::Beginning
        } else {
            Position::Offset(round * 10)
        };
        let publish = |split_id: SplitId| {
            let metastore = metastore.clone();
            let uid = uid.clone();
            let delta = delta(from.clone(), Position::Offset((round + 1) * 10));
            tokio::spawn(async move {
                metastore
                    .publish_splits(&uid, &[split_id], &[], Some(delta))
                    .await
            })
        };
        let (left, right) = tokio::join!(
            publish(candidates[0].split_id.clone()),
            publish(candidates[1].split_id.clone())
        );
        let results = [left.unwrap(), right.unwrap()];
        let loser = match &results {
            [Ok(()), Err(err)] | [Err(err), Ok(())] => {
                assert!(
                    matches!(err, MetastoreError::CheckpointConflict { .. }),
                    "{err}"
                );
                usize::from(results[0].is_ok())
            }
            other => panic!("exactly one publisher must win: {other:?}"),
        };
        assert_eq!(
            state_of(&*metastore, &uid, &candidates[loser].split_id)
                .await
                .split_state,
            SplitState::Staged
        );
        let metadata = metastore.index_metadata("logs").await.unwrap();
        assert_eq!(
            metadata.checkpoints["ingest"].partitions["wal"],
            Position::Offset((round + 1) * 10)
        );
    }
    assert_eq!(
        metastore
            .list_splits(&uid, &ListSplitsQuery::published())
            .await
            .unwrap()
            .len(),
        5
    );
}

pub(crate) async fn stage_rules(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let mut retried = split(&uid, 0, 1);
    metastore
        .stage_splits(&uid, vec![retried.clone()])
        .await
        .unwrap();
    // A retried upload restages the split with its new metadata.
    retried.num_docs = 42;
    retried.time_range = Some(TimeRange { start: 50, end: 60 });
    metastore
        .stage_splits(&uid, vec![retried.clone()])
        .await
        .unwrap();
    let restaged = state_of(&*metastore, &uid, &retried.split_id).await;
    assert_eq!(restaged.split_metadata, retried);
    let staged_window = ListSplitsQuery {
        states: vec![SplitState::Staged],
        start_timestamp: Some(55),
        end_timestamp: None,
    };
    assert_eq!(
        metastore
            .list_splits(&uid, &staged_window)
            .await
            .unwrap()
            .len(),
        1
    );

    metastore
        .publish_splits(&uid, &[retried.split_id.clone()], &[], None)
        .await
        .unwrap();
    let err = metastore
        .stage_splits(&uid, vec![retried.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    // A batch with one split that cannot be staged stages none of them.
    let fresh = split(&uid, 0, 1);
    let err = metastore
        .stage_splits(&uid, vec![fresh.clone(), retried.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    assert_eq!(
        ids(&all_splits(&*metastore, &uid).await),
        id_set([&retried.split_id])
    );
    assert_eq!(
        state_of(&*metastore, &uid, &retried.split_id)
            .await
            .split_state,
        SplitState::Published
    );
}

pub(crate) async fn mark_and_delete_rules(backend: &TestBackend) {
    let metastore = backend.open().await;
    let uid = metastore
        .create_index(config("logs", &backend.index_root))
        .await
        .unwrap()
        .index_uid;
    let published = split(&uid, 0, 1);
    let staged = split(&uid, 0, 1);
    let abandoned = split(&uid, 0, 1);
    metastore
        .stage_splits(
            &uid,
            vec![published.clone(), staged.clone(), abandoned.clone()],
        )
        .await
        .unwrap();
    metastore
        .publish_splits(&uid, &[published.split_id.clone()], &[], None)
        .await
        .unwrap();

    // Deleting a published split is refused, and the whole call deletes nothing.
    let err = metastore
        .delete_splits(&uid, &[staged.split_id.clone(), published.split_id.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    assert_eq!(all_splits(&*metastore, &uid).await.len(), 3);

    // Marking works from published and staged, and skips unknown ids (retries).
    let before = now_secs();
    metastore
        .mark_splits_for_deletion(
            &uid,
            &[
                published.split_id.clone(),
                abandoned.split_id.clone(),
                SplitId::generate(),
            ],
        )
        .await
        .unwrap();
    let marked = metastore
        .list_splits(
            &uid,
            &ListSplitsQuery {
                states: vec![SplitState::MarkedForDeletion],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&marked),
        id_set([&published.split_id, &abandoned.split_id])
    );
    assert!(marked.iter().all(|split| split.update_timestamp >= before));

    // Marked and staged splits can be deleted; unknown ids are skipped.
    metastore
        .delete_splits(
            &uid,
            &[
                published.split_id.clone(),
                abandoned.split_id.clone(),
                SplitId::generate(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&all_splits(&*metastore, &uid).await),
        id_set([&staged.split_id])
    );
    metastore
        .delete_splits(&uid, &[staged.split_id.clone()])
        .await
        .unwrap();
    assert!(all_splits(&*backend.open().await, &uid).await.is_empty());
}
