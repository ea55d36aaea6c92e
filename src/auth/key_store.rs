//! Every node's view of the API keys: the metastore's records, refreshed every
//! `REFRESH_INTERVAL`, so a key invalidated through any node is refused by all of them
//! within that delay. A key id this node has not seen yet (made on another node a moment
//! ago) triggers a refresh, at most one per `MISS_REFRESH_INTERVAL` whatever the number of
//! requests, so unknown ids cannot turn into a flood of metastore calls.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use quarry_common::api_keys::{parse_authorization, ApiKeyRecord, CredentialError};
use quarry_common::metastore::Metastore;
use tokio::sync::Mutex;
use tracing::warn;

/// How long an invalidated key may still be accepted by a node that did not invalidate it.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
const MISS_REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// Why a request was not authenticated. The messages never echo a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("unable to authenticate with the provided API key")]
    UnknownKey,
    #[error("the API key `{0}` has expired")]
    Expired(String),
    #[error("the API key `{0}` has been invalidated")]
    Invalidated(String),
    #[error("cannot check the API key: {0}")]
    Unavailable(String),
}

pub(crate) struct KeyStore {
    metastore: Arc<dyn Metastore>,
    keys: RwLock<HashMap<String, Arc<ApiKeyRecord>>>,
    /// When the keys were last read; the lock also keeps refreshes from piling up.
    refreshed_at: Mutex<Option<Instant>>,
}

pub(crate) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

impl KeyStore {
    pub(crate) fn new(metastore: Arc<dyn Metastore>) -> Arc<KeyStore> {
        Arc::new(KeyStore {
            metastore,
            keys: RwLock::new(HashMap::new()),
            refreshed_at: Mutex::new(None),
        })
    }

    pub(crate) fn metastore(&self) -> &Arc<dyn Metastore> {
        &self.metastore
    }

    /// Keeps the keys fresh until the task is dropped.
    pub(crate) async fn run_refresh(self: Arc<Self>) {
        loop {
            if let Err(error) = self.refresh().await {
                warn!("cannot refresh the API keys: {error}");
            }
            tokio::time::sleep(REFRESH_INTERVAL).await;
        }
    }

    pub(crate) async fn refresh(&self) -> Result<(), AuthError> {
        let mut refreshed_at = self.refreshed_at.lock().await;
        self.refresh_locked(&mut refreshed_at).await
    }

    async fn refresh_locked(&self, refreshed_at: &mut Option<Instant>) -> Result<(), AuthError> {
        let records = self
            .metastore
            .list_api_keys()
            .await
            .map_err(|error| AuthError::Unavailable(error.to_string()))?;
        let keys = records
            .into_iter()
            .map(|record| (record.id.clone(), Arc::new(record)))
            .collect();
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        *refreshed_at = Some(Instant::now());
        Ok(())
    }

    fn cached(&self, id: &str) -> Option<Arc<ApiKeyRecord>> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .cloned()
    }

    /// Records a change made through this node at once, without waiting for a refresh.
    pub(crate) fn remember(&self, record: ApiKeyRecord) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(record.id.clone(), Arc::new(record));
    }

    /// The key an `Authorization` header proves.
    pub(crate) async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Arc<ApiKeyRecord>, AuthError> {
        let (id, secret) = parse_authorization(authorization)?;
        let record = match self.cached(&id) {
            Some(record) => record,
            None => {
                // Misses queue on the lock. The first refreshes (waiting out the interval
                // since the last refresh); those that arrived before it finished take its
                // result, so a flood of unknown ids costs at most one read per interval.
                let arrived = Instant::now();
                let mut refreshed_at = self.refreshed_at.lock().await;
                if refreshed_at.is_none_or(|at| at < arrived) {
                    if let Some(at) = *refreshed_at {
                        tokio::time::sleep(MISS_REFRESH_INTERVAL.saturating_sub(at.elapsed()))
                            .await;
                    }
                    self.refresh_locked(&mut refreshed_at).await?;
                }
                drop(refreshed_at);
                self.cached(&id).ok_or(AuthError::UnknownKey)?
            }
        };
        // The secret first: without it, nothing about the key is told.
        if !record.secret_matches(&secret) {
            return Err(AuthError::UnknownKey);
        }
        if record.invalidated {
            return Err(AuthError::Invalidated(record.id.clone()));
        }
        if !record.is_active(now_ms()) {
            return Err(AuthError::Expired(record.id.clone()));
        }
        Ok(record)
    }
}
