//! Calendar running totals (`window: "day"`): the snapshot holds the
//! day's totals so far for the subscriber's filter, updates follow as the
//! totals change, and the next day starts from zero. The test shortens the
//! day to 40 s (`channels.calendar.day_secs`) and stamps events into the
//! next day to cross the boundary.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};
use std::time::Duration;

const DAY_US: i64 = 40_000_000;

/// A `trade_volume` event on `book` at `ts_us`.
fn volume(ts_us: i64, book: &str, v: f64) -> Value {
    trade("t1", ts_us, book, json!({"trade_volume": v}))
}

/// The `trade_volume` update with `value`, and the frames before it.
fn volume_update(ws: &mut Ws, value: f64) -> Value {
    let (update, _) = ws.recv_until(deadline(), |v| {
        v["type"] == "metrics" && v["values"]["trade_volume"]["value"].as_f64() == Some(value)
    });
    update
}

#[test]
fn day_totals_snapshot_then_updates_then_a_new_day() {
    let s = start_sim(5, 1000, &[], Some("[channels.calendar]\nday_secs = 40\n"));
    // Start at least 10 s before the end of a (40 s) day, so the events
    // stamped "now" all fall in the same day.
    if DAY_US - now_us() % DAY_US < 10_000_000 {
        std::thread::sleep(Duration::from_micros(
            (DAY_US - now_us() % DAY_US) as u64 + 50_000,
        ));
    }
    let day = now_us() / DAY_US;
    publish(
        &s,
        &json!([
            volume(now_us(), "FX1", 100.0),
            volume(now_us(), "FX2", 50.0),
            volume(now_us(), "FX1", 25.0)
        ]),
    );

    let mut ws = connect(&s, &trader());
    ws.send(&json!({"op":"subscribe","id":1,"channel":"metrics.trading",
        "metrics":["trade_volume"],"filters":{"book":"FX1"},"window":"day","agg":"sum"}))
        .unwrap();
    let (ack, _) = ws.recv_until(deadline(), |v| v["id"] == 1);
    assert_eq!(
        (&ack["type"], &ack["window"], &ack["agg"]),
        (&json!("ack"), &json!("day"), &json!("sum")),
        "{ack}"
    );
    let (snapshot, _) = ws.recv_until(deadline(), |v| v["type"] == "snapshot");
    let data = snapshot["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{snapshot}");
    assert_eq!(
        data[0]["values"]["trade_volume"],
        json!({"value": 125}),
        "{snapshot}"
    );
    assert_eq!(data[0]["window"], "day");
    assert_eq!(data[0]["period_start"], day * DAY_US / 1000);
    let snapshot_seq = data[0]["seq"].as_i64().unwrap();

    publish(&s, &volume(now_us(), "FX1", 10.0));
    let update = volume_update(&mut ws, 135.0);
    assert_eq!(
        update["values"]["trade_volume"]["delta"],
        json!(10),
        "{update}"
    );
    assert_eq!(update["period_start"], day * DAY_US / 1000);
    let update_seq = update["seq"].as_i64().unwrap();
    assert!(update_seq > snapshot_seq, "{update}");

    // An event of the next day starts it: the total restarts from there.
    let next_day = (day + 1) * DAY_US;
    publish(&s, &volume(next_day + 1_000, "FX1", 7.0));
    let update = volume_update(&mut ws, 7.0);
    assert_eq!(update["period_start"], next_day / 1000, "{update}");
    assert!(
        update["values"]["trade_volume"].get("delta").is_none(),
        "{update}"
    );
    assert!(update["seq"].as_i64().unwrap() > update_seq, "{update}");
}

#[test]
fn unknown_or_unconfigured_periods_are_refused() {
    let s = start_sim(5, 1000, &[], None);
    let mut ws = connect(&s, &trader());
    for (id, op) in [
        json!({"op":"subscribe","id":1,"channel":"metrics.trading","window":"week"}),
        json!({"op":"subscribe","id":2,"channel":"metrics.trading","window":"session"}),
        json!({"op":"subscribe","id":3,"channel":"metrics.trading","window":"day",
            "window_ms":1000}),
    ]
    .into_iter()
    .enumerate()
    {
        let (reply, _) = ws.request(op);
        assert_eq!(
            (&reply["code"], &reply["id"]),
            (&json!("bad_request"), &json!(id + 1)),
            "{reply}"
        );
    }
    let ack = subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":4,"channel":"metrics.trading","window":"hour"}),
    );
    assert_eq!(ack["window"], "hour", "{ack}");
}
