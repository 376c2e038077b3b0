//! Per-channel roles for analytics and reliable channels, unknown metrics,
//! and the catalogue served by `/v1/channels`.

use crate::events_util::*;
use crate::util::*;
use serde_json::json;

fn reply_code(ws: &mut Ws, op: serde_json::Value) -> String {
    let (reply, _) = ws.request(op);
    match reply["type"].as_str() {
        Some("ack") => "ack".into(),
        _ => reply["code"].as_str().unwrap_or("?").into(),
    }
}

#[test]
fn roles_decide_who_subscribes_to_what() {
    let s = start_sim(5, 1000, &[], None);
    let sub = |channel: &str| json!({"op":"subscribe","id":1,"channel":channel});
    let mut analyst = connect_as(&s, "a", "t1", &["ANALYST"]);
    assert_eq!(
        reply_code(&mut analyst, sub("metrics.positions")),
        "forbidden"
    );
    assert_eq!(reply_code(&mut analyst, sub("metrics.risk")), "ack");
    assert_eq!(reply_code(&mut analyst, sub("alerts")), "forbidden");
    assert_eq!(reply_code(&mut analyst, sub("notifications")), "ack");
    let mut ops = connect_as(&s, "o", "t1", &["OPERATIONS"]);
    assert_eq!(reply_code(&mut ops, sub("sessions")), "ack");
    assert_eq!(reply_code(&mut ops, sub("metrics.pnl")), "forbidden");
    assert_eq!(
        reply_code(&mut ops, sub("metrics.nothing")),
        "unknown_channel"
    );
}

#[test]
fn unknown_metrics_and_bad_windows_are_refused() {
    let s = start_sim(5, 1000, &[], None);
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"metrics.pnl","metrics":["total_pnl","bogus"]}),
    );
    assert_eq!(ack["subscribed"], json!(["total_pnl"]), "{ack}");
    assert_eq!(
        ack["errors"],
        json!([{"metric":"bogus","code":"unknown_metric"}]),
        "{ack}"
    );
    for bad in [
        json!({"op":"subscribe","id":2,"channel":"metrics.pnl","window_ms":777}),
        json!({"op":"subscribe","id":2,"channel":"metrics.pnl","agg":"median"}),
        json!({"op":"subscribe","id":2,"channel":"metrics.pnl","metrics":[]}),
        json!({"op":"subscribe","id":2,"channel":"prices"}),
    ] {
        assert_eq!(reply_code(&mut ws, bad.clone()), "bad_request", "{bad}");
    }
    ws.ping(3);
}

#[test]
fn channels_lists_the_catalogue() {
    let s = start_sim(5, 1000, &[], None);
    let t = trader();
    let doc = http_get(
        s.addr,
        "/v1/channels",
        &[("Authorization", &format!("Bearer {t}"))],
    )
    .json();
    let find = |name: &str| {
        doc["channels"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} missing from {doc}"))
    };
    let trading = find("metrics.trading");
    assert_eq!(trading["kind"], "latest");
    assert!(trading["metrics"]
        .as_array()
        .unwrap()
        .contains(&json!("fill_rate")));
    assert_eq!(find("alerts")["kind"], "reliable");
    assert_eq!(find("notifications")["roles"], json!(["*"]));
}
