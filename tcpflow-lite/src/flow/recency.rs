//! The open connections in order of last activity.

use std::cell::Cell;

use super::key::FlowKey;
use crate::hash::FlowMap;

const NIL: usize = usize::MAX;

pub(super) struct Slot<C> {
    pub(super) key: FlowKey,
    pub(super) connection: C,
    /// Neighbours in the recency list ([`NIL`] at either end).
    pub(super) newer: usize,
    older: usize,
}

/// The open connections in order of last activity: a map to slots of a slab that are linked
/// from the most to the least recently active, so that marking one active, finding the least
/// recently active and removing one are all O(1), whatever the number of connections (a
/// sender opening flows without end costs constant work per flow).
pub(super) struct Connections<C> {
    index: FlowMap<FlowKey, usize>,
    /// The last key looked up and its slot: one packet looks its connection up several
    /// times, and comparing a key costs less than hashing it.
    last: Cell<Option<(FlowKey, usize)>>,
    slots: Vec<Option<Slot<C>>>,
    free: Vec<usize>,
    newest: usize,
    pub(super) oldest: usize,
}

impl<C> Connections<C> {
    pub(super) fn new() -> Connections<C> {
        Connections {
            index: FlowMap::default(),
            last: Cell::new(None),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    pub(super) fn find(&self, key: &FlowKey) -> Option<usize> {
        if let Some((last, i)) = self.last.get() {
            if last == *key {
                return Some(i);
            }
        }
        let i = *self.index.get(key)?;
        self.last.set(Some((*key, i)));
        Some(i)
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn contains_key(&self, key: &FlowKey) -> bool {
        self.find(key).is_some()
    }

    pub(super) fn slot(&self, i: usize) -> Option<&Slot<C>> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    pub(super) fn slot_mut(&mut self, i: usize) -> Option<&mut Slot<C>> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    pub(super) fn get_mut(&mut self, key: &FlowKey) -> Option<&mut C> {
        let i = self.find(key)?;
        self.slot_mut(i).map(|slot| &mut slot.connection)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&FlowKey, &C)> {
        self.slots
            .iter()
            .flatten()
            .map(|slot| (&slot.key, &slot.connection))
    }

    /// From the least recently active on, while `keep_going` says so.
    pub(super) fn oldest_while(&self, mut keep_going: impl FnMut(&C) -> bool) -> Vec<FlowKey> {
        let mut keys = Vec::new();
        let mut i = self.oldest;
        while let Some(slot) = self.slot(i) {
            if !keep_going(&slot.connection) {
                break;
            }
            keys.push(slot.key);
            i = slot.newer;
        }
        keys
    }

    fn unlink(&mut self, i: usize) {
        let Some((newer, older)) = self.slot(i).map(|s| (s.newer, s.older)) else {
            return;
        };
        match self.slot_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slot_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    fn push_newest(&mut self, i: usize) {
        let previous = self.newest;
        if let Some(slot) = self.slot_mut(i) {
            slot.newer = NIL;
            slot.older = previous;
        }
        match self.slot_mut(previous) {
            Some(p) => p.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
    }

    /// Marks `key` as the most recently active.
    pub(super) fn touch(&mut self, key: &FlowKey) {
        if let Some(i) = self.find(key) {
            if i != self.newest {
                self.unlink(i);
                self.push_newest(i);
            }
        }
    }

    pub(super) fn insert(&mut self, key: FlowKey, connection: C) {
        self.remove(&key);
        let slot = Slot {
            key,
            connection,
            newer: NIL,
            older: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i);
        self.last.set(Some((key, i)));
        self.push_newest(i);
    }

    pub(super) fn remove(&mut self, key: &FlowKey) -> Option<C> {
        let i = self.index.remove(key)?;
        if self.last.get().is_some_and(|(last, _)| last == *key) {
            self.last.set(None);
        }
        self.unlink(i);
        let slot = self.slots.get_mut(i).and_then(Option::take)?;
        self.free.push(i);
        Some(slot.connection)
    }

    pub(super) fn oldest_key(&self) -> Option<FlowKey> {
        self.slot(self.oldest).map(|slot| slot.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(port: u16) -> FlowKey {
        let ip = IpAddr::from([10, 0, 0, 1]);
        FlowKey {
            src: ip,
            src_port: port,
            dst: ip,
            dst_port: 80,
            vlan: None,
        }
    }

    /// Model-based: random inserts, touches and removals keep the same order of recency as
    /// a plain list, and the least recently active is found at once.
    #[test]
    fn the_recency_list_matches_a_plain_list() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut table: Connections<u64> = Connections::new();
        let mut model: Vec<u16> = Vec::new(); // oldest first
        for step in 0..20_000u64 {
            let port = (next() % 64) as u16;
            match next() % 4 {
                0 | 1 => {
                    model.retain(|p| *p != port);
                    model.push(port);
                    table.insert(key(port), step);
                }
                2 => {
                    if model.contains(&port) {
                        model.retain(|p| *p != port);
                        model.push(port);
                    }
                    table.touch(&key(port));
                }
                _ => {
                    let removed = model.contains(&port);
                    model.retain(|p| *p != port);
                    assert_eq!(table.remove(&key(port)).is_some(), removed);
                }
            }
            assert_eq!(table.len(), model.len());
            assert_eq!(table.oldest_key(), model.first().map(|p| key(*p)));
            if step % 97 == 0 {
                let order: Vec<FlowKey> = table.oldest_while(|_| true);
                assert_eq!(order, model.iter().map(|p| key(*p)).collect::<Vec<_>>());
            }
        }
    }
}
