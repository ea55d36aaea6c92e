use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A map bounded by the total weight of its entries (by default each weighs 1, so by
/// count) that forgets the least recently used entries first. Eviction scans for the oldest
/// stamp: the caches using it hold at most a few thousand entries.
pub(crate) struct LruMap<K, V> {
    capacity: usize,
    weigh: fn(&V) -> usize,
    state: Mutex<LruState<K, V>>,
}

struct LruState<K, V> {
    tick: u64,
    weight: usize,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Hash + Eq + Clone, V: Clone> LruMap<K, V> {
    /// Bounded by entry count.
    pub(crate) fn new(capacity: usize) -> LruMap<K, V> {
        Self::with_weigher(capacity, |_| 1)
    }

    /// Bounded by the sum of `weigh` over the entries. The newest entry stays even when it
    /// alone weighs more than `capacity`.
    pub(crate) fn with_weigher(capacity: usize, weigh: fn(&V) -> usize) -> LruMap<K, V> {
        LruMap {
            capacity,
            weigh,
            state: Mutex::new(LruState {
                tick: 0,
                weight: 0,
                entries: HashMap::new(),
            }),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        let entry = state.entries.get_mut(key)?;
        entry.0 = tick;
        Some(entry.1.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tick += 1;
        let tick = state.tick;
        state.weight += (self.weigh)(&value);
        if let Some((_, replaced)) = state.entries.insert(key, (tick, value)) {
            state.weight -= (self.weigh)(&replaced);
        }
        while state.weight > self.capacity && state.entries.len() > 1 {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, (tick, _))| *tick)
                .map(|(key, _)| key.clone());
            let Some((_, evicted)) = oldest.and_then(|oldest| state.entries.remove(&oldest)) else {
                break;
            };
            state.weight -= (self.weigh)(&evicted);
        }
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, removed)) = state.entries.remove(key) {
            state.weight -= (self.weigh)(&removed);
        }
    }

    /// The summed weight of the entries.
    pub(crate) fn weight(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.get("a"), Some(1));
        map.insert("c", 3);
        assert_eq!(map.get("b"), None, "b was the least recently used");
        assert_eq!(map.get("a"), Some(1));
        map.remove("a");
        assert_eq!(map.get("a"), None);
        let off = LruMap::new(0);
        off.insert("a", 1);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn weighted_entries_evict_until_the_total_fits() {
        let map: LruMap<&str, usize> = LruMap::with_weigher(10, |weight| *weight);
        map.insert("a", 4);
        map.insert("b", 4);
        assert_eq!(map.weight(), 8);
        map.insert("c", 5);
        assert_eq!(map.get("a"), None, "evicted: 13 > 10");
        assert_eq!(map.weight(), 9);
        map.insert("b", 1);
        assert_eq!(map.weight(), 6, "a replaced entry's weight is given back");
        map.insert("huge", 50);
        assert_eq!(
            map.get("huge"),
            Some(50),
            "the newest entry stays however heavy"
        );
        assert_eq!(map.weight(), 50);
        map.remove("huge");
        assert_eq!(map.weight(), 0);
    }
}
