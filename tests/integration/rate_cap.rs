//! A connection never gets more than `max_rate_hz` price frames per symbol per second.

use crate::util::*;
use std::collections::HashMap;

#[test]
fn per_symbol_rate_never_above_max_rate_hz() {
    const HZ: usize = 5;
    const SECS: u64 = 3;
    let s = start_sim(5, 5000, &["--max-rate-hz", "5"], None);
    let mut ws = connect(&s, &trader());
    let syms = ["EURUSD", "GBPUSD", "USDJPY"];
    ws.subscribe(1, &syms);
    // Frames are timed by their `ts` (when the server took the quote), not by
    // when this client read them: a loaded machine delays and bunches reads,
    // never the server's stamps. A busy symbol's `ts` is its flush time, or
    // up to one interval earlier.
    let mut times: HashMap<String, Vec<i64>> = HashMap::new();
    let from_us = now_us();
    let end = after_ms(SECS * 1000);
    while let Some(ev) = ws.next(end) {
        match ev {
            Event::Json(v) if v["type"] == "price" => {
                let ts = v["ts"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("price without ts: {v}"));
                times
                    .entry(v["symbol"].as_str().unwrap().to_string())
                    .or_default()
                    .push(ts);
            }
            Event::Json(_) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    let run_us = from_us..from_us + SECS as i64 * 1_000_000;
    for sym in syms {
        let t = times.get(sym).map(Vec::as_slice).unwrap_or_default();
        // Leading edge plus one per interval over the whole run.
        let in_run = t.iter().filter(|ts| run_us.contains(ts)).count();
        assert!(
            in_run <= HZ * SECS as usize + 2,
            "{sym}: {in_run} frames in {SECS} s at max_rate_hz {HZ}"
        );
        // Not starved either: a busy symbol changes every interval.
        assert!(t.len() >= 6, "{sym}: only {} frames in {SECS} s", t.len());
        // Any one-second window (one frame of slack: the first frame's `ts`
        // may precede its flush by up to an interval).
        for (i, start) in t.iter().enumerate() {
            let n = t[i..].iter().take_while(|x| *x - start < 1_000_000).count();
            assert!(
                n <= HZ + 1,
                "{sym}: {n} frames within one second at max_rate_hz {HZ}"
            );
        }
    }
}
