use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tantivy::directory::OwnedBytes;

/// Byte ranges fetched from splits (fast field columns, term dictionary blocks, postings),
/// kept so that repeated queries do not fetch them again. Splits are immutable, so an
/// entry is valid until evicted. Shared by all splits, bounded in bytes, least recently
/// used first out.
#[derive(Debug)]
pub struct ByteRangeCache {
    capacity_bytes: usize,
    state: Mutex<CacheState>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// Entries by (split, file, start): a lookup finds the entry starting at or before the
/// requested range and checks that it covers it.
type Key = (String, PathBuf, u64);

#[derive(Debug, Default)]
struct CacheState {
    used_bytes: usize,
    tick: u64,
    entries: BTreeMap<Key, Entry>,
}

#[derive(Debug)]
struct Entry {
    end: u64,
    bytes: OwnedBytes,
    last_used: u64,
}

impl ByteRangeCache {
    pub fn new(capacity_bytes: usize) -> ByteRangeCache {
        ByteRangeCache {
            capacity_bytes,
            state: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, split: &str, file: &Path, range: &Range<u64>) -> Option<OwnedBytes> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        let key = (split.to_string(), file.to_path_buf(), range.start);
        let found = state
            .entries
            .range(..=key)
            .next_back()
            .filter(|((entry_split, entry_file, _), entry)| {
                entry_split == split && entry_file == file && entry.end >= range.end
            })
            .map(|((_, _, start), _)| *start);
        let Some(start) = found else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let entry = state
            .entries
            .get_mut(&(split.to_string(), file.to_path_buf(), start))?;
        entry.last_used = tick;
        self.hits.fetch_add(1, Ordering::Relaxed);
        let from = (range.start - start) as usize;
        let to = (range.end - start) as usize;
        Some(entry.bytes.slice(from..to))
    }

    pub fn put(&self, split: &str, file: &Path, range: Range<u64>, bytes: OwnedBytes) {
        // One entry may take at most a quarter of the cache, so a big scan cannot flush it.
        if bytes.len() > self.capacity_bytes / 4 {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        state.used_bytes += bytes.len();
        let previous = state.entries.insert(
            (split.to_string(), file.to_path_buf(), range.start),
            Entry {
                end: range.end,
                bytes,
                last_used: tick,
            },
        );
        if let Some(previous) = previous {
            state.used_bytes -= previous.bytes.len();
        }
        while state.used_bytes > self.capacity_bytes {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(evicted) = state.entries.remove(&oldest) {
                state.used_bytes -= evicted.bytes.len();
            }
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.state.lock().map(|state| state.used_bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> OwnedBytes {
        OwnedBytes::new((0..len).map(|i| i as u8).collect::<Vec<u8>>())
    }

    #[test]
    fn serves_contained_ranges_and_evicts_least_recently_used() {
        let cache = ByteRangeCache::new(100);
        let file = Path::new("a.fast");
        cache.put("s1", file, 10..30, bytes(20));
        assert_eq!(
            cache.get("s1", file, &(12..15)).unwrap().as_slice(),
            &[2, 3, 4]
        );
        assert!(
            cache.get("s1", file, &(25..35)).is_none(),
            "not fully covered"
        );
        assert!(cache.get("s2", file, &(12..15)).is_none(), "other split");
        assert!(
            cache.get("s1", Path::new("b.fast"), &(12..15)).is_none(),
            "other file"
        );
        cache.put("s1", file, 40..60, bytes(20));
        cache.put("s1", file, 60..80, bytes(20));
        cache.put("s1", file, 80..100, bytes(20));
        cache.get("s1", file, &(10..11)); // 10..30 is now the most recent
        cache.put("s1", file, 100..120, bytes(20));
        cache.put("s1", file, 120..140, bytes(20));
        assert!(cache.used_bytes() <= 100);
        assert!(cache.get("s1", file, &(10..11)).is_some());
        assert!(
            cache.get("s1", file, &(40..41)).is_none(),
            "least recently used went first"
        );
        cache.put("s1", file, 0..30, bytes(30)); // over a quarter: not cached
        assert!(cache.get("s1", file, &(0..1)).is_none());
        assert!(cache.hits.load(Ordering::Relaxed) >= 3);
    }
}
