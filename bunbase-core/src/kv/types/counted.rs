//! Lists, hashes and sets that count the bytes they hold, so an entry's
//! size (for maxmemory) is known without walking it. Reads go through
//! `Deref` to the standard collection; every change goes through a method
//! here, which keeps the count.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Deref;

use bytes::Bytes;

#[derive(Debug, Clone, Default)]
pub struct Counted<T> {
    items: T,
    /// Bytes of the items' contents (keys and values for a hash).
    bytes: usize,
}

impl<T> Counted<T> {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T> Deref for Counted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.items
    }
}

pub type List = Counted<VecDeque<Bytes>>;
pub type Hash = Counted<HashMap<Bytes, Bytes>>;
pub type Set = Counted<HashSet<Bytes>>;

impl List {
    pub fn push_front(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.items.push_front(item);
    }

    pub fn push_back(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.items.push_back(item);
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let item = self.items.pop_front()?;
        self.bytes -= item.len();
        Some(item)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let item = self.items.pop_back()?;
        self.bytes -= item.len();
        Some(item)
    }

    /// Pops from the front or the back.
    pub fn pop(&mut self, front: bool) -> Option<Bytes> {
        if front {
            self.pop_front()
        } else {
            self.pop_back()
        }
    }

    pub fn insert(&mut self, index: usize, item: Bytes) {
        self.bytes += item.len();
        self.items.insert(index, item);
    }

    pub fn remove(&mut self, index: usize) -> Option<Bytes> {
        let item = self.items.remove(index)?;
        self.bytes -= item.len();
        Some(item)
    }

    /// Replaces the item at `index`; false if there is none.
    pub fn replace(&mut self, index: usize, item: Bytes) -> bool {
        let Some(slot) = self.items.get_mut(index) else {
            return false;
        };
        self.bytes = self.bytes - slot.len() + item.len();
        *slot = item;
        true
    }

    /// Keeps only the items `start..=stop` (both in range).
    pub fn keep(&mut self, start: usize, stop: usize) {
        let dropped: usize = self.items.drain(stop + 1..).map(|i| i.len()).sum::<usize>()
            + self.items.drain(..start).map(|i| i.len()).sum::<usize>();
        self.bytes -= dropped;
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

impl Hash {
    /// Sets a field; returns the old value.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> Option<Bytes> {
        self.bytes += field.len() + value.len();
        let field_len = field.len();
        let old = self.items.insert(field, value)?;
        self.bytes -= field_len + old.len();
        Some(old)
    }

    pub fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        let (field, value) = self.items.remove_entry(field)?;
        self.bytes -= field.len() + value.len();
        Some(value)
    }
}

impl Set {
    /// Adds a member; true if it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        let len = member.len();
        let added = self.items.insert(member);
        if added {
            self.bytes += len;
        }
        added
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = self.items.remove(member);
        if removed {
            self.bytes -= member.len();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn counts_follow_every_change() {
        let mut list = List::default();
        list.push_back(b("abc"));
        list.push_front(b("de"));
        list.insert(1, b("f"));
        assert_eq!(list.bytes(), 6);
        assert!(list.replace(0, b("xyzw")));
        assert_eq!(list.bytes(), 8);
        list.keep(1, 1);
        assert_eq!((list.len(), list.bytes()), (1, 1));
        list.pop_back();
        assert_eq!(list.bytes(), 0);

        let mut hash = Hash::default();
        hash.insert(b("f"), b("vv"));
        hash.insert(b("f"), b("vvvv"));
        assert_eq!(hash.bytes(), 5);
        hash.remove(b"f");
        assert_eq!(hash.bytes(), 0);

        let mut set = Set::default();
        assert!(set.insert(b("m1")) && !set.insert(b("m1")));
        assert_eq!(set.bytes(), 2);
        assert!(set.remove(b"m1") && !set.remove(b"m1"));
        assert_eq!(set.bytes(), 0);
    }
}
