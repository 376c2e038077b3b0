//! Tenant isolation is absolute: two tenants with identical channels,
//! metrics and filters never see a frame of each other, and a
//! notification reaches only its own user.

use crate::events_util::*;
use crate::util::*;
use serde_json::{json, Value};

const ALERTS_EACH: usize = 20;

fn subscribe_both(ws: &mut Ws) {
    subscribe_op(
        ws,
        json!({"op":"subscribe","id":1,"channel":"metrics.trading","metrics":["trade_count"],
            "filters":{"book":"FX1"},"window_ms":1000,"agg":"sum"}),
    );
    subscribe_op(ws, json!({"op":"subscribe","id":2,"channel":"alerts"}));
}

#[test]
fn two_tenants_with_identical_subscriptions_never_see_each_other() {
    let s = start_sim(5, 1000, &[], None);
    let mut t1 = connect_as(&s, "u1", "t1", &["TRADER"]);
    let mut t2 = connect_as(&s, "u1", "t2", &["TRADER"]);
    subscribe_both(&mut t1);
    subscribe_both(&mut t2);

    let k = future_window_us();
    // Distinct magnitudes: t1 counts 1 per trade, t2 counts 1000 per trade.
    let mut events = Vec::new();
    for i in 0..ALERTS_EACH as i64 {
        events.push(trade("t2", k + i, "FX1", json!({"trade_count": 1000})));
        events.push(alert("t2", &format!("t2-{i}")));
        events.push(trade("t1", k + i, "FX1", json!({"trade_count": 1})));
        events.push(alert("t1", &format!("t1-{i}")));
    }
    publish(&s, &json!(events));

    let seq = k / 1_000_000;
    for (ws, tenant, per_trade) in [(&mut t1, "t1", 1), (&mut t2, "t2", 1000)] {
        let (frame, mut seen) = metric_frame(ws, "trade_count", seq);
        let want = per_trade * ALERTS_EACH as i64;
        assert_eq!(
            frame["values"]["trade_count"]["value"], want,
            "{tenant}: {frame}"
        );
        // Barrier: everything published before has been delivered once the pong is back.
        ws.ping(7);
        seen.extend(ws.collect_for(after_ms(200)));
        let alerts: Vec<&Value> = seen.iter().filter(|v| v["type"] == "alert").collect();
        assert_eq!(
            alerts.len(),
            ALERTS_EACH,
            "{tenant} alerts: {}",
            tail(&seen)
        );
        for a in &alerts {
            let message = a["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with(&format!("{tenant}-")),
                "{tenant} got {a}"
            );
        }
        let metrics: Vec<&Value> = seen.iter().filter(|v| v["type"] == "metrics").collect();
        for m in metrics {
            let v = m["values"]["trade_count"]["value"].as_i64().unwrap_or(-1);
            assert!(
                v == 0 || v == want,
                "{tenant} saw a foreign metric value: {m}"
            );
        }
    }
}

#[test]
fn notifications_reach_only_their_user() {
    let s = start_sim(5, 1000, &[], None);
    let mut u1 = connect_as(&s, "u1", "t1", &[]);
    let mut u2 = connect_as(&s, "u2", "t1", &[]);
    let mut other_tenant_u2 = connect_as(&s, "u2", "t2", &[]);
    for ws in [&mut u1, &mut u2, &mut other_tenant_u2] {
        subscribe_op(
            ws,
            json!({"op":"subscribe","id":1,"channel":"notifications"}),
        );
    }
    let note = |sub: &str, title: &str| json!({"channel":"notifications","tenant":"t1","sub":sub,"data":{"title":title}});
    publish(&s, &json!([note("u2", "for u2"), note("u1", "for u1")]));
    let (got, _) = u1.recv_until(deadline(), |v| v["type"] == "notification");
    assert_eq!(
        (got["title"].as_str(), &got["seq"]),
        (Some("for u1"), &json!(1))
    );
    let (got, _) = u2.recv_until(deadline(), |v| v["type"] == "notification");
    assert_eq!(got["title"], "for u2");
    for ws in [&mut u1, &mut u2, &mut other_tenant_u2] {
        ws.ping(5);
        let rest = ws.collect_for(after_ms(200));
        assert!(
            rest.iter().all(|v| v["type"] != "notification"),
            "a notification of another user arrived: {}",
            tail(&rest)
        );
    }
}
