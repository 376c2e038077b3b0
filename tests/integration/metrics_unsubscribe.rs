//! Partial `unsubscribe` of a `metrics.*` subscription: only the named
//! metrics stop, the ack says what remains, and the rest keep flowing.

use crate::events_util::*;
use crate::util::*;
use serde_json::json;

fn subscribe_both(ws: &mut Ws) {
    let ack = subscribe_op(
        ws,
        json!({"op":"subscribe","id":1,"channel":"metrics.trading",
            "metrics":["trade_count","trade_volume"],"window_ms":1000,"agg":"sum"}),
    );
    assert_eq!(
        ack["subscribed"],
        json!(["trade_count", "trade_volume"]),
        "{ack}"
    );
}

#[test]
fn unsubscribing_some_metrics_keeps_the_others() {
    let s = start_sim(3, 200, &[], None);
    // A tenant of its own, so the simulator's events do not mix in.
    let mut ws = connect_as(&s, "u1", "tp", &["TRADER"]);
    let mut control = connect_as(&s, "u2", "tp", &["TRADER"]);
    subscribe_both(&mut ws);
    subscribe_both(&mut control);

    let (ack, _) = ws.request(
        json!({"op":"unsubscribe","id":2,"channel":"metrics.trading",
        "metrics":["trade_count","no_such_metric"]}),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["unsubscribed"], json!(["trade_count"]), "{ack}");
    assert_eq!(ack["remaining"], json!(["trade_volume"]), "{ack}");

    let k = future_window_us();
    publish(
        &s,
        &json!([trade(
            "tp",
            k + 100,
            "FX1",
            json!({"trade_count": 1, "trade_volume": 500.0})
        )]),
    );
    let seq = k / 1_000_000;
    // The control connection, still on both, sees trade_count change...
    metric_frame(&mut control, "trade_count", seq);
    // ...the partly unsubscribed one sees trade_volume and never trade_count.
    let (volume, before) = metric_frame(&mut ws, "trade_volume", seq);
    assert_eq!(volume["values"]["trade_volume"]["value"], 500.0, "{volume}");
    let mut frames = before;
    frames.push(volume);
    frames.extend(ws.collect_for(after_ms(1500)));
    assert!(
        frames.iter().all(|f| f["values"]["trade_count"].is_null()),
        "trade_count after its unsubscribe ack: {}",
        tail(&frames)
    );

    let (err, _) = ws.request(json!({"op":"unsubscribe","id":3,"channel":"prices",
        "metrics":["trade_volume"]}));
    assert_eq!(
        (&err["type"], &err["code"]),
        (&json!("error"), &json!("bad_request")),
        "{err}"
    );

    let (ack, _) = ws.request(
        json!({"op":"unsubscribe","id":4,"channel":"metrics.trading",
        "metrics":["trade_volume"]}),
    );
    assert_eq!(ack["unsubscribed"], json!(["trade_volume"]), "{ack}");
    assert_eq!(ack["remaining"], json!([]), "{ack}");
    let (ack, _) = ws.request(json!({"op":"unsubscribe","id":5,"channel":"metrics.trading"}));
    assert_eq!(
        (&ack["unsubscribed"], &ack["remaining"]),
        (&json!([]), &json!([])),
        "{ack}"
    );
}
