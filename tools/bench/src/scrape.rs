//! quotecast's own count of socket writes, read from its `/metrics` at the
//! edges of the window: the probe counts writes at the writer, so this is
//! the figure to hold against it. The client cannot count them: when it
//! falls behind, one read takes several writes.

use quotecast_testkit::http;
use std::net::SocketAddr;

/// The sum of `quotecast_flushes_total` over the server's shards, or `None`
/// when the server does not answer with it in time.
pub fn flushes_total(addr: SocketAddr) -> Option<u64> {
    let r = http::get(addr, "/metrics", &[]).ok()?;
    (r.status == 200)
        .then(|| sum_counter(&r.body, "quotecast_flushes_total"))
        .flatten()
}

/// The sum of every sample of counter `name` in an OpenMetrics text body.
fn sum_counter(body: &str, name: &str) -> Option<u64> {
    let mut samples = body.lines().filter_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse::<f64>().ok()
    });
    let first = samples.next()?;
    Some((first + samples.sum::<f64>()) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_shard_and_ignores_other_metrics() {
        let body = "# TYPE quotecast_flushes counter\n\
                    quotecast_flushes_total{shard=\"0\"} 448233\n\
                    quotecast_flushes_total{shard=\"1\"} 17\n\
                    quotecast_flushes_total_extra 5\n\
                    quotecast_frames_total{shard=\"0\"} 9\n";
        assert_eq!(sum_counter(body, "quotecast_flushes_total"), Some(448_250));
        assert_eq!(
            sum_counter("quotecast_flushes_total 3\n", "quotecast_flushes_total"),
            Some(3)
        );
        assert_eq!(
            sum_counter("404 not found", "quotecast_flushes_total"),
            None
        );
    }
}
