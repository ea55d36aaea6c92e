use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use quarry_config::S3Config;

use super::{ObjectStoreStorage, Storage, StorageError, StorageResult};

/// Turns storage URIs (`file:///abs`, a relative path, `s3://bucket/prefix`, `ram:///name`)
/// into [`Storage`]s. Clients are shared per backend root so that connection pools are too,
/// and so that every `ram://` user in a process sees the same objects.
#[derive(Clone, Default)]
pub struct StorageResolver {
    s3_config: S3Config,
    backends: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl std::fmt::Debug for StorageResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageResolver").finish()
    }
}

impl StorageResolver {
    pub fn new(s3_config: S3Config) -> StorageResolver {
        StorageResolver {
            s3_config,
            backends: Arc::default(),
        }
    }

    /// Normalises a URI: relative and absolute paths become `file://` URIs.
    pub fn normalize_uri(uri: &str) -> StorageResult<String> {
        if uri.contains("://") {
            return Ok(uri.trim_end_matches('/').to_string());
        }
        let path = PathBuf::from(uri);
        let absolute = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|error| StorageError::InvalidUri {
                    uri: uri.to_string(),
                    reason: format!("cannot resolve relative path: {error}"),
                })?
                .join(path)
        };
        let mut normalized = PathBuf::new();
        for component in absolute.components() {
            match component {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    normalized.pop();
                }
                other => normalized.push(other),
            }
        }
        Ok(format!(
            "file://{}",
            normalized.to_string_lossy().trim_end_matches('/')
        ))
    }

    pub fn resolve(&self, uri: &str) -> StorageResult<Arc<dyn Storage>> {
        let uri = Self::normalize_uri(uri)?;
        let invalid = |reason: &str| StorageError::InvalidUri {
            uri: uri.clone(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("missing scheme"))?;
        let storage: Arc<dyn Storage> = match scheme {
            "file" => {
                std::fs::create_dir_all(rest).map_err(|error| StorageError::Io {
                    path: rest.to_string(),
                    reason: error.to_string(),
                })?;
                let store = self.backend(&uri, || {
                    // fsync makes a successful put durable, matching what S3 promises.
                    LocalFileSystem::new_with_prefix(rest)
                        .map(|store| Arc::new(store.with_fsync(true)) as Arc<dyn ObjectStore>)
                        .map_err(|error| invalid(&error.to_string()))
                })?;
                Arc::new(
                    ObjectStoreStorage::new(store, "", uri.clone())
                        .with_local_root(PathBuf::from(rest)),
                )
            }
            "ram" => {
                let store = self.backend("ram://", || Ok(Arc::new(InMemory::new())))?;
                Arc::new(ObjectStoreStorage::new(store, rest, uri.clone()))
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("no bucket name"));
                }
                let store = self.backend(&format!("s3://{bucket}"), || {
                    self.build_s3(bucket)
                        .map_err(|error| invalid(&error.to_string()))
                })?;
                // Remote: 5xx answers, dropped connections and stalls get retried.
                Arc::new(super::RetryingStorage::new(
                    Arc::new(ObjectStoreStorage::new(store, prefix, uri.clone())),
                    super::RetryPolicy::default(),
                ))
            }
            other => {
                return Err(invalid(&format!(
                    "unsupported scheme `{other}` (expected file, s3 or ram)"
                )))
            }
        };
        Ok(storage)
    }

    fn backend(
        &self,
        key: &str,
        build: impl FnOnce() -> StorageResult<Arc<dyn ObjectStore>>,
    ) -> StorageResult<Arc<dyn ObjectStore>> {
        let mut backends = self
            .backends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = backends.get(key) {
            return Ok(store.clone());
        }
        let store = build()?;
        backends.insert(key.to_string(), store.clone());
        Ok(store)
    }

    fn build_s3(&self, bucket: &str) -> object_store::Result<Arc<dyn ObjectStore>> {
        // `AWS_*` variables first, then the node config on top, so a config file wins.
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let config = &self.s3_config;
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        } else if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if config.force_path_style_access {
            builder = builder.with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(Arc::new(builder.build()?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn normalizes_paths_to_file_uris() {
        assert_eq!(
            StorageResolver::normalize_uri("/data/./idx/../indexes/").unwrap(),
            "file:///data/indexes"
        );
        assert_eq!(
            StorageResolver::normalize_uri("s3://bucket/prefix/").unwrap(),
            "s3://bucket/prefix"
        );
        assert!(StorageResolver::normalize_uri("qdata")
            .unwrap()
            .starts_with("file:///"));
    }

    #[tokio::test]
    async fn local_put_file_links_and_falls_back_to_copying() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("indexes");
        let storage = StorageResolver::default()
            .resolve(root.to_str().unwrap())
            .unwrap();
        let scratch = dir.path().join("scratch.split");
        std::fs::write(&scratch, b"split bytes").unwrap();
        storage.put_file("idx/one.split", &scratch).await.unwrap();
        // Same file system: the stored object is the scratch file under a second name.
        let stored = root.join("idx").join("one.split");
        assert_eq!(
            std::fs::metadata(&stored).unwrap().ino(),
            std::fs::metadata(&scratch).unwrap().ino()
        );
        // Removing the scratch file keeps the object.
        std::fs::remove_file(&scratch).unwrap();
        assert_eq!(
            &storage.get_all("idx/one.split").await.unwrap()[..],
            b"split bytes"
        );
        // A retry over an existing object cannot link: it is copied over instead.
        let retry = dir.path().join("retry.split");
        std::fs::write(&retry, b"new bytes").unwrap();
        storage.put_file("idx/one.split", &retry).await.unwrap();
        assert_eq!(
            &storage.get_all("idx/one.split").await.unwrap()[..],
            b"new bytes"
        );
        // Names the object store would encode are copied, never linked under another name.
        storage
            .put_file("idx/with space.split", &retry)
            .await
            .unwrap();
        assert_eq!(
            &storage.get_all("idx/with space.split").await.unwrap()[..],
            b"new bytes"
        );
    }

    #[tokio::test]
    async fn ram_storages_with_the_same_root_share_objects() {
        let resolver = StorageResolver::default();
        let first = resolver.resolve("ram:///shared/a").unwrap();
        first.put("x", Bytes::from_static(b"hello")).await.unwrap();
        let second = resolver.resolve("ram:///shared/a").unwrap();
        assert_eq!(&second.get_all("x").await.unwrap()[..], b"hello");
        let other = resolver.resolve("ram:///shared/b").unwrap();
        assert!(matches!(
            other.get_all("x").await,
            Err(StorageError::NotFound(_))
        ));
        assert!(resolver.resolve("ftp://x").is_err());
    }

    #[tokio::test]
    async fn local_storage_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = StorageResolver::default();
        let storage = resolver.resolve(dir.path().to_str().unwrap()).unwrap();
        exercise_storage(&*storage).await;
    }

    /// The contract every backend must keep, run against local files and S3 alike.
    pub(crate) async fn exercise_storage(storage: &dyn Storage) {
        storage
            .put("a/b.bin", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(
            &storage.get_range("a/b.bin", 2..5).await.unwrap()[..],
            b"234"
        );
        assert_eq!(storage.file_num_bytes("a/b.bin").await.unwrap(), 10);
        storage.rename("a/b.bin", "a/c.bin").await.unwrap();
        assert_eq!(
            storage.list("a").await.unwrap(),
            vec!["a/c.bin".to_string()]
        );
        assert!(matches!(
            storage.get_all("a/b.bin").await,
            Err(StorageError::NotFound(_))
        ));
        storage.delete("a/c.bin").await.unwrap();
        storage.delete("a/c.bin").await.unwrap();
        assert!(storage.list("a").await.unwrap().is_empty());
        // Put-if-absent: the first writer wins, the second is told, the object is the first's.
        storage
            .put_if_absent("once.bin", Bytes::from_static(b"first"))
            .await
            .unwrap();
        assert!(matches!(
            storage
                .put_if_absent("once.bin", Bytes::from_static(b"second"))
                .await,
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(&storage.get_all("once.bin").await.unwrap()[..], b"first");
        storage.delete("once.bin").await.unwrap();
        // Over the part size: goes through a multipart upload.
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("big.local");
        let big: Vec<u8> = (0..40 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        std::fs::write(&local, &big).unwrap();
        storage.put_file("big.split", &local).await.unwrap();
        assert_eq!(
            storage.file_num_bytes("big.split").await.unwrap(),
            big.len() as u64
        );
        let slice = storage
            .get_range("big.split", 30_000_000..30_000_100)
            .await
            .unwrap();
        assert_eq!(&slice[..], &big[30_000_000..30_000_100]);
        storage.delete("big.split").await.unwrap();
    }
}

/// Runs against a real S3-compatible server when `QUARRY_TEST_S3_ENDPOINT` is set (CI starts
/// SeaweedFS for this); elsewhere it skips, loudly. Credentials come from `AWS_*` variables.
#[cfg(test)]
pub(crate) mod s3_tests {
    use super::*;

    /// The configured S3 endpoint, `None` to skip outside CI.
    pub(crate) fn s3_test_config() -> Option<S3Config> {
        match std::env::var("QUARRY_TEST_S3_ENDPOINT") {
            Ok(endpoint) => Some(S3Config {
                endpoint: Some(endpoint),
                region: Some("us-east-1".to_string()),
                force_path_style_access: true,
                access_key_id: None,
                secret_access_key: None,
            }),
            Err(_) if std::env::var("CI").is_ok() => {
                panic!("CI must run the S3 tests: QUARRY_TEST_S3_ENDPOINT is not set (see .ci/run)")
            }
            Err(_) => {
                eprintln!("SKIPPED: S3 storage test (set QUARRY_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and QUARRY_TEST_S3_BUCKET to run it)");
                None
            }
        }
    }

    pub(crate) fn s3_test_uri(name: &str) -> String {
        let bucket =
            std::env::var("QUARRY_TEST_S3_BUCKET").unwrap_or_else(|_| "quarry-test".to_string());
        format!("s3://{bucket}/{name}-{}", ulid::Ulid::new())
    }

    #[tokio::test]
    async fn s3_round_trip() {
        let Some(config) = s3_test_config() else {
            return;
        };
        let resolver = StorageResolver::new(config);
        let storage = resolver.resolve(&s3_test_uri("storage")).unwrap();
        super::tests::exercise_storage(&*storage).await;
    }
}
