//! After the `unsubscribe` ack, no price of the dropped symbols arrives.

use crate::util::*;
use serde_json::json;

#[test]
fn unsubscribe_stops_updates_after_ack() {
    let s = start_sim(5, 5000, &[], None);
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD", "GBPUSD"]);
    // Both are live before we drop one.
    let mut seen = (false, false);
    ws.recv_json_until(deadline(), |v| {
        if v["type"] == "price" {
            seen.0 |= v["symbol"] == "EURUSD";
            seen.1 |= v["symbol"] == "GBPUSD";
        }
        seen.0 && seen.1
    });

    let (ack, _) = ws
        .request(json!({"op": "unsubscribe", "id": 2, "channel": "prices", "symbols": ["GBPUSD"]}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], 2, "{ack}");
    assert_eq!(ack["channel"], "prices", "{ack}");
    assert_eq!(ack["unsubscribed"], json!(["GBPUSD"]), "{ack}");
    let frames = ws.collect_at_least(1000, |f| prices(f).iter().any(|p| p["symbol"] == "EURUSD"));
    let live = prices(&frames);
    assert!(
        live.iter().all(|p| p["symbol"] != "GBPUSD"),
        "GBPUSD after its unsubscribe ack: {}",
        tail(&frames)
    );
    assert!(
        live.iter().any(|p| p["symbol"] == "EURUSD"),
        "EURUSD stopped too"
    );

    // Without symbols: everything on the channel.
    let (ack, _) = ws.request(json!({"op": "unsubscribe", "id": 3, "channel": "prices"}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], 3, "{ack}");
    assert_eq!(ack["unsubscribed"], json!(["EURUSD"]), "{ack}");
    let frames = ws.collect_for(after_ms(1000));
    assert!(
        prices(&frames).is_empty(),
        "prices after unsubscribing all: {}",
        tail(&frames)
    );
    ws.ping(4);
}
