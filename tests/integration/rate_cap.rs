//! A connection never gets more than `max_rate_hz` price frames per symbol per second.

use crate::util::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[test]
fn per_symbol_rate_never_above_max_rate_hz() {
    const HZ: usize = 5;
    const SECS: u64 = 3;
    let s = start_sim(5, 5000, &["--max-rate-hz", "5"], None);
    let mut ws = connect(&s, &trader());
    let syms = ["EURUSD", "GBPUSD", "USDJPY"];
    ws.subscribe(1, &syms);
    let mut times: HashMap<String, Vec<Instant>> = HashMap::new();
    let end = after_ms(SECS * 1000);
    while let Some(ev) = ws.next(end) {
        match ev {
            Event::Json(v) if v["type"] == "price" => {
                times
                    .entry(v["symbol"].as_str().unwrap().to_string())
                    .or_default()
                    .push(Instant::now());
            }
            Event::Json(_) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    for sym in syms {
        let t = times.get(sym).map(Vec::as_slice).unwrap_or_default();
        // Leading edge plus one per interval over the whole run.
        assert!(
            t.len() <= HZ * SECS as usize + 2,
            "{sym}: {} frames in {SECS} s at max_rate_hz {HZ}",
            t.len()
        );
        // Not starved either: a busy symbol changes every interval.
        assert!(t.len() >= 6, "{sym}: only {} frames in {SECS} s", t.len());
        // Any one-second window (one frame of slack for read jitter).
        for (i, start) in t.iter().enumerate() {
            let n = t[i..]
                .iter()
                .take_while(|x| x.duration_since(*start) < Duration::from_secs(1))
                .count();
            assert!(
                n <= HZ + 1,
                "{sym}: {n} frames within one second at max_rate_hz {HZ}"
            );
        }
    }
}
