//! Per-connection limits: message size (1009), subscriptions per connection,
//! symbols per op, and the op token bucket (`rate_limited`, then 4029).

use crate::util::*;
use serde_json::json;
use std::time::Duration;
use tungstenite::Message;

const TOML: &str =
    "[server]\nmax_message_bytes = 4096\nmax_subscriptions = 3\nmax_symbols_per_op = 5\n\
                    ops_per_sec = 5\nops_burst = 5\nrate_limit_close_after = 20\n";

#[test]
fn oversized_message_closes_with_1009() {
    let s = start_sim(20, 200, &[], Some(TOML));
    let mut ws = connect(&s, &trader());
    // Under the limit: answered.
    let (reply, _) = ws.request(json!({"op": "ping", "id": 1, "pad": "x".repeat(3000)}));
    assert!(
        reply["type"] == "pong" || reply["type"] == "error",
        "{reply}"
    );
    // Over it: closed with 1009.
    let big = json!({"op": "ping", "id": 2, "pad": "x".repeat(5000)}).to_string();
    let _ = ws.send_text(&big);
    let (code, before) = ws.expect_close(deadline());
    assert_eq!(code, Some(1009), "frames before: {}", tail(&before));
}

#[test]
fn subscription_and_symbols_per_op_limits() {
    let s = start_sim(20, 200, &[], Some(TOML));
    let all = channel_symbols(&s);
    let mut ws = connect(&s, &trader());

    // 6 symbols in one op > max_symbols_per_op 5: refused whole.
    let (reply, _) =
        ws.request(json!({"op": "subscribe", "id": 1, "channel": "prices", "symbols": &all[..6]}));
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert_eq!(reply["id"], 1, "{reply}");

    // 4 symbols, max_subscriptions 3: three subscribed, one too many.
    let (ack, snap) = ws.subscribe(2, &all[..4].iter().map(String::as_str).collect::<Vec<_>>());
    let subscribed = ack["subscribed"].as_array().unwrap();
    assert_eq!(subscribed.len(), 3, "{ack}");
    let errors = ack["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {ack}"));
    assert_eq!(errors.len(), 1, "{ack}");
    assert_eq!(errors[0]["code"], "too_many_subscriptions", "{ack}");
    assert!(!subscribed.contains(&errors[0]["symbol"]), "{ack}");
    for d in snap["data"].as_array().unwrap() {
        assert!(
            subscribed.contains(&d["symbol"]),
            "snapshot has a refused symbol: {snap}"
        );
    }
    // Still full.
    let (ack, _) = ws.subscribe(3, &[all[10].as_str()]);
    assert_eq!(ack["subscribed"], json!([]), "{ack}");
    assert_eq!(ack["errors"][0]["code"], "too_many_subscriptions", "{ack}");
}

#[test]
fn op_flood_is_rate_limited_then_closed_4029() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = connect(&s, &trader());
    // Ten ops in one write, so that the server takes them all at once: sent
    // one by one, a pause of the test thread would let the bucket refill.
    for id in 1..=10 {
        let op = json!({"op": "ping", "id": id}).to_string();
        ws.ws.write(Message::text(op)).unwrap();
    }
    ws.ws.flush().unwrap();
    let (mut pongs, mut limited) = (0, 0);
    for id in 1..=10u64 {
        let r = ws.recv_json_until(deadline(), |v| v["id"] == id);
        match (r["type"].as_str(), r["code"].as_str()) {
            (Some("pong"), _) => pongs += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("ping {id} -> {r}"),
        }
    }
    assert!(pongs >= 5, "burst of 5 should pass, {pongs} did");
    assert!(
        limited >= 3,
        "only {limited} of 10 back-to-back ops were rate limited (burst 5, 5/s)"
    );

    // The bucket refills with time (5/s, up to the burst): after 1.2 s it
    // holds the burst however loaded the machine is; the connection is still usable.
    std::thread::sleep(Duration::from_millis(1200));
    ws.ping(100);

    // A client that keeps flooding is closed with 4029.
    for id in 200..400 {
        if ws.send(&json!({"op": "ping", "id": id})).is_err() {
            break;
        }
    }
    let (code, before) = ws.expect_close(deadline());
    assert_eq!(code, Some(4029), "frames before: {}", tail(&before));
    assert!(
        before.iter().any(|v| v["code"] == "rate_limited"),
        "closed without rate_limited errors first"
    );
}
