//! The shard's sessions, indexed by [`ConnKey`]: a slab whose entries carry
//! a generation, so a reused slot is never mistaken for the connection that
//! left it.

use crate::fanout::topic::ConnIndex;
use crate::fanout::wheel::ConnKey;
use crate::session::Session;

/// Open connections of one shard.
#[derive(Default)]
pub struct ConnTable {
    slots: slab::Slab<(u32, Session)>,
    generation: u32,
    /// Per slot: its outbox holds changes not written yet, so marking it
    /// dirty again would do nothing. Kept apart from the sessions, which
    /// are large: the fan-out of a price to its subscribers reads one byte
    /// per subscriber instead of a cache line of each session.
    dirty: Vec<bool>,
}

impl ConnTable {
    /// Inserts the session built by `make` for its new key.
    pub fn insert(&mut self, make: impl FnOnce(ConnKey) -> Session) -> ConnKey {
        self.generation = self.generation.wrapping_add(1);
        let entry = self.slots.vacant_entry();
        let key = ConnKey {
            index: entry.key() as u32,
            generation: self.generation,
        };
        entry.insert((key.generation, make(key)));
        let index = key.index as usize;
        if self.dirty.len() <= index {
            self.dirty.resize(index + 1, false);
        }
        self.dirty[index] = false;
        key
    }

    /// Whether the session at `index` is known to have unwritten changes.
    pub fn is_dirty(&self, index: ConnIndex) -> bool {
        self.dirty.get(index as usize).copied().unwrap_or(false)
    }

    /// Records whether the session at `index` has unwritten changes: true
    /// only right after its outbox was marked dirty, and refreshed from the
    /// outbox after every flush it builds.
    pub fn set_dirty(&mut self, index: ConnIndex, dirty: bool) {
        if let Some(d) = self.dirty.get_mut(index as usize) {
            *d = dirty;
        }
    }

    /// The session of `key`, if it is still open.
    pub fn get_mut(&mut self, key: ConnKey) -> Option<&mut Session> {
        match self.slots.get_mut(key.index as usize)? {
            (generation, session) if *generation == key.generation => Some(session),
            _ => None,
        }
    }

    /// The session at `index` (from the topic index, which never holds stale entries).
    pub fn by_index(&mut self, index: ConnIndex) -> Option<&mut Session> {
        self.slots.get_mut(index as usize).map(|(_, s)| s)
    }

    /// Removes the session of `key`.
    pub fn remove(&mut self, key: ConnKey) -> Option<Session> {
        self.get_mut(key)?;
        self.set_dirty(key.index, false);
        Some(self.slots.remove(key.index as usize).1)
    }

    /// Every open session.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.slots.iter_mut().map(|(_, (_, s))| s)
    }

    /// Every open session, read-only.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.slots.iter().map(|(_, (_, s))| s)
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
