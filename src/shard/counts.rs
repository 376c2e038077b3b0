//! Subscriptions per channel and subscribers per symbol of one shard,
//! counted in housekeeping (off the fan-out path) and left in a slot that
//! `/v1/status` and `/v1/channels` read.

use crate::fanout::latest::StreamId;
use crate::model::channel::{Catalogue, ChannelId, ChannelKind};
use crate::model::symbol::SymbolId;
use crate::session::{Session, Streams};
use std::sync::Mutex;

/// One shard's counts, indexed by [`ChannelId`] and [`SymbolId`].
#[derive(Debug, Default, Clone)]
pub struct SubscriptionCounts {
    /// Subscriptions per channel: one per `prices` symbol, per `metrics.*`
    /// subscription, per reliable stream and per keyed channel, of each
    /// connection.
    pub per_channel: Vec<u64>,
    /// Connections subscribed to each symbol's prices.
    pub per_symbol: Vec<u64>,
}

impl SubscriptionCounts {
    /// Counts the shard's `sessions` and `streams` into `self`, reusing its
    /// buffers.
    pub(super) fn count<'s>(
        &mut self,
        catalogue: &Catalogue,
        symbols: usize,
        sessions: impl Iterator<Item = &'s Session>,
        streams: &Streams,
    ) {
        self.per_channel.clear();
        self.per_channel.resize(catalogue.iter().count(), 0);
        self.per_symbol.clear();
        self.per_symbol.extend((0..symbols).map(|i| {
            let stream = StreamId::price(SymbolId(i as u32));
            streams.topics.subscribers(stream).len() as u64
        }));
        let of_kind = |kind| catalogue.iter().find(|(_, c)| c.kind == kind);
        if let Some((ChannelId(id), _)) = of_kind(ChannelKind::Prices) {
            self.per_channel[usize::from(id)] = self.per_symbol.iter().sum();
        }
        if let Some((ChannelId(id), _)) = of_kind(ChannelKind::System) {
            let watchers = streams.topics.subscribers(StreamId::system()).len();
            self.per_channel[usize::from(id)] = watchers as u64;
        }
        for session in sessions {
            for ChannelId(id) in session.metric_channels() {
                self.per_channel[usize::from(id)] += 1;
            }
        }
        let reliable = streams.reliable.subscriptions_per_stream();
        for (ChannelId(id), n) in reliable.chain(streams.keyed.subscriptions_per_channel()) {
            self.per_channel[usize::from(id)] += n as u64;
        }
    }

    /// Adds another shard's counts to these.
    pub fn add(&mut self, other: &SubscriptionCounts) {
        for (into, from) in [
            (&mut self.per_channel, &other.per_channel),
            (&mut self.per_symbol, &other.per_symbol),
        ] {
            if into.len() < from.len() {
                into.resize(from.len(), 0);
            }
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
    }
}

/// The slot a shard leaves its counts in.
pub type CountsSlot = Mutex<SubscriptionCounts>;
