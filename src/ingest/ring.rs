//! One lock-free SPSC ring per shard carrying fixed-size [`Update`] records
//! from the aggregator thread to the shard that owns the subscribers.

use super::keyed::KeyedMsg;
use super::publish::Receipt;
use super::sequencer::ReliableMsg;
use crate::model::event::MetricEvent;
use crate::model::quote::BestPrice;
use std::sync::Arc;

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
    /// A key's new latest object, sequenced and encoded.
    Keyed(Arc<KeyedMsg>),
    /// The end of a `POST /v1/publish` batch: the shard has applied all of it.
    Published(Arc<Receipt>),
}

/// Producer end of a shard ring, owned by the aggregator thread.
pub type RingProducer = rtrb::Producer<Update>;
/// Consumer end of a shard ring, owned by its shard.
pub type RingConsumer = rtrb::Consumer<Update>;

/// Creates one ring of `capacity` records per shard.
pub fn shard_rings(shards: usize, capacity: usize) -> (Vec<RingProducer>, Vec<RingConsumer>) {
    (0..shards).map(|_| rtrb::RingBuffer::new(capacity)).unzip()
}
