//! `exp` passing on an open connection: `error token_expired` then close 4001,
//! unless an `auth` op refreshed the token for the same `sub` and `tenant`.

use crate::util::*;
use serde_json::json;
use std::time::Duration;

/// Lifetime of the short tokens, seconds: room to connect, subscribe and
/// refresh before `exp` even on a loaded machine.
const TTL_S: i64 = 5;

fn start() -> Server {
    start_sim(3, 500, &[], None)
}

/// Reads until the Close and checks it is a token expiry that happened around `exp`.
fn expect_expiry_close(ws: &mut Ws, exp: i64) {
    let exp_ms = exp * 1000;
    let (code, before) =
        ws.expect_close(deadline() + Duration::from_millis((exp_ms - now_ms()).max(0) as u64));
    let closed_at = now_ms();
    assert_eq!(
        code,
        Some(4001),
        "close code; frames before: {}",
        tail(&before)
    );
    assert!(
        before
            .iter()
            .any(|v| v["type"] == "error" && v["code"] == "token_expired"),
        "no token_expired error before the close: {}",
        tail(&before)
    );
    assert!(
        closed_at >= exp_ms - 1000,
        "closed {} ms before exp",
        exp_ms - closed_at
    );
    // Generous: a loaded machine may close late, never early.
    assert!(
        closed_at <= exp_ms + 6000,
        "closed {} ms after exp",
        closed_at - exp_ms
    );
}

#[test]
fn expiry_closes_with_4001() {
    let s = start();
    let c = claims("u1", "t1", &["TRADER"], TTL_S);
    let exp = c["exp"].as_i64().unwrap();
    let mut ws = connect(&s, &sign(&c));
    ws.subscribe(1, &["EURUSD"]);
    expect_expiry_close(&mut ws, exp);
}

#[test]
fn refresh_prevents_expiry() {
    let s = start();
    let c = claims("u1", "t1", &["TRADER"], TTL_S);
    let exp = c["exp"].as_i64().unwrap();
    let mut ws = connect(&s, &sign(&c));
    ws.subscribe(1, &["EURUSD"]);
    let fresh = sign(&claims("u1", "t1", &["TRADER"], 600));
    let (ack, _) = ws.request(json!({"op": "auth", "id": 2, "token": fresh}));
    assert_eq!(ack["type"], "ack", "refresh refused: {ack}");
    assert_eq!(ack["id"], 2, "{ack}");

    // Well past the old exp: still open, no token_expired, still streaming.
    let until = after_ms(((exp * 1000 + 3000) - now_ms()).max(0) as u64);
    let frames = ws.collect_for(until);
    assert!(
        !frames.iter().any(|v| v["code"] == "token_expired"),
        "token_expired after a refresh: {}",
        tail(&frames)
    );
    assert!(!prices(&frames).is_empty(), "no prices after the refresh");
    ws.ping(3);
}

#[test]
fn refresh_with_another_tenant_is_refused() {
    let s = start();
    let c = claims("u1", "t1", &["TRADER"], TTL_S);
    let exp = c["exp"].as_i64().unwrap();
    let mut ws = connect(&s, &sign(&c));
    let other = sign(&claims("u1", "t2", &["TRADER"], 600));
    let (reply, _) = ws.request(json!({"op": "auth", "id": 5, "token": other}));
    assert_eq!(
        reply["type"], "error",
        "refresh for another tenant accepted: {reply}"
    );
    assert_eq!(reply["code"], "forbidden", "{reply}");
    assert_eq!(reply["id"], 5, "{reply}");
    // The old expiry still applies.
    expect_expiry_close(&mut ws, exp);
}
