//! The `system` channel: the node's figures once a second, for monitoring
//! dashboards, through the same latest-value path as prices (one stream per
//! shard, conflated, snapshot on subscribe). Each shard reads what every
//! shard published for `/metrics` (atomics), so no shard waits on another.

use super::metrics::HistogramReading;
use super::node::Node;
use crate::clock;
use crate::fanout::latest::Latest;
use crate::frame;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// How often the figures are published.
const EVERY: Duration = Duration::from_secs(1);

/// Node-wide running totals, kept to turn counters into rates.
#[derive(Default, Clone)]
struct Totals {
    frames: u64,
    flushes: u64,
    bytes: u64,
    quotes: u64,
    cycles: Option<HistogramReading>,
}

/// One shard's producer of `system` messages.
#[derive(Default)]
pub struct SystemFeed {
    seq: u64,
    last: Option<(Instant, Totals)>,
}

impl SystemFeed {
    /// The next `system` value when a second has passed since the last.
    pub fn next(&mut self, node: &Node, now: Instant) -> Option<Latest> {
        if self.last.as_ref().is_some_and(|(at, _)| now < *at + EVERY) {
            return None;
        }
        let totals = totals(node);
        let since = self.last.replace((now, totals.clone()));
        self.seq += 1;
        let ts_us = clock::now_us();
        let data = figures(node, &totals, since.as_ref().map(|(at, t)| (now - *at, t)));
        let message = json!({
            "type": "system", "channel": "system", "seq": self.seq,
            "ts": ts_us / 1_000, "data": data,
        });
        let payload = message.to_string().into_bytes();
        let frame = frame::text(&payload);
        Some(Latest {
            seq: self.seq,
            ts_us,
            payload_at: frame.len() - payload.len(),
            frame,
        })
    }
}

fn totals(node: &Node) -> Totals {
    let mut t = Totals {
        quotes: node.aggregator.snapshot().quotes,
        ..Totals::default()
    };
    for s in &node.shard_stats {
        t.frames += s.frames.load(Relaxed);
        t.flushes += s.flushes.load(Relaxed);
        t.bytes += s.metrics.bytes_written.load(Relaxed);
        let cycles = s.metrics.flush_cycle.read();
        t.cycles = Some(match t.cycles.take() {
            None => cycles,
            Some(sum) => sum.plus(&cycles),
        });
    }
    t
}

/// The `data` object: current figures, and rates over `since` (the time
/// and totals of the last message) when there was one.
fn figures(node: &Node, now: &Totals, since: Option<(Duration, &Totals)>) -> Value {
    let stats = &node.shard_stats;
    let sum = |f: &dyn Fn(&super::ShardStats) -> u64| stats.iter().map(f).sum::<u64>();
    let max = |f: &dyn Fn(&super::ShardStats) -> u64| stats.iter().map(f).max().unwrap_or(0);
    let subscriptions: Map<String, Value> = node
        .catalogue
        .iter()
        .map(|(id, c)| {
            let i = usize::from(id.0);
            let n = sum(&|s| s.metrics.subscriptions_by_channel[i].load(Relaxed));
            (c.name.clone(), n.into())
        })
        .collect();
    let ms = |us: u64| us as f64 / 1_000.0;
    let agg = node.aggregator.snapshot();
    let now_us = clock::now_us();
    let mut data = json!({
        "shards": stats.len(),
        "draining": node.is_draining(),
        "connections": sum(&|s| s.connections.load(Relaxed)),
        "lagging_connections": sum(&|s| s.metrics.lagging.load(Relaxed)),
        "due_unserved": sum(&|s| s.metrics.due_unserved.load(Relaxed)),
        "subscriptions": subscriptions,
        "ring_to_socket_ms": {
            "p50": ms(max(&|s| s.latency_p50_us.load(Relaxed))),
            "p99": ms(max(&|s| s.latency_p99_us.load(Relaxed))),
            "p999": ms(max(&|s| s.latency_p999_us.load(Relaxed))),
            "max": ms(max(&|s| s.latency_max_us.load(Relaxed))),
        },
        "bus": node.aggregator.bus.get().map(|bus| bus.summary()),
        "feed": {
            "stale": node.feed_stale_since(now_us).is_some(),
            "last_quote_age_ms": now_us.saturating_sub(agg.last_quote_us) / 1_000,
            "rejected": agg.rejected,
            "overruns": agg.overruns,
        },
    });
    if let Some((took, before)) = since {
        let secs = took.as_secs_f64().max(1e-3);
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs).round();
        data["per_second"] = json!({
            "frames": rate(now.frames, before.frames),
            "flushes": rate(now.flushes, before.flushes),
            "bytes": rate(now.bytes, before.bytes),
            "quotes": rate(now.quotes, before.quotes),
        });
        if let (Some(now), Some(before)) = (&now.cycles, &before.cycles) {
            data["flush_cycle_ms"] = cycle_figures(&now.minus(before));
        }
    }
    data
}

/// Mean and p99 (as the upper bound of the bucket that holds it) of the
/// ticks in `cycles`, in milliseconds; `null`s when there were none.
fn cycle_figures(cycles: &HistogramReading) -> Value {
    if cycles.count == 0 {
        return json!({ "mean": null, "p99_at_most": null, "ticks": 0 });
    }
    let wanted = (cycles.count as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    let p99 = cycles.buckets.iter().find_map(|&(bound, n)| {
        seen += n;
        (seen >= wanted).then_some(bound)
    });
    let ms = |secs: f64| (secs * 1e6).round() / 1e3;
    json!({
        "mean": ms(cycles.sum / cycles.count as f64),
        "p99_at_most": p99.filter(|b| b.is_finite()).map(ms),
        "ticks": cycles.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(buckets: &[u64], sum: f64) -> HistogramReading {
        let bounds = super::super::metrics::BUCKET_BOUNDS_MS.map(|ms| ms / 1e3);
        let buckets: Vec<(f64, u64)> = bounds
            .into_iter()
            .chain([f64::INFINITY])
            .zip(buckets.iter().copied().chain(std::iter::repeat(0)))
            .collect();
        HistogramReading {
            sum,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }

    #[test]
    fn cycle_figures_give_the_mean_and_the_bucket_of_p99() {
        // 990 ticks under 1 ms, 10 between 5 and 10 ms: p99 is within 1 ms.
        let r = reading(&[990, 0, 0, 10], 0.5 + 0.07);
        let v = cycle_figures(&r);
        assert_eq!(v["ticks"], 1000);
        assert_eq!(v["mean"], 0.57);
        assert_eq!(v["p99_at_most"], 1.0);
        // One more slow tick moves p99 into the 10 ms bucket.
        let v = cycle_figures(&reading(&[989, 0, 0, 11], 0.6));
        assert_eq!(v["p99_at_most"], 10.0);
    }

    #[test]
    fn no_ticks_give_nulls() {
        let v = cycle_figures(&reading(&[], 0.0));
        assert_eq!(v["ticks"], 0);
        assert!(v["mean"].is_null() && v["p99_at_most"].is_null());
    }
}
