//! The flush scheduler: a timing wheel of connections whose next flush is not
//! due yet because of `max_rate_hz`.
//!
//! Every connection has the same minimum flush interval, so no due time is
//! ever more than one interval ahead: a wheel of `interval / tick + 2` slots
//! covers it, and scheduling and firing are O(1) per connection.
//!
//! Connections the shard writes to itself (plain sockets) wait in its
//! due-now list once their flush is due, for the shard's next write pass.

use std::time::{Duration, Instant};

/// A connection as the wheel knows it: its table index and a generation that
/// tells a reused index apart from the connection that was scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnKey {
    /// Index in the shard's connection table.
    pub index: u32,
    /// Generation of that slot when the connection was created.
    pub generation: u32,
}

/// Timing wheel of pending flushes with `tick` resolution.
#[derive(Debug)]
pub struct FlushWheel {
    origin: Instant,
    tick: Duration,
    slots: Vec<Vec<ConnKey>>,
    /// Last tick whose slot was drained.
    cursor: u64,
    /// Due now, for the shard's write pass (may hold stale keys: the pass
    /// checks each connection is still due).
    due_now: Vec<ConnKey>,
    /// The earliest tick scheduled (or due now) since [`FlushWheel::mark`].
    earliest_since_mark: Option<u64>,
}

impl FlushWheel {
    /// A wheel able to hold due times up to `horizon` ahead, at `tick` resolution.
    pub fn new(now: Instant, tick: Duration, horizon: Duration) -> Self {
        let tick = tick.max(Duration::from_micros(10));
        let len = (horizon.as_nanos() / tick.as_nanos()) as usize + 2;
        FlushWheel {
            origin: now,
            tick,
            slots: vec![Vec::new(); len],
            cursor: 0,
            due_now: Vec::new(),
            earliest_since_mark: None,
        }
    }

