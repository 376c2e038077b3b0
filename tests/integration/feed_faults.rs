//! Feed faults: a stalled feed is announced to `prices` subscribers
//! (`status: feed_stale`) and on `/healthz` (200 `degraded: feed_stale`); on
//! recovery they get `status: ok` before prices resume with increasing `seq`.
//! Crossed, non-positive and non-finite venue quotes are never forwarded and
//! are counted in `/v1/status`.

use crate::util::*;
use serde_json::Value;
use std::time::Duration;

const STALE_MS: u64 = 700;
const TOML: &str = "[feed]\nfeed_stale_after_ms = 700\n";

fn price_seq(v: &Value) -> u64 {
    v["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("price without seq: {v}"))
}

#[test]
fn stalled_feed_is_announced_and_recovery_resumes_seq() {
    let mut feed = ReplayFeed::bind();
    let s = feed.start_server("EURUSD,GBPUSD", "LP1,LP2", Some(TOML));
    feed.accept(deadline());
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD"]);

    // Quotes flowing every 100 ms (any status from the start-up gap is skipped).
    // The server stamps the last one between its write and its price.
    let mut bid = 1.0800;
    let mut last_seq = 0;
    let (mut last_quote_ms, mut last_price_ms) = (0, 0);
    for _ in 0..5 {
        bid += 0.0001;
        last_quote_ms = now_ms();
        feed.quote("EURUSD", "LP1", bid, 1_000_000, bid + 0.0002, 1_000_000);
        let p = ws.recv_json_until(deadline(), |v| v["type"] == "price");
        last_price_ms = now_ms();
        assert!(price_seq(&p) > last_seq, "{p}");
        last_seq = price_seq(&p);
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = http_get(s.addr, "/healthz", &[]);
    assert_eq!((r.status, r.body.trim()), (200, "ok"), "{r:?}");

    // The feed stops: feed_stale after the threshold plus housekeeping (and,
    // on a loaded machine, scheduling: the upper bound is generous).
    let (stale, before) = ws.recv_until(deadline(), |v| v["type"] == "status");
    let waited = now_ms() - last_quote_ms;
    assert_eq!(stale["state"], "feed_stale", "{stale}");
    assert!(
        waited >= STALE_MS as i64 - 150 && waited < STALE_MS as i64 + 5000,
        "feed_stale after {waited} ms, threshold {STALE_MS} ms"
    );
    let since = stale["since"]
        .as_i64()
        .unwrap_or_else(|| panic!("no since: {stale}"));
    assert!(
        (last_quote_ms..=last_price_ms).contains(&since),
        "since {since} is not the last quote's time (sent {last_quote_ms}, priced {last_price_ms}): {stale}"
    );
    assert!(
        prices(&before).is_empty(),
        "prices during the stall: {before:?}"
    );
    let r = http_get(s.addr, "/healthz", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), "degraded: feed_stale", "{r:?}");
    assert_eq!(status(&s)["feed"]["stale"], true);
    // Told once, not on every housekeeping pass.
    let quiet = ws.collect_for(after_ms(500));
    assert!(quiet.is_empty(), "more frames while stale: {quiet:?}");

    // Recovery: status ok ahead of the first new price, then seq keeps rising.
    for _ in 0..3 {
        bid += 0.0001;
        feed.quote("EURUSD", "LP1", bid, 1_000_000, bid + 0.0002, 1_000_000);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, before) = ws.recv_until(deadline(), |v| v["type"] == "status");
    assert_eq!(ok["state"], "ok", "{ok}");
    assert!(
        prices(&before).is_empty(),
        "price before status ok: {before:?}"
    );
    let p = ws.recv_json_until(deadline(), |v| v["type"] == "price");
    assert!(
        price_seq(&p) > last_seq,
        "seq after recovery {p}, before {last_seq}"
    );
    let r = http_get(s.addr, "/healthz", &[]);
    assert_eq!((r.status, r.body.trim()), (200, "ok"), "{r:?}");
}

#[test]
fn crossed_and_non_finite_quotes_are_rejected_counted_and_never_forwarded() {
    let mut feed = ReplayFeed::bind();
    let s = feed.start_server("EURUSD,GBPUSD", "LP1,LP2", None);
    feed.accept(deadline());
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD"]);
    feed.quote("EURUSD", "LP1", 1.0841, 1_000_000, 1.0843, 1_000_000);
    let first = ws.recv_json_until(deadline(), |v| v["type"] == "price");
    let agg = status(&s)["aggregator"].clone();
    let (rejected0, input0) = (
        agg["rejected"].as_u64().unwrap(),
        agg["feed_input_errors"].as_u64().unwrap(),
    );

    // Caught by the aggregator: crossed at one venue, zero and negative prices.
    feed.quote("EURUSD", "LP1", 1.0900, 1_000_000, 1.0800, 1_000_000);
    feed.quote("EURUSD", "LP2", 0.0, 1_000_000, 1.0843, 1_000_000);
    feed.quote("EURUSD", "LP2", -1.0, 1_000_000, 1.0843, 1_000_000);
    // Caught by the replay parser: NaN (not JSON) and an infinite number.
    feed.line(
        r#"{"symbol":"EURUSD","venue":"LP2","bid":NaN,"bid_size":1,"ask":1.0843,"ask_size":1}"#,
    );
    feed.line(
        r#"{"symbol":"EURUSD","venue":"LP2","bid":1.08,"bid_size":1,"ask":1e999,"ask_size":1}"#,
    );
    // A good quote after them all, to know they have been processed.
    feed.quote("EURUSD", "LP1", 1.0842, 1_000_000, 1.0844, 1_000_000);

    let (sentinel, before) = ws.recv_until(deadline(), |v| {
        v["type"] == "price" && v["bid"].as_f64() == Some(1.0842)
    });
    assert!(
        prices(&before).is_empty(),
        "a rejected quote was forwarded: {before:?}"
    );
    assert_eq!(price_seq(&sentinel), price_seq(&first) + 1, "{sentinel}");
    let v = status_until(&s, deadline(), |v| {
        v["aggregator"]["rejected"] == rejected0 + 3
            && v["aggregator"]["feed_input_errors"] == input0 + 2
    });
    assert_eq!(v["aggregator"]["published"], 2, "{v}");
    let quiet = ws.collect_for(after_ms(300));
    assert!(prices(&quiet).is_empty(), "{quiet:?}");
}
