//! Filters on reliable channels: a subscriber gets only the messages whose
//! `data` fields match (equality or set membership), in the `since` replay
//! and live alike; `seq` stays the stream's and the ack says `filtered`.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

/// An alert for tenant `t1` with `level` on `book`.
fn book_alert(level: &str, book: &str, n: u32) -> Value {
    json!({"channel": "alerts", "tenant": "t1", "data": {
        "level": level, "kind": "loss_limit", "message": format!("m{n}"), "book": book}})
}

/// Reads until the alert `last_seq`; returns the `seq` of every alert read.
fn alerts_through(ws: &mut Ws, last_seq: i64) -> Vec<i64> {
    let (last, mut before) =
        ws.recv_until(deadline(), |v| v["type"] == "alert" && v["seq"] == last_seq);
    before.push(last);
    alert_seqs(&before)
}

#[test]
fn filtered_replay_then_live_gets_only_matching_alerts_with_stream_seq() {
    let s = start_sim(5, 1000, &[], None);
    let first = [
        ("info", "FX1"),
        ("critical", "FX1"),
        ("warning", "FX2"),
        ("info", "FX1"),
        ("critical", "FX1"),
        ("critical", "FX2"),
    ];
    let batch: Vec<Value> = (1..)
        .zip(first)
        .map(|(n, (level, book))| book_alert(level, book, n))
        .collect();
    publish(&s, &json!(batch));

    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"alerts","since":0,
            "filter":{"level":["critical","warning"],"book":"FX1"}}),
    );
    assert_eq!(
        (&ack["recovered"], &ack["last_seq"], &ack["filtered"]),
        (&json!(true), &json!(6), &json!(true)),
        "{ack}"
    );
    assert_eq!(alerts_through(&mut ws, 5), vec![2, 5], "filtered replay");

    let live = [
        ("warning", "FX1"),
        ("info", "FX1"),
        ("critical", "FX2"),
        ("critical", "FX1"),
    ];
    let batch: Vec<Value> = (7..)
        .zip(live)
        .map(|(n, (level, book))| book_alert(level, book, n))
        .collect();
    publish(&s, &json!(batch));
    // Delivery is in seq order, so anything the filter let through by
    // mistake would come before the last matching alert.
    assert_eq!(alerts_through(&mut ws, 10), vec![7, 10], "filtered live");

    // Another subscriber without a filter gets the whole stream and no flag.
    let mut all = connect(&s, &trader());
    let ack = subscribe_op(
        &mut all,
        json!({"op":"subscribe","id":1,"channel":"alerts","since":0}),
    );
    assert!(ack.get("filtered").is_none(), "{ack}");
    assert_eq!(alerts_through(&mut all, 10), (1..=10).collect::<Vec<_>>());
}

#[test]
fn bad_filters_are_refused_and_the_connection_stays_usable() {
    let s = start_sim(5, 1000, &[], None);
    let mut ws = connect(&s, &trader());
    for (id, op) in [
        json!({"op":"subscribe","id":1,"channel":"alerts","filter":{"level":[]}}),
        json!({"op":"subscribe","id":2,"channel":"alerts","filter":{"level":{"x":1}}}),
        json!({"op":"subscribe","id":3,"channel":"alerts","filter":[]}),
        json!({"op":"subscribe","id":4,"channel":"prices","symbols":["EURUSD"],
            "filter":{"level":"critical"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let (reply, _) = ws.request(op);
        assert_eq!(
            (&reply["type"], &reply["code"], &reply["id"]),
            (&json!("error"), &json!("bad_request"), &json!(id + 1)),
            "{reply}"
        );
    }
    ws.ping(9);
}
