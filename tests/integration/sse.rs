//! `GET /v1/sse`: the same messages as WebSocket frames as SSE events, a
//! resume cursor in `id:` that `Last-Event-ID` hands back, the same token
//! rules and limits.

use crate::events_util::*;
use crate::sse_client::{open, open_over, Sse, SseEvent};
use crate::util::*;
use serde_json::{json, Value};

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn open_ok(server: &Server, target: &str, headers: &[(&str, &str)]) -> Sse {
    open(server.addr, target, headers).unwrap_or_else(|r| panic!("{target} refused: {r:?}"))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prices_come_as_snapshot_then_conflated_updates() {
    let s = start_sim(5, 200, &[], Some("[server]\nheartbeat_ms = 300\n"));
    let auth = bearer(&trader());
    let mut sse = open_ok(
        &s,
        "/v1/sse?channel=prices&symbols=EURUSD,GBPUSD,NOSUCH",
        &[("Authorization", &auth)],
    );
    assert_eq!(sse.header("cache-control"), Some("no-store"));
    let (welcome, _) = sse.until(deadline(), |_| true);
    assert_eq!(welcome.event, "welcome", "{welcome:?}");
    assert_eq!(welcome.data["heartbeat_ms"], 300);
    let (ack, _) = sse.until(deadline(), |_| true);
    assert_eq!(ack.data["type"], "ack", "{ack:?}");
    assert_eq!(ack.data["subscribed"], json!(["EURUSD", "GBPUSD"]));
    assert_eq!(ack.data["errors"][0]["code"], "unknown_symbol", "{ack:?}");
    let (snapshot, before) = sse.until(deadline(), |e| e.event == "snapshot");
    assert!(
        before.is_empty(),
        "nothing between ack and snapshot: {before:?}"
    );
    assert_eq!(snapshot.data["channel"], "prices");
    let mut last_seq: std::collections::HashMap<String, i64> = snapshot.data["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["symbol"].as_str().unwrap().to_owned(),
                p["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut updates = 0;
    while updates < 10 {
        let (price, _) = sse.until(deadline(), |e| e.event == "price");
        assert_eq!(price.id, None, "latest values carry no id: {price:?}");
        let symbol = price.data["symbol"].as_str().unwrap().to_owned();
        assert!(symbol == "EURUSD" || symbol == "GBPUSD", "{price:?}");
        let seq = price.data["seq"].as_i64().unwrap();
        let last = last_seq.insert(symbol, seq).unwrap_or(0);
        assert!(seq > last, "seq goes up per symbol: {last} then {price:?}");
        assert!(price.data["bid"].is_number() && price.data["spread_bps"].is_number());
        updates += 1;
    }
    let end = after_ms(1_500);
    while sse.next(end).is_some() {}
    assert!(sse.comments > 0, "heartbeat comments every 300 ms");
    assert!(!sse.ended, "the stream stays open");
}

/// The alert and session seqs among `events`.
fn reliable_seqs(events: &[SseEvent], kind: &str) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.event == kind)
        .map(|e| e.data["seq"].as_i64().unwrap())
        .collect()
}

fn session(tenant: &str, name: &str) -> Value {
    json!({"channel": "sessions", "tenant": tenant,
        "data": {"session": name, "status": "paused"}})
}

/// Reads events until `alerts` alert and `sessions` session events came.
fn read_reliable(sse: &mut Sse, alerts: usize, sessions: usize) -> Vec<SseEvent> {
    let mut got = Vec::new();
    let deadline = deadline();
    while reliable_seqs(&got, "alert").len() < alerts
        || reliable_seqs(&got, "session").len() < sessions
    {
        let (e, before) = sse.until(deadline, |e| e.event == "alert" || e.event == "session");
        got.extend(before);
        got.push(e);
    }
    got
}

#[test]
fn last_event_id_resumes_every_reliable_stream_without_gap_or_duplicate() {
    let s = start_sim(5, 100, &[], None);
    let subs = url_encode(
        &json!([{"op":"subscribe","id":1,"channel":"alerts"},
                {"op":"subscribe","id":2,"channel":"sessions"}])
        .to_string(),
    );
    let target = format!("/v1/sse?subs={subs}&access_token={}", trader());
    let mut first = open_ok(&s, &target, &[]);
    let (ack, _) = first.until(deadline(), |e| e.data["type"] == "ack" && e.data["id"] == 2);
    assert_eq!(ack.data["last_seq"], 0, "{ack:?}");
    publish(
        &s,
        &json!([alert("t1", "a1"), alert("t1", "a2"), alert("t1", "a3")]),
    );
    let got = read_reliable(&mut first, 3, 0);
    assert_eq!(reliable_seqs(&got, "alert"), [1, 2, 3]);
    let last = got.last().unwrap();
    assert_eq!(last.id.as_deref(), Some("alerts:3,sessions:0"), "{last:?}");
    assert_eq!(last.data["message"], "a3");
    let resume = first.last_id.clone().unwrap();
    drop(first);

    // Missed while away: two alerts and a session.
    publish(
        &s,
        &json!([alert("t1", "a4"), session("t1", "s1"), alert("t1", "a5")]),
    );
    let mut second = open_ok(&s, &target, &[("Last-Event-ID", &resume)]);
    let (ack, _) = second.until(deadline(), |e| e.data["type"] == "ack" && e.data["id"] == 1);
    assert_eq!(
        (&ack.data["since"], &ack.data["recovered"]),
        (&json!(3), &json!(true)),
        "{ack:?}"
    );
    publish(&s, &json!([alert("t1", "a6")]));
    let got = read_reliable(&mut second, 3, 1);
    assert_eq!(
        reliable_seqs(&got, "alert"),
        [4, 5, 6],
        "no gap, no duplicate"
    );
    assert_eq!(reliable_seqs(&got, "session"), [1]);
    let ids: Vec<_> = got.iter().filter_map(|e| e.id.as_deref()).collect();
    assert!(ids.ends_with(&["alerts:6,sessions:1"]), "{ids:?}");

    // A cursor older than the history: the ack says so and a snapshot follows.
    let mut third = open_ok(
        &s,
        "/v1/sse?channel=alerts&since=99",
        &[("Authorization", &bearer(&trader()))],
    );
    let (ack, _) = third.until(deadline(), |e| e.data["type"] == "ack");
    assert_eq!(ack.data["recovered"], false, "{ack:?}");
    let (snapshot, _) = third.until(deadline(), |e| e.event == "snapshot");
    assert_eq!(snapshot.data["data"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        snapshot.id.as_deref(),
        Some("6"),
        "one reliable stream: the seq alone"
    );
    drop(third);

    // That id resumes like `since`.
    let headers = [
        ("Authorization", bearer(&trader())),
        ("Last-Event-ID", "4".into()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut fourth = open_ok(&s, "/v1/sse?channel=alerts", &headers);
    let got = read_reliable(&mut fourth, 2, 0);
    assert_eq!(reliable_seqs(&got, "alert"), [5, 6]);
    assert_eq!(got.last().unwrap().id.as_deref(), Some("6"));
}

#[test]
fn refused_tokens_and_bad_queries_get_a_status_before_the_stream() {
    let s = start_sim(5, 100, &[], Some("[server]\nmax_symbols_per_op = 2\n"));
    let refusal = |target: &str, headers: &[(&str, &str)]| match open(s.addr, target, headers) {
        Ok(_) => panic!("{target} was accepted"),
        Err(resp) => resp,
    };
    let target = "/v1/sse?channel=prices&symbols=EURUSD";
    assert_401(&refusal(target, &[]), "missing_token");
    let forged = sign_with(
        jsonwebtoken::Algorithm::HS256,
        "not-the-secret",
        &claims("u1", "t1", &["TRADER"], 600),
    );
    assert_401(
        &refusal(target, &[("Authorization", &bearer(&forged))]),
        "bad_signature",
    );
    let expired = sign(&claims("u1", "t1", &["TRADER"], -600));
    assert_401(
        &refusal(&format!("{target}&access_token={expired}"), &[]),
        "token_expired",
    );

    let auth = bearer(&trader());
    for (bad, why) in [
        (
            "/v1/sse?channel=prices&symbols=EURUSD,GBPUSD,USDJPY",
            "at most 2",
        ),
        (
            "/v1/sse?channel=prices&symbols=EURUSD&colour=red",
            "unknown query parameter",
        ),
        ("/v1/sse?channel=alerts&since=yesterday", "since"),
        ("/v1/sse?channel=alerts", ""),
    ] {
        let headers: &[(&str, &str)] = match why {
            "" => &[("Authorization", &auth), ("Last-Event-ID", "alerts")],
            _ => &[("Authorization", &auth)],
        };
        let resp = refusal(bad, headers);
        assert_eq!(resp.status, 400, "{bad}: {resp:?}");
        let body = resp.json();
        assert_eq!(body["error"], "bad_request", "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains(why),
            "{bad}: {body}"
        );
    }
    let resp =
        quotecast_testkit::http::request(s.addr, "POST", "/v1/sse", &[], Some(""), deadline())
            .unwrap();
    assert_eq!(resp.status, 405, "{resp:?}");

    // A channel the token's roles do not reach: the stream opens and says so,
    // like a WebSocket op would be answered.
    let mut sse = open_ok(
        &s,
        "/v1/sse?channel=metrics.risk",
        &[("Authorization", &auth)],
    );
    let (err, _) = sse.until(deadline(), |e| e.event == "error");
    assert_eq!(
        (&err.data["code"], &err.data["id"]),
        (&json!("forbidden"), &json!(1))
    );
}

#[test]
fn streams_count_against_the_connection_caps_and_free_their_slot() {
    let s = start_sim(5, 100, &[], Some("[server]\nmax_connections_per_ip = 1\n"));
    let auth = bearer(&trader());
    let target = "/v1/sse?channel=prices&symbols=EURUSD";
    let mut first = open_ok(&s, target, &[("Authorization", &auth)]);
    first.until(deadline(), |e| e.event == "snapshot");
    let resp = open(s.addr, target, &[("Authorization", &auth)])
        .err()
        .expect("a second stream is over the cap");
    assert_eq!(
        (resp.status, resp.json()["reason"].clone()),
        (429, json!("per_ip")),
        "{resp:?}"
    );
    assert_eq!(
        upgrade(&s, Some(&trader())).status,
        429,
        "WebSocket and SSE share the cap"
    );
    drop(first);
    let deadline = deadline();
    loop {
        match open(s.addr, target, &[("Authorization", &auth)]) {
            Ok(_) => break,
            Err(resp) => assert!(
                resp.status == 429 && std::time::Instant::now() < deadline,
                "the slot was never freed: {resp:?}"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_expired_token_ends_the_stream_with_a_close_event() {
    let s = start_sim(5, 100, &[], None);
    let short = sign(&claims("u1", "t1", &["TRADER"], 2));
    let mut sse = open_ok(
        &s,
        &format!("/v1/sse?channel=prices&symbols=EURUSD&access_token={short}"),
        &[],
    );
    let (err, _) = sse.until(deadline(), |e| e.event == "error");
    assert_eq!(err.data["code"], "token_expired", "{err:?}");
    let (close, _) = sse.until(deadline(), |_| true);
    assert_eq!(
        (close.event.as_str(), &close.data["code"]),
        ("close", &json!(4001)),
        "{close:?}"
    );
    assert!(
        sse.next(deadline()).is_none() && sse.ended,
        "the stream ends after its close event"
    );
}

#[test]
fn the_flush_rate_cap_applies_to_streams() {
    let s = start_sim(2, 4000, &["--max-rate-hz", "4"], None);
    let auth = bearer(&trader());
    let symbols = channel_symbols(&s).join(",");
    let mut sse = open_ok(
        &s,
        &format!("/v1/sse?channel=prices&symbols={symbols}"),
        &[("Authorization", &auth)],
    );
    sse.until(deadline(), |e| e.event == "snapshot");
    // ~2,000 quotes/s per symbol; at 4 flushes/s a symbol gets at most one
    // value per flush: 2 symbols x 4/s x 3 s, plus one flush of slack.
    let (first, _) = sse.until(deadline(), |e| e.event == "price");
    let window = after_ms(3_000);
    let mut prices = 1;
    while let Some(e) = sse.next(window) {
        prices += usize::from(e.event == "price");
    }
    assert!(!sse.ended, "{first:?}");
    assert!(
        (2..=2 * 4 * 3 + 2).contains(&prices),
        "{prices} prices in 3 s at 4 flushes/s"
    );
}

#[test]
fn a_never_reading_stream_is_cut_off_and_its_slot_freed() {
    let toml = "[server]\nslow_consumer_timeout_ms = 500\n";
    let s = start_sim(20, 20000, &["--max-rate-hz", "1000"], Some(toml));
    let baseline = status(&s)["connections"].as_u64().unwrap();
    let symbols = channel_symbols(&s).join(",");
    let target = format!(
        "/v1/sse?channel=prices&symbols={symbols}&access_token={}",
        trader()
    );
    // A small receive buffer, and nothing read after the response head.
    let never = open_over(small_rcvbuf_stream(s.addr, 4096), s.addr, &target, &[])
        .unwrap_or_else(|r| panic!("{r:?}"));
    status_until(&s, deadline(), |v| v["connections"] == baseline + 1);
    let v = status_until(&s, deadline(), |v| v["connections"] == baseline);
    assert!(
        shard_sum(&v, "slow_closes") >= 1,
        "closed as a slow consumer: {v}"
    );
    drop(never);
}

#[test]
fn metric_windows_stream_with_query_filters() {
    let s = start_sim(5, 100, &[], None);
    let auth = bearer(&trader());
    let target = "/v1/sse?channel=metrics.trading&metrics=trade_volume&window_ms=1000&agg=sum\
                  &filter.book=FX1";
    let mut sse = open_ok(&s, target, &[("Authorization", &auth)]);
    let (ack, _) = sse.until(deadline(), |e| e.event == "ack");
    assert_eq!(
        (
            &ack.data["agg"],
            &ack.data["window_ms"],
            &ack.data["subscribed"]
        ),
        (&json!("sum"), &json!(1000), &json!(["trade_volume"])),
        "{ack:?}"
    );
    sse.until(deadline(), |e| e.event == "snapshot");
    let k = future_window_us();
    publish(
        &s,
        &json!([
            trade("t1", k + 10, "FX1", json!({"trade_volume": 250.0})),
            trade("t1", k + 20, "FX1", json!({"trade_volume": 100.0})),
            trade("t1", k + 30, "FX2", json!({"trade_volume": 1000.0})),
        ]),
    );
    let seq = k / 1_000_000;
    let (metrics, _) = sse.until(deadline(), |e| e.event == "metrics" && e.data["seq"] == seq);
    assert_eq!(metrics.id, None, "{metrics:?}");
    let value = metrics.data["values"]["trade_volume"]["value"].as_f64();
    assert_eq!(value, Some(350.0), "FX1 only: {metrics:?}");
}

#[test]
fn sigterm_ends_streams_with_a_1001_close_event() {
    let mut s = start_sim(3, 100, &[], Some("[server]\ndrain_timeout_ms = 2000\n"));
    let auth = bearer(&trader());
    let mut sse = open_ok(
        &s,
        "/v1/sse?channel=prices&symbols=EURUSD",
        &[("Authorization", &auth)],
    );
    sse.until(deadline(), |e| e.event == "snapshot");
    s.sigterm().expect("SIGTERM");
    let (close, _) = sse.until(deadline(), |e| e.event == "close");
    assert_eq!(
        (&close.data["code"], &close.data["reason"]),
        (&json!(1001), &json!("server shutting down"))
    );
    assert!(
        sse.next(deadline()).is_none() && sse.ended,
        "the stream ends"
    );
    assert!(
        s.wait_exit(deadline()).is_some_and(|st| st.success()),
        "exits cleanly"
    );
}
