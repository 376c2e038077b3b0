//! `--log-format json`: every line on stderr is one JSON event; each
//! connection's life is logged (connect, refused upgrade, rate-limit close,
//! disconnect with code, duration and frames), the configuration is logged
//! at start with its secrets redacted, and no token or secret ever appears.

use crate::util::*;
use serde_json::{json, Value};
use tungstenite::Message;

const SCRAPE_TOKEN: &str = "scrape-token-logtest-93d2";

/// Events of the run whose `event` field is `name`.
fn events<'a>(log: &'a [Value], name: &str) -> Vec<&'a Value> {
    log.iter().filter(|v| v["event"] == name).collect()
}

#[test]
fn json_log_shows_each_connection_and_never_a_secret() {
    let toml = format!(
        "[server]\nops_per_sec = 5\nops_burst = 5\nrate_limit_close_after = 3\n\
         [metrics]\ntoken = \"{SCRAPE_TOKEN}\"\n"
    );
    let mut s = start_sim(3, 100, &["--log-format", "json"], Some(&toml));
    let header_token = trader();
    let query_token = sign(&claims("u2", "t1", &["TRADER"], 600));
    let expired = sign(&claims("u3", "t1", &["TRADER"], -60));

    // A client that subscribes and closes normally.
    let mut ws = connect(&s, &header_token);
    ws.subscribe(1, &["EURUSD"]);
    ws.collect_at_least(300, |f| f.iter().any(|v| v["type"] == "price"));
    ws.ws.close(None).unwrap();
    let _ = ws.ws.flush();
    // A client with its token in the query string, closed by the drain.
    let _query = connect_query(&s, &query_token);
    // A refused upgrade.
    assert_401(&upgrade(&s, Some(&expired)), "token_expired");
    // An op flood, closed with 4029.
    let mut flood = connect(&s, &header_token);
    for id in 1..=40 {
        let op = json!({"op": "ping", "id": id}).to_string();
        if flood.ws.write(Message::text(op)).is_err() {
            break;
        }
    }
    let _ = flood.ws.flush();
    assert_eq!(flood.expect_close(deadline()).0, Some(4029));
    let auth = format!("Bearer {SCRAPE_TOKEN}");
    assert_eq!(
        http_get(s.addr, "/metrics", &[("Authorization", &auth)]).status,
        200
    );

    assert!(s.stop().is_some_and(|st| st.success()), "clean exit");
    let stderr = s.stderr_tail(usize::MAX);
    let log: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();

    for secret in [SECRET, SCRAPE_TOKEN, &header_token, &query_token, &expired] {
        // The signature alone identifies a token: no part of it may leak.
        let sig = secret.rsplit('.').next().unwrap();
        assert!(!stderr.contains(sig), "a secret is in the log:\n{stderr}");
    }

    let config = events(&log, "config");
    assert_eq!(config.len(), 1, "{stderr}");
    let cfg: Value = serde_json::from_str(config[0]["config"].as_str().unwrap()).unwrap();
    assert_eq!(cfg["metrics"]["token"], "<redacted>");
    assert_eq!(cfg["server"]["rate_limit_close_after"], 3);

    let connects = events(&log, "connect");
    assert_eq!(connects.len(), 3, "{stderr}");
    for c in &connects {
        assert_eq!(c["tenant"], "t1", "{c}");
        assert_eq!(c["transport"], "ws", "{c}");
        assert!(c["peer"].as_str().unwrap().contains("127.0.0.1"), "{c}");
        assert!(c["conn"].is_string(), "{c}");
    }
    assert!(connects.iter().any(|c| c["sub"] == "u2"));

    let refused = events(&log, "upgrade_refused");
    assert_eq!(refused.len(), 1, "{stderr}");
    assert_eq!(refused[0]["reason"], "token_expired");
    assert_eq!(events(&log, "rate_limited").len(), 1, "{stderr}");

    let disconnects = events(&log, "disconnect");
    let mut codes: Vec<u64> = disconnects
        .iter()
        .map(|d| d["code"].as_u64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, [1000, 1001, 4029], "{stderr}");
    for d in &disconnects {
        assert!(d["duration_ms"].is_u64() && d["frames"].is_u64(), "{d}");
        let conn = &d["conn"];
        assert!(connects.iter().any(|c| &c["conn"] == conn), "{d}");
    }
    let normal = disconnects.iter().find(|d| d["code"] == 1000).unwrap();
    assert!(normal["frames"].as_u64().unwrap() >= 1, "{normal}");
}
