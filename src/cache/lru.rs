//! A bounded least-recently-used map with expiry, sized by entries and by bytes. Time is an
//! input, never read.

use super::weigh::Weigh;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

const NIL: usize = usize::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    expires_ms: u64,
    bytes: usize,
    prev: usize,
    next: usize,
}

pub struct Lru<K, V> {
    map: HashMap<K, usize>,
    nodes: Vec<Node<K, V>>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    evictions: u64,
}

impl<K: Hash + Eq + Clone + Weigh, V: Weigh> Lru<K, V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The live value for `key`, marked most recently used; an expired one is dropped.
    pub fn get<Q>(&mut self, key: &Q, now_ms: u64) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let idx = *self.map.get(key)?;
        if self.nodes.get(idx).is_some_and(|n| n.expires_ms <= now_ms) {
            self.remove_index(idx);
            return None;
        }
        self.unlink(idx);
        self.push_front(idx);
        self.nodes.get(idx).map(|n| &n.value)
    }

    /// Inserts or replaces, then evicts least recently used entries until within bounds. An
    /// entry (key and value) larger than the byte bound is not stored.
    pub fn insert(&mut self, key: K, value: V, expires_ms: u64) {
        let bytes = key.bytes() + value.bytes();
        if let Some(&idx) = self.map.get(&key) {
            self.remove_index(idx);
        }
        if bytes > self.max_bytes {
            return;
        }
        let node = Node {
            key: key.clone(),
            value,
            expires_ms,
            bytes,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.nodes.get_mut(i) {
                    *slot = node;
                }
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.map.insert(key, idx);
        self.bytes += bytes;
        self.push_front(idx);
        while self.map.len() > self.max_entries || self.bytes > self.max_bytes {
            if self.tail == NIL {
                break;
            }
            self.remove_index(self.tail);
            self.evictions += 1;
        }
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(&idx) = self.map.get(key) {
            self.remove_index(idx);
        }
    }

    fn remove_index(&mut self, idx: usize) {
        self.unlink(idx);
        if let Some(n) = self.nodes.get(idx) {
            self.bytes -= n.bytes;
            self.map.remove(&n.key);
            self.free.push(idx);
        }
    }

    fn unlink(&mut self, idx: usize) {
        let Some((prev, next)) = self.nodes.get(idx).map(|n| (n.prev, n.next)) else {
            return;
        };
        match self.nodes.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(n) = self.nodes.get_mut(idx) {
            n.prev = NIL;
            n.next = NIL;
        }
    }

    fn push_front(&mut self, idx: usize) {
        let old = self.head;
        if let Some(n) = self.nodes.get_mut(idx) {
            n.prev = NIL;
            n.next = old;
        }
        if let Some(o) = self.nodes.get_mut(old) {
            o.prev = idx;
        }
        self.head = idx;
        if self.tail == NIL {
            self.tail = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that weighs what it says.
    #[derive(Debug, PartialEq)]
    struct W(usize);

    impl Weigh for W {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    /// Keys weigh nothing here, so the bounds below count values only.
    impl Weigh for &str {
        fn bytes(&self) -> usize {
            0
        }
    }

    impl Weigh for i32 {
        fn bytes(&self) -> usize {
            0
        }
    }

    #[test]
    fn evicts_least_recently_used_by_count() {
        let mut c = Lru::new(2, 1000);
        c.insert("a", W(1), 100);
        c.insert("b", W(1), 100);
        assert_eq!(c.get(&"a", 0), Some(&W(1)));
        c.insert("c", W(1), 100);
        assert_eq!(c.get(&"b", 0), None);
        assert!(c.get(&"a", 0).is_some());
        assert!(c.get(&"c", 0).is_some());
        assert_eq!((c.len(), c.evictions()), (2, 1));
    }

    #[test]
    fn evicts_by_bytes_and_refuses_oversized_entries() {
        let mut c = Lru::new(100, 10);
        c.insert(1, W(6), 100);
        c.insert(2, W(6), 100);
        assert_eq!((c.len(), c.bytes()), (1, 6));
        c.insert(3, W(11), 100);
        assert_eq!(c.get(&3, 0), None);
        assert_eq!(c.get(&2, 0), Some(&W(6)));
    }

    #[test]
    fn expired_entries_are_gone_and_slots_reused() {
        let mut c = Lru::new(10, 100);
        c.insert(1, W(1), 50);
        assert_eq!(c.get(&1, 49), Some(&W(1)));
        assert_eq!(c.get(&1, 50), None);
        assert_eq!((c.len(), c.bytes()), (0, 0));
        for i in 0..100 {
            c.insert(i, W(1), 1000);
        }
        assert_eq!(c.len(), 10);
        assert!(c.nodes.len() <= 11);
    }
}
