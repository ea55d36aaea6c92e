use std::sync::atomic::{AtomicU64, Ordering};

use crate::leaf::LeafResult;
use crate::lru::LruMap;

/// Per-split results of recent searches. A split never changes, so the result of the same
/// (query, sort, page size, aggregations, cursor) on it stays right until evicted;
/// dashboards that refresh the same panels hit it. Bounded by count, least recently used
/// first out; a capacity of 0 turns it off.
pub(crate) struct PartialResultCache {
    entries: LruMap<String, LeafResult>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl PartialResultCache {
    pub(crate) fn new(capacity: usize) -> PartialResultCache {
        PartialResultCache {
            entries: LruMap::new(capacity),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.entries.capacity() > 0
    }

    /// The cached result, with its hits pointing at `split_ord` of the current request.
    pub(crate) fn get(&self, key: &str, split_ord: usize) -> Option<LeafResult> {
        if !self.is_enabled() {
            return None;
        }
        let Some(mut result) = self.entries.get(key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        for hit in &mut result.hits {
            hit.split_ord = split_ord;
        }
        Some(result)
    }

    pub(crate) fn put(&self, key: String, result: LeafResult) {
        self.entries.insert(key, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf::PartialHit;

    fn result(doc_id: u32) -> LeafResult {
        LeafResult {
            num_hits: 1,
            hits: vec![PartialHit {
                split_ord: 9,
                address: tantivy::DocAddress::new(0, doc_id),
                sort_key: None,
            }],
            aggregations: None,
        }
    }

    #[test]
    fn restamps_hits_and_evicts_least_recently_used() {
        let cache = PartialResultCache::new(2);
        cache.put("a".to_string(), result(1));
        cache.put("b".to_string(), result(2));
        assert_eq!(cache.get("a", 3).unwrap().hits[0].split_ord, 3);
        cache.put("c".to_string(), result(3));
        assert!(cache.get("b", 0).is_none(), "b was the least recently used");
        assert!(cache.get("a", 0).is_some());
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);
        let off = PartialResultCache::new(0);
        off.put("a".to_string(), result(1));
        assert!(off.get("a", 0).is_none());
    }
}
