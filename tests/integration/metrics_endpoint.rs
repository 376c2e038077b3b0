//! `GET /metrics`: the Prometheus exposition parses with a real parser,
//! sits behind `metrics.token` when one is set, and its counters and
//! histograms move as clients connect, subscribe and are closed for
//! different reasons.

use crate::util::*;
use prometheus_parse::{Sample, Scrape, Value as Prom};
use std::time::{Duration, Instant};
use tungstenite::Message;

const SCRAPE_TOKEN: &str = "scrape-token-5b1e0c77";
const TOML: &str = "[server]\nops_per_sec = 5\nops_burst = 5\nrate_limit_close_after = 3\n\
                    [metrics]\ntoken = \"scrape-token-5b1e0c77\"\n";

/// Scrapes `/metrics` with the token and parses the exposition.
fn scrape(server: &Server) -> Vec<Sample> {
    let auth = format!("Bearer {SCRAPE_TOKEN}");
    let resp = http_get(server.addr, "/metrics", &[("Authorization", &auth)]);
    assert_eq!(resp.status, 200, "{resp:?}");
    let ctype = resp.header("content-type").unwrap_or_default();
    assert!(ctype.contains("openmetrics-text"), "content type {ctype}");
    let lines = resp.body.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).expect("exposition parses").samples
}

/// The sum over shards of `metric` with `labels`: a counter or gauge value,
/// or a histogram's observation count (its `+Inf` bucket).
fn total(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Prom::Counter(v) | Prom::Gauge(v) | Prom::Untyped(v) => *v,
            Prom::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            Prom::Summary(_) => panic!("quotecast exposes no summaries"),
        })
        .sum()
}

/// Scrapes until `metric{labels}` summed over shards satisfies `pred`
/// (shards publish every 100 ms); returns the last scrape.
fn scrape_until(
    server: &Server,
    metric: &str,
    labels: &[(&str, &str)],
    pred: impl Fn(f64) -> bool,
) -> Vec<Sample> {
    let end = deadline();
    loop {
        let samples = scrape(server);
        let v = total(&samples, metric, labels);
        if pred(v) {
            return samples;
        }
        assert!(Instant::now() < end, "{metric}{labels:?} stuck at {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_need_the_scrape_token_when_one_is_set() {
    let s = start_sim(3, 100, &[], Some(TOML));
    assert_eq!(http_get(s.addr, "/metrics", &[]).status, 401);
    let wrong = [("Authorization", "Bearer scrape-token-5b1e0c78")];
    assert_eq!(http_get(s.addr, "/metrics", &wrong).status, 401);
    // An ADMIN JWT is not the scrape token either.
    let admin = format!("Bearer {}", token(&["ADMIN"]));
    assert_eq!(
        http_get(s.addr, "/metrics", &[("Authorization", &admin)]).status,
        401
    );
    let samples = scrape(&s);
    for name in [
        "quotecast_connections",
        "quotecast_subscriptions",
        "quotecast_closes_total",
        "quotecast_frames_total",
        "quotecast_socket_full_writes_total",
        "quotecast_delivery_latency_seconds",
        "quotecast_flush_cycle_seconds",
        "quotecast_handshake_seconds",
        "quotecast_aggregator_quotes_total",
        "quotecast_feed_stale",
        "quotecast_due_unserved_connections",
        "quotecast_flush_cycle_max_microseconds",
    ] {
        assert!(
            samples.iter().any(|x| x.metric == name),
            "{name} missing from the exposition"
        );
    }
}

#[test]
fn counters_follow_connects_subscribes_and_closes() {
    let s = start_sim(3, 200, &[], Some(TOML));
    let before = scrape(&s);
    assert_eq!(total(&before, "quotecast_connections", &[]), 0.0);
    assert_eq!(total(&before, "quotecast_closes_total", &[]), 0.0);
    // The shard ticks from the start: its cycle histogram counts.
    scrape_until(&s, "quotecast_flush_cycle_seconds", &[], |v| v > 0.0);

    // Connect and subscribe: connections, subscriptions, ops, handshakes
    // and ring-to-socket latency move.
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD", "GBPUSD"]);
    scrape_until(&s, "quotecast_connections", &[("transport", "ws")], |v| {
        v == 1.0
    });
    scrape_until(
        &s,
        "quotecast_subscriptions",
        &[("channel", "prices")],
        |v| v == 2.0,
    );
    let ok = [("op", "subscribe"), ("result", "ok")];
    scrape_until(&s, "quotecast_ops_total", &ok, |v| v == 1.0);
    scrape_until(&s, "quotecast_handshake_seconds", &[], |v| v == 1.0);
    let seen = scrape_until(&s, "quotecast_delivery_latency_seconds", &[], |v| v > 0.0);
    assert!(total(&seen, "quotecast_frames_total", &[]) > 0.0);
    assert!(total(&seen, "quotecast_written_bytes_total", &[]) > 0.0);
    scrape_until(&s, "quotecast_flush_cycle_max_microseconds", &[], |v| {
        v > 0.0
    });

    // Closed by the client: 1000.
    ws.ws.close(None).unwrap();
    let _ = ws.ws.flush();
    scrape_until(&s, "quotecast_closes_total", &[("code", "1000")], |v| {
        v == 1.0
    });

    // Text that is not UTF-8: 1007.
    let mut raw = raw_connect(&s, &trader());
    std::io::Write::write_all(&mut raw.stream, &client_frame(1, b"{\"op\":\xc0}")).unwrap();
    scrape_until(&s, "quotecast_closes_total", &[("code", "1007")], |v| {
        v == 1.0
    });

    // An op flood: rate_limited errors, then 4029.
    let mut flood = connect(&s, &trader());
    for id in 1..=40 {
        let op = serde_json::json!({"op": "ping", "id": id}).to_string();
        if flood.ws.write(Message::text(op)).is_err() {
            break;
        }
    }
    let _ = flood.ws.flush();
    let (code, _) = flood.expect_close(deadline());
    assert_eq!(code, Some(4029));
    let limited = [("op", "ping"), ("result", "rate_limited")];
    scrape_until(&s, "quotecast_ops_total", &limited, |v| v >= 3.0);
    let after = scrape_until(&s, "quotecast_closes_total", &[("code", "4029")], |v| {
        v == 1.0
    });
    let pings_ok = total(
        &after,
        "quotecast_ops_total",
        &[("op", "ping"), ("result", "ok")],
    );
    assert!(
        pings_ok >= 5.0,
        "the burst of 5 pings passed, counted {pings_ok}"
    );
    assert_eq!(total(&after, "quotecast_handshake_seconds", &[]), 3.0);
    scrape_until(&s, "quotecast_connections", &[], |v| v == 0.0);
    scrape_until(&s, "quotecast_subscriptions", &[], |v| v == 0.0);
}

#[test]
fn metrics_listen_moves_the_endpoint_off_the_shards_port() {
    // A free port for metrics.listen (it must be known before the start).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let s = start_sim(3, 100, &[], Some(&toml));
    assert_eq!(http_get(s.addr, "/metrics", &[]).status, 404);
    let metrics_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let resp = http_get(metrics_addr, "/metrics", &[]);
    assert_eq!(resp.status, 200, "{resp:?}");
    let lines = resp.body.lines().map(|l| Ok(l.to_owned()));
    let samples = Scrape::parse(lines).unwrap().samples;
    assert!(samples.iter().any(|x| x.metric == "quotecast_connections"));
    assert_eq!(http_get(metrics_addr, "/v1/status", &[]).status, 404);
}
