//! The figures behind `GET /metrics` that one shard keeps: fixed-bucket
//! histograms, op results and close codes.
//!
//! The shard counts in plain integers on its own thread ([`Buckets`],
//! [`ShardCounts`]) and copies them into its [`ShardMetrics`] (relaxed
//! atomics) on each housekeeping pass; a scrape reads only those copies, so
//! it never touches a shard's state or waits for it.

use crate::frame::CloseCode;
use crate::model::error::ErrorCode;
use crate::session::{OpKind, OpOutcome};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in milliseconds, around
/// the product's targets (a frame within 50 ms, a 60 fps flush cadence).
pub const BUCKET_BOUNDS_MS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
];
/// Buckets including the last, unbounded one.
const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// The close codes counted one by one; any other lands in "other".
pub const CLOSE_CODES: [CloseCode; 11] = [
    CloseCode::NORMAL,
    CloseCode::GOING_AWAY,
    CloseCode::PROTOCOL_ERROR,
    CloseCode::INVALID_DATA,
    CloseCode::POLICY_VIOLATION,
    CloseCode::TOO_LARGE,
    CloseCode::INTERNAL_ERROR,
    CloseCode::IDLE_TIMEOUT,
    CloseCode::TOKEN_EXPIRED,
    CloseCode::SLOW_CONSUMER,
    CloseCode::RATE_LIMITED,
];
const CLOSE_SLOTS: usize = CLOSE_CODES.len() + 1;

/// Results counted per op kind: `ok`, then each error code.
const RESULTS: usize = ErrorCode::ALL.len() + 1;
const OP_SLOTS: usize = OpKind::ALL.len() * RESULTS;

fn op_slot(outcome: OpOutcome) -> usize {
    let result = outcome.error.map_or(0, |e| e as usize + 1);
    outcome.op as usize * RESULTS + result
}

/// The `result` label of result slot `i` (see [`op_slot`]).
fn result_name(i: usize) -> &'static str {
    i.checked_sub(1)
        .map_or("ok", |e| ErrorCode::ALL[e].as_str())
}

fn close_slot(code: CloseCode) -> usize {
    CLOSE_CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(CLOSE_CODES.len())
}

/// A histogram over [`BUCKET_BOUNDS_MS`], kept by one shard.
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    counts: [u64; BUCKETS],
    sum_us: u64,
}

