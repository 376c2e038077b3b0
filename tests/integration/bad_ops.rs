//! Malformed and unknown ops each get the protocol's error, and the connection
//! keeps working.

use crate::util::*;
use serde_json::json;

#[test]
fn bad_ops_get_errors_and_connection_survives() {
    let s = start_sim(3, 200, &[], None);
    let mut ws = connect(&s, &trader());

    ws.send_text("this is not json").unwrap();
    let e = ws.recv_json_until(deadline(), |v| v["type"] == "error");
    assert_eq!(e["code"], "bad_request", "{e}");
    assert!(
        e.get("id").is_none_or(|id| id.is_null()),
        "no id to echo for non-JSON: {e}"
    );
    ws.ping(1);

    let cases = [
        (json!({"op": "frobnicate", "id": 2}), "unknown_op"),
        (
            json!({"op": "subscribe", "id": 3, "channel": "nope", "symbols": ["EURUSD"]}),
            "unknown_channel",
        ),
        (
            json!({"op": "subscribe", "id": 4, "channel": "prices", "symbols": "EURUSD"}),
            "bad_request",
        ),
        (
            json!({"op": "subscribe", "id": 5, "channel": "prices", "symbols": [1, 2]}),
            "bad_request",
        ),
        (
            json!({"op": "unsubscribe", "id": 6, "channel": "prices", "symbols": {"a": 1}}),
            "bad_request",
        ),
        (json!({"op": "auth", "id": 7, "token": 42}), "bad_request"),
    ];
    for (op, code) in cases {
        let (reply, _) = ws.request(op.clone());
        assert_eq!(reply["type"], "error", "{op} -> {reply}");
        assert_eq!(reply["code"], code, "{op} -> {reply}");
        assert!(
            reply["message"].is_string() || reply.get("message").is_none(),
            "{reply}"
        );
    }
    // JSON that is not an object.
    ws.send_text("[1,2,3]").unwrap();
    let e = ws.recv_json_until(deadline(), |v| v["type"] == "error");
    assert_eq!(e["code"], "bad_request", "{e}");
    ws.ping(8);
    // And it can still subscribe.
    let (ack, _) = ws.subscribe(9, &["EURUSD"]);
    assert_eq!(ack["subscribed"], json!(["EURUSD"]), "{ack}");
}
