//! Configured channels: a keyed channel (latest object per key, snapshot,
//! new keys joining, entitlements by key pattern per role) and a reliable
//! channel with its filter fields, both published over `POST /v1/publish`
//! and listed by `/v1/channels`.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[channels.keyed.exposure]
roles = ["TRADER", "RISK_MANAGER"]
[channels.keyed.exposure.keys]
TRADER = ["EUR*"]
RISK_MANAGER = ["*"]

[channels.reliable."routing.decisions"]
roles = ["TRADER"]
history_max = 100
filters = ["venue"]
"#;

fn exposure(key: &str, net: i64) -> Value {
    json!({"channel":"exposure","tenant":"t1","key":key,"data":{"net":net}})
}

#[test]
fn keyed_channel_snapshot_new_keys_and_entitlements_by_key_pattern() {
    let s = start_sim(5, 1000, &[], Some(CONFIG));
    publish(&s, &json!([exposure("EURUSD", 1), exposure("USDJPY", 2)]));

    let mut trader = connect_as(&s, "u1", "t1", &["TRADER"]);
    trader
        .send(&json!({"op":"subscribe","id":1,"channel":"exposure","keys":["*","USDJPY"]}))
        .unwrap();
    let (ack, _) = trader.recv_until(deadline(), |v| v["id"] == 1);
    assert_eq!(ack["subscribed"], json!(["*"]), "{ack}");
    assert_eq!(
        ack["errors"],
        json!([{"key":"USDJPY","code":"not_entitled"}]),
        "{ack}"
    );
    let (snapshot, _) = trader.recv_until(deadline(), |v| v["type"] == "snapshot");
    assert_eq!(
        snapshot["data"],
        json!([{"type":"keyed","channel":"exposure","key":"EURUSD","seq":1,
            "data":{"net":1},"ts":snapshot["data"][0]["ts"]}]),
        "{snapshot}"
    );

    // A new key joins the subscription; a key outside the role never comes.
    publish(
        &s,
        &json!([
            exposure("EURGBP", 3),
            exposure("USDJPY", 4),
            exposure("EURUSD", 5)
        ]),
    );
    // One flush carries every changed key, in no set order: read until both
    // new objects are in.
    let mut frames = Vec::new();
    let mut wanted = vec![("EURGBP", 3, 1), ("EURUSD", 5, 2)];
    let (_, before) = trader.recv_until(deadline(), |v| {
        frames.push(v.clone());
        wanted.retain(|(k, net, seq)| {
            !(v["type"] == "keyed"
                && v["key"] == *k
                && v["data"]["net"] == *net
                && v["seq"] == *seq)
        });
        wanted.is_empty()
    });
    trader.ping(2);
    frames.extend(before);
    frames.extend(trader.collect_for(after_ms(200)));
    assert!(
        !frames.iter().any(|v| v["key"] == "USDJPY"),
        "a key outside the role: {}",
        tail(&frames)
    );

    let mut risk = connect_as(&s, "u2", "t1", &["RISK_MANAGER"]);
    risk.send(&json!({"op":"subscribe","id":1,"channel":"exposure","keys":["USDJPY"]}))
        .unwrap();
    let (snapshot, _) = risk.recv_until(deadline(), |v| v["type"] == "snapshot");
    assert_eq!(snapshot["data"][0]["data"], json!({"net":4}), "{snapshot}");
    assert_eq!(snapshot["data"].as_array().unwrap().len(), 1);

    // Another tenant's subscriber sees none of t1's keys.
    let mut other = connect_as(&s, "u3", "t2", &["RISK_MANAGER"]);
    other
        .send(&json!({"op":"subscribe","id":1,"channel":"exposure"}))
        .unwrap();
    let (snapshot, _) = other.recv_until(deadline(), |v| v["type"] == "snapshot");
    assert_eq!(snapshot["data"], json!([]), "{snapshot}");

    let channels = http_get(
        s.addr,
        "/v1/channels",
        &[("Authorization", &format!("Bearer {}", trader_token()))],
    )
    .json();
    let find = |name: &str| {
        channels["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {channels}"))
    };
    let exposure = find("exposure");
    assert_eq!(exposure["kind"], "keyed");
    assert_eq!(exposure["keys"]["TRADER"], json!(["EUR*"]));
    let routing = find("routing.decisions");
    assert_eq!(
        (&routing["kind"], &routing["filters"]),
        (&json!("reliable"), &json!(["venue"]))
    );
}

