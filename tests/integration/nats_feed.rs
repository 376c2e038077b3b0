//! `feed.kind = "nats"` against a real nats-server: venue quotes published
//! on core subjects become best prices, events stored in JetStream reach
//! reliable subscribers, and `quotecast bridge` pushes a replay file there.

use crate::events_util::*;
use crate::nats_util::Nats;
use crate::util::*;
use serde_json::{json, Value};
use std::process::Command;

/// Stale after 700 ms without a quote, so a NATS outage shows quickly.
const TOML: &str = "[feed]\nfeed_stale_after_ms = 700\n";

/// Publishes EURUSD quotes at LP1 (bid moving up from `bid`) until a price
/// of at least that bid arrives: the feed (re)subscribes in the background.
/// Returns every frame read, the price last.
fn publish_until_price(nats: &Nats, ws: &mut Ws, bid: f64) -> Vec<Value> {
    let mut nats_pub = nats.publisher();
    let until = deadline();
    let mut frames = Vec::new();
    for step in 0.. {
        let b = bid + f64::from(step) * 0.0001;
        nats_pub.publish("quotecast.quote.LP1.EURUSD", &quote("LP1", b, b + 0.0004));
        for v in ws.collect_for(after_ms(250)) {
            let done = v["type"] == "price" && v["bid"].as_f64() >= Some(bid);
            frames.push(v);
            if done {
                return frames;
            }
        }
        assert!(
            std::time::Instant::now() < until,
            "no price from NATS quotes"
        );
    }
    unreachable!("the loop returns or fails")
}

fn start_on(nats: &Nats) -> Server {
    start_server(
        &[
            "--nats-url",
            &nats.url(),
            "--symbols",
            "EURUSD,USDJPY",
            "--venues",
            "LP1,LP2",
        ],
        Some(TOML),
    )
}

fn quote(venue: &str, bid: f64, ask: f64) -> String {
    json!({"symbol": "EURUSD", "venue": venue, "bid": bid, "bid_size": 1_000_000,
           "ask": ask, "ask_size": 1_000_000})
    .to_string()
}

#[test]
fn quotes_on_nats_subjects_become_best_prices() {
    let Some(nats) = Nats::start() else { return };
    let server = start_on(&nats);
    let mut ws = connect(&server, &trader());
    ws.subscribe(1, &["EURUSD"]);
    let price = publish_until_price(&nats, &mut ws, 1.0841).pop().unwrap();
    assert_eq!(price["bid_src"], "LP1", "{price}");

    nats.publisher()
        .publish("quotecast.quote.LP2.EURUSD", &quote("LP2", 1.5, 1.5002));
    let best = ws.recv_json_until(deadline(), |v| v["type"] == "price" && v["bid"] == 1.5);
    assert_eq!(
        (&best["bid_src"], &best["ask_src"]),
        (&json!("LP2"), &json!("LP1")),
        "best across venues: {best}"
    );
}

#[test]
fn a_nats_outage_is_feed_stale_then_ok_when_it_returns() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let server = start_on(&nats);
    let mut ws = connect(&server, &trader());
    ws.subscribe(1, &["EURUSD"]);
    publish_until_price(&nats, &mut ws, 1.0841);

    status_until(&server, deadline(), |v| v["bus"]["connected"] == true);
    nats.restart(|| {
        let stale = ws.recv_json_until(deadline(), |v| v["type"] == "status");
        assert_eq!(stale["state"], "feed_stale", "{stale}");
        // The bus state follows the connection (/v1/status, /metrics, system).
        status_until(&server, deadline(), |v| v["bus"]["connected"] == false);
    });
    // The client reconnects by itself; quotes flow again and clients hear so.
    let frames = publish_until_price(&nats, &mut ws, 1.2);
    assert!(
        frames
            .iter()
            .any(|v| v["type"] == "status" && v["state"] == "ok"),
        "no status ok before the price: {}",
        tail(&frames)
    );
    status_until(&server, deadline(), |v| v["bus"]["connected"] == true);
    let r = http_get(server.addr, "/healthz", &[]);
    assert_eq!((r.status, r.body.trim()), (200, "ok"), "{r:?}");
}

#[test]
fn bridge_stores_events_in_jetstream_and_they_reach_subscribers() {
    let Some(nats) = Nats::start() else { return };
    let server = start_on(&nats);
    let file = std::env::temp_dir().join(format!("quotecast-bridge-{}.jsonl", std::process::id()));
    let lines = [
        quote("LP1", 1.0841, 1.0845),
        alert("t1", "from JetStream").to_string(),
        "not json".to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .args(["bridge", "--to", &nats.url()])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bridge failed: {stdout} {stderr}");
    assert!(
        stdout.contains("published 1 quotes and 1 events"),
        "{stdout}"
    );
    assert!(stderr.contains("line 3: not JSON"), "{stderr}");

    // Stored in JetStream: a subscriber replaying from the start gets it,
    // whenever the feed's consumer picked it up.
    let mut ws = connect(&server, &trader());
    subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"alerts","since":0}),
    );
    let alert: Value = ws.recv_json_until(deadline(), |v| v["type"] == "alert");
    assert_eq!(
        (&alert["message"], &alert["seq"]),
        (&json!("from JetStream"), &json!(1)),
        "{alert}"
    );
}
