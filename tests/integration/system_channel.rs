//! The `system` channel: the node's figures once a second to ADMIN tokens,
//! through the latest-value path (ack, snapshot, then one value a second);
//! refused to other roles; listed by `/v1/channels`.

use crate::util::*;
use serde_json::{json, Value};

/// The `data` of the next `system` message that satisfies `pred`.
fn system_until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    ws.recv_json_until(deadline(), |m| m["type"] == "system" && pred(&m["data"]))
}

#[test]
fn admins_get_node_figures_once_a_second() {
    let s = start_sim(3, 500, &[], None);
    let mut trader = connect(&s, &trader());
    trader.subscribe(1, &["EURUSD", "GBPUSD"]);
    let mut admin = connect(&s, &token(&["ADMIN"]));
    let (ack, _) = admin.request(json!({"op":"subscribe","id":1,"channel":"system"}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["channel"], "system", "{ack}");

    // Subscriptions are recounted about once a second: wait until the
    // figures include both clients' subscriptions and rates.
    let first = admin.recv_json_until(deadline(), |m| {
        m["type"] == "system"
            && m["data"]["subscriptions"]["prices"].as_u64() >= Some(2)
            && m["data"]["subscriptions"]["system"].as_u64() >= Some(1)
            && m["data"]["per_second"].is_object()
    });
    let data = &first["data"];
    assert!(data["connections"].as_u64() >= Some(2), "{first}");
    assert_eq!(data["shards"], 1, "{first}");
    assert_eq!(data["draining"], false, "{first}");
    assert_eq!(data["feed"]["stale"], false, "{first}");
    assert!(data["per_second"]["quotes"].as_f64() > Some(0.0), "{first}");
    assert!(
        data["flush_cycle_ms"]["ticks"].as_u64() > Some(0),
        "{first}"
    );
    assert!(data["ring_to_socket_ms"]["p99"].is_number(), "{first}");
    assert!(data["due_unserved"].is_u64(), "{first}");

    let second = system_until(&mut admin, |_| true);
    let (seq1, seq2) = (
        first["seq"].as_u64().unwrap(),
        second["seq"].as_u64().unwrap(),
    );
    assert!(seq2 > seq1, "seq {seq1} then {seq2}");
    // Once a second at most: a slow machine can only space them further.
    let gap = second["ts"].as_i64().unwrap() - first["ts"].as_i64().unwrap();
    assert!(gap >= 900, "system messages {gap} ms apart");

    // Unsubscribed, the figures stop.
    let (ack, _) = admin.request(json!({"op":"unsubscribe","id":2,"channel":"system"}));
    assert_eq!(ack["type"], "ack", "{ack}");
    let after = admin.collect_for(after_ms(2_500));
    assert!(
        after.iter().all(|m| m["type"] != "system"),
        "{}",
        tail(&after)
    );
}

#[test]
fn other_roles_are_refused_and_channels_lists_it() {
    let s = start_sim(3, 100, &[], None);
    let mut ws = connect(&s, &trader());
    let (reply, _) = ws.request(json!({"op":"subscribe","id":7,"channel":"system"}));
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let auth = format!("Bearer {}", trader());
    let channels = http_get(s.addr, "/v1/channels", &[("Authorization", &auth)]).json();
    let system = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "system")
        .unwrap_or_else(|| panic!("no system channel: {channels}"));
    assert_eq!(system["roles"], json!(["ADMIN"]), "{system}");
    assert_eq!(system["kind"], "latest", "{system}");
}
