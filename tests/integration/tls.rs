//! TLS on the listener (`server.tls_cert`/`tls_key`): `wss://`, `https://`
//! and SSE over TLS from a client that trusts only the CA the test made; a
//! plaintext client gets no answer and costs the others nothing; unreadable
//! PEM files stop the server at start with the setting named.

use crate::util::*;
use quotecast_testkit::http::read_response_from;
use quotecast_testkit::tls::{TestCa, TlsStream};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// A fresh directory for this test's certificates.
fn cert_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quotecast-tls-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server on the simulator with TLS on, and the CA its clients trust.
fn start_tls(test: &str) -> (Server, TestCa) {
    let ca = TestCa::create(&cert_dir(test)).unwrap();
    let toml = format!("[server]\n{}", ca.server_toml());
    (start_sim(3, 500, &[], Some(&toml)), ca)
}

/// Upgrades a TLS stream on `/v1/ws` with the token in the query.
fn wss(server: &Server, ca: &TestCa, token: &str) -> WebSocket<TlsStream> {
    let stream = ca.connect(server.addr, WAIT).unwrap();
    let url = format!(
        "wss://localhost:{}/v1/ws?access_token={token}",
        server.addr.port()
    );
    let req = url.into_client_request().unwrap();
    let (ws, _) =
        tungstenite::client::client(req, stream).unwrap_or_else(|e| panic!("wss upgrade: {e}"));
    ws
}

/// The next JSON text frame (pings are answered by tungstenite).
fn next_json(ws: &mut WebSocket<TlsStream>) -> serde_json::Value {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("wss read: {e}")) {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

#[test]
fn wss_gives_welcome_snapshot_and_live_prices() {
    let (s, ca) = start_tls("wss");
    let mut ws = wss(&s, &ca, &trader());
    assert_eq!(next_json(&mut ws)["type"], "welcome");
    let op = r#"{"op":"subscribe","id":1,"channel":"prices","symbols":["EURUSD"]}"#;
    ws.send(Message::text(op)).unwrap();
    let mut seen = Vec::new();
    let end = deadline();
    while !seen
        .iter()
        .any(|m: &serde_json::Value| m["type"] == "price")
    {
        assert!(
            std::time::Instant::now() < end,
            "no live price over wss: {seen:?}"
        );
        seen.push(next_json(&mut ws));
    }
    let kinds: Vec<_> = seen
        .iter()
        .map(|m| m["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds[..2], ["ack", "snapshot"], "{seen:?}");
    let price = seen.last().unwrap();
    assert_eq!(price["symbol"], "EURUSD", "{price}");
    assert!(
        price["bid"].as_f64().unwrap() <= price["ask"].as_f64().unwrap(),
        "{price}"
    );
}

#[test]
fn https_answers_rest_and_sse() {
    let (s, ca) = start_tls("https");
    let mut tls = ca.connect(s.addr, Duration::from_millis(200)).unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (resp, _) = read_response_from(&mut tls, deadline()).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);

    let mut sse = ca.connect(s.addr, Duration::from_millis(200)).unwrap();
    let req = format!(
        "GET /v1/sse?channel=prices&symbols=EURUSD&access_token={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        trader()
    );
    sse.write_all(req.as_bytes()).unwrap();
    let mut got = String::new();
    let mut chunk = [0u8; 4096];
    let end = deadline();
    while !got.contains("event: price") {
        assert!(
            std::time::Instant::now() < end,
            "no price event over https: {got:?}"
        );
        match sse.read(&mut chunk) {
            Ok(0) => panic!("stream ended: {got:?}"),
            Ok(n) => got.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("sse read: {e}; got {got:?}"),
        }
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
    assert!(got.contains("event: snapshot"), "{got:?}");
}

#[test]
fn plaintext_on_the_tls_port_gets_no_http_and_harms_no_one() {
    let (s, ca) = start_tls("plain");
    // A plaintext request is not a TLS ClientHello: the handshake fails and
    // nothing readable as HTTP comes back.
    let mut plain = std::net::TcpStream::connect(s.addr).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext answered: {answer:?}"
    );
    let mut ws = wss(&s, &ca, &trader());
    assert_eq!(next_json(&mut ws)["type"], "welcome");
}

#[test]
fn unreadable_certificate_stops_the_server_at_start() {
    let dir = cert_dir("missing");
    let toml = format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
        dir.join("nope.pem").display().to_string(),
        dir.join("nope.key").display().to_string()
    );
    let stderr = start_failure(&toml);
    assert!(stderr.contains("server.tls_cert"), "{stderr}");
}

#[test]
fn quotecast_client_and_watch_connect_over_wss() {
    use quotecast_client::{Client, Event, Options, StaticToken, Subscription};
    let (s, ca) = start_tls("client");
    let url = format!("wss://localhost:{}/v1/ws", s.addr.port());
    let ca_file = ca.cert.parent().unwrap().join("ca.pem");
    let options = Options {
        ca_file: Some(ca_file.clone()),
        ..Options::new(&url)
    };
    let mut client = Client::new(options, StaticToken(trader()));
    client
        .subscribe(Subscription::Prices(vec!["EURUSD".into()]))
        .unwrap();
    let end = deadline();
    let mut seen = Vec::new();
    let got_price = loop {
        match client.next(end) {
            Some(Event::Message { text, .. }) if text.contains(r#""type":"price""#) => break true,
            Some(event) => seen.push(format!("{event:?}")),
            None => break false,
        }
    };
    assert!(
        got_price,
        "no price over wss through quotecast-client: {seen:?}"
    );

    // `quotecast watch --ca-file` prints prices from the same server.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quotecast"))
        .args([
            "watch",
            "--seconds",
            "3",
            "--url",
            &url,
            "--token",
            &trader(),
        ])
        .arg("--ca-file")
        .arg(&ca_file)
        .arg("EURUSD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("EURUSD"),
        "watch printed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
