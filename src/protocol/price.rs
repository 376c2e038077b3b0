//! The `price` message: the one server message on the fan-out path, encoded
//! once per value per shard and shared by every subscriber.

use crate::model::quote::BestPrice;
use crate::model::symbol::Universe;
use std::io::Write;

/// Writes the `price` message of `p` into `out` (cleared first).
///
/// Hand-written because it runs once per value per shard on the hot path.
/// `mid` and `spread` are rounded to one more and the same number of decimals
/// as the quotes, so float noise such as `0.00019999999999997797` never
/// reaches a terminal.
pub fn write_price(p: &BestPrice, universe: &Universe, out: &mut Vec<u8>) {
    out.clear();
    let bid_src = universe.venue_name(p.bid_venue);
    let ask_src = universe.venue_name(p.ask_venue);
    out.extend_from_slice(br#"{"type":"price","symbol":""#);
    out.extend_from_slice(universe.symbol_name(p.symbol).as_bytes());
    let _ = write!(out, r#"","seq":{},"bid":"#, p.seq);
    let bid_decimals = write_number(out, p.bid);
    out.extend_from_slice(br#","bid_size":"#);
    write_number(out, p.bid_size);
    let _ = write!(out, r#","bid_src":"{bid_src}","ask":"#);
    let ask_decimals = write_number(out, p.ask);
    out.extend_from_slice(br#","ask_size":"#);
    write_number(out, p.ask_size);
    let decimals = bid_decimals.max(ask_decimals).min(12);
    let spread = p.ask - p.bid;
    let mid = (p.bid + p.ask) / 2.0;
    let spread_bps = if mid != 0.0 {
        spread / mid * 10_000.0
    } else {
        0.0
    };
    let _ = write!(
        out,
        r#","ask_src":"{ask_src}","mid":{mid:.mp$},"spread":{spread:.sp$},"spread_bps":{spread_bps:.4},"ts":{}}}"#,
        p.ts_us,
        mp = decimals + 1,
        sp = decimals,
    );
}

/// Writes the shortest representation of `v` (integral values without a
/// fraction; a non-finite value as `null`) and returns its number of decimals.
pub fn write_number(out: &mut Vec<u8>, v: f64) -> usize {
    let start = out.len();
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        // Never produced by the aggregator; keep the JSON valid regardless.
        out.extend_from_slice(b"null");
    }
    let written = &out[start..];
    written
        .iter()
        .position(|&b| b == b'.')
        .map_or(0, |dot| written.len() - dot - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::symbol::{SymbolId, VenueId};

    #[test]
    fn price_json_is_valid_and_rounded() {
        let u = Universe::new(vec!["EURUSD".into()], vec!["LP1".into(), "LP2".into()]);
        let p = BestPrice {
            symbol: SymbolId(0),
            seq: 7,
            ts_us: 1_763_769_600_123_456,
            bid: 1.0841,
            bid_size: 1_000_000.0,
            bid_venue: VenueId(1),
            ask: 1.0843,
            ask_size: 500_000.0,
            ask_venue: VenueId(0),
        };
        let mut out = Vec::new();
        write_price(&p, &u, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "price");
        assert_eq!(v["symbol"], "EURUSD");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["bid_src"], "LP2");
        assert_eq!(v["ask_src"], "LP1");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""mid":1.08420,"spread":0.0002,"#), "{text}");
        assert_eq!(v["ts"], 1_763_769_600_123_456u64);
    }
}
