//! A shard: one glommio executor pinned to one core, with its own ring
//! consumer, latest-value table, subscriber index, flush wheel and
//! connections. Nothing mutable is shared with other shards.
//!
//! Every tick the shard drains its ring, encodes each changed value ONCE into
//! a frame, marks the subscribed connections dirty and wakes the writers whose
//! flush is due (the rest wait in the flush wheel). The network tasks of its
//! connections reach the state through a [`ShardHandle`].

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

/// Runs the shard's tick loop until the node has drained: drains `ring`
/// every tick, closes windows, fires the flush wheel and does housekeeping.
pub async fn run(handle: ShardHandle, mut ring: RingConsumer) {
    let node = handle.node().clone();
    let tick = node.config.server.tick();
    let mut next_housekeeping = Instant::now();
    let mut drain_deadline = None;
    loop {
        let now = Instant::now();
        let (idle, behind) = handle.with(|shard| {
            shard.note_ring_depth(ring.slots());
            while let Ok(update) = ring.pop() {
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
        if behind {
            // Connections are still due: let the other tasks run, then
            // go on without sleeping.
            glommio::executor().yield_now().await;
        } else {
            glommio::timer::sleep(tick).await;
        }
    }
    handle.with(|shard| {
        shard.publish_stats();
        tracing::info!("{}", shard.summary());
    });
}
