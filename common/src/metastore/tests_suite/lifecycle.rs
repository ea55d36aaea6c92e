//! Indexes and the split lifecycle: create/describe/list/delete, stage, list by state and
//! time, mark and delete.

use super::*;
use crate::metastore::{IndexMetadata, MetastoreError, SplitMaturity, SplitState};

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

    let index_ids = |indexes: Vec<IndexMetadata>| -> Vec<String> {
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
        .publish_splits(&uid, std::slice::from_ref(&early.split_id), &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetastoreError::SplitsNotInExpectedState { .. }),
        "{err}"
    );
    let missing = SplitId::generate();
    let err = metastore
        .publish_splits(&uid, std::slice::from_ref(&missing), &[], None)
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
        .publish_splits(&uid, std::slice::from_ref(&published.split_id), &[], None)
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
        .delete_splits(&uid, std::slice::from_ref(&staged.split_id))
        .await
        .unwrap();
    assert!(all_splits(&*backend.open().await, &uid).await.is_empty());
}
