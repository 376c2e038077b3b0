//! Plain HTTP routes on the WebSocket port.

use crate::util::*;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn healthz_channels_status_and_404() {
    let s = start_sim(5, 100, &[], None);

    let r = http_get(s.addr, "/healthz", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), "ok", "{r:?}");

    let r = http_get(
        s.addr,
        "/v1/channels",
        &[("Authorization", &bearer(&trader()))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let prices = prices_channel(&v);
    assert_eq!(prices["kind"], "latest", "{prices}");
    let roles: Vec<&str> = prices["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    for role in ["TRADER", "ANALYST", "RISK_MANAGER", "ADMIN"] {
        assert!(roles.contains(&role), "{role} missing from {prices}");
    }
    let symbols = prices["symbols"]
        .as_array()
        .unwrap_or_else(|| panic!("{prices}"));
    assert_eq!(symbols.len(), 5, "--sim-symbols 5: {prices}");
    for sym in ["EURUSD", "GBPUSD", "USDJPY"] {
        assert!(
            symbols.iter().any(|s| s == sym),
            "{sym} missing from {prices}"
        );
    }

    let r = http_get(s.addr, "/v1/channels", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["reason"], "missing_token", "{r:?}");

    let r = http_get(s.addr, "/no/such/path", &[]);
    assert_eq!(r.status, 404, "{r:?}");

    let r = http_get(
        s.addr,
        "/v1/status",
        &[("Authorization", &bearer(&token(&["ADMIN"])))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json().is_object(), "{r:?}");

    let r = http_get(
        s.addr,
        "/v1/status",
        &[("Authorization", &bearer(&trader()))],
    );
    assert_eq!(r.status, 403, "{r:?}");
}
