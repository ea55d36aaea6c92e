//! Delete tasks: opstamps per index, listing after an opstamp, and splits catching up.

use super::*;
use crate::metastore::DeleteQuery;

pub(crate) async fn delete_tasks_get_increasing_opstamps_and_splits_catch_up(
    backend: &TestBackend,
) {
    let metastore = backend.open().await;
    let root = &backend.index_root;
    let index = metastore.create_index(config("logs", root)).await.unwrap();
    let other = metastore.create_index(config("other", root)).await.unwrap();
    let uid = index.index_uid.clone();
    assert_eq!(metastore.last_delete_opstamp(&uid).await.unwrap(), 0);
    let query = |uid: &IndexUid, text: &str| DeleteQuery {
        index_uid: uid.clone(),
        query: text.to_string(),
        search_fields: vec!["body".to_string()],
        start_timestamp: None,
        end_timestamp: Some(100),
    };
    let first = metastore
        .create_delete_task(query(&uid, "a"))
        .await
        .unwrap();
    let second = metastore
        .create_delete_task(query(&uid, "b"))
        .await
        .unwrap();
    assert_eq!((first.opstamp, second.opstamp), (1, 2));
    // Opstamps count per index.
    let elsewhere = metastore
        .create_delete_task(query(&other.index_uid, "c"))
        .await
        .unwrap();
    assert_eq!(elsewhere.opstamp, 1);
    assert_eq!(metastore.last_delete_opstamp(&uid).await.unwrap(), 2);
    assert_eq!(
        metastore.list_delete_tasks(&uid, 1).await.unwrap(),
        vec![second.clone()]
    );

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
    for split in metastore
        .list_splits(&uid, &ListSplitsQuery::default())
        .await
        .unwrap()
    {
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
    // Tasks survive a reopen, and go with their index.
    let reopened = backend.open().await;
    assert_eq!(
        reopened.list_delete_tasks(&uid, 0).await.unwrap(),
        vec![first, second]
    );
    reopened.delete_index(&uid).await.unwrap();
    let recreated = reopened.create_index(config("logs", root)).await.unwrap();
    assert_eq!(
        reopened
            .last_delete_opstamp(&recreated.index_uid)
            .await
            .unwrap(),
        0
    );
    assert!(reopened.list_delete_tasks(&uid, 0).await.is_err());
}
