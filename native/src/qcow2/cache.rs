//! A bounded least-recently-used cache of metadata clusters (L2 tables and
//! refcount blocks), keyed by host offset, with a dirty flag per entry.

use std::collections::HashMap;

pub struct Entry<T> {
    pub value: T,
    pub dirty: bool,
    last_use: u64,
}

pub struct Cache<T> {
    entries: HashMap<u64, Entry<T>>,
    capacity: usize,
    clock: u64,
}

impl<T> Cache<T> {
    /// Creates a cache holding at most `capacity` (at least 1) entries.
    pub fn new(capacity: usize) -> Self {
        Cache { entries: HashMap::new(), capacity: capacity.max(1), clock: 0 }
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    pub fn contains(&self, offset: u64) -> bool {
        self.entries.contains_key(&offset)
    }

    /// Returns the entry at `offset` and marks it most recently used.
    pub fn get_mut(&mut self, offset: u64) -> Option<&mut Entry<T>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(&offset).map(|entry| {
            entry.last_use = clock;
            entry
        })
    }

    /// Returns the offset of the least recently used entry.
    pub fn oldest(&self) -> Option<u64> {
        self.entries.iter().min_by_key(|(offset, entry)| (entry.last_use, **offset)).map(|(offset, _)| *offset)
    }

    /// Inserts an entry. The caller evicts first when the cache is full.
    pub fn insert(&mut self, offset: u64, value: T, dirty: bool) {
        self.clock += 1;
        self.entries.insert(offset, Entry { value, dirty, last_use: self.clock });
    }

    pub fn remove(&mut self, offset: u64) -> Option<Entry<T>> {
        self.entries.remove(&offset)
    }

    /// Returns the offsets of dirty entries, in ascending order so that
    /// writes are deterministic.
    pub fn dirty_offsets(&self) -> Vec<u64> {
        let mut offsets: Vec<u64> = self.entries.iter().filter(|(_, e)| e.dirty).map(|(o, _)| *o).collect();
        offsets.sort_unstable();
        offsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_is_least_recently_used() {
        let mut cache = Cache::new(3);
        cache.insert(1, "a", false);
        cache.insert(2, "b", true);
        cache.insert(3, "c", false);
        assert!(cache.is_full());
        cache.get_mut(1);
        assert_eq!(cache.oldest(), Some(2));
        assert_eq!(cache.dirty_offsets(), vec![2]);
        cache.remove(2);
        assert_eq!(cache.oldest(), Some(3));
    }
}
