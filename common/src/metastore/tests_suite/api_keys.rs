use crate::api_keys::{hash_secret, superuser_roles, ApiKeyRecord};

use super::TestBackend;

fn record(id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_string(),
        name: format!("key {id}"),
        key_hash: hash_secret(&format!("secret of {id}")),
        creation_ms: 1_000,
        expiration_ms: None,
        invalidated: false,
        role_descriptors: superuser_roles(),
        limited_by: None,
        creator: None,
        limits: Some(crate::api_keys::TenantLimits {
            ingest_bytes_per_second: Some(1_000),
            max_concurrent_searches: None,
        }),
    }
}

/// Keys are created once per id, listed, invalidated once, and all of it persists.
pub(crate) async fn api_keys_are_created_once_listed_and_invalidated(backend: &TestBackend) {
    let metastore = backend.open().await;
    assert!(metastore.create_api_key(record("k1")).await.unwrap());
    assert!(metastore.create_api_key(record("k2")).await.unwrap());
    let mut other = record("k1");
    other.name = "impostor".to_string();
    assert!(!metastore.create_api_key(other).await.unwrap());

    let reopened = backend.open().await;
    let listed = reopened.list_api_keys().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|key| key.id.as_str()).collect();
    assert!(ids.contains(&"k1") && ids.contains(&"k2"), "{ids:?}");
    let k1 = listed.iter().find(|key| key.id == "k1").unwrap();
    assert_eq!(k1, &record("k1"));

    let invalidated = reopened
        .invalidate_api_keys(&["k1".to_string(), "missing".to_string()])
        .await
        .unwrap();
    assert_eq!(invalidated, ["k1"]);
    assert!(reopened
        .invalidate_api_keys(&["k1".to_string()])
        .await
        .unwrap()
        .is_empty());
    let listed = backend.open().await.list_api_keys().await.unwrap();
    assert!(
        listed
            .iter()
            .find(|key| key.id == "k1")
            .unwrap()
            .invalidated
    );
    assert!(
        !listed
            .iter()
            .find(|key| key.id == "k2")
            .unwrap()
            .invalidated
    );
}
