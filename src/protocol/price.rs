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
    let mut integer = itoa::Buffer::new();
    out.extend_from_slice(br#"{"type":"price","symbol":""#);
    out.extend_from_slice(universe.symbol_name(p.symbol).as_bytes());
    out.extend_from_slice(br#"","seq":"#);
    out.extend_from_slice(integer.format(p.seq).as_bytes());
    out.extend_from_slice(br#","bid":"#);
    let bid_decimals = write_number(out, p.bid);
    out.extend_from_slice(br#","bid_size":"#);
    write_number(out, p.bid_size);
    out.extend_from_slice(br#","bid_src":""#);
    out.extend_from_slice(universe.venue_name(p.bid_venue).as_bytes());
    out.extend_from_slice(br#"","ask":"#);
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
    out.extend_from_slice(br#","ask_src":""#);
    out.extend_from_slice(universe.venue_name(p.ask_venue).as_bytes());
    out.extend_from_slice(br#"","mid":"#);
    write_fixed(out, mid, decimals + 1);
    out.extend_from_slice(br#","spread":"#);
    write_fixed(out, spread, decimals);
    out.extend_from_slice(br#","spread_bps":"#);
    write_fixed(out, spread_bps, 4);
    out.extend_from_slice(br#","ts":"#);
    out.extend_from_slice(integer.format(p.ts_us).as_bytes());
    out.push(b'}');
}

/// Writes the shortest representation of `v` (integral values without a
/// fraction; a non-finite value as `null`) and returns its number of decimals.
pub fn write_number(out: &mut Vec<u8>, v: f64) -> usize {
    let start = out.len();
    let mut shortest = ryu::Buffer::new();
    if v.is_finite() {
        // ryu is several times faster than std. With at most 15 significant
        // digits the shortest digits are unique, so both find the same; past
        // that they may pick different ones, and std writes. std spells
        // integral values without `.0` and never uses an exponent.
        match shortest.format_finite(v) {
            s if s.contains('e') || significant_digits(s) > 15 => {
                let _ = write!(out, "{v}");
            }
            s => out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes()),
        }
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

/// Digits of a plain decimal after its leading zeros (trailing zeros
/// count: an overcount only sends a value to std).
fn significant_digits(decimal: &str) -> usize {
    decimal
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&d| d == b'0')
        .count()
}

/// Writes `v` with `decimals` (at most 12) places, exactly as
/// `{v:.decimals$}` does. Rounding an integer scaled by a power of ten is
/// faster than std's exact algorithm; it agrees with it whenever the scaled
/// value is below 10^9 (the scaling then errs by far less than 10^-6) and
/// not within 10^-6 of a tie, and std writes every other case.
fn write_fixed(out: &mut Vec<u8>, v: f64, decimals: usize) {
    const POW10: [f64; 13] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
    ];
    let scaled = v.abs() * POW10[decimals.min(12)];
    let fraction = scaled - scaled.trunc();
    if decimals > 12 || !scaled.is_finite() || scaled >= 1e9 || (fraction - 0.5).abs() < 1e-6 {
        let _ = write!(out, "{v:.decimals$}");
        return;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let mut integer = itoa::Buffer::new();
    let digits = integer.format(scaled.round() as u64).as_bytes();
    let whole = digits.len().saturating_sub(decimals);
    match whole {
        0 => out.push(b'0'),
        _ => out.extend_from_slice(&digits[..whole]),
    }
    if decimals > 0 {
        out.push(b'.');
        out.resize(out.len() + decimals.saturating_sub(digits.len()), b'0');
        out.extend_from_slice(&digits[whole..]);
    }
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

    /// Values a feed sends and values that try the fast paths' edges:
    /// price-like ones, ties, zeros, tiny, huge, every magnitude, and
    /// arbitrary bit patterns (from a fixed seed, so a failure repeats).
    fn samples() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.5,
            2.5,
            0.125,
            0.000125,
            1.0841,
            1.08415,
            150.25,
            1e-7,
            1e-20,
            1e15,
            1e16,
            1e21,
            1e300,
            5e-324,
            999_999_999.5,
            123_456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.1 + 0.2,
            2.0 / 3.0,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..40_000 {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let bits = f64::from_bits(r);
            if bits.is_finite() {
                v.push(bits);
            }
            let pips = (r % 10_000_000) as f64;
            v.push(pips / 100_000.0);
            v.push(-pips / 1_000.0);
            v.push((r % 1_000_000_000) as f64 / 7.0);
        }
        v
    }

    #[test]
    fn shortest_numbers_are_what_std_writes() {
        let mut out = Vec::new();
        for v in samples() {
            out.clear();
            let decimals = write_number(&mut out, v);
            let std = format!("{v}");
            assert_eq!(std::str::from_utf8(&out).unwrap(), std, "{v:e}");
            let want = std.find('.').map_or(0, |dot| std.len() - dot - 1);
            assert_eq!(decimals, want, "{v:e}");
        }
    }

    #[test]
    fn fixed_decimals_are_what_std_writes() {
        let mut out = Vec::new();
        for (i, v) in samples().into_iter().enumerate() {
            for decimals in [0, 1, 4, 6, 12, i % 13] {
                out.clear();
                write_fixed(&mut out, v, decimals);
                let std = format!("{v:.decimals$}");
                assert_eq!(std::str::from_utf8(&out).unwrap(), std, "{v:e} .{decimals}");
            }
        }
    }
}
