//! Who may see what: the token's `symbols` claim, unknown symbols, and roles.

use crate::util::*;
use serde_json::json;

#[test]
fn symbols_claim_and_unknown_symbols() {
    let s = start_sim(5, 5000, &[], None);
    let mut c = claims("u1", "t1", &["TRADER"], 600);
    c["symbols"] = json!(["EURUSD"]);
    let mut ws = connect(&s, &sign(&c));
    let (ack, snap) = ws.subscribe(1, &["EURUSD", "GBPUSD", "NOSUCH"]);
    assert_eq!(ack["subscribed"], json!(["EURUSD"]), "{ack}");
    let errors = ack["errors"].as_array().unwrap_or_else(|| panic!("{ack}"));
    assert!(
        errors.contains(&json!({"symbol": "GBPUSD", "code": "not_entitled"})),
        "{ack}"
    );
    assert!(
        errors.contains(&json!({"symbol": "NOSUCH", "code": "unknown_symbol"})),
        "{ack}"
    );
    assert_eq!(errors.len(), 2, "{ack}");
    for d in snap["data"].as_array().unwrap() {
        assert_eq!(d["symbol"], "EURUSD", "{snap}");
    }
    let frames = ws.collect_for(after_ms(1000));
    let live = prices(&frames);
    assert!(!live.is_empty(), "no EURUSD prices");
    assert!(
        live.iter().all(|p| p["symbol"] == "EURUSD"),
        "{}",
        tail(&frames)
    );
}

#[test]
fn roles_without_prices_access_are_forbidden() {
    let s = start_sim(3, 200, &[], None);
    for roles in [&["OPERATIONS"][..], &[][..]] {
        let mut ws = connect(&s, &token(roles));
        let (reply, _) = ws.request(
            json!({"op": "subscribe", "id": 4, "channel": "prices", "symbols": ["EURUSD"]}),
        );
        assert_eq!(reply["type"], "error", "roles {roles:?}: {reply}");
        assert_eq!(reply["code"], "forbidden", "roles {roles:?}: {reply}");
        assert_eq!(reply["id"], 4, "{reply}");
        ws.ping(5);
    }
    // Each allowed role may subscribe.
    for role in ["TRADER", "ANALYST", "RISK_MANAGER", "ADMIN"] {
        let mut ws = connect(&s, &token(&[role]));
        let (ack, _) = ws.subscribe(1, &["EURUSD"]);
        assert_eq!(ack["subscribed"], json!(["EURUSD"]), "{role}: {ack}");
    }
}
