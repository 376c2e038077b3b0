//! `feed.kind = "nats"` against a real nats-server: venue quotes published
//! on core subjects become best prices, events stored in JetStream reach
//! reliable subscribers, and `quotecast bridge` pushes a replay file there.

use crate::events_util::*;
use crate::nats_util::Nats;
use crate::util::*;
use serde_json::{json, Value};
use std::process::Command;

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
        None,
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
    let mut nats_pub = nats.publisher();
    // The feed subscribes in the background: publish until it is listening.
    let first = deadline();
    let price = loop {
        nats_pub.publish("quotecast.quote.LP1.EURUSD", &quote("LP1", 1.0841, 1.0845));
        let seen = ws.collect_for(after_ms(250));
        if let Some(p) = seen.into_iter().find(|v| v["type"] == "price") {
            break p;
        }
        assert!(
            std::time::Instant::now() < first,
            "no price from NATS quotes"
        );
    };
    assert_eq!(
        (&price["bid"], &price["bid_src"]),
        (&json!(1.0841), &json!("LP1")),
        "{price}"
    );

    nats_pub.publish("quotecast.quote.LP2.EURUSD", &quote("LP2", 1.0843, 1.0844));
    let best = ws.recv_json_until(deadline(), |v| v["type"] == "price" && v["bid"] == 1.0843);
    assert_eq!(
        (&best["bid_src"], &best["ask"], &best["ask_src"]),
        (&json!("LP2"), &json!(1.0844), &json!("LP2")),
        "best across venues: {best}"
    );
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
