//! `subscribe` gets an `ack`, then exactly one `snapshot` of the newly subscribed
//! symbols, before any live `price` of that subscription.

use crate::util::*;
use serde_json::{json, Value};

fn symbols_of(frames: &Value) -> Vec<String> {
    frames
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {frames}"))
        .iter()
        .map(|p| {
            p["symbol"]
                .as_str()
                .unwrap_or_else(|| panic!("no symbol in {p}"))
                .to_string()
        })
        .collect()
}

#[test]
fn ack_then_snapshot_then_prices() {
    let s = start_sim(5, 5000, &[], None);
    let mut ws = connect(&s, &trader());

    // Nothing subscribed yet: the very next frame is the ack, then the snapshot.
    ws.send(
        &json!({"op": "subscribe", "id": 1, "channel": "prices", "symbols": ["EURUSD", "GBPUSD"]}),
    )
    .unwrap();
    let (ack, before) = ws.recv_until(deadline(), |v| v["type"] != "price");
    assert!(
        before.is_empty(),
        "prices before the ack: {}",
        tail(&before)
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], 1, "{ack}");
    assert_eq!(ack["channel"], "prices", "{ack}");
    let mut subscribed = symbols_of_strings(&ack["subscribed"]);
    subscribed.sort();
    assert_eq!(subscribed, ["EURUSD", "GBPUSD"], "{ack}");
    assert!(
        ack["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{ack}"
    );

    let snap = match ws.next(deadline()) {
        Some(Event::Json(v)) => v,
        other => panic!("expected the snapshot right after the ack, got {other:?}"),
    };
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(snap["channel"], "prices", "{snap}");
    for sym in symbols_of(&snap["data"]) {
        assert!(
            sym == "EURUSD" || sym == "GBPUSD",
            "snapshot has unsubscribed {sym}: {snap}"
        );
    }

    // Live prices follow; no second snapshot; seq continues past the snapshot's.
    let frames = ws.collect_at_least(1000, |f| !prices(f).is_empty());
    assert!(
        frames.iter().all(|v| v["type"] != "snapshot"),
        "second snapshot: {}",
        tail(&frames)
    );
    let live = prices(&frames);
    assert!(
        !live.is_empty(),
        "no live prices within 1 s on a 5000 quotes/s feed"
    );
    for p in &live {
        let sym = p["symbol"].as_str().unwrap();
        assert!(
            sym == "EURUSD" || sym == "GBPUSD",
            "price of unsubscribed {sym}"
        );
        if let Some(snapped) = snap["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["symbol"] == sym)
        {
            assert!(
                p["seq"].as_u64() > snapped["seq"].as_u64(),
                "live {p} not newer than snapshot {snapped}"
            );
        }
    }

    // Adding a symbol: ack, then a snapshot of only that symbol (the feed has run
    // for a second, so it has a value), before any USDJPY price.
    let (ack, snap) = ws.subscribe(2, &["USDJPY"]);
    assert_eq!(symbols_of_strings(&ack["subscribed"]), ["USDJPY"], "{ack}");
    assert_eq!(
        symbols_of(&snap["data"]),
        ["USDJPY"],
        "snapshot must hold just the new symbol: {snap}"
    );
    let usdjpy = &snap["data"][0];
    for field in ["seq", "bid", "ask", "mid", "spread", "ts"] {
        assert!(
            usdjpy[field].is_number(),
            "snapshot entry without {field}: {usdjpy}"
        );
    }
    let frames = ws.collect_at_least(1000, |f| prices(f).iter().any(|p| p["symbol"] == "USDJPY"));
    assert!(
        frames.iter().all(|v| v["type"] != "snapshot"),
        "unexpected snapshot: {}",
        tail(&frames)
    );
    assert!(
        prices(&frames).iter().any(|p| p["symbol"] == "USDJPY"),
        "no USDJPY price after subscribing"
    );
}

fn symbols_of_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn replay_best_price_snapshot_and_empty_snapshot() {
    let mut feed = ReplayFeed::bind();
    let s = feed.start_server("EURUSD,GBPUSD,USDJPY", "LP1,LP2", None);
    feed.accept(deadline());

    // Before any quote: subscribing gets an ack and an empty snapshot.
    let mut a = connect(&s, &trader());
    let (ack, snap) = a.subscribe(1, &["EURUSD", "GBPUSD", "USDJPY"]);
    assert_eq!(
        ack["subscribed"].as_array().map(|a| a.len()),
        Some(3),
        "{ack}"
    );
    assert_eq!(
        snap["data"],
        json!([]),
        "no quote yet, so an empty snapshot: {snap}"
    );

    // Best bid from LP2, best ask from LP1.
    feed.quote("EURUSD", "LP1", 1.0841, 1_000_000, 1.0843, 500_000);
    feed.quote("EURUSD", "LP2", 1.0842, 2_000_000, 1.0844, 700_000);
    let best = a.recv_json_until(deadline(), |v| {
        v["type"] == "price" && v["symbol"] == "EURUSD" && close(&v["bid"], 1.0842)
    });
    assert!(
        close(&best["ask"], 1.0843),
        "best ask is LP1's 1.0843: {best}"
    );
    assert!(close(&best["mid"], 1.08425), "mid: {best}");
    assert!(close(&best["spread"], 0.0001), "spread: {best}");
    assert_eq!(best["bid_src"], "LP2", "{best}");
    assert_eq!(best["ask_src"], "LP1", "{best}");
    assert_eq!(best["bid_size"].as_f64(), Some(2_000_000.0), "{best}");
    assert_eq!(best["ask_size"].as_f64(), Some(500_000.0), "{best}");
    let sbps = best["spread_bps"]
        .as_f64()
        .unwrap_or_else(|| panic!("spread_bps: {best}"));
    assert!(
        (sbps - 0.0001 / 1.08425 * 1e4).abs() < 1e-3,
        "spread_bps: {best}"
    );

    // A second client's snapshot holds EURUSD's current best, not GBPUSD (no value).
    let mut b = connect(&s, &trader());
    let (_, snap) = b.subscribe(7, &["EURUSD", "GBPUSD"]);
    assert_eq!(symbols_of(&snap["data"]), ["EURUSD"], "{snap}");
    let e = &snap["data"][0];
    assert!(
        close(&e["bid"], 1.0842) && close(&e["ask"], 1.0843),
        "snapshot value: {e}"
    );
    assert_eq!(
        e["seq"], best["seq"],
        "snapshot seq is the latest: {e} vs {best}"
    );

    // Live updates after the snapshot, seq moving on.
    feed.quote("GBPUSD", "LP1", 1.2701, 1_000_000, 1.2703, 1_000_000);
    feed.quote("EURUSD", "LP2", 1.0840, 1_000_000, 1.0844, 1_000_000);
    let (mut g, mut e2) = (None, None);
    while g.is_none() || e2.is_none() {
        match b.next(deadline()) {
            Some(Event::Json(v)) if v["type"] == "price" && v["symbol"] == "GBPUSD" => g = Some(v),
            Some(Event::Json(v)) if v["type"] == "price" && v["symbol"] == "EURUSD" => e2 = Some(v),
            Some(Event::Json(_)) => {}
            other => {
                panic!("waiting for GBPUSD and EURUSD updates: {other:?} (so far {g:?} {e2:?})")
            }
        }
    }
    let (g, e2) = (g.unwrap(), e2.unwrap());
    assert!(close(&g["bid"], 1.2701) && close(&g["ask"], 1.2703), "{g}");
    // LP2 withdrew its better bid: best bid falls back to LP1's 1.0841.
    assert!(
        close(&e2["bid"], 1.0841),
        "best bid after LP2 dropped to 1.0840: {e2}"
    );
    assert_eq!(e2["bid_src"], "LP1", "{e2}");
    assert!(
        e2["seq"].as_u64() > e["seq"].as_u64(),
        "seq must increase: {e} then {e2}"
    );
}
