//! Live price frames: `seq` strictly increasing per symbol, `bid <= ask`, and
//! `mid`, `spread`, `ts` consistent.

use crate::util::*;
use std::collections::HashMap;

#[test]
fn seq_increases_and_prices_are_consistent() {
    let s = start_sim(5, 5000, &["--max-rate-hz", "200"], None);
    let mut ws = connect(&s, &trader());
    let syms = ["EURUSD", "GBPUSD", "USDJPY"];
    let (_, snap) = ws.subscribe(1, &syms);
    let mut last: HashMap<String, u64> = HashMap::new();
    for d in snap["data"].as_array().unwrap() {
        last.insert(
            d["symbol"].as_str().unwrap().to_string(),
            d["seq"].as_u64().unwrap(),
        );
    }
    let frames = ws.collect_at_least(2000, |f| prices(f).len() >= 20);
    let live = prices(&frames);
    assert!(
        live.len() >= 20,
        "only {} prices in 2 s at 5000 quotes/s",
        live.len()
    );
    for p in live {
        let sym = p["symbol"]
            .as_str()
            .unwrap_or_else(|| panic!("no symbol: {p}"));
        assert!(syms.contains(&sym), "price of unsubscribed {sym}");
        let seq = p["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {p}"));
        if let Some(prev) = last.insert(sym.to_string(), seq) {
            assert!(seq > prev, "{sym} seq went from {prev} to {seq}");
        }
        let f = |k: &str| p[k].as_f64().unwrap_or_else(|| panic!("no {k}: {p}"));
        let (bid, ask, mid, spread) = (f("bid"), f("ask"), f("mid"), f("spread"));
        assert!(bid > 0.0 && bid <= ask, "bid > ask: {p}");
        let tol = 1e-9 * ask.max(1.0);
        assert!((mid - (bid + ask) / 2.0).abs() <= tol, "mid: {p}");
        assert!((spread - (ask - bid)).abs() <= tol, "spread: {p}");
        let ts = p["ts"].as_i64().unwrap_or_else(|| panic!("no ts: {p}"));
        let now = now_us();
        assert!(
            ts <= now + 1_000_000 && ts > now - 10_000_000,
            "ts {ts} (µs) is not recent (now {now}): {p}"
        );
    }
    assert_eq!(
        last.len(),
        3,
        "not every subscribed symbol got a value: {last:?}"
    );
}
