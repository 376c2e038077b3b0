//! Helpers for the analytics and reliable-channel tests: publishing events
//! over `POST /v1/publish` and reading metric and alert frames.

use crate::util::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `POST path` with a bearer token and a JSON body, over a fresh connection.
pub fn http_post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    quotecast_testkit::http::post_json(addr, path, &headers, body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// A SERVICE token of tenant `t1` (publishers need ADMIN or SERVICE).
pub fn service() -> String {
    token(&["SERVICE"])
}

/// Publishes `events` (an object or an array), checks the `202` and
/// returns its body.
pub fn publish(server: &Server, events: &Value) -> Value {
    let resp = http_post(
        server.addr,
        "/v1/publish",
        Some(&service()),
        &events.to_string(),
    );
    assert_eq!(resp.status, 202, "publish refused: {}", resp.body);
    let want = events.as_array().map_or(1, Vec::len);
    let body = resp.json();
    assert_eq!(body["accepted"], want, "{}", resp.body);
    body
}

/// An alert for `tenant` whose message is `message`.
pub fn alert(tenant: &str, message: &str) -> Value {
    json!({"channel": "alerts", "tenant": tenant, "data": {
        "level": "warning", "kind": "loss_limit", "message": message,
        "current": 80_000, "threshold": 100_000}})
}

/// A `metrics.trading` event of `tenant` at `ts_us` with dims and values.
pub fn trade(tenant: &str, ts_us: i64, book: &str, values: Value) -> Value {
    json!({"channel": "metrics.trading", "tenant": tenant, "ts": ts_us,
        "dims": {"book": book, "desk": "D1"}, "values": values})
}

/// A connection with `roles` for user `sub` of `tenant`.
pub fn connect_as(server: &Server, sub: &str, tenant: &str, roles: &[&str]) -> Ws {
    connect(server, &sign(&claims(sub, tenant, roles, 600)))
}

/// Start (µs) of a 1-second window that opens 2 to 3 s from now: events
/// stamped inside it reach the shards before it closes (50 ms after its
/// end) even when a loaded machine is slow to publish them.
pub fn future_window_us() -> i64 {
    (now_us() / 1_000_000 + 3) * 1_000_000
}

/// Reads until the `metrics` frame of `metric` for window `seq` arrives;
/// returns it and the frames before it.
pub fn metric_frame(ws: &mut Ws, metric: &str, seq: i64) -> (Value, Vec<Value>) {
    ws.recv_until(deadline(), |v| {
        v["type"] == "metrics" && v["seq"] == seq && !v["values"][metric].is_null()
    })
}

/// Sends a `subscribe` and returns its ack (failing on an error reply).
pub fn subscribe_op(ws: &mut Ws, op: Value) -> Value {
    let (ack, _) = ws.request(op);
    assert_eq!(ack["type"], "ack", "subscribe refused: {ack}");
    ack
}

/// Waits until the alerts stream of tenant `t1` is at `last_seq`: `POST
/// /v1/publish` answers once the events are queued, before the shards have
/// them. Each look is a fresh subscription (live from now, nothing
/// replayed), whose ack says where the stream is.
pub fn await_alerts(server: &Server, last_seq: i64) {
    let deadline = deadline();
    loop {
        let mut probe = connect(server, &trader());
        let ack = subscribe_op(
            &mut probe,
            json!({"op":"subscribe","id":1,"channel":"alerts"}),
        );
        if ack["last_seq"] == last_seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the alerts stream never reached {last_seq}: {ack}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `seq` of every `alert` frame among `frames`.
pub fn alert_seqs(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|v| v["type"] == "alert")
        .map(|v| v["seq"].as_i64().unwrap())
        .collect()
}
