//! quotecast's own count of socket writes, read from its `/metrics` at the
//! edges of the window: the probe counts writes at the writer, so this is
//! the figure to hold against it. The client cannot count them: when it
//! falls behind, one read takes several writes.

use quotecast_testkit::http;
use rustls::ClientConfig;
use std::net::SocketAddr;
use std::sync::Arc;

/// quotecast's write counters, summed over its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteCounts {
    /// `quotecast_flushes_total`: socket writes.
    pub writes: u64,
    /// `quotecast_socket_full_writes_total`: writes a socket did not take
    /// whole (`None` from a build without the counter).
    pub socket_full: Option<u64>,
}

impl WriteCounts {
    /// What was counted between `before` and `self`.
    pub fn since(self, before: WriteCounts) -> WriteCounts {
        WriteCounts {
            writes: self.writes.saturating_sub(before.writes),
            socket_full: self
                .socket_full
                .zip(before.socket_full)
                .map(|(now, then)| now.saturating_sub(then)),
        }
    }
}

/// The server's write counters now (over TLS with `tls`), or `None` when it
/// does not answer with `quotecast_flushes_total` in time.
pub fn write_counts(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Option<WriteCounts> {
    let r = match tls {
        Some(client) => http::get_tls(addr, "/metrics", &[], client.clone()),
        None => http::get(addr, "/metrics", &[]),
    }
    .ok()?;
    if r.status != 200 {
        return None;
    }
    Some(WriteCounts {
        writes: sum_counter(&r.body, "quotecast_flushes_total")?,
        socket_full: sum_counter(&r.body, "quotecast_socket_full_writes_total"),
    })
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

    #[test]
    fn counts_since_an_earlier_reading_and_without_the_socket_full_counter() {
        let at = |writes, socket_full| WriteCounts {
            writes,
            socket_full,
        };
        assert_eq!(at(150, Some(7)).since(at(100, Some(2))), at(50, Some(5)));
        assert_eq!(at(150, None).since(at(100, None)), at(50, None));
    }
}
