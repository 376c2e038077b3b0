//! `GET /metrics`: the node's figures in the Prometheus/OpenMetrics text
//! exposition, encoded by `prometheus-client`.
//!
//! A scrape reads only what each shard and the aggregator published on their
//! own ticks (relaxed atomics in [`Node`]); it never reaches into a shard's
//! state, so scraping costs the shards nothing. Per-shard series carry a
//! `shard` label; node totals are `sum without (shard)`.

use super::response::{json_error, response};
use super::Request;
use crate::clock;
use crate::shard::metrics::HistogramReading;
use crate::shard::{Node, ShardStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The content type of the OpenMetrics text format `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: the exposition, behind `metrics.token` when one is set.
pub(super) fn serve(node: &Arc<Node>, req: &Request) -> Vec<u8> {
    if let Some(token) = &node.config.metrics.token {
        let given = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same_secret(g.trim().as_bytes(), token.as_bytes())) {
            return json_error(401, "unauthorized", "metrics need the metrics.token bearer");
        }
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeCollector(node.clone())));
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => response(200, CONTENT_TYPE, &body),
        Err(_) => json_error(500, "internal", "metrics encoding failed"),
    }
}

/// Serves `/metrics` on `addr` from a thread of its own (`metrics.listen`),
/// one request per connection, one connection at a time; returns the bound
/// address. Anything but `GET /metrics` is 404.
pub fn listen(node: Arc<Node>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(&node, stream);
            }
        })?;
    Ok(bound)
}

/// Reads one bounded request head (5 s at most) and writes the reply.
fn answer(node: &Arc<Node>, mut stream: TcpStream) {
    let max = node.config.server.max_header_bytes;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let reply = loop {
        match super::parse_head(&buf, max) {
            Ok(Some((req, _))) if req.method == "GET" && req.path == "/metrics" => {
                break serve(node, &req)
            }
            Ok(Some(_)) => break json_error(404, "not_found", "only GET /metrics here"),
            Err(_) => break json_error(400, "bad_request", "malformed request head"),
            Ok(None) => {}
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let _ = stream.write_all(&reply);
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the node's published figures on each scrape.
struct NodeCollector(Arc<Node>);

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeCollector")
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), Error> {
        let node = &self.0;
        per_shard(node, &mut enc, ShardSeries::gauges())?;
        per_shard(node, &mut enc, ShardSeries::counters())?;
        subscriptions(node, &mut enc)?;
        ops(node, &mut enc)?;
        closes(node, &mut enc)?;
        histograms(node, &mut enc)?;
        node_wide(node, &mut enc)
    }
}

/// One per-shard series read from one field of [`ShardStats`].
struct ShardSeries {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    /// Labels after `shard`, the same on every shard.
    labels: &'static [(&'static str, &'static str)],
    field: fn(&ShardStats) -> &AtomicU64,
}

impl ShardSeries {
    fn gauges() -> [ShardSeries; 6] {
        let gauge = |name, help, field| ShardSeries {
            name,
            help,
            kind: MetricType::Gauge,
            labels: &[],
            field,
        };
        [
            ShardSeries {
                // Every connection is plain WebSocket today; the label lets
                // other transports join the same series.
                labels: &[("transport", "ws")],
                ..gauge(
                    "quotecast_connections",
                    "Open WebSocket connections.",
                    |s| &s.connections,
                )
            },
            gauge(
                "quotecast_lagging_connections",
                "Connections whose writes fall behind their flush interval.",
                |s| &s.metrics.lagging,
            ),
            gauge(
                "quotecast_ring_depth",
                "Most records waiting in the shard's ring at the start of a turn of its loop, over the last 100 ms.",
                |s| &s.metrics.ring_depth,
            ),
            gauge(
                "quotecast_due_unserved_connections",
                "Most connections a write pass left due (tick budget spent), over the last 100 ms.",
                |s| &s.metrics.due_unserved,
            ),
            gauge(
                "quotecast_flush_cycle_max_microseconds",
                "Longest turn of the shard's loop over the last 100 ms, in microseconds.",
                |s| &s.metrics.cycle_max_us,
            ),
            gauge(
                "quotecast_reliable_backlog_frames",
                "Reliable frames queued for connections, not yet written.",
                |s| &s.metrics.reliable_backlog,
            ),
        ]
    }

    fn counters() -> [ShardSeries; 5] {
        let counter = |name, help, field| ShardSeries {
            name,
            help,
            kind: MetricType::Counter,
            labels: &[],
            field,
        };
        [
            counter("quotecast_frames", "Latest-value frames written.", |s| {
                &s.frames
            }),
            counter(
                "quotecast_flushes",
                "Flushes (one socket write each).",
                |s| &s.flushes,
            ),
            counter("quotecast_written_bytes", "Bytes handed to sockets.", |s| {
                &s.metrics.bytes_written
            }),
            counter(
                "quotecast_socket_full_writes",
                "Writes to plain (not TLS) connections the socket did not take whole (send buffer full), finished when it drained.",
                |s| &s.metrics.socket_full_writes,
            ),
            counter(
                "quotecast_skipped_values",
                "Values conflated away (replaced before they were sent).",
                |s| &s.skipped,
            ),
        ]
    }
}

fn shard_label(i: usize) -> [(&'static str, String); 1] {
    [("shard", i.to_string())]
}

fn per_shard<const N: usize>(
    node: &Node,
    enc: &mut DescriptorEncoder,
    series: [ShardSeries; N],
) -> Result<(), Error> {
    for s in series {
        let mut m = enc.encode_descriptor(s.name, s.help, None, s.kind)?;
        for (i, stats) in node.shard_stats.iter().enumerate() {
            let value = (s.field)(stats).load(Relaxed);
            let extra = s.labels.iter().map(|&(k, v)| (k, v.to_owned()));
            let labels: Vec<_> = shard_label(i).into_iter().chain(extra).collect();
            let mut f = m.encode_family(&labels)?;
            match s.kind {
                MetricType::Counter => counter(&mut f, value)?,
                _ => f.encode_gauge(&value)?,
            }
        }
    }
    Ok(())
}

fn subscriptions(node: &Node, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let mut m = enc.encode_descriptor(
        "quotecast_subscriptions",
        "Subscriptions per channel (streams for prices and metrics), recounted each second.",
        None,
        MetricType::Gauge,
    )?;
    for (i, stats) in node.shard_stats.iter().enumerate() {
        for ((_, channel), n) in node
            .catalogue
            .iter()
            .zip(&stats.metrics.subscriptions_by_channel)
        {
            let labels = [("shard", i.to_string()), ("channel", channel.name.clone())];
            m.encode_family(&labels)?.encode_gauge(&n.load(Relaxed))?;
        }
    }
    Ok(())
}

fn ops(node: &Node, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let mut m = enc.encode_descriptor(
        "quotecast_ops",
        "Client ops by op and result (ok or the error code).",
        None,
        MetricType::Counter,
    )?;
    for (i, stats) in node.shard_stats.iter().enumerate() {
        for (op, result, n) in stats.metrics.ops() {
            let labels = [
                ("shard", i.to_string()),
                ("op", op.to_owned()),
                ("result", result.to_owned()),
            ];
            counter(&mut m.encode_family(&labels)?, n)?;
        }
    }
    Ok(())
}

fn closes(node: &Node, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let mut m = enc.encode_descriptor(
        "quotecast_closes",
        "Connections closed, by the close code they were sent.",
        None,
        MetricType::Counter,
    )?;
    for (i, stats) in node.shard_stats.iter().enumerate() {
        for (code, n) in stats.metrics.closes() {
            let labels = [("shard", i.to_string()), ("code", code)];
            counter(&mut m.encode_family(&labels)?, n)?;
        }
    }
    Ok(())
}

fn counter(m: &mut MetricEncoder, n: u64) -> Result<(), Error> {
    m.encode_counter::<NoLabelSet, u64, f64>(&n, None)
}

fn histograms(node: &Node, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    type Pick = fn(&ShardStats) -> HistogramReading;
    let all: [(&str, &str, Pick); 3] = [
        (
            "quotecast_delivery_latency_seconds",
            "Age of the oldest value in a write when the write finished (ring to socket).",
            |s| s.metrics.ring_to_socket.read(),
        ),
        (
            "quotecast_flush_cycle_seconds",
            "Time one turn of the shard's loop takes: ring drain, window close, flush wheel, write pass.",
            |s| s.metrics.flush_cycle.read(),
        ),
        (
            "quotecast_handshake_seconds",
            "From accept to 101 Switching Protocols written.",
            |s| s.metrics.handshake.read(),
        ),
    ];
    for (name, help, pick) in all {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (i, stats) in node.shard_stats.iter().enumerate() {
            let h = pick(stats);
            let labels = shard_label(i);
            let mut f = m.encode_family(&labels)?;
            f.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        }
    }
    Ok(())
}

fn node_wide(node: &Node, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let agg = node.aggregator.snapshot();
    let counters = [
        (
            "quotecast_aggregator_quotes",
            "Venue quotes received from the feed.",
            agg.quotes,
        ),
        (
            "quotecast_aggregator_rejected",
            "Venue quotes rejected as malformed.",
            agg.rejected,
        ),
        (
            "quotecast_aggregator_published",
            "Best prices published to the shards.",
            agg.published,
        ),
        (
            "quotecast_aggregator_events",
            "Metric and reliable events forwarded to the shards.",
            agg.events,
        ),
        (
            "quotecast_ring_overruns",
            "Values that found a shard ring full and were parked.",
            agg.overruns,
        ),
        (
            "quotecast_feed_input_errors",
            "Malformed feed input dropped.",
            agg.feed_input_errors,
        ),
    ];
    for (name, help, value) in counters {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        counter(&mut m, value)?;
    }
    let now_us = clock::now_us();
    let age = match agg.last_quote_us {
        0 => 0.0,
        last => now_us.saturating_sub(last) as f64 / 1e6,
    };
    let gauges = [
        (
            "quotecast_feed_last_quote_age_seconds",
            "Seconds since the last venue quote.",
            age,
        ),
        (
            "quotecast_feed_stale",
            "1 while the feed is stale (no quote for feed.feed_stale_after_ms).",
            f64::from(u8::from(node.feed_stale_since(now_us).is_some())),
        ),
        (
            "quotecast_ring_pending",
            "Values parked for full shard rings.",
            agg.pending as f64,
        ),
        (
            "quotecast_draining",
            "1 while the node drains.",
            f64::from(u8::from(node.is_draining())),
        ),
    ];
    for (name, help, value) in gauges {
        enc.encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&value)?;
    }
    if let Some(bus) = node.aggregator.bus.get() {
        enc.encode_descriptor(
            "quotecast_bus_connected",
            "1 while the feed's NATS client is connected.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&f64::from(u8::from(bus.connected())))?;
        let mut m = enc.encode_descriptor(
            "quotecast_bus_slow_consumer_events",
            "Times the NATS client dropped messages this node read too slowly.",
            None,
            MetricType::Counter,
        )?;
        counter(&mut m, bus.slow_consumer_events())?;
        let mut m = enc.encode_descriptor(
            "quotecast_bus_consumer_pending",
            "Messages of the stream stored after the last one this node read (its lag).",
            None,
            MetricType::Gauge,
        )?;
        for (stream, n) in bus.consumer_pending() {
            let labels = [("stream", stream.to_string())];
            m.encode_family(&labels)?.encode_gauge(&n)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
