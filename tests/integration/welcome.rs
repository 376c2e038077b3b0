//! The first frame after the upgrade is `welcome`, carrying the session facts.

use crate::util::*;

const TOML: &str = "[server]\nheartbeat_ms = 7000\n";

#[test]
fn welcome_fields() {
    let s = start_sim(3, 100, &["--max-rate-hz", "25"], Some(TOML));
    let c = claims("u1", "t1", &["TRADER"], 600);
    let exp = c["exp"].as_i64().unwrap();
    let ws = connect(&s, &sign(&c));
    let w = &ws.welcome;
    assert!(
        w["conn"].as_str().is_some_and(|c| !c.is_empty()),
        "conn: {w}"
    );
    assert_eq!(w["shard"].as_u64(), Some(0), "one shard, so shard 0: {w}");
    let t = w["server_time"]
        .as_i64()
        .unwrap_or_else(|| panic!("server_time: {w}"));
    assert!(
        (t - now_ms()).abs() < 5_000,
        "server_time {t} is not now: {w}"
    );
    assert_eq!(w["session_expires"].as_i64(), Some(exp * 1000), "{w}");
    assert_eq!(w["heartbeat_ms"].as_u64(), Some(7000), "{w}");
    assert_eq!(w["max_rate_hz"].as_u64(), Some(25), "{w}");
}

#[test]
fn token_in_query_and_distinct_conn_ids() {
    let s = start_sim(3, 100, &[], None);
    let a = connect_query(&s, &trader());
    let b = connect(&s, &trader());
    assert_eq!(
        a.welcome["max_rate_hz"].as_u64(),
        Some(60),
        "default max_rate_hz: {}",
        a.welcome
    );
    assert_ne!(
        a.welcome["conn"], b.welcome["conn"],
        "two connections share a conn id"
    );
}
