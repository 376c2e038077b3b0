//! `metrics.*` windows over real sockets: every aggregation against a
//! reference computed here, filters and rollup, delta updates that carry
//! only the metrics that changed, and the snapshot first.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

const AGGS: [&str; 7] = ["sum", "avg", "min", "max", "last", "count", "delta"];

/// What the server must compute for `agg` over `(ts, value)` events of one
/// window, given the metric's last value before the window.
fn reference(agg: &str, events: &[(i64, f64)], last_before: Option<f64>) -> Option<f64> {
    let values: Vec<f64> = events.iter().map(|e| e.1).collect();
    let last = events.iter().max_by_key(|e| e.0).map(|e| e.1);
    let n = values.len() as f64;
    match agg {
        "sum" => Some(values.iter().sum()),
        "count" => Some(n),
        "avg" => last.map(|_| values.iter().sum::<f64>() / n),
        "min" => values.iter().copied().reduce(f64::min),
        "max" => values.iter().copied().reduce(f64::max),
        "last" => last,
        "delta" => Some(last? - last_before?),
        _ => unreachable!("{agg}"),
    }
}

fn close_to(got: &Value, want: f64) -> bool {
    got.as_f64().is_some_and(|g| (g - want).abs() < 1e-9)
}

#[test]
fn every_aggregation_matches_the_reference_and_filters_roll_up() {
    let s = start_sim(5, 1000, &[], None);
    let mut conns: Vec<(String, Ws)> = AGGS
        .iter()
        .map(|agg| {
            let mut ws = connect(&s, &trader());
            let ack = subscribe_op(
                &mut ws,
                json!({"op":"subscribe","id":1,"channel":"metrics.trading","metrics":["trade_volume"],
                    "filters":{"book":"FX1"},"window_ms":1000,"agg":agg}),
            );
            assert_eq!((ack["agg"].as_str(), &ack["window_ms"]), (Some(*agg), &json!(1000)));
            assert_eq!(ack["subscribed"], json!(["trade_volume"]), "{ack}");
            (agg.to_string(), ws)
        })
        .collect();
    let mut rollup = connect(&s, &trader());
    subscribe_op(
        &mut rollup,
        json!({"op":"subscribe","id":1,"channel":"metrics.trading","metrics":["trade_volume"],
            "window_ms":1000,"agg":"sum"}),
    );

    let k = future_window_us();
    let window_k = [
        (k + 10, 250.0),
        (k + 400_000, 100.0),
        (k + 200_000, 75.5),
        (k + 900_000, 40.0),
    ];
    let window_k1 = [(k + 1_000_100, 60.0), (k + 1_500_000, 20.0)];
    let mut events: Vec<Value> = window_k
        .iter()
        .chain(&window_k1)
        .map(|(ts, v)| trade("t1", *ts, "FX1", json!({"trade_volume": v})))
        .collect();
    // Other books and another tenant must not count for the FX1 filter.
    events.push(trade("t1", k + 5, "FX2", json!({"trade_volume": 1000.0})));
    events.push(trade("t2", k + 5, "FX1", json!({"trade_volume": 5000.0})));
    publish(&s, &json!(events));

    let (seq_k, seq_k1) = (k / 1_000_000, k / 1_000_000 + 1);
    let last_k = reference("last", &window_k, None);
    for (agg, ws) in &mut conns {
        let want_k = reference(agg, &window_k, None);
        let want_k1 = reference(agg, &window_k1, last_k).unwrap();
        if let Some(want) = want_k {
            let (frame, _) = metric_frame(ws, "trade_volume", seq_k);
            let figures = &frame["values"]["trade_volume"];
            assert!(
                close_to(&figures["value"], want),
                "{agg} of window k: {frame} want {want}"
            );
            assert_eq!(frame["channel"], "metrics.trading");
            assert_eq!(frame["window_end"], (k + 1_000_000) / 1_000);
        }
        let (frame, _) = metric_frame(ws, "trade_volume", seq_k1);
        let figures = &frame["values"]["trade_volume"];
        assert!(
            close_to(&figures["value"], want_k1),
            "{agg} of window k+1: {frame} want {want_k1}"
        );
        if let Some(before) = want_k {
            assert!(
                close_to(&figures["delta"], want_k1 - before),
                "{agg} delta: {frame}"
            );
        }
    }
    let (frame, _) = metric_frame(&mut rollup, "trade_volume", seq_k);
    let all_books: f64 = window_k.iter().map(|e| e.1).sum::<f64>() + 1000.0;
    assert!(
        close_to(&frame["values"]["trade_volume"]["value"], all_books),
        "{frame}"
    );
}

#[test]
fn delta_updates_carry_only_changed_metrics_and_snapshot_comes_first() {
    let s = start_sim(5, 1000, &[], None);
    let sub = json!({"op":"subscribe","id":1,"channel":"metrics.trading",
        "metrics":["trade_count","trade_volume"],"window_ms":1000,"agg":"sum"});
    let mut ws = connect(&s, &trader());
    subscribe_op(&mut ws, sub.clone());
    let k = future_window_us();
    let one = |ts: i64, volume: f64| {
        trade(
            "t1",
            ts,
            "FX1",
            json!({"trade_count": 1, "trade_volume": volume}),
        )
    };
    // Window k: count 2, volume 200. Window k+1: count 2 again, volume 300,
    // and the same in the four windows after it, so that the later
    // subscriber below finds these values in its snapshot even when a loaded
    // machine makes it subscribe after k+2 closed (unchanged values send nothing).
    let mut events = vec![one(k + 1, 100.0), one(k + 2, 100.0)];
    for w in 1..=5 {
        events.push(one(k + w * 1_000_000 + 1, 150.0));
        events.push(one(k + w * 1_000_000 + 2, 150.0));
    }
    publish(&s, &json!(events));
    let (seq_k, seq_k1) = (k / 1_000_000, k / 1_000_000 + 1);
    metric_frame(&mut ws, "trade_count", seq_k);
    let (volume, before) = metric_frame(&mut ws, "trade_volume", seq_k1);
    assert_eq!(
        volume["values"]["trade_volume"],
        json!({"value": 300, "delta": 100})
    );
    ws.ping(9);
    let frames: Vec<Value> = before
        .into_iter()
        .chain(ws.collect_for(after_ms(200)))
        .collect();
    assert!(
        !frames
            .iter()
            .any(|v| v["seq"] == seq_k1 && !v["values"]["trade_count"].is_null()),
        "trade_count did not change in window k+1 and must not be resent: {}",
        tail(&frames)
    );

    // A later subscriber gets the current values in its snapshot, before any update.
    let mut late = connect(&s, &trader());
    let (ack, _) = late.request(sub);
    assert_eq!(ack["type"], "ack", "{ack}");
    let (snapshot, before) = late.recv_until(deadline(), |v| v["type"] == "snapshot");
    assert!(
        before.iter().all(|v| v["type"] != "metrics"),
        "{}",
        tail(&before)
    );
    let data = snapshot["data"].as_array().expect("snapshot data");
    let value_of = |metric: &str| {
        data.iter()
            .find_map(|v| v["values"][metric].get("value").cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(value_of("trade_count"), json!(2), "{snapshot}");
    assert_eq!(value_of("trade_volume"), json!(300), "{snapshot}");
}