impl Buckets {
    /// Counts one observation of `us` microseconds.
    pub fn record_us(&mut self, us: u64) {
        let ms = us as f64 / 1_000.0;
        let i = BUCKET_BOUNDS_MS.partition_point(|&bound| bound < ms);
        self.counts[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Counts one observation of `d`.
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
}

/// Op results and close codes counted by one shard.
#[derive(Debug)]
pub struct ShardCounts {
    ops: [u64; OP_SLOTS],
    closes: [u64; CLOSE_SLOTS],
}

impl Default for ShardCounts {
    fn default() -> Self {
        ShardCounts {
            ops: [0; OP_SLOTS],
            closes: [0; CLOSE_SLOTS],
        }
    }
}

impl ShardCounts {
    /// Counts one op.
    pub fn op(&mut self, outcome: OpOutcome) {
        self.ops[op_slot(outcome)] += 1;
    }

    /// Counts one connection closed with `code`.
    pub fn close(&mut self, code: CloseCode) {
        self.closes[close_slot(code)] += 1;
    }
}

/// A [`Buckets`] as published: cumulative since the shard started.
#[derive(Debug, Default)]
pub struct BucketsSnapshot {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

/// A histogram read from a [`BucketsSnapshot`], in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// Sum of the observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// `(upper bound in seconds, observations in that bucket)`, not cumulative,
    /// ending with the `+Inf` bucket.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramReading {
    /// Both readings' observations together (the same buckets).
    pub fn plus(&self, other: &HistogramReading) -> HistogramReading {
        self.combine(other, |a, b| a + b, |a, b| a + b)
    }

    /// The observations made since `earlier`, a reading of the same histogram.
    pub fn minus(&self, earlier: &HistogramReading) -> HistogramReading {
        self.combine(earlier, u64::saturating_sub, |a, b| (a - b).max(0.0))
    }

    fn combine(
        &self,
        other: &HistogramReading,
        counts: fn(u64, u64) -> u64,
        sums: fn(f64, f64) -> f64,
    ) -> HistogramReading {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .zip(&other.buckets)
            .map(|(&(bound, a), &(_, b))| (bound, counts(a, b)))
            .collect();
        HistogramReading {
            sum: sums(self.sum, other.sum),
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

impl BucketsSnapshot {
    fn store(&self, b: &Buckets) {
        for (slot, &n) in self.counts.iter().zip(&b.counts) {
            slot.store(n, Relaxed);
        }
        self.sum_us.store(b.sum_us, Relaxed);
    }

    /// The published histogram.
    pub fn read(&self) -> HistogramReading {
        let bounds = BUCKET_BOUNDS_MS
            .iter()
            .map(|ms| ms / 1_000.0)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.counts)
            .map(|(bound, n)| (bound, n.load(Relaxed)))
            .collect();
        HistogramReading {
            sum: self.sum_us.load(Relaxed) as f64 / 1e6,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

/// What one shard publishes for `GET /metrics`, beyond its [`super::ShardStats`].
#[derive(Debug)]
pub struct ShardMetrics {
    /// Subscriptions per channel, indexed by `ChannelId` (recounted about once a second).
    pub subscriptions_by_channel: Vec<AtomicU64>,
    ops: [AtomicU64; OP_SLOTS],
    closes: [AtomicU64; CLOSE_SLOTS],
    /// Bytes handed to sockets.
    pub bytes_written: AtomicU64,
    /// Writes of the shard's write pass (plain connections; TLS ones are
    /// written by their tasks) that the socket did not take whole (its send
    /// buffer was full): the connection's writer finished them.
    pub socket_full_writes: AtomicU64,
    /// Connections currently behind (writes slower than their flush interval).
    pub lagging: AtomicU64,
    /// Most records waiting in the shard's ring at the start of a turn of
    /// its loop, over the last housekeeping period.
    pub ring_depth: AtomicU64,
    /// Reliable frames queued for connections, not yet written.
    pub reliable_backlog: AtomicU64,
    /// Most connections a write pass left due (its tick budget spent), over
    /// the last housekeeping period: above 0 the shard cannot write every
    /// due connection at once and conflates longer.
    pub due_unserved: AtomicU64,
    /// Longest turn of the shard's loop over the last housekeeping period, µs.
    pub cycle_max_us: AtomicU64,
    /// Age of the oldest value in a write when it finished.
    pub ring_to_socket: BucketsSnapshot,
    /// Time one turn of the shard's loop takes (ring drain, windows, flush
    /// wheel, write pass).
    pub flush_cycle: BucketsSnapshot,
    /// Accept to `101 Switching Protocols` written.
    pub handshake: BucketsSnapshot,
}

/// The shard's histograms, kept in plain integers between publications.
#[derive(Debug, Default)]
pub struct ShardHistograms {
    /// See [`ShardMetrics::ring_to_socket`].
    pub ring_to_socket: Buckets,
    /// See [`ShardMetrics::flush_cycle`].
    pub flush_cycle: Buckets,
    /// See [`ShardMetrics::handshake`].
    pub handshake: Buckets,
}

impl ShardMetrics {
    /// Empty figures for a catalogue of `channels` channels.
    pub fn new(channels: usize) -> Self {
        ShardMetrics {
            subscriptions_by_channel: (0..channels).map(|_| AtomicU64::new(0)).collect(),
            ops: std::array::from_fn(|_| AtomicU64::new(0)),
            closes: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes_written: AtomicU64::new(0),
            socket_full_writes: AtomicU64::new(0),
            lagging: AtomicU64::new(0),
            ring_depth: AtomicU64::new(0),
            reliable_backlog: AtomicU64::new(0),
            due_unserved: AtomicU64::new(0),
            cycle_max_us: AtomicU64::new(0),
            ring_to_socket: BucketsSnapshot::default(),
            flush_cycle: BucketsSnapshot::default(),
            handshake: BucketsSnapshot::default(),
        }
    }

    /// Copies the shard's counts and histograms.
    pub fn publish(&self, counts: &ShardCounts, histograms: &ShardHistograms) {
        for (slot, &n) in self.ops.iter().zip(&counts.ops) {
            slot.store(n, Relaxed);
        }
        for (slot, &n) in self.closes.iter().zip(&counts.closes) {
            slot.store(n, Relaxed);
        }
        self.ring_to_socket.store(&histograms.ring_to_socket);
        self.flush_cycle.store(&histograms.flush_cycle);
        self.handshake.store(&histograms.handshake);
    }

    /// `(op, result, count)` of every op kind and result seen at least once.
    pub fn ops(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        self.ops.iter().enumerate().filter_map(|(i, n)| {
            let n = n.load(Relaxed);
            (n > 0).then(|| {
                (
                    OpKind::ALL[i / RESULTS].as_str(),
                    result_name(i % RESULTS),
                    n,
                )
            })
        })
    }

    /// `(close code label, count)` of every code, zero included; unknown
    /// codes count as `other`.
    pub fn closes(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let labels = CLOSE_CODES
            .iter()
            .map(|c| c.code().to_string())
            .chain(["other".to_owned()]);
        labels.zip(self.closes.iter().map(|n| n.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut b = Buckets::default();
        for us in [500, 1_000, 1_001, 49_000, 3_000_000] {
            b.record_us(us);
        }
        let snap = BucketsSnapshot::default();
        snap.store(&b);
        let r = snap.read();
        assert_eq!(r.count, 5);
        let at = |bound: f64| r.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.001), 2, "500 µs and exactly 1 ms");
        assert_eq!(at(0.002), 1);
        assert_eq!(at(0.05), 1);
        assert_eq!(at(f64::INFINITY), 1);
        assert!((r.sum - 3.051_501).abs() < 1e-9);
    }

    #[test]
    fn ops_and_closes_are_counted_under_their_labels() {
        let mut c = ShardCounts::default();
        let m = ShardMetrics::new(2);
        c.op(OpOutcome {
            op: OpKind::Subscribe,
            error: None,
        });
        c.op(OpOutcome {
            op: OpKind::Subscribe,
            error: Some(ErrorCode::Forbidden),
        });
        c.op(OpOutcome {
            op: OpKind::Invalid,
            error: Some(ErrorCode::TokenExpired),
        });
        c.close(CloseCode::RATE_LIMITED);
        c.close(CloseCode::new(3000).unwrap());
        m.publish(&c, &ShardHistograms::default());
        let ops: Vec<_> = m.ops().collect();
        assert_eq!(
            ops,
            [
                ("subscribe", "ok", 1),
                ("subscribe", "forbidden", 1),
                ("invalid", "token_expired", 1)
            ]
        );
        let closes: Vec<_> = m.closes().filter(|(_, n)| *n > 0).collect();
        assert_eq!(closes, [("4029".to_owned(), 1), ("other".to_owned(), 1)]);
    }
}
