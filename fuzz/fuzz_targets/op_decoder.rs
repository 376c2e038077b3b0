//! The client op decoder (simd-json) against serde_json as a reference.
//!
//! Checks: no panic; an accepted op is valid JSON whose `op`, `id`, `channel`,
//! symbols, metrics, `window_ms`, `agg` and `since` are the ones decoded; the
//! symbol cap holds; every refusal
//! renders as a valid JSON error message.
//!
//! The decoder refuses repeated keys and objects over 32 members (simd-json
//! keeps the first of repeated keys in small objects, the last in large
//! ones); serde_json, keeping the last, is then a fair reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quotecast::protocol::{parse_op, ClientOp, SubscribeOp};
use serde_json::Value;

const MAX_SYMBOLS: usize = 4;

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|s| s.as_str().map(String::from))
        .collect()
}

/// An unsigned integer as the decoder reads it: serde_json reads `-0` as a
/// float, simd-json (and we) as the integer 0.
fn uint(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| (v.as_f64() == Some(0.0)).then_some(0))
}

fuzz_target!(|data: &[u8]| {
    let mut scratch = data.to_vec();
    match parse_op(&mut scratch, MAX_SYMBOLS) {
        Err(e) => {
            let json: Value = serde_json::from_slice(&e.to_json()).expect("error reply is JSON");
            assert_eq!(json["type"], "error");
        }
        Ok(op) => {
            let reference: Value = match serde_json::from_slice(data) {
                Ok(v) => v,
                // serde_json stops at 128 levels of nesting; simd-json does not.
                Err(e) if e.to_string().contains("recursion limit") => return,
                Err(e) => panic!("accepted an op serde_json refuses: {e}"),
            };
            let id = uint(&reference["id"]);
            let channel = reference["channel"].as_str().map(String::from);
            let symbols = strings(reference.get("symbols"));
            match op {
                ClientOp::Subscribe(SubscribeOp {
                    id: i,
                    channel: c,
                    symbols: s,
                    metrics,
                    filters,
                    window_ms,
                    agg,
                    since,
                    keys,
                    window,
                    broadcast_since,
                    filter,
                }) => {
                    assert_eq!(reference["op"], "subscribe");
                    assert!(s.as_ref().is_none_or(|s| s.len() <= MAX_SYMBOLS));
                    assert!(metrics.as_ref().is_none_or(|m| m.len() <= MAX_SYMBOLS));
                    assert_eq!((Some(i), Some(c), s), (id, channel, symbols));
                    assert_eq!(metrics, strings(reference.get("metrics")));
                    assert_eq!(window_ms, uint(&reference["window_ms"]));
                    assert_eq!(since, uint(&reference["since"]));
                    assert_eq!(agg.as_deref(), reference["agg"].as_str());
                    assert_eq!(keys, strings(reference.get("keys")));
                    assert_eq!(window.as_deref(), reference["window"].as_str());
                    assert_eq!(broadcast_since, uint(&reference["broadcast_since"]));
                    assert_eq!(filter.is_some(), reference.get("filter").is_some());
                    let want = reference["filters"].as_object().map_or(0, |f| f.len());
                    assert_eq!(filters.len(), want);
                    for (k, v) in &filters {
                        assert_eq!(reference["filters"][k].as_str(), Some(v.as_str()));
                    }
                }
                ClientOp::Unsubscribe {
                    id: i,
                    channel: c,
                    symbols: s,
                    metrics,
                } => {
                    assert_eq!(reference["op"], "unsubscribe");
                    assert!(s.as_ref().is_none_or(|s| s.len() <= MAX_SYMBOLS));
                    assert_eq!((Some(i), Some(c), s), (id, channel, symbols));
                    assert_eq!(metrics, strings(reference.get("metrics")));
                }
                ClientOp::Ping { id: i } => {
                    assert_eq!(reference["op"], "ping");
                    assert_eq!(Some(i), id);
                    // Strict ops: an accepted ping has nothing but `op` and `id`.
                    assert!(reference.as_object().is_some_and(|o| o.len() == 2));
                }
                ClientOp::Auth { id: i, token } => {
                    assert_eq!(reference["op"], "auth");
                    assert_eq!(Some(i), id);
                    assert_eq!(Some(token.as_str()), reference["token"].as_str());
                }
            }
        }
    }
});
