//! Strict ops: a member that is not one of the op's fields gets
//! `unknown_field` naming it, the op is not applied, and the connection
//! keeps working.

use crate::util::*;
use serde_json::json;

fn assert_unknown_field(reply: &serde_json::Value, id: u64, field: &str) {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
    assert_eq!(reply["code"], "unknown_field", "{reply}");
    assert_eq!(reply["message"], field, "{reply}");
}

#[test]
fn unknown_fields_are_refused_and_the_op_is_not_applied() {
    let s = start_sim(3, 2000, &[], None);
    let mut ws = connect(&s, &trader());

    // A subscribe with a stray field subscribes to nothing.
    let (reply, _) = ws.request(json!({"op":"subscribe","id":1,"channel":"prices",
        "symbols":["EURUSD"],"snapshot":true}));
    assert_unknown_field(&reply, 1, "snapshot");
    let frames = ws.collect_for(after_ms(1000));
    assert!(
        frames
            .iter()
            .all(|f| f["type"] != "price" && f["type"] != "snapshot"),
        "a refused subscribe was applied: {}",
        tail(&frames)
    );

    // The connection is still usable: a proper subscribe works.
    ws.ping(2);
    ws.subscribe(3, &["EURUSD"]);
    ws.recv_json_until(deadline(), |v| v["type"] == "price");

    // An unsubscribe with a stray field leaves the subscription as it was.
    let (reply, _) = ws.request(json!({"op":"unsubscribe","id":4,"channel":"prices",
        "symbols":["EURUSD"],"force":1}));
    assert_unknown_field(&reply, 4, "force");
    ws.recv_json_until(deadline(), |v| {
        v["type"] == "price" && v["symbol"] == "EURUSD"
    });

    // Every op is strict, ping and auth included.
    let (reply, _) = ws.request(json!({"op":"ping","id":5,"payload":"x"}));
    assert_unknown_field(&reply, 5, "payload");
    let (reply, _) = ws.request(json!({"op":"auth","id":6,"token":trader(),"tenant":"t2"}));
    assert_unknown_field(&reply, 6, "tenant");
    ws.ping(7);
}
