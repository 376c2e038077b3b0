//! The shard's figures: what it publishes for `/v1/status` and `/metrics`
//! on its own housekeeping pass, and the latency and cycle records behind
//! them. A child of `state`, so it reads the shard's fields directly.

use super::Shard;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

impl Shard {
    /// Publishes the subscriptions per channel; a pass over every
    /// subscription, so it runs about once a second, not every housekeeping.
    pub(super) fn recount_subscriptions(&mut self) {
        let mut counts = vec![0; self.node.catalogue.iter().count()];
        for session in self.conns.iter_mut() {
            session.count_subscriptions(self.latest_channels, &mut counts);
        }
        let by_channel = &self.node.shard_stats[self.id]
            .metrics
            .subscriptions_by_channel;
        for (slot, n) in by_channel.iter().zip(counts) {
            slot.store(n, Relaxed);
        }
    }

    /// Notes how many records were waiting in the ring at the start of a turn.
    pub fn note_ring_depth(&mut self, depth: usize) {
        self.ring_depth_max = self.ring_depth_max.max(depth);
    }

    /// Records how long one turn of the loop took.
    pub fn record_cycle(&mut self, took: Duration) {
        self.histograms.flush_cycle.record(took);
        self.cycle_max = self.cycle_max.max(took);
    }

    /// Records how long an upgrade took from accept to `101` written.
    pub fn record_handshake(&mut self, took: Duration) {
        self.histograms.handshake.record(took);
    }

    /// Publishes the shard's figures to its [`super::ShardStats`].
    pub fn publish_stats(&self) {
        let s = &self.node.shard_stats[self.id];
        s.connections.store(self.conns.len() as u64, Relaxed);
        s.subscriptions
            .store(self.streams.topics.total() as u64, Relaxed);
        s.reliable_subscriptions
            .store(self.streams.reliable.subscriptions() as u64, Relaxed);
        s.window_specs
            .store(self.streams.metrics.specs() as u64, Relaxed);
        let windows = self.streams.metrics.counters();
        s.metric_events.store(windows.events, Relaxed);
        // Calendar totals leave events out for the same kind of reason.
        let calendar = self.streams.calendar.counters();
        s.late_metric_events
            .store(windows.late + calendar.late + calendar.over_groups, Relaxed);
        s.frames.store(self.counters.frames, Relaxed);
        s.flushes.store(self.counters.flushes, Relaxed);
        s.skipped.store(self.counters.skipped, Relaxed);
        s.slow_closes.store(self.counters.slow_closes, Relaxed);
        s.latency_p50_us
            .store(self.latency.value_at_quantile(0.5), Relaxed);
        s.latency_p99_us
            .store(self.latency.value_at_quantile(0.99), Relaxed);
        s.latency_p999_us
            .store(self.latency.value_at_quantile(0.999), Relaxed);
        s.latency_max_us.store(self.latency.max(), Relaxed);
        // A status request reading the slot makes this round skip, never wait.
        if let Ok(mut counts) = s.counts.try_lock() {
            let symbols = self.node.universe.symbol_count();
            counts.count(
                &self.node.catalogue,
                symbols,
                self.conns.iter(),
                &self.streams,
            );
        }
        s.metrics.bytes_written.store(self.counters.bytes, Relaxed);
        s.metrics
            .socket_full_writes
            .store(self.counters.socket_full_writes, Relaxed);
        s.metrics.publish(&self.counts, &self.histograms);
    }

    /// One line with the shard's totals, logged when it stops.
    pub fn summary(&self) -> String {
        let c = self.counters;
        format!(
            "shard {}: frames={} flushes={} skipped={} slow_closes={} socket_full_writes={} ring_to_socket_us p50={} p99={} p99.9={} max={}",
            self.id,
            c.frames,
            c.flushes,
            c.skipped,
            c.slow_closes,
            c.socket_full_writes,
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.latency.value_at_quantile(0.999),
            self.latency.max()
        )
    }
}
