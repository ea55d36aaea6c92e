use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use quarry_common::split::{SplitDirectory, SplitError, SplitOpenInfo};
use quarry_common::SplitId;
use tantivy::{Index, ReloadPolicy, Searcher};

/// Splits are immutable, so an opened split (its footer, hotcache and tantivy readers)
/// stays valid until evicted: repeated queries skip the storage round trip entirely.
pub(crate) struct SplitCache {
    capacity: usize,
    entries: Mutex<LruState>,
}

/// Entries stamped with the tick of their last use.
#[derive(Default)]
struct LruState {
    tick: u64,
    entries: HashMap<SplitId, (u64, Arc<OpenSplit>)>,
}

pub(crate) struct OpenSplit {
    directory: SplitDirectory,
    searcher: OnceLock<Searcher>,
}

impl OpenSplit {
    /// The tantivy searcher over the split. Blocking on first use: call from a blocking thread.
    pub(crate) fn searcher(&self) -> tantivy::Result<Searcher> {
        if let Some(searcher) = self.searcher.get() {
            return Ok(searcher.clone());
        }
        let index = Index::open(self.directory.clone())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        Ok(self.searcher.get_or_init(|| searcher).clone())
    }
}

impl SplitCache {
    pub(crate) fn new(capacity: usize) -> SplitCache {
        SplitCache {
            capacity: capacity.max(1),
            entries: Mutex::new(LruState::default()),
        }
    }

    pub(crate) async fn get_or_open(
        &self,
        split_id: &SplitId,
        info: SplitOpenInfo,
    ) -> Result<Arc<OpenSplit>, SplitError> {
        if let Some(open) = self.lookup(split_id) {
            return Ok(open);
        }
        let directory = SplitDirectory::open(info).await?;
        let open = Arc::new(OpenSplit {
            directory,
            searcher: OnceLock::new(),
        });
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.tick += 1;
        let tick = entries.tick;
        entries
            .entries
            .insert(split_id.clone(), (tick, open.clone()));
        if entries.entries.len() > self.capacity {
            // Evict the least recently used split.
            if let Some(oldest) = entries
                .entries
                .iter()
                .min_by_key(|(_, (tick, _))| *tick)
                .map(|(id, _)| id.clone())
            {
                entries.entries.remove(&oldest);
            }
        }
        Ok(open)
    }

    fn lookup(&self, split_id: &SplitId) -> Option<Arc<OpenSplit>> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.tick += 1;
        let tick = entries.tick;
        let entry = entries.entries.get_mut(split_id)?;
        entry.0 = tick;
        Some(entry.1.clone())
    }

    pub(crate) fn evict(&self, split_id: &SplitId) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.entries.remove(split_id);
    }
}
