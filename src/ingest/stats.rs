//! Aggregator counters, shared read-only with the shards and the status page.

use crate::feed::nats::BusState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Aggregator counters, written by the aggregator thread only and readable
/// from any thread (status page, tests).
#[derive(Debug, Default)]
pub struct AggregatorStats {
    /// Venue quotes received from the feed.
    pub quotes: AtomicU64,
    /// Best prices published (each goes to every shard).
    pub published: AtomicU64,
    /// Venue quotes rejected as malformed.
    pub rejected: AtomicU64,
    /// Values that found a shard ring full and were parked as pending.
    pub overruns: AtomicU64,
    /// Pending values replaced by a newer one for the same symbol before delivery.
    pub overrun_dropped: AtomicU64,
    /// Values currently parked across all shards.
    pub pending: AtomicU64,
    /// Times the feed failed for good.
    pub feed_errors: AtomicU64,
    /// Malformed input the feed itself dropped (e.g. bad replay lines).
    pub feed_input_errors: AtomicU64,
    /// Metric and reliable events forwarded to the shards.
    pub events: AtomicU64,
    /// When the last accepted venue quote arrived (UNIX µs; the aggregator's
    /// start until the first one, 0 before it runs): shards judge feed
    /// staleness from it.
    pub last_quote_us: AtomicU64,
    /// The feed's message bus connection, when it has one (NATS).
    pub bus: std::sync::OnceLock<Arc<BusState>>,
}

/// A plain copy of [`AggregatorStats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorSnapshot {
    /// See [`AggregatorStats::quotes`].
    pub quotes: u64,
    /// See [`AggregatorStats::published`].
    pub published: u64,
    /// See [`AggregatorStats::rejected`].
    pub rejected: u64,
    /// See [`AggregatorStats::overruns`].
    pub overruns: u64,
    /// See [`AggregatorStats::overrun_dropped`].
    pub overrun_dropped: u64,
    /// See [`AggregatorStats::pending`].
    pub pending: u64,
    /// See [`AggregatorStats::feed_errors`].
    pub feed_errors: u64,
    /// See [`AggregatorStats::feed_input_errors`].
    pub feed_input_errors: u64,
    /// See [`AggregatorStats::events`].
    pub events: u64,
    /// See [`AggregatorStats::last_quote_us`].
    pub last_quote_us: u64,
}

impl AggregatorStats {
    /// Reads every counter (each individually consistent, not as a set).
    pub fn snapshot(&self) -> AggregatorSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AggregatorSnapshot {
            quotes: r(&self.quotes),
            published: r(&self.published),
            rejected: r(&self.rejected),
            overruns: r(&self.overruns),
            overrun_dropped: r(&self.overrun_dropped),
            pending: r(&self.pending),
            feed_errors: r(&self.feed_errors),
            feed_input_errors: r(&self.feed_input_errors),
            events: r(&self.events),
            last_quote_us: r(&self.last_quote_us),
        }
    }
}
