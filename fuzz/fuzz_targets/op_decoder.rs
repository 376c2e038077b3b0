//! The client op decoder (simd-json) against serde_json as a reference.
//!
//! Checks: no panic; an accepted op is valid JSON whose `op`, `id`, `channel`
//! and symbols are the ones decoded; the symbol cap holds; every refusal
//! renders as a valid JSON error message.
//!
//! The decoder refuses repeated keys and objects over 32 members (simd-json
//! keeps the first of repeated keys in small objects, the last in large
//! ones); serde_json, keeping the last, is then a fair reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quotecast::protocol::{parse_op, ClientOp};
use serde_json::Value;

const MAX_SYMBOLS: usize = 4;

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|s| s.as_str().map(String::from))
        .collect()
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
            // serde_json reads `-0` as a float; simd-json (and we) as the integer 0.
            let id = reference["id"]
                .as_u64()
                .or_else(|| (reference["id"].as_f64() == Some(0.0)).then_some(0));
            let channel = reference["channel"].as_str().map(String::from);
            let symbols = strings(reference.get("symbols"));
            match op {
                ClientOp::Subscribe {
                    id: i,
                    channel: c,
                    symbols: s,
                } => {
                    assert_eq!(reference["op"], "subscribe");
                    assert!(s.len() <= MAX_SYMBOLS);
                    assert_eq!((Some(i), Some(c), Some(s)), (id, channel, symbols));
                }
                ClientOp::Unsubscribe {
                    id: i,
                    channel: c,
                    symbols: s,
                } => {
                    assert_eq!(reference["op"], "unsubscribe");
                    assert!(s.as_ref().is_none_or(|s| s.len() <= MAX_SYMBOLS));
                    assert_eq!((Some(i), Some(c), s), (id, channel, symbols));
                }
                ClientOp::Ping { id: i } => {
                    assert_eq!(reference["op"], "ping");
                    assert_eq!(Some(i), id);
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
