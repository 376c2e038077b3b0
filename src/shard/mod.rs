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

use crate::ingest::doorbell::Parking;
use crate::ingest::ring::{RingConsumer, Update};
use futures_lite::AsyncReadExt;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);

/// Runs the shard's loop until the node has drained: drains `ring`, closes
/// windows, fires the flush wheel, writes what is due and does
/// housekeeping, then sleeps until there is more to do.
pub async fn run(handle: ShardHandle, ring: RingConsumer) {
    let RingConsumer {
        mut records,
        parking,
        bell,
    } = ring;
    listen_for_bell(&handle, bell);
    let node = handle.node().clone();
    let mut next_housekeeping = Instant::now();
    let mut drain_deadline = None;
    loop {
        let now = Instant::now();
        let (idle, behind) = handle.with(|shard| {
            shard.note_ring_depth(records.slots());
            while let Ok(update) = records.pop() {
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
        // is marked for the tasks' own checks.
        let mut wake_at = handle.with(|shard| shard.next_work_at(next_housekeeping));
        if let Some(deadline) = drain_deadline {
            wake_at = wake_at.min(deadline);
        }
        if behind || wake_at <= Instant::now() {
            // Connections are still due: let the other tasks run, then
            // go on without sleeping.
            glommio::executor().yield_now().await;
        } else {
            sleep_until(&handle, &parking, &records, wake_at).await;
        }
    }
    handle.with(|shard| {
        shard.publish_stats();
        tracing::info!("{}", shard.summary());
    });
}

/// Sleeps until `wake_at`, or until the aggregator rings or a task makes a
/// flush due sooner. Checks the ring after saying it is parked, so a record
/// pushed in between is never left waiting.
async fn sleep_until(
    handle: &ShardHandle,
    parking: &Parking,
    records: &rtrb::Consumer<Update>,
    wake_at: Instant,
) {
    parking.arm();
    if records.is_empty() {
        let timer = glommio::timer::sleep(wake_at.saturating_duration_since(Instant::now()));
        let woken = std::future::poll_fn(|cx| handle.with(|shard| shard.poll_woken(cx, wake_at)));
        futures_lite::future::or(woken, timer).await;
    }
    parking.disarm();
    handle.with(|shard| shard.loop_awake());
}

/// A task that wakes the loop each time the aggregator rings; it ends when
/// the aggregator's end closes. Should reading fail, the loop polls its ring
/// every tick instead.
fn listen_for_bell(handle: &ShardHandle, bell: UnixStream) {
    // SAFETY: `into_raw_fd` hands over sole ownership of an open socket.
    let mut bell = unsafe { glommio::net::UnixStream::from_raw_fd(bell.into_raw_fd()) };
    let handle = handle.clone();
    glommio::spawn_local(async move {
        let mut rings = [0u8; 64];
        loop {
            match bell.read(&mut rings).await {
                Ok(0) => break,
                Ok(_) => handle.with(|shard| shard.wake_loop()),
                Err(e) => {
                    tracing::error!(error = %e, "shard bell failed; polling the ring every tick");
                    handle.with(|shard| shard.bell_lost());
                    break;
                }
            }
        }
    })
    .detach();
}
