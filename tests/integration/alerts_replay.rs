//! Reliable channels: `since` replays exactly what a client missed, with no
//! gap and no duplicate; a history that no longer covers `since` says
//! `recovered:false` and sends a snapshot; a client that never reads is
//! closed with 4008 and, reconnecting with `since`, still gets every alert.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

fn alerts_sub(since: Option<u64>) -> Value {
    let mut op = json!({"op":"subscribe","id":1,"channel":"alerts"});
    if let Some(s) = since {
        op["since"] = json!(s);
    }
    op
}

/// Reads alerts until `last_seq` has arrived; returns every frame read.
fn read_alerts_through(ws: &mut Ws, last_seq: i64) -> Vec<Value> {
    let (last, mut before) =
        ws.recv_until(deadline(), |v| v["type"] == "alert" && v["seq"] == last_seq);
    before.push(last);
    before
}

#[test]
fn reconnect_with_since_gets_exactly_what_was_missed() {
    let s = start_sim(5, 1000, &[], None);
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(&mut ws, alerts_sub(None));
    assert_eq!(
        (&ack["recovered"], &ack["last_seq"]),
        (&json!(true), &json!(0)),
        "{ack}"
    );
    publish(
        &s,
        &json!((1..=3)
            .map(|i| alert("t1", &format!("a{i}")))
            .collect::<Vec<_>>()),
    );
    assert_eq!(alert_seqs(&read_alerts_through(&mut ws, 3)), vec![1, 2, 3]);
    drop(ws);

    let missed: Vec<Value> = (4..=23).map(|i| alert("t1", &format!("a{i}"))).collect();
    publish(&s, &json!(missed));
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(&mut ws, alerts_sub(Some(3)));
    assert_eq!(
        (&ack["recovered"], &ack["last_seq"]),
        (&json!(true), &json!(23)),
        "{ack}"
    );
    let replayed = read_alerts_through(&mut ws, 23);
    assert_eq!(
        alert_seqs(&replayed),
        (4..=23).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(replayed.iter().filter(|v| v["type"] == "alert").all(|v| {
        v["message"] == format!("a{}", v["seq"]) && v["level"] == "warning" && v["ts"].is_u64()
    }));
    // Then live, continuing the same sequence.
    publish(&s, &alert("t1", "a24"));
    let live = read_alerts_through(&mut ws, 24);
    ws.ping(2);
    let rest = ws.collect_for(after_ms(200));
    assert_eq!(alert_seqs(&live), vec![24]);
    assert!(
        alert_seqs(&rest).is_empty(),
        "duplicates after live: {}",
        tail(&rest)
    );
}

#[test]
fn since_older_than_the_history_is_not_recovered() {
    let s = start_sim(5, 1000, &[], Some("[channels]\nhistory_max = 5\n"));
    publish(
        &s,
        &json!((1..=10)
            .map(|i| alert("t1", &format!("a{i}")))
            .collect::<Vec<_>>()),
    );
    // Publishing is asynchronous: wait until the shard has all ten.
    await_alerts(&s, 10);
    let mut ws = connect(&s, &trader());
    let (ack, _) = ws.request(alerts_sub(Some(2)));
    assert_eq!(
        (&ack["recovered"], &ack["last_seq"]),
        (&json!(false), &json!(10)),
        "{ack}"
    );
    let (snapshot, _) = ws.recv_until(deadline(), |v| v["type"] == "snapshot");
    let seqs: Vec<i64> = snapshot["data"]
        .as_array()
        .expect("snapshot data")
        .iter()
        .filter_map(|v| v["seq"].as_i64())
        .collect();
    assert_eq!(
        seqs,
        vec![6, 7, 8, 9, 10],
        "the snapshot is what the history holds: {snapshot}"
    );
    publish(&s, &alert("t1", "a11"));
    assert_eq!(
        alert_seqs(&read_alerts_through(&mut ws, 11)).last(),
        Some(&11)
    );
}

#[test]
fn a_never_reading_client_is_closed_4008_and_replays_every_alert() {
    const TOTAL: i64 = 1_000;
    let s = start_sim(
        5,
        1000,
        &[],
        Some("[channels]\nmax_pending_reliable = 65536\n"),
    );
    let stream = small_rcvbuf_stream(s.addr, 4096);
    let mut ws = connect_over(stream, &s, Some(&trader()), "");
    subscribe_op(&mut ws, alerts_sub(None));
    // ~1 KB per alert: far more than the kernel buffers plus the 64 KiB limit.
    let body = "x".repeat(1_000);
    for batch in 0..(TOTAL / 50) {
        let events: Vec<Value> = (1..=50)
            .map(|i| alert("t1", &format!("{}:{body}", batch * 50 + i)))
            .collect();
        publish(&s, &json!(events));
    }
    // Now read: a contiguous prefix of the alerts, then the close.
    let (code, frames) = ws.expect_close(deadline());
    assert_eq!(code, Some(4008), "{}", tail(&frames));
    let first = alert_seqs(&frames);
    let seen = first.len() as i64;
    assert!(
        seen < TOTAL,
        "the client should have been cut off before the end"
    );
    assert_eq!(
        first,
        (1..=seen).collect::<Vec<_>>(),
        "a prefix without gaps"
    );

    // Replay only once every alert is in the history: alerts still on their
    // way would arrive live behind the replay and count against
    // max_pending_reliable, which this reconnecting client is not about.
    await_alerts(&s, TOTAL);
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(&mut ws, alerts_sub(Some(seen as u64)));
    assert_eq!(ack["recovered"], true, "{ack}");
    let rest = alert_seqs(&read_alerts_through(&mut ws, TOTAL));
    assert_eq!(
        rest,
        (seen + 1..=TOTAL).collect::<Vec<_>>(),
        "every alert, once, in order"
    );
}
