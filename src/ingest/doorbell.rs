//! How the aggregator wakes a shard that sleeps on an empty ring.
//!
//! Below saturation a shard has nothing to do between quotes; rather than
//! polling its ring every tick it sleeps until its next timed work, and the
//! aggregator rings the bell after pushing records. The bell is the
//! sleeping loop's own waker, left here while the shard is parked. When the
//! aggregator wakes it from its own thread, glommio queues the wake for the
//! shard's executor and writes that executor's eventfd if the executor is
//! going to sleep (always, for a task queue whose latency matters; the
//! shard's loop runs in the default queue). A ring costs no socket and no
//! task of its own. A shard that is not parked is never rung: the
//! aggregator pays a load of the ring's read index, a fence and a flag load
//! per batch, and no system call.

use futures_util::task::AtomicWaker;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;

/// What both ends share: whether the shard is parked, and its waker. No
/// lock: the aggregator may share the shard's core, and a shard must never
/// wait for it to be scheduled.
#[derive(Default)]
struct Bell {
    parked: AtomicBool,
    waker: AtomicWaker,
}

/// The aggregator's end: rings when the shard is parked.
pub struct Doorbell(Arc<Bell>);

/// The shard's end: parks the loop's waker and says it is parked.
pub struct Parking(Arc<Bell>);

/// A bell and its parking, for one shard.
pub fn doorbell() -> (Doorbell, Parking) {
    let bell = Arc::new(Bell::default());
    (Doorbell(bell.clone()), Parking(bell))
}

impl Doorbell {
    /// Wakes the shard if it is parked. Call after pushing its records: the
    /// fence pairs with [`Parking::arm`], so either the shard sees the
    /// records before it sleeps or this sees it parked.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        let bell = &self.0;
        if bell.parked.load(Ordering::Relaxed) && bell.parked.swap(false, Ordering::Relaxed) {
            bell.waker.wake();
        }
    }
}

#[cfg(test)]
impl Doorbell {
    /// Whether the shard says it is parked (tests wait for it).
    pub fn is_parked(&self) -> bool {
        self.0.parked.load(Ordering::Relaxed)
    }
}

impl Parking {
    /// Leaves `waker` for the aggregator and marks the shard parked; check
    /// the ring after this, and sleep only if it is empty.
    pub fn arm(&self, waker: &Waker) {
        self.0.waker.register(waker);
        self.0.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Marks the shard awake: the aggregator stops ringing, and a waker it
    /// did not take is dropped here, on the shard's thread.
    pub fn disarm(&self) {
        self.0.parked.store(false, Ordering::Relaxed);
        drop(self.0.waker.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn rings_only_a_parked_shard_and_once_per_parking() {
        let (bell, parking) = doorbell();
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let woken = || wakes.0.load(Ordering::Relaxed);
        bell.ring();
        assert_eq!(woken(), 0, "an awake shard is not rung");
        parking.arm(&waker);
        bell.ring();
        bell.ring();
        assert_eq!(woken(), 1, "one wake per parking");
        parking.disarm();
        parking.arm(&waker);
        parking.disarm();
        bell.ring();
        assert_eq!(woken(), 1, "disarmed before the ring");
        parking.arm(&waker);
        bell.ring();
        assert_eq!(woken(), 2, "parked again, rung again");
    }
}
