use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A map bounded by entry count that forgets the least recently used entry first. Eviction
/// scans for the oldest stamp: the caches using it hold at most a few thousand entries.
pub(crate) struct LruMap<K, V> {
    capacity: usize,
    state: Mutex<LruState<K, V>>,
}

struct LruState<K, V> {
    tick: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Hash + Eq + Clone, V: Clone> LruMap<K, V> {
    pub(crate) fn new(capacity: usize) -> LruMap<K, V> {
        LruMap {
            capacity,
            state: Mutex::new(LruState {
                tick: 0,
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
        state.entries.insert(key, (tick, value));
        if state.entries.len() > self.capacity {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, (tick, _))| *tick)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                state.entries.remove(&oldest);
            }
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
        state.entries.remove(key);
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
}
