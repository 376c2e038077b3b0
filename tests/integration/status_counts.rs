//! `/v1/status` and (for ADMIN) `/v1/channels` count subscriptions per
//! channel and subscribers per symbol across the shards, and follow
//! unsubscribes and closes.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

/// The `/v1/status` `channels` figures match `want` (channel → subscriptions)
/// and the prices `subscribers` are `subscribers`.
fn counts_are(v: &Value, want: &[(&str, u64)], subscribers: &Value) -> bool {
    let channels = &v["channels"];
    want.iter()
        .all(|(name, n)| channels[name]["subscriptions"] == *n)
        && channels["prices"]["subscribers"] == *subscribers
}

fn channels_doc(s: &Server, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = http_get(s.addr, "/v1/channels", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

fn entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["channels"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

#[test]
fn counts_per_channel_and_symbol_follow_subscriptions() {
    let s = start_sim(3, 200, &["--shards", "2"], None);
    let mut a = connect(&s, &trader());
    let mut b = connect(&s, &trader());
    let mut c = connect_as(&s, "u3", "t2", &["TRADER"]);
    a.subscribe(1, &["EURUSD", "GBPUSD"]);
    b.subscribe(1, &["EURUSD"]);
    subscribe_op(
        &mut a,
        json!({"op":"subscribe","id":2,"channel":"metrics.trading","metrics":["trade_count","trade_volume"]}),
    );
    for ws in [&mut b, &mut c] {
        let (ack, _) = ws.request(json!({"op":"subscribe","id":3,"channel":"alerts"}));
        assert_eq!(ack["subscribed"], true, "{ack}");
    }

    let want = [
        ("prices", 3),
        ("metrics.trading", 1),
        ("metrics.pnl", 0),
        ("alerts", 2),
        ("sessions", 0),
    ];
    let subscribers = json!({"EURUSD": 2, "GBPUSD": 1});
    status_until(&s, deadline(), |v| counts_are(v, &want, &subscribers));

    // /v1/channels: the same figures for ADMIN, none for anyone else.
    let admin = channels_doc(&s, &token(&["ADMIN"]));
    assert_eq!(entry(&admin, "prices")["subscriptions"], 3, "{admin}");
    assert_eq!(
        entry(&admin, "prices")["subscribers"],
        subscribers,
        "{admin}"
    );
    assert_eq!(entry(&admin, "alerts")["subscriptions"], 2, "{admin}");
    let plain = channels_doc(&s, &trader());
    let prices = entry(&plain, "prices");
    assert!(
        prices.get("subscriptions").is_none() && prices.get("subscribers").is_none(),
        "counts shown to a non-ADMIN token: {prices}"
    );

    // Unsubscribes and a close bring them down.
    let (ack, _) =
        a.request(json!({"op":"unsubscribe","id":4,"channel":"prices","symbols":["GBPUSD"]}));
    assert_eq!(ack["unsubscribed"], json!(["GBPUSD"]), "{ack}");
    let (ack, _) = a.request(json!({"op":"unsubscribe","id":5,"channel":"metrics.trading"}));
    assert_eq!(ack["type"], "ack", "{ack}");
    drop(b);
    let want = [("prices", 1), ("metrics.trading", 0), ("alerts", 1)];
    status_until(&s, deadline(), |v| {
        counts_are(v, &want, &json!({"EURUSD": 1}))
    });
    c.ping(6);
}
