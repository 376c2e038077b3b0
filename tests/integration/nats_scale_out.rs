//! Several quotecast nodes on one NATS (and on a 3-server NATS cluster):
//! reliable messages are stored in JetStream and numbered there, so every
//! node gives them the same `seq`; nothing a `202` acknowledged is lost
//! when a node is killed, when every node restarts, when NATS restarts or
//! when one server of a cluster dies. Real processes on loopback ports.

use crate::events_util::*;
use crate::nats_util::Nats;
use crate::util::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A node of the bus at `urls` keeping `replicas` copies in JetStream.
fn start_node(urls: &str, replicas: usize) -> Server {
    let toml = format!("[feed]\nfeed_stale_after_ms = 700\nnats_replicas = {replicas}\n");
    start_server(
        &["--nats-url", urls, "--symbols", "EURUSD", "--venues", "LP1"],
        Some(&toml),
    )
}

/// `POST /v1/publish` of one alert of tenant `t1` whose message is `message`.
fn post_alert(addr: SocketAddr, message: &str) -> HttpResponse {
    http_post(
        addr,
        "/v1/publish",
        Some(&service()),
        &alert("t1", message).to_string(),
    )
}

/// Publishes until a `202` (a node answers `503` until its bus is
/// connected and JetStream ready); returns the `seq` given.
fn publish_when_ready(addr: SocketAddr, message: &str) -> u64 {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = post_alert(addr, message);
        if resp.status == 202 {
            return resp.json()["seq"][0].as_u64().expect("a seq");
        }
        assert_eq!(resp.status, 503, "{}", resp.body);
        assert!(Instant::now() < until, "never stored: {}", resp.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `t1` trader subscribed to alerts after `since`.
fn alerts_since(server: &Server, since: u64) -> Ws {
    let mut ws = connect(server, &trader());
    subscribe_op(
        &mut ws,
        json!({"op":"subscribe","id":1,"channel":"alerts","since":since}),
    );
    ws
}

/// Reads alerts until one with `seq >= last` arrives; returns every alert.
fn alerts_through(ws: &mut Ws, last: u64) -> Vec<Value> {
    let mut alerts = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let v = ws.recv_json_until(until, |v| v["type"] == "alert");
        let done = v["seq"].as_u64() >= Some(last);
        alerts.push(v);
        if done {
            return alerts;
        }
    }
}

/// `(gaps, duplicates)` of the seqs in `alerts` against 1..=`last`.
fn gaps_and_duplicates(alerts: &[Value], last: u64) -> (u64, u64) {
    let mut seen = BTreeMap::new();
    for a in alerts {
        *seen.entry(a["seq"].as_u64().unwrap()).or_insert(0u64) += 1;
    }
    let gaps = (1..=last).filter(|s| !seen.contains_key(s)).count() as u64;
    let duplicates = seen.values().map(|n| n - 1).sum();
    (gaps, duplicates)
}

#[test]
fn an_alert_published_on_one_node_reaches_every_node_with_the_same_seq() {
    let Some(nats) = Nats::start() else { return };
    let nodes: Vec<Server> = (0..3).map(|_| start_node(&nats.url(), 1)).collect();
    let mut subscribers: Vec<Ws> = nodes[1..].iter().map(|n| alerts_since(n, 0)).collect();

    assert_eq!(publish_when_ready(nodes[0].addr, "from A"), 1);
    assert_eq!(publish_when_ready(nodes[1].addr, "from B"), 2);
    // Two nodes publishing at once: JetStream refuses the one that lost the
    // race and it retries with the next seq, so numbers stay contiguous.
    let racers: Vec<_> = [nodes[0].addr, nodes[2].addr]
        .into_iter()
        .enumerate()
        .map(|(i, addr)| {
            std::thread::spawn(move || {
                (0..25)
                    .map(|n| publish_when_ready(addr, &format!("race {i}.{n}")))
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut given: Vec<u64> = racers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    given.sort_unstable();
    assert_eq!(
        given,
        (3..=52).collect::<Vec<_>>(),
        "seqs given by the 202s"
    );

    let seen: Vec<Vec<Value>> = subscribers
        .iter_mut()
        .map(|ws| alerts_through(ws, 52))
        .collect();
    for alerts in &seen {
        assert_eq!(gaps_and_duplicates(alerts, 52), (0, 0));
        assert_eq!(alerts[0]["message"], "from A");
        assert_eq!(alerts[1]["message"], "from B");
    }
    // The same message, seq and ts on B and on C.
    assert_eq!(seen[0], seen[1], "B and C disagree");
    // Each node reports its consumers' lag, caught up by now.
    for node in &nodes {
        status_until(node, deadline(), |v| {
            v["bus"]["consumer_pending"] == json!({"QUOTECAST_EVENTS": 0, "QUOTECAST_RELIABLE": 0})
        });
        let metrics = http_get(node.addr, "/metrics", &[]).body;
        assert!(
            metrics.contains("quotecast_bus_consumer_pending{stream=\"QUOTECAST_RELIABLE\"} 0"),
            "{metrics}"
        );
    }
}

#[test]
fn a_killed_node_s_clients_resume_on_another_with_no_gap_or_duplicate() {
    const ALERTS: u64 = 1_200;
    let Some(nats) = Nats::start() else { return };
    let [a, b, c] = [0, 1, 2].map(|_| start_node(&nats.url(), 1));
    assert_eq!(publish_when_ready(a.addr, "m1"), 1);
    let mut ws = alerts_since(&b, 0);

    let (a_addr, c_addr) = (a.addr, c.addr);
    let publisher = std::thread::spawn(move || {
        for n in 2..=ALERTS {
            let addr = if n % 2 == 0 { a_addr } else { c_addr };
            let resp = post_alert(addr, &format!("m{n}"));
            assert_eq!(resp.status, 202, "alert {n}: {}", resp.body);
            assert_eq!(resp.json()["seq"][0], n, "{}", resp.body);
        }
    });
    let mut alerts = alerts_through(&mut ws, 300);
    drop(b); // SIGKILL, mid-stream
    drop(ws);
    let last = alerts.last().unwrap()["seq"].as_u64().unwrap();
    let mut ws = alerts_since(&c, last);
    alerts.extend(alerts_through(&mut ws, ALERTS));
    publisher.join().unwrap();

    let (gaps, duplicates) = gaps_and_duplicates(&alerts, ALERTS);
    eprintln!(
        "kill -9: published {ALERTS}, delivered {}, resumed after seq {last}, gaps {gaps}, duplicates {duplicates}",
        alerts.len()
    );
    assert_eq!((gaps, duplicates), (0, 0));
    for v in &alerts {
        assert_eq!(v["message"], format!("m{}", v["seq"]), "{v}");
    }
}

#[test]
fn restarting_every_node_keeps_the_history_and_the_numbering() {
    let Some(nats) = Nats::start() else { return };
    let nodes: Vec<Server> = (0..3).map(|_| start_node(&nats.url(), 1)).collect();
    for n in 1..=30 {
        assert_eq!(
            publish_when_ready(nodes[n % 3].addr, &format!("m{n}")),
            n as u64
        );
    }
    drop(nodes);

    let nodes: Vec<Server> = (0..3).map(|_| start_node(&nats.url(), 1)).collect();
    for node in &nodes {
        let alerts = alerts_through(&mut alerts_since(node, 0), 30);
        assert_eq!(gaps_and_duplicates(&alerts, 30), (0, 0));
        assert_eq!(alerts[29]["message"], "m30");
    }
    let resumed = alerts_through(&mut alerts_since(&nodes[0], 10), 30);
    let seqs: Vec<_> = resumed.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (11..=30).collect::<Vec<_>>());
    // Numbering goes on where the stream is, not from 1.
    assert_eq!(publish_when_ready(nodes[2].addr, "m31"), 31);
}

#[test]
fn publishes_during_a_nats_outage_get_503_and_nothing_acknowledged_is_lost() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let node = start_node(&nats.url(), 1);
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    for n in 1..=10 {
        let message = format!("before {n}");
        acked.insert(publish_when_ready(node.addr, &message), message);
    }
    let mut refused = 0;
    nats.restart(|| {
        status_until(&node, deadline(), |v| v["bus"]["connected"] == false);
        for n in 0..5 {
            let resp = post_alert(node.addr, &format!("outage {n}"));
            assert_eq!(resp.status, 503, "{}", resp.body);
            assert_eq!(
                resp.json()["reason"],
                "bus_disconnected: nothing was stored"
            );
            refused += 1;
        }
    });
    // Storing resumes once the client is back; a 503 from a store that
    // timed out may still have stored it: such messages are allowed to show.
    let mut maybe_stored = Vec::new();
    let mut n = 0;
    while acked.len() < 20 {
        n += 1;
        let message = format!("after {n}");
        let resp = post_alert(node.addr, &message);
        match resp.status {
            202 => {
                acked.insert(resp.json()["seq"][0].as_u64().unwrap(), message);
            }
            503 => {
                if resp.json()["reason"] == "bus_timeout" {
                    maybe_stored.push(message);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("{other}: {}", resp.body),
        }
        assert!(n < 300, "storing never resumed: {}", resp.body);
    }
    let last = *acked.keys().last().unwrap();
    let alerts = alerts_through(&mut alerts_since(&node, 0), last);
    eprintln!(
        "NATS restart: acknowledged {}, refused during the outage {refused}, delivered {}, maybe stored {}",
        acked.len(),
        alerts.len(),
        maybe_stored.len()
    );
    assert_eq!(gaps_and_duplicates(&alerts, last), (0, 0));
    for v in &alerts {
        let message = v["message"].as_str().unwrap();
        match acked.get(&v["seq"].as_u64().unwrap()) {
            Some(m) => assert_eq!(m, message, "{v}"),
            None => assert!(maybe_stored.iter().any(|m| m == message), "{v}"),
        }
        assert!(
            !message.starts_with("outage"),
            "a refused publish was stored: {v}"
        );
    }
}

#[test]
fn a_nats_cluster_losing_one_server_keeps_storing_and_replaying() {
    let Some(mut cluster) = Nats::cluster(3) else {
        return;
    };
    let urls: Vec<String> = cluster.iter().map(Nats::url).collect();
    let urls = urls.join(",");
    let [a, b] = [0, 1].map(|_| start_node(&urls, 3));
    let mut acked = BTreeMap::new();
    for n in 1..=100 {
        let message = format!("m{n}");
        acked.insert(publish_when_ready(a.addr, &message), message);
    }
    cluster[0].kill();
    let mut retried = 0;
    for n in 101..=200 {
        let message = format!("m{n}");
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let resp = post_alert(b.addr, &message);
            if resp.status == 202 {
                acked.insert(resp.json()["seq"][0].as_u64().unwrap(), message);
                break;
            }
            assert_eq!(resp.status, 503, "{}", resp.body);
            assert!(Instant::now() < until, "storing stopped: {}", resp.body);
            retried += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let last = *acked.keys().last().unwrap();
    for node in [&a, &b] {
        let alerts = alerts_through(&mut alerts_since(node, 0), last);
        let (gaps, duplicates) = gaps_and_duplicates(&alerts, last);
        eprintln!(
            "cluster, one NATS server killed: acknowledged {}, retried {retried}, delivered {}, gaps {gaps}, duplicates {duplicates}",
            acked.len(),
            alerts.len()
        );
        assert_eq!((gaps, duplicates), (0, 0));
        for v in &alerts {
            let seq = v["seq"].as_u64().unwrap();
            if let Some(m) = acked.get(&seq) {
                assert_eq!(v["message"], m.as_str(), "{v}");
            }
        }
    }
}

#[test]
fn a_node_started_late_replays_metric_events_and_agrees_on_windows() {
    let Some(nats) = Nats::start() else { return };
    let early = start_node(&nats.url(), 1);
    publish_when_ready(early.addr, "bus ready");
    // A window 5 to 6 s ahead: the late node starts and replays before it closes.
    let k = future_window_us() + 3_000_000;
    let events: Vec<Value> = [(k + 10, 250.0), (k + 400_000, 100.0), (k + 900_000, 40.5)]
        .iter()
        .map(|(ts, v)| trade("t1", *ts, "FX1", json!({"trade_volume": v})))
        .collect();
    publish(&early, &json!(events));

    // Started after the events were stored: it sees them only by replaying,
    // and stays out of a balancer's rotation until it has.
    let late = start_node(&nats.url(), 1);
    let until = deadline();
    loop {
        let r = http_get(late.addr, "/healthz", &[]);
        if r.status == 200 {
            break;
        }
        assert_eq!((r.status, r.body.trim()), (503, "replaying"), "{r:?}");
        assert!(Instant::now() < until, "still replaying");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status(&late)["bus"]["replaying"], false);
    let frames: Vec<Value> = [&early, &late]
        .iter()
        .map(|node| {
            let mut ws = connect(node, &trader());
            subscribe_op(
                &mut ws,
                json!({"op":"subscribe","id":1,"channel":"metrics.trading",
                    "metrics":["trade_volume"],"window_ms":1000,"agg":"sum"}),
            );
            ws
        })
        .collect::<Vec<_>>()
        .iter_mut()
        .map(|ws| metric_frame(ws, "trade_volume", k / 1_000_000).0)
        .collect();
    for frame in &frames {
        assert_eq!(frame["values"]["trade_volume"]["value"], 390.5, "{frame}");
        assert_eq!(frame["window_end"], (k + 1_000_000) / 1_000);
    }
    assert_eq!(
        frames[0]["values"], frames[1]["values"],
        "the nodes disagree"
    );
}
