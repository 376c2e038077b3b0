//! What every shard of the node shares, read-only: configuration, universe,
//! channel catalogue, token verifier, entitlements, and the figures each
//! shard and the aggregator publish for the status page.

use super::metrics::ShardMetrics;
use crate::auth::Verifier;
use crate::config::Config;
use crate::ingest::stats::AggregatorStats;
use crate::model::channel::Catalogue;
use crate::model::symbol::Universe;
use crate::session::entitle::Entitlements;
use crate::session::Rules;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The node context every shard sees.
pub struct Node {
    /// The validated configuration.
    pub config: Config,
    /// Symbols and venues.
    pub universe: Arc<Universe>,
    /// Channels, their kinds, roles and metrics.
    pub catalogue: Arc<Catalogue>,
    /// Token verification.
    pub verifier: Verifier,
    /// Tenant symbol entitlements, resolved against the universe.
    pub entitlements: Entitlements,
    /// Figures of each shard, written only by that shard.
    pub shard_stats: Vec<ShardStats>,
    /// Figures of the aggregator thread.
    pub aggregator: Arc<AggregatorStats>,
    draining: AtomicBool,
}

impl Node {
    /// Bundles the read-only state for `shards` shards.
    pub fn new(
        config: Config,
        universe: Arc<Universe>,
        catalogue: Arc<Catalogue>,
        verifier: Verifier,
        shards: usize,
        aggregator: Arc<AggregatorStats>,
    ) -> Self {
        let channels = catalogue.iter().count();
        Node {
            entitlements: Entitlements::new(&config.tenants, &universe),
            config,
            universe,
            catalogue,
            verifier,
            shard_stats: (0..shards).map(|_| ShardStats::new(channels)).collect(),
            aggregator,
            draining: AtomicBool::new(false),
        }
    }

    /// Starts draining: `/healthz` turns 503 and every connection gets 1001.
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// When the last venue quote arrived (UNIX ms), if that is longer ago
    /// than `feed.feed_stale_after_ms` at `now_us`; `None` while the feed is fresh.
    pub fn feed_stale_since(&self, now_us: u64) -> Option<u64> {
        let last = self.aggregator.last_quote_us.load(Relaxed);
        let stale_after_us = self.config.feed.feed_stale_after_ms.saturating_mul(1_000);
        (last != 0 && now_us.saturating_sub(last) >= stale_after_us).then_some(last / 1_000)
    }

    /// What client ops are checked against.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            config: &self.config,
            catalogue: &self.catalogue,
            universe: &self.universe,
            verifier: &self.verifier,
            entitlements: &self.entitlements,
        }
    }
}

/// Figures one shard publishes (relaxed atomics, written once per
/// housekeeping pass, read by `/v1/status` and `/metrics` on any shard).
#[derive(Debug)]
pub struct ShardStats {
    /// Open WebSocket connections.
    pub connections: AtomicU64,
    /// Latest-value subscriptions (price and metric streams) across connections.
    pub subscriptions: AtomicU64,
    /// Reliable-stream subscriptions across connections.
    pub reliable_subscriptions: AtomicU64,
    /// Window computations running.
    pub window_specs: AtomicU64,
    /// Metric events received (every shard receives every event).
    pub metric_events: AtomicU64,
    /// Metric events that arrived after their window closed.
    pub late_metric_events: AtomicU64,
    /// Value frames written.
    pub frames: AtomicU64,
    /// Flushes (socket writes) done.
    pub flushes: AtomicU64,
    /// Values conflated away (replaced before sent).
    pub skipped: AtomicU64,
    /// Connections closed as slow consumers (4008).
    pub slow_closes: AtomicU64,
    /// Ring-to-socket latency, microseconds: p50.
    pub latency_p50_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: p99.
    pub latency_p99_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: p99.9.
    pub latency_p999_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: max.
    pub latency_max_us: AtomicU64,
    /// Subscriptions per channel and subscribers per symbol.
    pub counts: super::counts::CountsSlot,
    /// The rest of what `/metrics` shows.
    pub metrics: ShardMetrics,
}

impl ShardStats {
    /// Zeroed figures for a catalogue of `channels` channels.
    pub fn new(channels: usize) -> Self {
        let zero = || AtomicU64::new(0);
        ShardStats {
            connections: zero(),
            subscriptions: zero(),
            reliable_subscriptions: zero(),
            window_specs: zero(),
            metric_events: zero(),
            late_metric_events: zero(),
            frames: zero(),
            flushes: zero(),
            skipped: zero(),
            slow_closes: zero(),
            latency_p50_us: zero(),
            latency_p99_us: zero(),
            latency_p999_us: zero(),
            latency_max_us: zero(),
            counts: Default::default(),
            metrics: ShardMetrics::new(channels),
        }
    }
}
