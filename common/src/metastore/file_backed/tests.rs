use futures::FutureExt;

use super::*;
use crate::metastore::tests_suite::{config, metastore_suite, split, TestBackend};

fn metastore(resolver: &StorageResolver, root: &str) -> FileBackedMetastore {
    FileBackedMetastore::new(resolver.resolve(root).unwrap(), resolver.clone())
}

fn metastore_reopen(resolver: &StorageResolver, root: &str) -> FileBackedMetastore {
    metastore(resolver, root)
}

/// A file-backed metastore rooted at `root`: every `open` is a fresh instance (empty cache)
/// over the same storage.
fn file_backed_backend(resolver: StorageResolver, root: String) -> TestBackend {
    TestBackend::new(root.clone(), move || {
        let metastore: Arc<dyn Metastore> = Arc::new(metastore(&resolver, &root));
        async move { metastore }.boxed()
    })
}

mod suite_on_ram {
    use super::*;

    async fn backend() -> Option<TestBackend> {
        let root = format!("ram:///metastore-suite-{}", ulid::Ulid::new());
        Some(file_backed_backend(StorageResolver::default(), root))
    }

    metastore_suite!(backend());
}

mod suite_on_local_files {
    use super::*;

    async fn backend() -> Option<TestBackend> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_string();
        // The directory lives until teardown.
        let teardown = async move { drop(dir) }.boxed();
        Some(file_backed_backend(StorageResolver::default(), root).with_teardown(teardown))
    }

    metastore_suite!(backend());
}

mod suite_on_s3 {
    use super::*;

    async fn backend() -> Option<TestBackend> {
        // `None` (with a loud SKIPPED) unless QUARRY_TEST_S3_ENDPOINT is set.
        let s3_config = crate::storage::s3_test_support::s3_test_config()?;
        let root = crate::storage::s3_test_support::s3_test_uri("metastore-suite");
        Some(file_backed_backend(StorageResolver::new(s3_config), root))
    }

    metastore_suite!(backend());
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
        .publish_splits(&uid, std::slice::from_ref(&published.split_id), &[], None)
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
