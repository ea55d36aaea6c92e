//! `_id` deduplication for `_bulk`. Log shippers resend a whole batch when a response times
//! out; a document whose `_id` this index accepted within the window is acknowledged again
//! but not indexed twice.
//!
//! Accepted ids are journaled to disk, one file per window-sized time bucket, after the
//! documents are in the write-ahead log and before the client hears back. A restart reloads
//! the buckets that still overlap the window; older buckets are deleted whole, so the
//! journal never needs rewriting. Memory holds a 128-bit keyed hash per id, never the id.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tracing::warn;

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("dedup journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dedup journal lock poisoned")]
    Poisoned,
    #[error("`{0}` is not a valid index id")]
    InvalidIndexId(String),
}

/// What `claim` decided for one `_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdClaim {
    /// Not seen in the window: index the document, then `confirm` or `release` the id.
    New,
    /// Accepted before within the window: acknowledge without indexing.
    Duplicate,
    /// Another request holding this id has not finished: the client should retry, since
    /// that request may still fail.
    InFlight,
}

/// A claim whose request never settled (in a cluster, the node that made it may have died)
/// stops blocking retries after this long; no `_bulk` request takes that long to reach the
/// write-ahead log.
const PENDING_TIMEOUT_SECS: u64 = 120;

pub struct DedupWindow {
    dir: PathBuf,
    window: Duration,
    max_ids_per_index: usize,
    hashers: (RandomState, RandomState),
    indexes: Mutex<HashMap<String, Arc<Mutex<IndexIds>>>>,
}

#[derive(Default)]
struct IndexIds {
    accepted: HashMap<u128, u64>,
    /// (accepted at, id hash), oldest first, for expiry.
    order: VecDeque<(u64, u128)>,
    /// Claimed ids whose request has not settled yet, with when they were claimed.
    pending: HashMap<u128, u64>,
    /// The open journal file and the bucket it belongs to.
    journal: Option<(u64, Arc<File>)>,
}

