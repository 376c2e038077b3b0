//! What one worker thread counts, how the threads' counts merge, and the
//! summaries that end up in the report.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Histogram of microseconds, 1 µs to 10 min at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

/// Everything one worker measured. Latencies and gaps in microseconds.
pub struct WorkerStats {
    /// `now - ts` of live prices received by healthy (normally reading) connections.
    pub latency: Histogram<u64>,
    /// The same for connections that read only every K ms.
    pub latency_slow: Histogram<u64>,
    /// Healthy prices generated more than 1/max_rate_hz after their
    /// connection's previous flush: no rate cap may hold them back, so they
    /// show the server's own delay (the leading edge).
    pub latency_leading: Histogram<u64>,
    /// Healthy prices that shared a socket read with a later write of the
    /// server's: timed at that write's arrival, so upper bounds, and not in
    /// `latency` (see `reads.rs`).
    pub latency_merged: Histogram<u64>,
    /// Gap between consecutive flushes of one healthy connection.
    pub flush_gap: Histogram<u64>,
    /// How long a healthy connection's bytes waited in its socket for the
    /// load thread to read them (read time minus kernel receive stamp).
    pub read_delay: Histogram<u64>,
    /// From `connect()` to the socket being writable.
    pub connect: Histogram<u64>,
    /// From `connect()` to the `101`.
    pub handshake: Histogram<u64>,
    /// From sending `subscribe` to its `ack`.
    pub subscribe: Histogram<u64>,
    /// Flushes received in the window by each healthy connection that got any price.
    pub busy_flushes: Vec<u32>,
    /// Healthy connections open at the end that got no price in the window.
    pub idle_conns: u64,
    /// Counters, all over the measurement window unless named otherwise.
    pub counts: Counts,
    /// Close codes received (whole run).
    pub close_codes: BTreeMap<u16, u64>,
    /// Connection failures by reason (whole run).
    pub failures: BTreeMap<String, u64>,
    /// Healthy latency per ramp step.
    pub steps: Vec<Histogram<u64>>,
}

/// Plain counters of a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    /// Live price frames received in the window.
    pub price_frames: u64,
    /// Bytes of those frames' payloads.
    pub price_bytes: u64,
    /// All bytes read from sockets in the window.
    pub wire_bytes: u64,
    /// Socket reads in the window.
    pub reads: u64,
    /// Flushes (bursts of prices) received in the window.
    pub flushes: u64,
    /// Price frames in which `seq` could not be found (whole run).
    pub bad_prices: u64,
    /// Prices in the window whose generator stamp was not found by (symbol,
    /// `seq`), or without a `ts` in a run with no feed: not timed (see `stamps.rs`).
    pub unmatched_prices: u64,
    /// Snapshots received (whole run).
    pub snapshots: u64,
    /// Acks received (whole run).
    pub acks: u64,
    /// Acks that carried per-symbol errors (whole run).
    pub ack_errors: u64,
    /// `error` messages received (whole run).
    pub errors: u64,
    /// `status: lagging` messages received (whole run).
    pub lagging: u64,
    /// Pings answered (whole run).
    pub pings: u64,
    /// Other messages (whole run).
    pub other: u64,
    /// Times a load thread's loop came back more than 20 ms later than its
    /// poll timeout in the window: the generator itself stalled (preempted,
    /// descheduled), and latencies around it include the stall.
    pub gen_stalls: u64,
    /// The longest such stall, µs.
    pub gen_stall_max_us: u64,
}

impl WorkerStats {
    /// Empty stats.
    pub fn new() -> Self {
        WorkerStats {
            latency: histogram(),
            latency_slow: histogram(),
            latency_leading: histogram(),
            latency_merged: histogram(),
            flush_gap: histogram(),
            read_delay: histogram(),
            connect: histogram(),
            handshake: histogram(),
            subscribe: histogram(),
            busy_flushes: Vec::new(),
            idle_conns: 0,
            counts: Counts::default(),
            close_codes: BTreeMap::new(),
            failures: BTreeMap::new(),
            steps: Vec::new(),
        }
    }

    /// Counts one failure of `reason`.
    pub fn fail(&mut self, reason: &str) {
        *self.failures.entry(reason.to_string()).or_default() += 1;
    }

