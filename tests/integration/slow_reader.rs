//! A client that stops reading, then resumes, gets only the latest values:
//! `status: lagging` with a skipped count, then `status: ok`, and fresh prices.

use crate::util::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const TOML: &str = "[server]\nslow_consumer_timeout_ms = 20000\n";

#[test]
fn slow_reader_gets_latest_values_and_lagging_status() {
    let s = start_sim(20, 20000, &["--max-rate-hz", "1000"], Some(TOML));
    let all = channel_symbols(&s);
    assert_eq!(all.len(), 20, "{all:?}");
    let syms: Vec<&str> = all.iter().map(String::as_str).collect();

    let mut ws = connect_over(small_rcvbuf_stream(s.addr, 4096), &s, Some(&trader()), "");
    ws.subscribe(1, &syms);
    let mut frames = ws.collect_at_least(300, |f| !prices(f).is_empty());
    assert!(!prices(&frames).is_empty(), "no prices before the pause");

    // Stop reading long enough for the socket buffers on both sides to fill.
    std::thread::sleep(Duration::from_millis(2500));

    // Resume: read until lagging ... ok.
    let mut lagging: Option<Value> = None;
    let wait = deadline();
    let after_ok = loop {
        match ws.next(wait) {
            Some(Event::Json(v)) => {
                if v["type"] == "status" && v["state"] == "lagging" && lagging.is_none() {
                    lagging = Some(v.clone());
                } else if v["type"] == "status" && v["state"] == "ok" && lagging.is_some() {
                    frames.push(v);
                    // Read on briefly: what comes now must be fresh.
                    let mut after = Vec::new();
                    let end = after_ms(500);
                    while let Some(ev) = ws.next(end) {
                        match ev {
                            Event::Json(v) => after.push((v, now_us())),
                            other => panic!("connection ended after ok: {other:?}"),
                        }
                    }
                    break after;
                }
                frames.push(v);
            }
            other => panic!(
                "no lagging/ok status after the pause (lagging: {lagging:?}): {other:?}; last frames: {}",
                tail(&frames)
            ),
        }
    };
    let lagging = lagging.unwrap();
    let skipped = lagging["skipped"]
        .as_u64()
        .unwrap_or_else(|| panic!("lagging without skipped: {lagging}"));
    assert!(skipped > 0, "{lagging}");

    // Per symbol: seq strictly increasing throughout, with a jump across the pause.
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut max_jump = 0;
    let after_values: Vec<Value> = after_ok.iter().map(|(v, _)| v.clone()).collect();
    for p in prices(&frames).into_iter().chain(prices(&after_values)) {
        let sym = p["symbol"].as_str().unwrap().to_string();
        let seq = p["seq"].as_u64().unwrap();
        if let Some(prev) = last.insert(sym.clone(), seq) {
            assert!(seq > prev, "{sym} seq went from {prev} to {seq}");
            max_jump = max_jump.max(seq - prev);
        }
    }
    assert!(
        max_jump > 10,
        "no symbol skipped values across a 2.5 s pause (max seq jump {max_jump})"
    );

    // After `ok` the stream is live again, not a backlog from the pause: most
    // prices arrive well within a second of their `ts` (a rarely quoted symbol
    // may legitimately carry an older latest value).
    let fresh: Vec<(i64, i64)> = after_ok
        .iter()
        .filter(|(v, _)| v["type"] == "price")
        .map(|(v, at)| (v["ts"].as_i64().unwrap(), *at))
        .collect();
    assert!(!fresh.is_empty(), "no prices after status ok");
    let stale = fresh.iter().filter(|(ts, at)| at - ts > 1_000_000).count();
    assert!(
        stale * 2 <= fresh.len(),
        "{stale} of {} prices after ok were more than 1 s old on arrival",
        fresh.len()
    );
}
