//! One shard's output from the aggregator: its ring, and what did not fit in
//! it yet (events in order, latest price per symbol).

use super::ring::{RingProducer, Update};
use crate::model::quote::BestPrice;
use std::collections::VecDeque;

/// One shard's ring plus what did not fit in it yet.
pub(super) struct ShardOut {
    pub(super) ring: RingProducer,
    /// Events that found the ring full, in order: never dropped, never merged.
    pub(super) backlog: VecDeque<Update>,
    /// Latest undelivered value per symbol.
    pub(super) pending: Vec<Option<BestPrice>>,
    /// Symbols with a pending value, oldest first; each at most once, so it
    /// never grows past the symbol count (capacity reserved up front).
    pub(super) order: VecDeque<u32>,
}

impl ShardOut {
    /// Pushes backlogged events, then pending values oldest first; true
    /// when none is left.
    pub(super) fn flush(&mut self) -> bool {
        while let Some(update) = self.backlog.pop_front() {
            if let Err(update) = self.ring.push(update) {
                self.backlog.push_front(update);
                return false;
            }
        }
        while let Some(&s) = self.order.front() {
            if let Some(bp) = self.pending[s as usize] {
                if self.ring.push(Update::Price(bp)).is_err() {
                    return false;
                }
                self.pending[s as usize] = None;
            }
            self.order.pop_front();
        }
        true
    }

    /// Sends `bp` or parks it; returns (parked, replaced an older pending value).
    pub(super) fn send(&mut self, bp: BestPrice) -> (bool, bool) {
        // Only push directly when nothing is parked: a parked older value of
        // the same symbol must never be overtaken.
        if self.flush() && self.ring.push(Update::Price(bp)).is_ok() {
            return (false, false);
        }
        let slot = &mut self.pending[bp.symbol.0 as usize];
        let replaced = slot.is_some();
        if !replaced {
            self.order.push_back(bp.symbol.0);
        }
        *slot = Some(bp);
        (true, replaced)
    }

    /// Sends an event, behind any backlog so events keep their order.
    pub(super) fn send_event(&mut self, update: Update) {
        if !self.backlog.is_empty() {
            self.flush();
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back(update);
        } else if let Err(update) = self.ring.push(update) {
            self.backlog.push_back(update);
        }
    }
}
