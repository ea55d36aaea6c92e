use std::ops::Range;
use std::path::{Path, PathBuf};
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
    /// The directory a `file://` store keeps its objects in, when it is one.
    local_root: Option<PathBuf>,
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
            local_root: None,
        }
    }

    /// Marks the store as the local directory `root`, so that `put_file` can link files
    /// into it instead of copying them.
    pub fn with_local_root(mut self, root: PathBuf) -> ObjectStoreStorage {
        self.local_root = Some(root);
        self
    }

    /// Where `path` lives under a local root, when the object store would map it to the
    /// same file name (plain names only: it percent-encodes anything else).
    fn local_file_path(&self, path: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
        };
        let full = self.full_path(path);
        let parts: Vec<&str> = full.as_ref().split('/').collect();
        parts
            .iter()
            .all(|part| plain(part))
            .then(|| parts.iter().fold(root.clone(), |dir, part| dir.join(part)))
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
            object_store::Error::AlreadyExists { .. } => {
                StorageError::AlreadyExists(format!("{}/{path}", self.uri))
            }
            other => StorageError::Io {
                path: format!("{}/{path}", self.uri),
                reason: other.to_string(),
            },
        }
    }
}

/// Gives `source` a second name at `destination` and makes both the data and the name
/// durable, as a put of the same bytes would. A split is 100+ MB: linking it spares a copy
/// of every byte between packaging and publication on local storage.
fn link_durably(source: &Path, destination: &Path) -> std::io::Result<()> {
    let parent = destination
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    std::fs::hard_link(source, destination)?;
    let synced = std::fs::File::open(destination)
        .and_then(|file| file.sync_all())
        .and_then(|()| std::fs::File::open(parent)?.sync_all());
    if let Err(error) = synced {
        let _ = std::fs::remove_file(destination);
        return Err(error);
    }
    Ok(())
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

    async fn put_if_absent(&self, path: &str, payload: Bytes) -> StorageResult<()> {
        let options = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        self.store
            .put_opts(
                &self.full_path(path),
                PutPayload::from_bytes(payload),
                options,
            )
            .await
            .map_err(|error| self.map_error(path, error))?;
        Ok(())
    }

    async fn put_file(&self, path: &str, local_file: &Path) -> StorageResult<()> {
        let io_error = |error: std::io::Error| StorageError::Io {
            path: local_file.display().to_string(),
            reason: error.to_string(),
        };
        if let Some(destination) = self.local_file_path(path) {
            let source = local_file.to_path_buf();
            let linked = tokio::task::spawn_blocking(move || link_durably(&source, &destination))
                .await
                .map_err(|error| io_error(std::io::Error::other(error)))?;
            match linked {
                Ok(()) => return Ok(()),
                // Another file system, or one without hard links: copy instead.
                Err(error) => tracing::debug!(path, "linking failed, copying: {error}"),
            }
        }
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
