//! How the aggregator wakes a shard that sleeps on an empty ring.
//!
//! Below saturation a shard has nothing to do between quotes; rather than
//! polling its ring every tick it sleeps until its next timed work, and the
//! aggregator rings the bell after pushing records. The bell is the
//! sleeping loop's own waker, left here while the shard is parked: woken
//! from the aggregator's thread, glommio queues it for the shard's executor
//! and writes that executor's eventfd if it sleeps, so a ring costs no
//! socket and no task of its own. A busy shard is never rung: the
//! aggregator pays a load of the ring's read index, a fence and a flag load
//! per batch, and no system call.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;

/// What both ends share: whether the shard is parked, and its waker.
#[derive(Default)]
struct Bell {
    parked: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    fn waker(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        // A waker slot stays valid whatever a panicking holder left in it.
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
            // Taken under the lock, woken outside it.
            let waker = bell.waker().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl Parking {
    /// Leaves `waker` for the aggregator and marks the shard parked; check
    /// the ring after this, and sleep only if it is empty.
    pub fn arm(&self, waker: &Waker) {
        {
            let mut slot = self.0.waker();
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        self.0.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Marks the shard awake: the aggregator stops ringing, and the waker
    /// goes back to the shard's thread (never dropped on another).
    pub fn disarm(&self) {
        self.0.parked.store(false, Ordering::Relaxed);
        let waker = self.0.waker().take();
        drop(waker);
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
