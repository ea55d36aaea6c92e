//! Publishing: atomicity with the checkpoint, merges replacing their inputs, and
//! publishers racing each other.

use super::*;
use crate::metastore::{MetastoreError, Position, SplitState};

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
            std::slice::from_ref(&first.split_id),
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
            std::slice::from_ref(&second.split_id),
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
            std::slice::from_ref(&second.split_id),
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
            std::slice::from_ref(&second.split_id),
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
            std::slice::from_ref(&second.split_id),
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
        .publish_splits(
            &uid,
            std::slice::from_ref(&second_merge.split_id),
            &input_ids,
            None,
        )
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
            std::slice::from_ref(&second_merge.split_id),
            std::slice::from_ref(&staged_input.split_id),
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
            std::slice::from_ref(&second_merge.split_id),
            std::slice::from_ref(&second_merge.split_id),
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
