use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{Storage, StorageError, StorageResult};

/// Parts of 16 MiB keep a multipart upload within S3's 10 000 parts up to 160 GB.
const MULTIPART_PART_SIZE: usize = 16 * 1024 * 1024;

/// [`Storage`] over any `object_store` backend, rooted at a prefix.
#[derive(Clone)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    uri: String,
}

impl std::fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreStorage")
            .field("uri", &self.uri)
            .finish()
    }
}

impl ObjectStoreStorage {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, uri: String) -> ObjectStoreStorage {
        ObjectStoreStorage {
            store,
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            uri,
        }
    }

    fn full_path(&self, path: &str) -> ObjectPath {
        let mut full = self.prefix.clone();
        for part in path.split('/').filter(|part| !part.is_empty()) {
            full = full.clone().join(part);
        }
        full
    }

    fn map_error(&self, path: &str, error: object_store::Error) -> StorageError {
        match error {
            object_store::Error::NotFound { .. } => {
                StorageError::NotFound(format!("{}/{path}", self.uri))
            }
            other => StorageError::Io {
                path: format!("{}/{path}", self.uri),
                reason: other.to_string(),
            },
        }
    }
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    async fn put(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        self.store
            .put(&self.full_path(path), PutPayload::from_bytes(payload))
            .await
            .map_err(|error| self.map_error(path, error))?;
        Ok(())
    }

    async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()> {
        let io_error = |error: std::io::Error| StorageError::Io {
            path: local_file.display().to_string(),
            reason: error.to_string(),
        };
        let mut file = tokio::fs::File::open(local_file).await.map_err(io_error)?;
        let len = file.metadata().await.map_err(io_error)?.len() as usize;
        if len <= MULTIPART_PART_SIZE {
            let mut buffer = Vec::with_capacity(len);
            file.read_to_end(&mut buffer).await.map_err(io_error)?;
            return self.put(path, Bytes::from(buffer)).await;
        }
        let upload = self
            .store
            .put_multipart(&self.full_path(path))
            .await
            .map_err(|error| self.map_error(path, error))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_SIZE);
        let mut chunk = vec![0u8; 1024 * 1024];
        loop {
            let read = file.read(&mut chunk).await.map_err(io_error)?;
            if read == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|error| self.map_error(path, error))?;
            writer.write(&chunk[..read]);
        }
        writer
            .finish()
            .await
            .map_err(|error| self.map_error(path, error))?;
        Ok(())
    }

    async fn get_all(&self, path: &str) -> StorageResult<Bytes> {
        let result = self
            .store
            .get(&self.full_path(path))
            .await
            .map_err(|error| self.map_error(path, error))?;
        result
            .bytes()
            .await
            .map_err(|error| self.map_error(path, error))
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> StorageResult<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&self.full_path(path), range)
            .await
            .map_err(|error| self.map_error(path, error))
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        match self.store.delete(&self.full_path(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.map_error(path, error)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> StorageResult<()> {
        self.store
            .rename(&self.full_path(from), &self.full_path(to))
            .await
            .map_err(|error| self.map_error(from, error))
    }

    async fn file_num_bytes(&self, path: &str) -> StorageResult<u64> {
        let meta = self
            .store
            .head(&self.full_path(path))
            .await
            .map_err(|error| self.map_error(path, error))?;
        Ok(meta.size)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let full_prefix = self.full_path(prefix);
        let root_len = if self.prefix.as_ref().is_empty() {
            0
        } else {
            self.prefix.as_ref().len() + 1
        };
        let metas: Vec<_> = self
            .store
            .list(Some(&full_prefix))
            .try_collect()
            .await
            .map_err(|error| self.map_error(prefix, error))?;
        Ok(metas
            .into_iter()
            .map(|meta| meta.location.as_ref()[root_len..].to_string())
            .collect())
    }

    fn uri(&self) -> &str {
        &self.uri
    }
}