    /// Adds another worker's stats into these.
    pub fn merge(&mut self, o: WorkerStats) {
        let add = |a: &mut Histogram<u64>, b: &Histogram<u64>| {
            a.add(b).expect("histograms share bounds");
        };
        add(&mut self.latency, &o.latency);
        add(&mut self.latency_slow, &o.latency_slow);
        add(&mut self.latency_leading, &o.latency_leading);
        add(&mut self.latency_merged, &o.latency_merged);
        add(&mut self.flush_gap, &o.flush_gap);
        add(&mut self.read_delay, &o.read_delay);
        add(&mut self.connect, &o.connect);
        add(&mut self.handshake, &o.handshake);
        add(&mut self.subscribe, &o.subscribe);
        self.busy_flushes.extend(o.busy_flushes);
        self.idle_conns += o.idle_conns;
        let c = &mut self.counts;
        let d = o.counts;
        c.price_frames += d.price_frames;
        c.price_bytes += d.price_bytes;
        c.wire_bytes += d.wire_bytes;
        c.reads += d.reads;
        c.flushes += d.flushes;
        c.bad_prices += d.bad_prices;
        c.unmatched_prices += d.unmatched_prices;
        c.snapshots += d.snapshots;
        c.acks += d.acks;
        c.ack_errors += d.ack_errors;
        c.errors += d.errors;
        c.lagging += d.lagging;
        c.pings += d.pings;
        c.other += d.other;
        c.gen_stalls += d.gen_stalls;
        c.gen_stall_max_us = c.gen_stall_max_us.max(d.gen_stall_max_us);
        for (k, v) in o.close_codes {
            *self.close_codes.entry(k).or_default() += v;
        }
        if self.steps.len() < o.steps.len() {
            self.steps.resize_with(o.steps.len(), histogram);
        }
        for (a, b) in self.steps.iter_mut().zip(&o.steps) {
            add(a, b);
        }
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
    }
}

/// Percentiles of a histogram of microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest sample, µs.
    pub max_us: u64,
    /// Mean, µs.
    pub mean_us: f64,
}

impl Percentiles {
    /// Summarizes `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }

    /// `p50/p90/p99/p99.9/max` in milliseconds, for the human summary.
    pub fn line_ms(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// Points (percentile, µs) of `h` for a percentile plot: 0, 50, 75, 90,
/// 95, 99 ... up to 99.999 and the maximum, on a log scale of 1/(1-q).
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = vec![(0.0, h.min())];
    for k in 1..=20 {
        // 1 - 10^(-k/4): 43.8%, 68.4%, 82.2%, 90%, ... 99.999%.
        let q = 1.0 - 10f64.powf(-(k as f64) / 4.0);
        out.push((q * 100.0, h.value_at_quantile(q)));
    }
    out.push((100.0, h.max()));
    out
}

/// Flush cadence of the healthy connections that received prices.
#[derive(Debug, Clone, Serialize)]
pub struct Cadence {
    /// Connections that got at least one price in the window.
    pub busy_conns: usize,
    /// Healthy connections that got none.
    pub idle_conns: u64,
    /// Flushes per second per busy connection: mean over connections.
    pub mean_hz: f64,
    /// ... the lowest connection.
    pub min_hz: f64,
    /// ... the 1st percentile over connections.
    pub p1_hz: f64,
    /// ... the median connection.
    pub p50_hz: f64,
    /// ... the highest connection.
    pub max_hz: f64,
    /// Share of busy connections at >= 95% of the server's `max_rate_hz`.
    pub share_at_max_rate: Option<f64>,
    /// Gap between consecutive flushes of one connection.
    pub gap: Percentiles,
}

impl Cadence {
    /// Cadence from per-connection flush counts over `window_s` seconds.
    pub fn of(
        flushes: &[u32],
        idle_conns: u64,
        window_s: f64,
        gap: &Histogram<u64>,
        max_rate_hz: Option<u64>,
    ) -> Self {
        let mut hz: Vec<f64> = flushes
            .iter()
            .map(|&f| f64::from(f) / window_s.max(1e-9))
            .collect();
        hz.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if hz.is_empty() {
                0.0
            } else {
                hz[((hz.len() - 1) as f64 * q).round() as usize]
            }
        };
        let share_at_max_rate = max_rate_hz.filter(|_| !hz.is_empty()).map(|m| {
            let bar = m as f64 * 0.95;
            hz.iter().filter(|&&h| h >= bar).count() as f64 / hz.len() as f64
        });
        Cadence {
            busy_conns: hz.len(),
            idle_conns,
            mean_hz: if hz.is_empty() {
                0.0
            } else {
                hz.iter().sum::<f64>() / hz.len() as f64
            },
            min_hz: at(0.0),
            p1_hz: at(0.01),
            p50_hz: at(0.5),
            max_hz: at(1.0),
            share_at_max_rate,
            gap: Percentiles::of(gap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_from_counts() {
        let mut gap = histogram();
        gap.record(16_667).unwrap();
        let c = Cadence::of(&[600, 580, 300], 2, 10.0, &gap, Some(60));
        assert_eq!(c.busy_conns, 3);
        assert_eq!(c.min_hz, 30.0);
        assert_eq!(c.max_hz, 60.0);
        assert_eq!(c.p50_hz, 58.0);
        assert!((c.share_at_max_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(c.gap.count, 1);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = WorkerStats::new();
        let mut b = WorkerStats::new();
        b.latency.record(100).unwrap();
        b.counts.price_frames = 5;
        b.fail("refused");
        *b.close_codes.entry(1001).or_default() += 1;
        a.merge(b);
        assert_eq!(a.latency.len(), 1);
        assert_eq!(a.counts.price_frames, 5);
        assert_eq!(a.failures["refused"], 1);
        assert_eq!(a.close_codes[&1001], 1);
    }
}
