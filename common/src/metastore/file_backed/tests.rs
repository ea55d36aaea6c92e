use std::collections::BTreeSet;

use super::*;
use crate::metastore::{CheckpointDelta, Position, SplitMaturity};
use crate::time_range::TimeRange;

fn config(index_id: &str, root: &str) -> IndexConfig {
    let mut config = IndexConfig::parse(
        format!("index_id: {index_id}").as_bytes(),
        quarry_config::ConfigFormat::Yaml,
    )
    .unwrap();
    config.index_uri = Some(format!("{root}/{index_id}"));
    config
}

fn split(index_uid: &IndexUid, start: i64, end: i64) -> SplitMetadata {
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

fn metastore(resolver: &StorageResolver, root: &str) -> FileBackedMetastore {
    FileBackedMetastore::new(resolver.resolve(root).unwrap(), resolver.clone())
}

#[tokio::test]
async fn create_list_publish_and_prune_by_time() {
    let resolver = StorageResolver::default();
    let root = "ram:///metastore-test-1";
    let metastore = metastore(&resolver, root);
    let index = metastore.create_index(config("logs", root)).await.unwrap();
    assert!(matches!(
        metastore.create_index(config("logs", root)).await,
        Err(MetastoreError::IndexAlreadyExists(_))
    ));
    metastore.create_index(config("other", root)).await.unwrap();
    let ids: Vec<String> = metastore
        .list_indexes()
        .await
        .unwrap()
        .iter()
        .map(|index| index.index_id().to_string())
        .collect();
    assert_eq!(ids, ["logs", "other"]);

    let uid = index.index_uid.clone();
    let early = split(&uid, 100, 199);
    let late = split(&uid, 200, 299);
    metastore
        .stage_splits(&uid, vec![early.clone(), late.clone()])
        .await
        .unwrap();
    assert!(metastore
        .list_splits(&uid, &ListSplitsQuery::published())
        .await
        .unwrap()
        .is_empty());
    metastore
        .publish_splits(
            &uid,
            &[early.split_id.clone(), late.split_id.clone()],
            &[],
            None,
        )
        .await
        .unwrap();

    let window = |start, end| ListSplitsQuery {
        states: vec![SplitState::Published],
        start_timestamp: start,
        end_timestamp: end,
    };
    let ids = |splits: Vec<Split>| -> Vec<SplitId> {
        splits
            .into_iter()
            .map(|split| split.split_metadata.split_id)
            .collect()
    };
    assert_eq!(
        ids(metastore
            .list_splits(&uid, &window(None, None))
            .await
            .unwrap())
        .len(),
        2
    );
    assert_eq!(
        ids(metastore
            .list_splits(&uid, &window(Some(250), None))
            .await
            .unwrap()),
        [late.split_id.clone()]
    );
    assert_eq!(
        ids(metastore
            .list_splits(&uid, &window(None, Some(200)))
            .await
            .unwrap()),
        [early.split_id.clone()]
    );
    assert!(metastore
        .list_splits(&uid, &window(Some(300), None))
        .await
        .unwrap()
        .is_empty());

    // Publishing twice is refused: only staged splits can be published.
    assert!(matches!(
        metastore
            .publish_splits(&uid, &[early.split_id.clone()], &[], None)
            .await,
        Err(MetastoreError::SplitsNotInExpectedState { .. })
    ));

    // A fresh metastore over the same storage reads the same state back.
    let reopened = metastore_reopen(&resolver, root);
    assert_eq!(
        reopened
            .list_splits(&uid, &window(None, None))
            .await
            .unwrap()
            .len(),
        2
    );
}

fn metastore_reopen(resolver: &StorageResolver, root: &str) -> FileBackedMetastore {
    metastore(resolver, root)
}

#[tokio::test]
async fn publish_is_atomic_with_checkpoint() {
    let resolver = StorageResolver::default();
    let root = "ram:///metastore-test-2";
    let metastore = metastore(&resolver, root);
    let uid = metastore
        .create_index(config("logs", root))
        .await
        .unwrap()
        .index_uid;
    let first = split(&uid, 0, 1);
    let second = split(&uid, 0, 1);
    metastore
        .stage_splits(&uid, vec![first.clone(), second.clone()])
        .await
        .unwrap();
    let delta = |from, to| CheckpointDelta {
        source_id: "ingest".to_string(),
        partitions: [("wal".to_string(), (from, to))].into_iter().collect(),
    };
    metastore
        .publish_splits(
            &uid,
            &[first.split_id.clone()],
            &[],
            Some(delta(Position::Beginning, Position::Offset(10))),
        )
        .await
        .unwrap();
    // A delta that does not continue the checkpoint fails and publishes nothing.
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
    let published = metastore
        .list_splits(&uid, &ListSplitsQuery::published())
        .await
        .unwrap();
    assert_eq!(published.len(), 1);
    let metadata = metastore.index_metadata("logs").await.unwrap();
    assert_eq!(
        metadata.checkpoints["ingest"].partitions["wal"],
        Position::Offset(10)
    );

    // Merges replace published splits in the same update.
    metastore
        .publish_splits(
            &uid,
            &[second.split_id.clone()],
            &[first.split_id.clone()],
            Some(delta(Position::Offset(10), Position::Offset(20))),
        )
        .await
        .unwrap();
    let all = metastore
        .list_splits(&uid, &ListSplitsQuery::default())
        .await
        .unwrap();
    let state_of = |id: &SplitId| {
        all.iter()
            .find(|split| &split.split_metadata.split_id == id)
            .unwrap()
            .split_state
    };
    assert_eq!(state_of(&first.split_id), SplitState::MarkedForDeletion);
    assert_eq!(state_of(&second.split_id), SplitState::Published);
    assert!(matches!(
        metastore
            .delete_splits(&uid, &[second.split_id.clone()])
            .await,
        Err(MetastoreError::SplitsNotInExpectedState { .. })
    ));
    metastore
        .delete_splits(&uid, &[first.split_id.clone()])
        .await
        .unwrap();
    assert_eq!(
        metastore
            .list_splits(&uid, &ListSplitsQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn torn_write_leaves_previous_state_readable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let resolver = StorageResolver::default();
    let metastore = metastore(&resolver, &root);
    let uid = metastore
        .create_index(config("logs", &root))
        .await
        .unwrap()
        .index_uid;
    let published = split(&uid, 0, 1);
    metastore
        .stage_splits(&uid, vec![published.clone()])
        .await
        .unwrap();
    metastore
        .publish_splits(&uid, &[published.split_id.clone()], &[], None)
        .await
        .unwrap();

    // A crash mid-write leaves a half-written temporary file that was never swapped in.
    let state_path = dir.path().join("logs").join("metastore.json");
    let full = std::fs::read(&state_path).unwrap();
    std::fs::write(
        dir.path().join("logs").join("metastore.json.tmp"),
        &full[..full.len() / 2],
    )
    .unwrap();

    let reopened = metastore_reopen(&resolver, &root);
    let splits = reopened
        .list_splits(&uid, &ListSplitsQuery::published())
        .await
        .unwrap();
    assert_eq!(splits.len(), 1);
    // The next update overwrites the leftover and succeeds.
    let next = split(&uid, 2, 3);
    reopened.stage_splits(&uid, vec![next]).await.unwrap();
    assert_eq!(
        reopened
            .list_splits(&uid, &ListSplitsQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );

    // A state file damaged outside our control is reported, never silently emptied.
    std::fs::write(&state_path, &full[..full.len() / 2]).unwrap();
    let err = metastore_reopen(&resolver, &root)
        .index_metadata("logs")
        .await
        .unwrap_err();
    assert!(matches!(err, MetastoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn delete_index_forgets_it() {
    let resolver = StorageResolver::default();
    let root = "ram:///metastore-test-3";
    let metastore = metastore(&resolver, root);
    let uid = metastore
        .create_index(config("logs", root))
        .await
        .unwrap()
        .index_uid;
    metastore.delete_index(&uid).await.unwrap();
    assert!(matches!(
        metastore.index_metadata("logs").await,
        Err(MetastoreError::IndexNotFound(_))
    ));
    assert!(metastore.list_indexes().await.unwrap().is_empty());
    // A new incarnation under the same id is a different index.
    let new_uid = metastore
        .create_index(config("logs", root))
        .await
        .unwrap()
        .index_uid;
    assert_ne!(new_uid, uid);
    assert!(matches!(
        metastore
            .list_splits(&uid, &ListSplitsQuery::default())
            .await,
        Err(MetastoreError::IndexNotFound(_))
    ));
}

#[tokio::test]
async fn works_on_s3() {
    let Some(s3_config) = crate::storage::s3_test_support::s3_test_config() else {
        return;
    };
    let resolver = StorageResolver::new(s3_config);
    let root = crate::storage::s3_test_support::s3_test_uri("metastore");
    let metastore = metastore(&resolver, &root);
    let uid = metastore
        .create_index(config("logs", &root))
        .await
        .unwrap()
        .index_uid;
    let published = split(&uid, 0, 10);
    metastore
        .stage_splits(&uid, vec![published.clone()])
        .await
        .unwrap();
    metastore
        .publish_splits(&uid, &[published.split_id.clone()], &[], None)
        .await
        .unwrap();
    let reopened = metastore_reopen(&resolver, &root);
    assert_eq!(
        reopened
            .list_splits(&uid, &ListSplitsQuery::published())
            .await
            .unwrap()
            .len(),
        1
    );
    reopened.delete_index(&uid).await.unwrap();
    assert!(metastore_reopen(&resolver, &root)
        .list_indexes()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn delete_tasks_get_increasing_opstamps_and_splits_catch_up() {
    let resolver = StorageResolver::default();
    let root = "ram:///metastore-test-delete-tasks";
    let metastore = metastore(&resolver, root);
    let index = metastore.create_index(config("logs", root)).await.unwrap();
    let uid = index.index_uid.clone();
    assert_eq!(metastore.last_delete_opstamp(&uid).await.unwrap(), 0);
    let query = |text: &str| crate::metastore::DeleteQuery {
        index_uid: uid.clone(),
        query: text.to_string(),
        search_fields: Vec::new(),
        start_timestamp: None,
        end_timestamp: Some(100),
    };
    let first = metastore.create_delete_task(query("a")).await.unwrap();
    let second = metastore.create_delete_task(query("b")).await.unwrap();
    assert_eq!((first.opstamp, second.opstamp), (1, 2));
    assert_eq!(metastore.last_delete_opstamp(&uid).await.unwrap(), 2);
    let after_first = metastore.list_delete_tasks(&uid, 1).await.unwrap();
    assert_eq!(after_first, vec![second.clone()]);

    let published = split(&uid, 0, 10);
    let staged = split(&uid, 0, 10);
    metastore
        .stage_splits(&uid, vec![published.clone(), staged.clone()])
        .await
        .unwrap();
    metastore
        .publish_splits(&uid, std::slice::from_ref(&published.split_id), &[], None)
        .await
        .unwrap();
    metastore
        .update_splits_delete_opstamp(
            &uid,
            &[published.split_id.clone(), staged.split_id.clone()],
            2,
        )
        .await
        .unwrap();
    let splits = metastore
        .list_splits(&uid, &ListSplitsQuery::default())
        .await
        .unwrap();
    for split in splits {
        let expected = if split.split_metadata.split_id == published.split_id {
            2
        } else {
            0
        };
        assert_eq!(
            split.split_metadata.delete_opstamp, expected,
            "only published splits move"
        );
    }
    // Tasks survive a reopen.
    let reopened = metastore_reopen(&resolver, root);
    assert_eq!(
        reopened.list_delete_tasks(&uid, 0).await.unwrap(),
        vec![first, second]
    );
}
