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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::symbol::{SymbolId, VenueId};
    use std::time::{Duration, Instant};

    fn price() -> Update {
        Update::Price(BestPrice {
            symbol: SymbolId(0),
            seq: 1,
            ts_us: 1,
            bid: 1.0,
            bid_size: 1.0,
            bid_venue: VenueId(0),
            ask: 1.5,
            ask_size: 1.0,
            ask_venue: VenueId(0),
        })
    }

    /// The bell through glommio itself: a shard executor sleeping on its
    /// ring (with a timer far off) is woken by a push and a ring from a
    /// plain thread, as the aggregator's are.
    #[test]
    fn a_push_and_a_ring_from_another_thread_wake_a_sleeping_shard() {
        let (mut producers, mut consumers) = shard_rings(1, 8);
        let (mut producer, consumer) = (producers.remove(0), consumers.remove(0));
        let shard = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            // Within the default locked-memory limit.
            .io_memory(1 << 20)
            .spawn(move || async move {
                let started = Instant::now();
                let rung = std::future::poll_fn(|cx| consumer.poll_records(cx));
                let far_off = glommio::timer::sleep(Duration::from_secs(10));
                // The timer is polled first: a wake by the timer answers false
                // even though the record is there by then.
                let by_bell = futures_lite::future::or(
                    async {
                        far_off.await;
                        false
                    },
                    async {
                        rung.await;
                        true
                    },
                )
                .await;
                consumer.stop_waiting();
                (by_bell, consumer.records.slots(), started.elapsed())
            })
            .unwrap();
        // Let the shard go to sleep first: a push before it parks is seen
        // by its check instead, and this test is about the ring.
        let waiting_since = Instant::now();
        while !producer.bell.is_parked() && waiting_since.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(producer.bell.is_parked(), "the shard never parked");
        producer.push(price()).unwrap();
        producer.ring_bell();
        let (by_bell, waiting, took) = shard.join().unwrap();
        assert!(
            by_bell,
            "woken by its timer after {took:?}, not by the bell"
        );
        assert_eq!(waiting, 1);
    }
}
