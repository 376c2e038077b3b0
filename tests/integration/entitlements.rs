//! Who may see what: tenant entitlements, the token's `symbols` claim, unknown
//! symbols, and roles.

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
    let frames = ws.collect_at_least(1000, |f| !prices(f).is_empty());
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

/// Tenant `t1` may see EURUSD and the USD* symbols; `t2` has no entry.
const TENANTS: &str = r#"
[tenants.t1]
symbols = ["EURUSD", "USD*"]
"#;

/// The sorted symbols of the price frames among `frames`.
fn priced(frames: &[serde_json::Value]) -> std::collections::BTreeSet<String> {
    prices(frames)
        .iter()
        .map(|p| p["symbol"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tenant_entitlements_hold_over_a_window() {
    // Six symbols: EURUSD GBPUSD USDJPY USDCHF AUDUSD USDCAD, all quoting fast.
    let s = start_sim(6, 6000, &[], Some(TENANTS));
    let all = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD"];
    let entitled = ["EURUSD", "USDCAD", "USDCHF", "USDJPY"];
    let mut ws = connect(&s, &token(&["TRADER"]));
    let (ack, snap) = ws.subscribe(1, &all);
    assert_eq!(
        ack["subscribed"],
        json!(["EURUSD", "USDJPY", "USDCHF", "USDCAD"]),
        "{ack}"
    );
    assert_eq!(
        ack["errors"],
        json!([{"symbol": "GBPUSD", "code": "not_entitled"},
               {"symbol": "AUDUSD", "code": "not_entitled"}]),
        "{ack}"
    );
    let snap_symbols: Vec<&str> = snap["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{snap}"))
        .iter()
        .map(|d| d["symbol"].as_str().unwrap())
        .collect();
    assert!(snap_symbols.iter().all(|s| entitled.contains(s)), "{snap}");

    // Over a window (and until every entitled symbol has been priced), then
    // up to a ping barrier: every frame the server sent before answering the
    // ping has been read.
    let want: std::collections::BTreeSet<String> = entitled.map(String::from).into();
    let mut frames = ws.collect_at_least(1500, |f| priced(f).is_superset(&want));
    let (pong, before) = ws.request(json!({"op": "ping", "id": 2}));
    assert_eq!(pong["type"], "pong", "{pong}");
    frames.extend(before);
    let seen = priced(&frames);
    assert_eq!(seen, want, "prices seen: {}", tail(&frames));

    // Asking again changes nothing: still refused, still nothing after a barrier.
    let (again, _) =
        ws.request(json!({"op": "subscribe", "id": 3, "channel": "prices", "symbols": ["GBPUSD"]}));
    assert_eq!(again["subscribed"], json!([]), "{again}");
    let mut frames = ws.collect_for(after_ms(500));
    frames.extend(ws.request(json!({"op": "ping", "id": 4})).1);
    assert!(
        priced(&frames).is_subset(&want),
        "non-entitled price after a refused resubscribe: {}",
        tail(&frames)
    );
}

#[test]
fn token_symbols_narrow_the_tenant_and_other_tenants_see_everything() {
    let s = start_sim(6, 3000, &[], Some(TENANTS));
    // The claim may narrow t1's list but never widen it.
    let mut c = claims("u1", "t1", &["TRADER"], 600);
    c["symbols"] = json!(["USDJPY", "GBPUSD"]);
    let mut narrowed = connect(&s, &sign(&c));
    let (ack, _) = narrowed.subscribe(1, &["USDJPY", "GBPUSD", "EURUSD"]);
    assert_eq!(ack["subscribed"], json!(["USDJPY"]), "{ack}");
    assert_eq!(
        ack["errors"],
        json!([{"symbol": "GBPUSD", "code": "not_entitled"},
               {"symbol": "EURUSD", "code": "not_entitled"}]),
        "{ack}"
    );
    // A tenant without an entry keeps the default: every symbol.
    let other = sign(&claims("u2", "t2", &["TRADER"], 600));
    let mut ws = connect(&s, &other);
    let (ack, _) = ws.subscribe(1, &["GBPUSD", "AUDUSD"]);
    assert_eq!(ack["subscribed"], json!(["GBPUSD", "AUDUSD"]), "{ack}");

    let mut frames = narrowed.collect_at_least(1000, |f| priced(f).contains("USDJPY"));
    frames.extend(narrowed.request(json!({"op": "ping", "id": 2})).1);
    assert_eq!(
        priced(&frames),
        ["USDJPY".to_string()].into(),
        "{}",
        tail(&frames)
    );
}
