//! Events published over HTTP, and the receipt that makes a `202` mean
//! "sequenced and in every shard's history" (read-your-writes).
//!
//! The aggregator sequences a [`Publication`] like any feed event, records
//! the `seq` range it gave each reliable stream in the [`Receipt`], and then
//! sends a barrier down every shard's ring behind the batch. A ring is FIFO,
//! so a shard that applies the barrier has applied the whole batch; the last
//! shard to do so wakes the publisher.

use crate::model::event::Event;
use crate::model::reliable::{self, ReliableKey, Sequenced};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A batch from `POST /v1/publish`: published whole, in order.
pub struct Publication {
    /// The validated events.
    pub events: Vec<Event>,
    /// Filled in by the aggregator and the shards.
    pub receipt: Arc<Receipt>,
}

/// How far a publication got: the `seq`s it was given, and how many shards
/// still have to apply it.
#[derive(Debug)]
pub struct Receipt {
    remaining: AtomicUsize,
    state: Mutex<ReceiptState>,
}

#[derive(Debug, Default)]
struct ReceiptState {
    sequenced: Vec<Sequenced>,
    waker: Option<Waker>,
}

impl Receipt {
    /// A receipt waiting for `shards` shards.
    fn new(shards: usize) -> Self {
        Receipt {
            remaining: AtomicUsize::new(shards),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ReceiptState> {
        // Nothing panics while holding the lock; a poisoned one still holds valid data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `key` got `seq` (called in `seq` order by the aggregator).
    pub fn record(&self, key: &ReliableKey, seq: u64) {
        reliable::record(&mut self.state().sequenced, key, seq);
    }

    /// One shard has applied the whole publication.
    pub fn shard_applied(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(waker) = self.state().waker.take() {
                waker.wake();
            }
        }
    }

    /// The `seq` ranges given, per reliable stream, in order of first appearance.
    pub fn sequenced(&self) -> Vec<Sequenced> {
        self.state().sequenced.clone()
    }

    /// Resolves once every shard has applied the publication.
    pub fn visible(self: &Arc<Self>) -> Visible {
        Visible(self.clone())
    }
}

/// Future of [`Receipt::visible`].
pub struct Visible(Arc<Receipt>);

impl Future for Visible {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Checked under the lock the last shard takes to wake us, so a wake
        // between the check and storing the waker cannot be missed.
        let mut state = self.0.state();
        if self.0.remaining.load(Ordering::Acquire) == 0 {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// The way from HTTP handlers to the aggregator thread.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<Publication>,
    shards: usize,
}

/// The aggregator has stopped: nothing can be published.
#[derive(Debug, thiserror::Error)]
#[error("the aggregator has stopped")]
pub struct Stopped;

impl Publisher {
    /// A publisher sending to `tx` for an aggregator feeding `shards` shards.
    pub fn new(tx: Sender<Publication>, shards: usize) -> Self {
        Publisher { tx, shards }
    }

    /// Hands `events` to the aggregator; the receipt tells when they are visible.
    pub fn publish(&self, events: Vec<Event>) -> Result<Arc<Receipt>, Stopped> {
        let receipt = Arc::new(Receipt::new(self.shards));
        self.tx
            .send(Publication {
                events,
                receipt: receipt.clone(),
            })
            .map_err(|_| Stopped)?;
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::channel::ChannelId;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn visible_once_every_shard_applied_and_seq_ranges_per_stream() {
        let receipt = Arc::new(Receipt::new(2));
        let key = |tenant: &str| ReliableKey {
            tenant: tenant.into(),
            channel: ChannelId(1),
            sub: None,
        };
        for (tenant, seq) in [("t1", 4), ("t2", 1), ("t1", 5), ("t1", 6)] {
            receipt.record(&key(tenant), seq);
        }
        let ranges: Vec<_> = receipt
            .sequenced()
            .iter()
            .map(|s| (s.key.tenant.to_string(), s.first, s.last))
            .collect();
        assert_eq!(ranges, [("t1".into(), 4, 6), ("t2".into(), 1, 1)]);

        let flag = Arc::new(Flag(Default::default()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut visible = receipt.visible();
        assert!(Pin::new(&mut visible).poll(&mut cx).is_pending());
        receipt.shard_applied();
        assert!(!flag.0.load(Ordering::SeqCst), "one shard still to go");
        receipt.shard_applied();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "the last shard wakes the publisher"
        );
        assert!(Pin::new(&mut visible).poll(&mut cx).is_ready());
    }
}