    fn tick_of(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.origin).as_nanos() / self.tick.as_nanos()) as u64
    }

    /// Schedules `conn` to fire at or after `due` (rounded up to the next tick;
    /// never fires early). Due times beyond the horizon are clamped to it.
    pub fn schedule(&mut self, conn: ConnKey, due: Instant) {
        let max = self.cursor + self.slots.len() as u64 - 1;
        let due_tick = (self.tick_of(due) + 1).clamp(self.cursor + 1, max);
        let len = self.slots.len() as u64;
        self.slots[(due_tick % len) as usize].push(conn);
        self.note_scheduled(due_tick);
    }

    fn note_scheduled(&mut self, tick: u64) {
        self.earliest_since_mark = Some(self.earliest_since_mark.map_or(tick, |t| t.min(tick)));
    }

    /// The start of `tick`, in u64 nanoseconds (a shard may run for more
    /// than 2^32 ticks).
    fn start_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_nanos((self.tick.as_nanos() as u64).saturating_mul(tick))
    }

    /// Moves every connection due by `now` into `out`.
    pub fn drain_due(&mut self, now: Instant, out: &mut Vec<ConnKey>) {
        let now_tick = self.tick_of(now);
        let len = self.slots.len() as u64;
        let last = now_tick.min(self.cursor + len);
        while self.cursor < last {
            self.cursor += 1;
            out.append(&mut self.slots[(self.cursor % len) as usize]);
        }
        self.cursor = self.cursor.max(now_tick);
    }

    /// Adds `conn` to the due-now list.
    pub fn due_now(&mut self, conn: ConnKey) {
        self.due_now.push(conn);
        self.note_scheduled(self.cursor);
    }

    /// Moves the due-now list into `out`.
    pub fn take_due_now(&mut self, out: &mut Vec<ConnKey>) {
        out.append(&mut self.due_now);
    }

    /// Puts connections a write pass did not reach back in front of the
    /// due-now list.
    pub fn still_due(&mut self, keys: &mut Vec<ConnKey>) {
        keys.append(&mut self.due_now);
        std::mem::swap(keys, &mut self.due_now);
    }

    /// When the next connection comes due: the start of the first occupied
    /// tick (the past when the due-now list holds any); `None` when nothing
    /// waits. O(slots): called when the shard is about to sleep.
    pub fn next_due(&self) -> Option<Instant> {
        let len = self.slots.len() as u64;
        let tick = if !self.due_now.is_empty() {
            self.cursor
        } else {
            (self.cursor + 1..self.cursor + len)
                .find(|t| !self.slots[(t % len) as usize].is_empty())?
        };
        Some(self.start_of(tick))
    }

    /// Starts watching for connections scheduled from now on (the shard's
    /// loop marks the wheel when it goes to sleep).
    pub fn mark(&mut self) {
        self.earliest_since_mark = None;
    }

    /// When the earliest connection scheduled (or made due now) since the
    /// last [`FlushWheel::mark`] comes due; O(1), for every task's call
    /// while the loop sleeps.
    pub fn earliest_since_mark(&self) -> Option<Instant> {
        self.earliest_since_mark.map(|tick| self.start_of(tick))
    }

    /// Connections waiting in the wheel.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Whether no connection is waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u32) -> ConnKey {
        ConnKey {
            index,
            generation: 0,
        }
    }

    #[test]
    fn fires_at_or_after_due_never_before() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut w = FlushWheel::new(t0, ms, 17 * ms);
        w.schedule(key(1), t0 + 5 * ms);
        w.schedule(key(2), t0 + 16 * ms + ms / 2);
        let mut out = Vec::new();
        w.drain_due(t0 + 4 * ms, &mut out);
        assert!(out.is_empty());
        w.drain_due(t0 + 6 * ms, &mut out);
        assert_eq!(out, vec![key(1)]);
        out.clear();
        w.drain_due(t0 + 16 * ms, &mut out);
        assert!(out.is_empty(), "16.5 ms is not due at 16 ms");
        w.drain_due(t0 + 17 * ms, &mut out);
        assert_eq!(out, vec![key(2)]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_and_far_due_times_are_clamped_and_long_gaps_drain_everything() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut w = FlushWheel::new(t0, ms, 10 * ms);
        let mut out = Vec::new();
        w.drain_due(t0 + 3 * ms, &mut out);
        w.schedule(key(1), t0);
        w.schedule(key(2), t0 + 500 * ms);
        assert_eq!(w.len(), 2);
        w.drain_due(t0 + 4 * ms, &mut out);
        assert_eq!(out, vec![key(1)]);
        w.drain_due(t0 + 10_000 * ms, &mut out);
        assert_eq!(out, vec![key(1), key(2)]);
        w.schedule(key(3), t0 + 10_001 * ms);
        out.clear();
        w.drain_due(t0 + 10_003 * ms, &mut out);
        assert_eq!(out, vec![key(3)]);
    }

    #[test]
    fn next_due_is_when_the_first_occupied_tick_fires() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut w = FlushWheel::new(t0, ms, 17 * ms);
        assert_eq!(w.next_due(), None);
        w.schedule(key(1), t0 + 9 * ms + ms / 2);
        w.schedule(key(2), t0 + 5 * ms + ms / 2);
        assert_eq!(w.next_due(), Some(t0 + 6 * ms));
        let mut out = Vec::new();
        w.drain_due(t0 + 6 * ms, &mut out);
        assert_eq!(out, vec![key(2)]);
        assert_eq!(w.next_due(), Some(t0 + 10 * ms));
        w.due_now(key(3));
        assert_eq!(
            w.next_due(),
            Some(t0 + 6 * ms),
            "due now: no later than the last drain"
        );
        w.take_due_now(&mut out);
        w.drain_due(t0 + 10 * ms, &mut out);
        assert_eq!(w.next_due(), None);
    }

    #[test]
    fn scheduled_since_the_mark_is_seen_at_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut w = FlushWheel::new(t0, ms, 17 * ms);
        w.schedule(key(1), t0 + 2 * ms + ms / 2);
        w.mark();
        assert_eq!(w.earliest_since_mark(), None);
        w.schedule(key(2), t0 + 9 * ms + ms / 2);
        w.schedule(key(3), t0 + 7 * ms + ms / 2);
        assert_eq!(w.earliest_since_mark(), Some(t0 + 8 * ms));
        w.due_now(key(4));
        assert_eq!(w.earliest_since_mark(), Some(t0));
    }

    #[test]
    fn due_times_stay_right_past_two_to_the_32_ticks() {
        let t0 = Instant::now();
        let tick = Duration::from_micros(10);
        let mut w = FlushWheel::new(t0, tick, 17 * tick);
        let later = t0 + tick * u32::MAX + 100 * tick;
        let mut out = Vec::new();
        w.drain_due(later, &mut out);
        w.schedule(key(1), later + 5 * tick + tick / 2);
        assert_eq!(w.next_due(), Some(later + 6 * tick));
        assert_eq!(w.earliest_since_mark(), Some(later + 6 * tick));
    }
}
