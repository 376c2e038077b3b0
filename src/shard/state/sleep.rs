//! When the shard's loop may sleep, and what wakes it sooner. Below
//! saturation the loop has nothing to do between quotes: it sleeps until its
//! next timed work (a flush the rate cap holds back, a window to close,
//! housekeeping) unless the aggregator rings (records on the ring) or a
//! connection task gives it work sooner. A child of `state`, so it reads
//! the shard's fields.

use super::Shard;
use crate::clock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The loop's sleep, as the tasks that may end it see it.
#[derive(Default)]
pub struct LoopSleep {
    /// When the sleeping loop wakes by itself; `None` while it runs.
    until: Option<Instant>,
    /// Woken early since it went to sleep.
    woken: bool,
    /// The sleeping loop's waker.
    waker: Option<Waker>,
}

impl Shard {
    /// When the loop has timed work next: the first flush the wheel holds
    /// (now, when one is due), a window to close, the calendar's update, or
    /// `housekeeping`, whichever comes first.
    pub fn next_work_at(&self, housekeeping: Instant) -> Instant {
        let now = Instant::now();
        let now_us = clock::now_us();
        let at_us = |us: u64| now + Duration::from_micros(us.saturating_sub(now_us));
        let streams = &self.streams;
        [
            self.wheel.next_due(),
            streams.metrics.next_close_us().map(at_us),
            streams.calendar.next_update_us().map(at_us),
        ]
        .into_iter()
        .flatten()
        .fold(housekeeping, Instant::min)
    }

    /// Ready once the loop was woken; otherwise records that it sleeps
    /// until `until` (watching the wheel for sooner flushes from then on)
    /// and parks its waker.
    pub fn poll_woken(&mut self, cx: &mut Context<'_>, until: Instant) -> Poll<()> {
        if self.sleep.woken {
            return Poll::Ready(());
        }
        if self.sleep.until.is_none() {
            self.wheel.mark();
            self.streams.timed_work_added = false;
        }
        self.sleep.until = Some(until);
        self.sleep.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The loop is running again.
    pub fn loop_awake(&mut self) {
        self.sleep = LoopSleep::default();
    }

    /// Wakes the sleeping loop.
    fn wake_loop(&mut self) {
        self.sleep.woken = true;
        if let Some(waker) = self.sleep.waker.take() {
            waker.wake();
        }
    }

    /// Wakes the sleeping loop if a task made a flush due before it would
    /// wake by itself, opened windows it has to close (their first close is
    /// found when the loop looks again), or removed the last connection of
    /// a draining shard. O(1): runs after every task's call.
    pub fn wake_loop_if_sooner(&mut self) {
        let Some(until) = self.sleep.until else {
            return;
        };
        let sooner = self
            .wheel
            .earliest_since_mark()
            .is_some_and(|due| due < until);
        let draining_empty = self.node.is_draining() && self.is_empty();
        if !self.sleep.woken && (sooner || self.streams.timed_work_added || draining_empty) {
            self.wake_loop();
        }
    }
}
