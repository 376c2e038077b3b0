//! One lock-free SPSC ring per shard carrying fixed-size [`Update`] records
//! from the aggregator thread to the shard that owns the subscribers, and
//! the bell that wakes the shard when it sleeps.

use super::doorbell::{doorbell, Doorbell, Parking};
use super::keyed::KeyedMsg;
use super::publish::Receipt;
use super::sequencer::ReliableMsg;
use crate::model::event::MetricEvent;
use crate::model::quote::BestPrice;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// Producer end of a shard ring, owned by the aggregator thread, with the
/// bell that wakes its shard.
pub struct RingProducer {
    records: rtrb::Producer<Update>,
    bell: Doorbell,
}

/// Consumer end of a shard ring, owned by its shard, with its end of the
/// bell.
pub struct RingConsumer {
    /// The records, for the shard to drain.
    pub records: rtrb::Consumer<Update>,
    parking: Parking,
}

impl RingConsumer {
    /// Ready once records wait; otherwise leaves the task's waker with the
    /// bell, for the aggregator to wake after its next push. Call
    /// [`RingConsumer::stop_waiting`] when the wait ends, however it ends.
    pub fn poll_records(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.records.is_empty() {
            return Poll::Ready(());
        }
        self.parking.arm(cx.waker());
        // Checked again after arming: a record pushed in between is either
        // seen here or rung for.
        if self.records.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// The shard is awake: the aggregator stops ringing.
    pub fn stop_waiting(&self) {
        self.parking.disarm();
    }
}

impl RingProducer {
    /// Pushes `update`, or gives it back when the ring is full.
    pub fn push(&mut self, update: Update) -> Result<(), Update> {
        self.records
            .push(update)
            .map_err(|rtrb::PushError::Full(update)| update)
    }

    /// Wakes the shard if it sleeps with records waiting.
    pub fn ring_bell(&self) {
        if self.records.slots() < self.records.buffer().capacity() {
            self.bell.ring();
        }
    }
}

/// Creates one ring of `capacity` records per shard, each with its bell.
pub fn shard_rings(shards: usize, capacity: usize) -> (Vec<RingProducer>, Vec<RingConsumer>) {
    let mut producers = Vec::with_capacity(shards);
    let mut consumers = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (records_in, records) = rtrb::RingBuffer::new(capacity);
        let (bell_in, parking) = doorbell();
        producers.push(RingProducer {
            records: records_in,
            bell: bell_in,
        });
        consumers.push(RingConsumer { records, parking });
    }
    (producers, consumers)
}
