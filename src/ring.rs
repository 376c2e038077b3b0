//! One lock-free SPSC ring per shard carrying fixed-size [`Update`] records
//! from the aggregator thread to the shard that owns the subscribers.

use crate::event::MetricEvent;
use crate::reliable::ReliableMsg;
use crate::symbol::{SymbolId, VenueId};
use std::sync::Arc;

/// Best bid/ask across venues for one symbol, as published by the aggregator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestPrice {
    /// The symbol this price is for.
    pub symbol: SymbolId,
    /// Strictly increasing per symbol.
    pub seq: u64,
    /// Microsecond UNIX time at which the aggregator published the value.
    pub ts_us: u64,
    /// Best (highest) bid across live venues.
    pub bid: f64,
    /// Size available at the best bid.
    pub bid_size: f64,
    /// Venue quoting the best bid.
    pub bid_venue: VenueId,
    /// Best (lowest) ask across live venues.
    pub ask: f64,
    /// Size available at the best ask.
    pub ask_size: f64,
    /// Venue quoting the best ask.
    pub ask_venue: VenueId,
}

/// A record on a shard ring. Fixed size: a price is carried by value (the
/// hot path allocates nothing); events are shared by every shard behind an `Arc`.
#[derive(Clone, Debug)]
pub enum Update {
    /// A new best price for one symbol.
    Price(BestPrice),
    /// A metric event for the shard's analytics windows.
    Metric(Arc<MetricEvent>),
    /// A sequenced, encoded reliable message.
    Reliable(Arc<ReliableMsg>),
}

/// Producer end of a shard ring, owned by the aggregator thread.
pub type RingProducer = rtrb::Producer<Update>;
/// Consumer end of a shard ring, owned by its shard.
pub type RingConsumer = rtrb::Consumer<Update>;

/// Creates one ring of `capacity` records per shard.
pub fn shard_rings(shards: usize, capacity: usize) -> (Vec<RingProducer>, Vec<RingConsumer>) {
    (0..shards).map(|_| rtrb::RingBuffer::new(capacity)).unzip()
}
