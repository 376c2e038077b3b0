//! A shard: one glommio executor pinned to one core, with its own ring
//! consumer, latest-value table, subscriber index, flush wheel and
//! connections. Nothing mutable is shared with other shards.
//!
//! Each turn of its loop the shard drains its ring, encodes each changed
//! value ONCE into a frame, marks the subscribed connections dirty and writes
//! those whose flush is due (the rest wait in the flush wheel). Between turns
//! it sleeps until its next timed work, or until the aggregator rings its
//! bell: busy, it turns as fast as it writes; idle, a quote goes out as soon
//! as it arrives. The network tasks of its connections reach the state
//! through a [`ShardHandle`].

mod conns;
mod counts;
mod handle;
pub mod metrics;
mod node;
mod state;
mod system;

pub use counts::SubscriptionCounts;
pub use handle::ShardHandle;
pub use node::{Node, ShardStats};

use crate::ingest::ring::RingConsumer;
use std::time::{Duration, Instant};

const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);

/// Runs the shard's loop until the node has drained: drains `ring`, closes
/// windows, fires the flush wheel, writes what is due and does
/// housekeeping, then sleeps until there is more to do.
pub async fn run(handle: ShardHandle, mut ring: RingConsumer) {
    let node = handle.node().clone();
    let mut next_housekeeping = Instant::now();
    let mut drain_deadline = None;
    loop {
        let now = Instant::now();
        let (idle, behind) = handle.with(|shard| {
            shard.note_ring_depth(ring.records.slots());
            while let Ok(update) = ring.records.pop() {
                shard.apply(update, now);
            }
            shard.close_windows(now);
            shard.fire_wheel(now);
            if now >= next_housekeeping {
                shard.housekeeping(now);
                next_housekeeping = now + HOUSEKEEPING_EVERY;
            }
            let behind = shard.write_due(now);
            shard.record_cycle(now.elapsed());
            (shard.is_empty(), behind)
        });
        if node.is_draining() {
            let deadline = *drain_deadline.get_or_insert(now + node.config.server.drain_timeout());
            if idle || now >= deadline {
                break;
            }
        }
        // No await from here to `poll_woken` in `sleep_until`: no task can
        // schedule a flush after `next_work_at` looked and before the wheel
        // is marked for the tasks' own checks. A shard still behind does not
        // look: it will not sleep.
        let wake_at = (!behind).then(|| {
            let at = handle.with(|shard| shard.next_work_at(next_housekeeping));
            drain_deadline.map_or(at, |deadline| at.min(deadline))
        });
        match wake_at {
            Some(at) if at > Instant::now() => sleep_until(&handle, &ring, at).await,
            // Connections are still due: let the other tasks run, then go
            // on without sleeping.
            _ => glommio::executor().yield_now().await,
        }
    }
    handle.with(|shard| {
        shard.publish_stats();
        tracing::info!("{}", shard.summary());
    });
}

/// Sleeps until `wake_at`, or until the aggregator rings (records on the
/// ring) or a task makes a flush due sooner.
async fn sleep_until(handle: &ShardHandle, ring: &RingConsumer, wake_at: Instant) {
    let rung = std::future::poll_fn(|cx| ring.poll_records(cx));
    let woken = std::future::poll_fn(|cx| handle.with(|shard| shard.poll_woken(cx, wake_at)));
    let timer = glommio::timer::sleep(wake_at.saturating_duration_since(Instant::now()));
    futures_lite::future::or(rung, futures_lite::future::or(woken, timer)).await;
    ring.stop_waiting();
    handle.with(|shard| shard.loop_awake());
}
