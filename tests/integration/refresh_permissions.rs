//! An `auth` refresh whose token lost a role or a symbol ends the
//! subscriptions it no longer allows: an `error` per channel, the ack lists
//! them, nothing of them follows, and everything else carries on.

use crate::events_util::*;
use crate::util::*;
use serde_json::json;

#[test]
fn a_refresh_that_loses_a_role_or_symbol_ends_those_subscriptions() {
    let s = start_sim(3, 2000, &[], None);
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD", "GBPUSD"]);
    subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":2,"channel":"metrics.trading","window_ms":1000,"agg":"sum"}),
    );
    let (ack, _) = ws.request(json!({"op":"subscribe","id":3,"channel":"alerts"}));
    assert_eq!(ack["subscribed"], true, "{ack}");

    // RISK_MANAGER keeps prices and alerts but not metrics.trading; the
    // symbols claim keeps EURUSD only.
    let mut narrower = claims("u1", "t1", &["RISK_MANAGER"], 900);
    narrower["symbols"] = json!(["EURUSD"]);
    let (ack, before) = ws.request(json!({"op":"auth","id":4,"token":sign(&narrower)}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(
        ack["ended"],
        json!([
            {"channel":"metrics.trading","code":"forbidden"},
            {"channel":"prices","code":"not_entitled","symbols":["GBPUSD"]},
        ]),
        "{ack}"
    );
    let errors: Vec<_> = before.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        2,
        "one error per ended channel: {}",
        tail(&before)
    );
    assert_eq!(
        (&errors[0]["code"], &errors[0]["channel"]),
        (&json!("forbidden"), &json!("metrics.trading")),
        "{}",
        errors[0]
    );
    assert_eq!(
        (&errors[1]["code"], &errors[1]["symbols"]),
        (&json!("not_entitled"), &json!(["GBPUSD"])),
        "{}",
        errors[1]
    );

    // After the ack: EURUSD and alerts flow, GBPUSD and metrics never.
    publish(&s, &alert("t1", "still subscribed"));
    let frames = ws.collect_at_least(1500, |f| {
        f.iter().any(|v| v["type"] == "alert") && f.iter().any(|v| v["symbol"] == "EURUSD")
    });
    assert!(
        frames
            .iter()
            .all(|f| f["symbol"] != "GBPUSD" && f["type"] != "metrics"),
        "an ended subscription sent on: {}",
        tail(&frames)
    );

    // The new roles are the session's now.
    let (refused, _) = ws.request(json!({"op":"subscribe","id":5,"channel":"metrics.trading"}));
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let (ack, _) =
        ws.request(json!({"op":"subscribe","id":6,"channel":"prices","symbols":["GBPUSD"]}));
    assert_eq!(ack["errors"][0]["code"], "not_entitled", "{ack}");

    // A refresh that keeps every permission ends nothing.
    let same = sign(&narrower);
    let (ack, _) = ws.request(json!({"op":"auth","id":7,"token":same}));
    assert_eq!(ack["ended"], json!([]), "{ack}");
}