fn unix_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DedupError + '_ {
    move |source| DedupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl DedupWindow {
    /// `dir` holds one sub-folder per index. Nothing is read until an index is used.
    pub fn new(dir: PathBuf, window: Duration, max_ids_per_index: usize) -> DedupWindow {
        DedupWindow {
            dir,
            window: window.max(Duration::from_secs(1)),
            max_ids_per_index: max_ids_per_index.max(1),
            hashers: (RandomState::new(), RandomState::new()),
            indexes: Mutex::new(HashMap::new()),
        }
    }

    fn hash(&self, id: &str) -> u128 {
        let high = self.hashers.0.hash_one(id) as u128;
        let low = self.hashers.1.hash_one(id) as u128;
        (high << 64) | low
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }

    /// The index's journal folder. Index ids come from requests: only a valid one (no
    /// separators, no `..`) may become a path.
    fn index_dir(&self, index_id: &str) -> PathBuf {
        self.dir.join(index_id)
    }

    fn check_index_id(index_id: &str) -> Result<(), DedupError> {
        quarry_config::validate_index_id(index_id)
            .map_err(|_| DedupError::InvalidIndexId(index_id.to_string()))
    }

    fn index_ids(&self, index_id: &str, now: u64) -> Result<Arc<Mutex<IndexIds>>, DedupError> {
        Self::check_index_id(index_id)?;
        let mut indexes = self.indexes.lock().map_err(|_| DedupError::Poisoned)?;
        if let Some(ids) = indexes.get(index_id) {
            return Ok(ids.clone());
        }
        let ids = Arc::new(Mutex::new(self.load(index_id, now)?));
        indexes.insert(index_id.to_string(), ids.clone());
        Ok(ids)
    }

    /// Reads the buckets that overlap the window and deletes older ones.
    fn load(&self, index_id: &str, now: u64) -> Result<IndexIds, DedupError> {
        let dir = self.index_dir(index_id);
        let mut ids = IndexIds::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(error) => return Err(io_error(&dir)(error)),
        };
        let oldest_live_bucket = now.saturating_sub(self.window_secs()) / self.window_secs();
        let mut buckets: Vec<(u64, PathBuf)> = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error(&dir))?.path();
            let bucket = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok());
            match bucket {
                Some(bucket) if bucket >= oldest_live_bucket => buckets.push((bucket, path)),
                _ => {
                    if let Err(error) = std::fs::remove_file(&path) {
                        warn!(path = %path.display(), "cannot remove an expired dedup journal: {error}");
                    }
                }
            }
        }
        buckets.sort();
        let mut loaded: Vec<(u64, u128)> = Vec::new();
        for (_, path) in &buckets {
            let file = File::open(path).map_err(io_error(path))?;
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                // A torn last line (crash mid-append) was never acknowledged.
                let Ok(Value::Array(entry)) = serde_json::from_str::<Value>(&line) else {
                    break;
                };
                if let (Some(accepted_at), Some(id)) = (
                    entry.first().and_then(Value::as_u64),
                    entry.get(1).and_then(Value::as_str),
                ) {
                    loaded.push((accepted_at, self.hash(id)));
                }
            }
        }
        loaded.sort_by_key(|(accepted_at, _)| *accepted_at);
        for (accepted_at, hash) in loaded {
            ids.remember(hash, accepted_at);
        }
        self.expire(&mut ids, now);
        Ok(ids)
    }

    fn expire(&self, ids: &mut IndexIds, now: u64) {
        let oldest_kept = now.saturating_sub(self.window_secs());
        while let Some(&(accepted_at, hash)) = ids.order.front() {
            if accepted_at >= oldest_kept && ids.order.len() <= self.max_ids_per_index {
                break;
            }
            ids.order.pop_front();
            if ids.accepted.get(&hash) == Some(&accepted_at) {
                ids.accepted.remove(&hash);
            }
        }
    }

    /// Decides, id by id and in order, which documents to index. A repeated id within
    /// `ids` is a duplicate of its first occurrence.
    pub fn claim(&self, index_id: &str, ids: &[&str]) -> Result<Vec<IdClaim>, DedupError> {
        let now = unix_secs(SystemTime::now());
        let index_ids = self.index_ids(index_id, now)?;
        let mut guard = index_ids.lock().map_err(|_| DedupError::Poisoned)?;
        self.expire(&mut guard, now);
        let oldest_kept = now.saturating_sub(self.window_secs());
        let mut claimed_here = HashSet::new();
        Ok(ids
            .iter()
            .map(|id| {
                let hash = self.hash(id);
                if claimed_here.contains(&hash) {
                    IdClaim::Duplicate
                } else if guard.pending.get(&hash).is_some_and(|claimed_at| {
                    now.saturating_sub(*claimed_at) < PENDING_TIMEOUT_SECS
                }) {
                    IdClaim::InFlight
                } else if guard
                    .accepted
                    .get(&hash)
                    .is_some_and(|accepted_at| *accepted_at >= oldest_kept)
                {
                    IdClaim::Duplicate
                } else {
                    guard.pending.insert(hash, now);
                    claimed_here.insert(hash);
                    IdClaim::New
                }
            })
            .collect())
    }

    /// Journals ids whose documents are now durable, then remembers them. Call it before
    /// acknowledging, so a retry after a crash is still recognised.
    pub fn confirm(&self, index_id: &str, ids: &[&str]) -> Result<(), DedupError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = unix_secs(SystemTime::now());
        let index_ids = self.index_ids(index_id, now)?;
        let mut lines = Vec::new();
        for id in ids {
            serde_json::to_writer(&mut lines, &(now, id)).map_err(|error| DedupError::Io {
                path: self.index_dir(index_id),
                source: error.into(),
            })?;
            lines.push(b'\n');
        }
        let bucket = now / self.window_secs();
        let journal = {
            let mut guard = index_ids.lock().map_err(|_| DedupError::Poisoned)?;
            let journal = match &guard.journal {
                Some((open_bucket, file)) if *open_bucket == bucket => file.clone(),
                _ => {
                    let dir = self.index_dir(index_id);
                    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                    let path = dir.join(format!("{bucket}.ids"));
                    let file = Arc::new(
                        OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .map_err(io_error(&path))?,
                    );
                    guard.journal = Some((bucket, file.clone()));
                    file
                }
            };
            // Appends are written under the lock so lines never interleave.
            (&*journal)
                .write_all(&lines)
                .map_err(io_error(&self.index_dir(index_id)))?;
            journal
        };
        // Concurrent requests may share this fsync; each waits for its own lines.
        journal
            .sync_data()
            .map_err(io_error(&self.index_dir(index_id)))?;
        let mut guard = index_ids.lock().map_err(|_| DedupError::Poisoned)?;
        for id in ids {
            let hash = self.hash(id);
            guard.pending.remove(&hash);
            guard.remember(hash, now);
        }
        self.expire(&mut guard, now);
        Ok(())
    }

    /// Forgets claims whose documents were not accepted, so a retry indexes them.
    pub fn release(&self, index_id: &str, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let Ok(indexes) = self.indexes.lock() else {
            return;
        };
        let Some(index_ids) = indexes.get(index_id).cloned() else {
            return;
        };
        drop(indexes);
        let Ok(mut guard) = index_ids.lock() else {
            return;
        };
        for id in ids {
            let hash = self.hash(id);
            guard.pending.remove(&hash);
        }
    }

    /// Drops the ids of a deleted index, in memory and on disk.
    pub fn forget_index(&self, index_id: &str) {
        if let Ok(mut indexes) = self.indexes.lock() {
            indexes.remove(index_id);
        }
        if Self::check_index_id(index_id).is_err() {
            return;
        }
        let dir = self.index_dir(index_id);
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                warn!(path = %dir.display(), "cannot remove the dedup journal: {error}");
            }
        }
    }
}