fn trader_token() -> String {
    trader()
}

#[test]
fn a_configured_reliable_channel_replays_with_its_filter_fields() {
    let s = start_sim(5, 1000, &[], Some(CONFIG));
    let decision = |venue: &str, n: u32| {
        json!({"channel":"routing.decisions","tenant":"t1",
            "data":{"venue":venue,"symbol":"EURUSD","order":n}})
    };
    publish(
        &s,
        &json!([decision("LP1", 1), decision("LP2", 2), decision("LP1", 3)]),
    );
    let mut ws = connect(&s, &trader());
    let ack = subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"routing.decisions","since":0,
            "filter":{"venue":"LP1"}}),
    );
    assert_eq!(
        (&ack["last_seq"], &ack["filtered"]),
        (&json!(3), &json!(true)),
        "{ack}"
    );
    let (last, before) = ws.recv_until(deadline(), |v| v["seq"] == 3);
    assert_eq!(last["type"], "event", "{last}");
    assert_eq!(last["order"], 3);
    let seqs: Vec<&Value> = before
        .iter()
        .filter(|v| v["type"] == "event")
        .map(|v| &v["seq"])
        .collect();
    assert_eq!(seqs, [&json!(1)], "{}", tail(&before));

    let (reply, _) = ws.request(json!({"op":"subscribe","id":2,
        "channel":"routing.decisions","filter":{"symbol":"EURUSD"}}));
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("symbol"),
        "{reply}"
    );
}

#[test]
fn the_simulator_feeds_exposure_and_lp_performance() {
    let s = start_sim(12, 1000, &[], None);
    let mut ws = connect_as(&s, "trader1", "acme", &["TRADER"]);
    for (id, channel) in [(1, "exposure"), (2, "lp.performance")] {
        let ack = subscribe_op(&mut ws, json!({"op":"subscribe","id":id,"channel":channel}));
        assert_eq!(ack["subscribed"], json!(["*"]), "{ack}");
    }
    let mut missing = vec!["exposure", "lp.performance"];
    ws.recv_until(deadline(), |v| {
        let live = v["type"] == "keyed" && v["data"].is_object() && v["seq"].is_u64();
        missing.retain(|c| !(live && v["channel"] == *c));
        missing.is_empty()
    });
}

#[test]
fn replay_lines_carry_keyed_objects_and_broadcasts() {
    let mut feed = ReplayFeed::bind();
    let s = feed.start_server("EURUSD", "LP1", None);
    feed.accept(deadline());
    let mut ws = connect(&s, &trader());
    subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"exposure"}),
    );
    subscribe_op(&mut ws, json!({"op":"subscribe","id":2,"channel":"alerts"}));
    feed.line(&exposure("EURUSD", 9).to_string());
    feed.line(
        &json!({"channel":"alerts","tenant":"*","data":{"level":"info",
            "kind":"maintenance","message":"from the feed"}})
        .to_string(),
    );
    let mut missing = vec!["keyed", "alert"];
    ws.recv_until(deadline(), |v| {
        let got = (v["type"] == "keyed" && v["key"] == "EURUSD" && v["data"]["net"] == 9)
            || (v["type"] == "alert" && v["broadcast"] == true && v["message"] == "from the feed");
        if got {
            missing.retain(|t| v["type"] != *t);
        }
        missing.is_empty()
    });
}
