//! Retries with exponential backoff around a remote storage: object stores answer 5xx,
//! drop connections and stall now and then, and one failed GET should not fail a search,
//! nor one failed PUT an upload.
//!
//! Only `StorageError::Io` is retried (`NotFound` and `InvalidUri` will not change), and
//! reads get a per-attempt timeout so that a stalled connection is retried instead of
//! holding the request until the client gives up.

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tracing::warn;

use super::{Storage, StorageError, StorageResult};

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest a single read or small write may take before it is retried.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
pub struct RetryingStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
}

impl RetryingStorage {
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> RetryingStorage {
        RetryingStorage { inner, policy }
    }

    async fn retry<T, F, Fut>(
        &self,
        operation: &str,
        path: &str,
        timeout: bool,
        mut call: F,
    ) -> StorageResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StorageResult<T>>,
    {
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let outcome = if timeout {
                match tokio::time::timeout(self.policy.attempt_timeout, call()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(StorageError::Io {
                        path: path.to_string(),
                        reason: format!(
                            "{operation} timed out after {:?}",
                            self.policy.attempt_timeout
                        ),
                    }),
                }
            } else {
                call().await
            };
            match outcome {
                Err(error @ StorageError::Io { .. }) if attempt < self.policy.max_attempts => {
                    warn!(
                        storage = self.inner.uri(),
                        path, attempt, "{operation} failed, retrying in {backoff:?}: {error}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

#[async_trait]
impl Storage for RetryingStorage {
    async fn put(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        self.retry("put", path, true, || self.inner.put(path, payload.clone()))
            .await
    }

    /// A retry after a lost answer may find the object the first attempt wrote: the
    /// caller tells that apart from another writer's object by reading it back.
    async fn put_if_absent(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        self.retry("put_if_absent", path, true, || {
            self.inner.put_if_absent(path, payload.clone())
        })
        .await
    }

    async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()> {
        // Large uploads take as long as they take; object_store bounds each part request.
        self.retry("put_file", path, false, || {
            self.inner.put_file(path, local_file)
        })
        .await
    }

    async fn get_all(&self, path: &str) -> StorageResult<Bytes> {
        self.retry("get", path, true, || self.inner.get_all(path))
            .await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes> {
        self.retry("get_range", path, true, || {
            self.inner.get_range(path, range.clone())
        })
        .await
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        self.retry("delete", path, true, || self.inner.delete(path))
            .await
    }

    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        let mut first_attempt = true;
        self.retry("rename", from, true, || {
            let retried = !std::mem::replace(&mut first_attempt, false);
            async move {
                match self.inner.rename(from, to).await {
                    // The failed attempt may have moved the object before its answer was
                    // lost: the source is gone and the destination is there.
                    Err(StorageError::NotFound(_)) if retried => {
                        self.inner.file_num_bytes(to).await.map(|_| ())
                    }
                    outcome => outcome,
                }
            }
        })
        .await
    }

    async fn file_num_bytes(&self, path: &str) -> StorageResult<u64> {
        self.retry("head", path, true, || self.inner.file_num_bytes(path))
            .await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.retry("list", prefix, true, || self.inner.list(prefix))
            .await
    }

    fn uri(&self) -> &str {
        self.inner.uri()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::storage::StorageResolver;

    /// Fails the calls whose number (from 1) `fail` selects, or stalls them past any
    /// timeout; passes the others to the inner storage.
    #[derive(Debug)]
    struct FaultyStorage {
        inner: Arc<dyn Storage>,
        calls: AtomicU32,
        fail: fn(u32) -> Option<Fault>,
    }

    #[derive(Clone, Copy, Debug)]
    enum Fault {
        Unavailable,
        Stall,
    }

    impl FaultyStorage {
        async fn inject(&self, path: &str) -> StorageResult<()> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            match (self.fail)(call) {
                None => Ok(()),
                Some(Fault::Unavailable) => Err(StorageError::Io {
                    path: path.to_string(),
                    reason: "503 Slow Down".to_string(),
                }),
                Some(Fault::Stall) => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                }
            }
        }
    }

    #[async_trait]
    impl Storage for FaultyStorage {
        async fn put(&self, path: &str, payload: Bytes) -> StorageResult<()> {
            self.inject(path).await?;
            self.inner.put(path, payload).await
        }
        async fn put_if_absent(&self, path: &str, payload: Bytes) -> StorageResult<()> {
            self.inject(path).await?;
            self.inner.put_if_absent(path, payload).await
        }
        async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()> {
            self.inject(path).await?;
            self.inner.put_file(path, local_file).await
        }
        async fn get_all(&self, path: &str) -> StorageResult<Bytes> {
            self.inject(path).await?;
            self.inner.get_all(path).await
        }
        async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes> {
            self.inject(path).await?;
            self.inner.get_range(path, range).await
        }
        async fn delete(&self, path: &str) -> StorageResult<()> {
            self.inject(path).await?;
            self.inner.delete(path).await
        }
        async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
            self.inject(from).await?;
            self.inner.rename(from, to).await
        }
        async fn file_num_bytes(&self, path: &str) -> StorageResult<u64> {
            self.inject(path).await?;
            self.inner.file_num_bytes(path).await
        }
        async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
            self.inject(prefix).await?;
            self.inner.list(prefix).await
        }
        fn uri(&self) -> &str {
            self.inner.uri()
        }
    }

    fn with_faults(
        name: &str,
        fail: fn(u32) -> Option<Fault>,
    ) -> (RetryingStorage, Arc<FaultyStorage>) {
        let inner = StorageResolver::default()
            .resolve(&format!("ram://retry-tests/{name}"))
            .unwrap();
        let faulty = Arc::new(FaultyStorage {
            inner,
            calls: AtomicU32::new(0),
            fail,
        });
        let policy = RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            attempt_timeout: Duration::from_millis(200),
        };
        (RetryingStorage::new(faulty.clone(), policy), faulty)
    }

    #[tokio::test]
    async fn transient_failures_and_stalls_are_retried_until_they_pass() {
        // Two of every three calls fail; one stalls.
        let (storage, faulty) = with_faults("flaky", |call| match call % 3 {
            0 => None,
            1 if call == 4 => Some(Fault::Stall),
            _ => Some(Fault::Unavailable),
        });
        storage
            .put("a", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(
            storage.get_all("a").await.unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            storage.get_range("a", 1..3).await.unwrap(),
            Bytes::from_static(b"el")
        );
        storage.rename("a", "b").await.unwrap();
        assert_eq!(
            storage.get_all("b").await.unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            faulty.calls.load(Ordering::SeqCst),
            15,
            "three calls per operation"
        );
        // The whole storage contract holds through the faults.
        crate::storage::resolver::tests::exercise_storage(&storage).await;
    }

    #[tokio::test]
    async fn permanent_errors_and_exhausted_retries_surface() {
        let (storage, faulty) = with_faults("missing", |_| None);
        assert!(matches!(
            storage.get_all("nothing-here").await,
            Err(StorageError::NotFound(_))
        ));
        assert_eq!(
            faulty.calls.load(Ordering::SeqCst),
            1,
            "not found is not retried"
        );

        let (storage, faulty) = with_faults("down", |_| Some(Fault::Unavailable));
        let error = storage.put("a", Bytes::new()).await.unwrap_err();
        assert!(error.to_string().contains("503"), "{error}");
        assert_eq!(faulty.calls.load(Ordering::SeqCst), 4, "max_attempts calls");
    }
}
