//! Broadcast: `tenant: "*"` published by an ADMIN reaches every tenant's
//! subscribers of the channel on a `seq` stream of its own, replayable with
//! `broadcast_since`; anyone else publishing it is refused.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

fn notice(n: u32) -> Value {
    json!({"channel": "alerts", "tenant": "*", "data": {
        "level": "warning", "kind": "maintenance", "message": format!("notice {n}")}})
}

/// Publishes `events` with an ADMIN token; returns the `202` body.
fn publish_as_admin(server: &Server, events: &Value) -> Value {
    let admin = token(&["ADMIN"]);
    let resp = http_post(
        server.addr,
        "/v1/publish",
        Some(&admin),
        &events.to_string(),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    resp.json()
}

/// Reads until the broadcast alert `seq`; returns every alert read as
/// (broadcast?, seq, message).
fn alerts_through_broadcast(ws: &mut Ws, seq: i64) -> Vec<(bool, i64, String)> {
    let (last, mut before) = ws.recv_until(deadline(), |v| {
        v["type"] == "alert" && v["broadcast"] == true && v["seq"] == seq
    });
    before.push(last);
    before
        .iter()
        .filter(|v| v["type"] == "alert")
        .map(|v| {
            (
                v["broadcast"] == true,
                v["seq"].as_i64().unwrap(),
                v["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_admin_broadcast_reaches_three_tenants_on_its_own_seq_stream() {
    let s = start_sim(5, 1000, &[], None);
    let mut clients: Vec<Ws> = ["t1", "t2", "t3"]
        .iter()
        .map(|tenant| {
            let mut ws = connect_as(&s, "u1", tenant, &["TRADER"]);
            let ack = subscribe_op(&mut ws, json!({"op":"subscribe","id":1,"channel":"alerts"}));
            assert_eq!(ack["broadcast"]["last_seq"], 0, "{ack}");
            ws
        })
        .collect();

    // The tenant's own stream and the broadcast one are numbered apart.
    publish(&s, &alert("t1", "own 1"));
    let body = publish_as_admin(&s, &json!([notice(1), notice(2)]));
    assert_eq!(
        body["streams"],
        json!([{"channel":"alerts","tenant":"*","seq":[1,2]}]),
        "{body}"
    );
    for (i, ws) in clients.iter_mut().enumerate() {
        let got = alerts_through_broadcast(ws, 2);
        let broadcasts: Vec<_> = got.iter().filter(|a| a.0).cloned().collect();
        assert_eq!(
            broadcasts,
            vec![
                (true, 1, "notice 1".to_owned()),
                (true, 2, "notice 2".to_owned())
            ],
            "tenant t{}",
            i + 1
        );
        let own: Vec<_> = got.iter().filter(|a| !a.0).collect();
        let want: Vec<(bool, i64, String)> = if i == 0 {
            vec![(false, 1, "own 1".into())]
        } else {
            vec![]
        };
        assert_eq!(own, want.iter().collect::<Vec<_>>(), "tenant t{}", i + 1);
    }

    // A late subscriber of another tenant replays the broadcasts it missed.
    publish_as_admin(&s, &notice(3));
    let mut late = connect_as(&s, "u9", "t4", &["TRADER"]);
    let ack = subscribe_op(
        &mut late,
        json!({"op":"subscribe","id":1,"channel":"alerts","since":0,"broadcast_since":1}),
    );
    assert_eq!(
        ack["broadcast"],
        json!({"since":1,"recovered":true,"last_seq":3}),
        "{ack}"
    );
    let replayed = alerts_through_broadcast(&mut late, 3);
    assert_eq!(
        replayed,
        vec![
            (true, 2, "notice 2".to_owned()),
            (true, 3, "notice 3".to_owned())
        ]
    );
}

#[test]
fn only_an_admin_may_broadcast_and_only_on_tenant_wide_reliable_channels() {
    let s = start_sim(5, 1000, &[], None);
    let resp = http_post(
        s.addr,
        "/v1/publish",
        Some(&service()),
        &json!([alert("t1", "fine"), notice(1)]).to_string(),
    );
    assert_eq!(resp.status, 403, "{}", resp.body);
    let body = resp.json();
    assert_eq!(
        (&body["error"], &body["index"]),
        (&json!("forbidden"), &json!(1))
    );
    assert!(body["reason"].as_str().unwrap().contains("ADMIN"), "{body}");
    // Nothing of the refused batch was published.
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(&mut ws, json!({"op":"subscribe","id":1,"channel":"alerts"}));
    assert_eq!(
        (&ack["last_seq"], &ack["broadcast"]["last_seq"]),
        (&json!(0), &json!(0))
    );

    let admin = token(&["ADMIN"]);
    for event in [
        json!({"channel":"notifications","tenant":"*","sub":"u1","data":{"title":"x"}}),
        json!({"channel":"metrics.trading","tenant":"*","values":{"trade_count":1}}),
    ] {
        let resp = http_post(s.addr, "/v1/publish", Some(&admin), &event.to_string());
        assert_eq!(resp.status, 400, "{event}: {}", resp.body);
        assert_eq!(resp.json()["error"], "bad_request");
    }
}
