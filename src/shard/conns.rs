//! The shard's sessions, indexed by [`ConnKey`]: a slab whose entries carry
//! a generation, so a reused slot is never mistaken for the connection that
//! left it.

use crate::fanout::topic::ConnIndex;
use crate::fanout::wheel::{ConnKey, FlushWheel};
use crate::session::Session;
use std::time::Instant;

/// Open connections of one shard.
#[derive(Default)]
pub struct ConnTable {
    slots: slab::Slab<(u32, Session)>,
    generation: u32,
    /// Per slot: its outbox is known to be dirty (values changed that no
    /// flush has collected yet), so marking it again would do nothing.
    /// True only while the outbox is dirty. Kept apart from the sessions,
    /// which are large: the fan-out of a price reads one byte per
    /// subscriber instead of a cache line of each session.
    known_dirty: Vec<bool>,
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
        // A reused slot may still say dirty: it starts clean here.
        let index = key.index as usize;
        if self.known_dirty.len() <= index {
            self.known_dirty.resize(index + 1, false);
        }
        self.known_dirty[index] = false;
        key
    }

    /// A value the session at `index` subscribes to changed: marks its
    /// outbox dirty, unless it is known to be dirty already.
    pub fn mark_dirty(&mut self, index: ConnIndex, wheel: &mut FlushWheel, now: Instant) {
        let Some(known) = self.known_dirty.get_mut(index as usize) else {
            return;
        };
        if *known {
            debug_assert!(self
                .slots
                .get(index as usize)
                .is_none_or(|(_, s)| s.outbox().is_dirty()));
            return;
        }
        if let Some((_, session)) = self.slots.get_mut(index as usize) {
            session.outbox_mut().mark_dirty(wheel, now);
            *known = true;
        }
    }

    /// After a flush of `key` was built (which may have collected the
    /// dirty values): takes whether its outbox is dirty from the outbox.
    pub fn flush_built(&mut self, key: ConnKey) {
        let dirty = self.get_mut(key).is_some_and(|s| s.outbox().is_dirty());
        if let Some(known) = self.known_dirty.get_mut(key.index as usize) {
            *known = dirty;
        }
    }

    /// The session of `key`, if it is still open.
    pub fn get_mut(&mut self, key: ConnKey) -> Option<&mut Session> {
        match self.slots.get_mut(key.index as usize)? {
            (generation, session) if *generation == key.generation => Some(session),
            _ => None,
        }
    }

    /// Starts loading the session of `key` into the cache, ahead of a write
    /// pass reaching it (see `crate::prefetch`). It reads the slot's tag to
    /// find the session; a key whose slot was reused warms the session that
    /// now holds it, which costs a wasted hint and nothing else.
    pub fn prefetch_session(&self, key: ConnKey) {
        if let Some(entry) = self.slots.get(key.index as usize) {
            crate::prefetch::value(entry);
        }
    }

    /// Starts loading the subscription list of `key` into the cache. It is
    /// read from the session, so this comes a step after
    /// [`ConnTable::prefetch_session`] of the same key.
    pub fn prefetch_subscriptions(&self, key: ConnKey) {
        if let Some((_, session)) = self.slots.get(key.index as usize) {
            session.outbox().prefetch_subscriptions();
        }
    }

    /// The session at `index` (from the topic index, which never holds stale entries).
    pub fn by_index(&mut self, index: ConnIndex) -> Option<&mut Session> {
        self.slots.get_mut(index as usize).map(|(_, s)| s)
    }

    /// Removes the session of `key`.
    pub fn remove(&mut self, key: ConnKey) -> Option<Session> {
        self.get_mut(key)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Claims;
    use crate::config::ServerConfig;
    use crate::fanout::latest::LatestTable;
    use crate::fanout::wire::Wire;
    use std::time::Duration;

    fn open(table: &mut ConnTable, now: Instant) -> ConnKey {
        let claims = Claims {
            sub: "u1".into(),
            tenant: "t1".into(),
            roles: Vec::new(),
            exp: u64::MAX,
            symbols: None,
        };
        let cfg = ServerConfig::default();
        table.insert(|key| Session::new(key, Wire::WebSocket, claims, None, &cfg, None, now))
    }

    /// Builds and finishes a flush of `key` at `at`, as the shard does.
    fn flush(t: &mut ConnTable, key: ConnKey, wheel: &mut FlushWheel, at: Instant) {
        let interval = Duration::from_millis(16);
        let outbox = t.get_mut(key).unwrap().outbox_mut();
        outbox.build_flush(&mut LatestTable::default(), interval, at);
        t.flush_built(key);
        let outbox = t.get_mut(key).unwrap().outbox_mut();
        outbox.finish_write(at, interval, || true, wheel, at);
    }

    fn dirty(t: &mut ConnTable, key: ConnKey) -> (bool, bool) {
        let outbox = t.get_mut(key).unwrap().outbox().is_dirty();
        (t.known_dirty[key.index as usize], outbox)
    }

    #[test]
    fn known_dirty_follows_the_outbox_and_a_reused_slot_starts_clean() {
        let now = Instant::now();
        let ms = Duration::from_millis(1);
        let mut wheel = FlushWheel::new(now, ms, 20 * ms);
        let mut table = ConnTable::default();
        let a = open(&mut table, now);
        assert_eq!(dirty(&mut table, a), (false, false));

        table.mark_dirty(a.index, &mut wheel, now);
        assert_eq!(dirty(&mut table, a), (true, true));
        flush(&mut table, a, &mut wheel, now);
        assert_eq!(dirty(&mut table, a), (false, false), "the flush collected");

        // Changed again 1 ms later: a flush then is held back by the rate
        // cap (16 ms) and collects nothing, so both stay dirty.
        table.mark_dirty(a.index, &mut wheel, now + ms);
        flush(&mut table, a, &mut wheel, now + ms);
        assert_eq!(dirty(&mut table, a), (true, true));
        flush(&mut table, a, &mut wheel, now + 20 * ms);
        assert_eq!(dirty(&mut table, a), (false, false));

        table.mark_dirty(a.index, &mut wheel, now + 21 * ms);
        table.remove(a);
        let b = open(&mut table, now);
        assert_eq!(b.index, a.index, "the slot is reused");
        assert_eq!(dirty(&mut table, b), (false, false));
        table.mark_dirty(b.index, &mut wheel, now);
        assert_eq!(
            dirty(&mut table, b),
            (true, true),
            "a clean outbox is marked, not skipped"
        );
    }
}