impl IndexIds {
    fn remember(&mut self, hash: u128, accepted_at: u64) {
        self.accepted.insert(hash, accepted_at);
        self.order.push_back((accepted_at, hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(dir: &Path) -> DedupWindow {
        DedupWindow::new(dir.to_path_buf(), Duration::from_secs(900), 1_000)
    }

    #[test]
    fn confirmed_ids_are_duplicates_and_released_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let dedup = window(dir.path());
        let claims = dedup.claim("logs", &["a", "b", "a"]).unwrap();
        assert_eq!(claims, vec![IdClaim::New, IdClaim::New, IdClaim::Duplicate]);
        // Until confirmed or released, another request holding `a` must retry.
        assert_eq!(
            dedup.claim("logs", &["a"]).unwrap(),
            vec![IdClaim::InFlight]
        );
        dedup.confirm("logs", &["a"]).unwrap();
        dedup.release("logs", &["b"]);
        assert_eq!(
            dedup.claim("logs", &["a", "b"]).unwrap(),
            vec![IdClaim::Duplicate, IdClaim::New]
        );
        // Another index has its own ids.
        assert_eq!(dedup.claim("other", &["a"]).unwrap(), vec![IdClaim::New]);
        // Index names from requests never become paths outside the journal folder.
        for bad in ["../../etc", "a/b", ".."] {
            assert!(matches!(
                dedup.claim(bad, &["a"]),
                Err(DedupError::InvalidIndexId(_))
            ));
            dedup.forget_index(bad);
        }
    }

    #[test]
    fn confirmed_ids_survive_a_restart_but_not_index_deletion() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dedup = window(dir.path());
            dedup.claim("logs", &["x", "y\n\"quoted\""]).unwrap();
            dedup.confirm("logs", &["x", "y\n\"quoted\""]).unwrap();
        }
        let dedup = window(dir.path());
        assert_eq!(
            dedup.claim("logs", &["x", "y\n\"quoted\"", "z"]).unwrap(),
            vec![IdClaim::Duplicate, IdClaim::Duplicate, IdClaim::New]
        );
        dedup.forget_index("logs");
        let dedup = window(dir.path());
        assert_eq!(dedup.claim("logs", &["x"]).unwrap(), vec![IdClaim::New]);
    }

    #[test]
    fn a_torn_journal_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dedup = window(dir.path());
            dedup.claim("logs", &["kept"]).unwrap();
            dedup.confirm("logs", &["kept"]).unwrap();
        }
        let journal = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(b"[17000, \"tor").unwrap();
        let dedup = window(dir.path());
        assert_eq!(
            dedup.claim("logs", &["kept", "tor"]).unwrap(),
            vec![IdClaim::Duplicate, IdClaim::New]
        );
    }

    #[test]
    fn expired_buckets_are_deleted_on_load_and_ids_past_the_cap_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let index_dir = dir.path().join("logs");
        std::fs::create_dir_all(&index_dir).unwrap();
        // A bucket from 1970 is long out of the window.
        std::fs::write(index_dir.join("1.ids"), "[900,\"old\"]\n").unwrap();
        let dedup = DedupWindow::new(dir.path().to_path_buf(), Duration::from_secs(900), 2);
        assert_eq!(dedup.claim("logs", &["old"]).unwrap(), vec![IdClaim::New]);
        assert!(!index_dir.join("1.ids").exists());
        dedup.release("logs", &["old"]);

        dedup.claim("logs", &["1", "2", "3"]).unwrap();
        dedup.confirm("logs", &["1", "2", "3"]).unwrap();
        // Only the two newest fit.
        assert_eq!(
            dedup.claim("logs", &["1", "2", "3"]).unwrap(),
            vec![IdClaim::New, IdClaim::Duplicate, IdClaim::Duplicate]
        );
    }
}
