//! `[ingest]`: a pinned, busy-polling aggregator still feeds the shards;
//! busy polling without a core of its own is refused at start.

use crate::util::*;

#[test]
fn a_busy_polling_aggregator_on_its_own_core_delivers_prices() {
    let toml = "[ingest]\naggregator_core = 1\nbusy_poll = true\n";
    let s = start_sim(3, 1000, &[], Some(toml));
    let mut ws = connect(&s, &trader());
    ws.subscribe(1, &["EURUSD"]);
    let frames = ws.collect_at_least(500, |f| !prices(f).is_empty());
    assert!(!prices(&frames).is_empty(), "no prices: {}", tail(&frames));
}

#[test]
fn busy_polling_without_a_core_is_refused() {
    let stderr = start_failure("[ingest]\nbusy_poll = true\n");
    assert!(stderr.contains("ingest.aggregator_core"), "{stderr}");
}
