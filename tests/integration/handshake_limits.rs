//! The HTTP request head must arrive whole, in time and under the size cap:
//! a slowloris client sending one byte a second is cut off with 408 at
//! `handshake_timeout_ms`; a head over `max_header_bytes` gets 431.

use crate::util::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1500;
const TOML: &str = "[server]\nhandshake_timeout_ms = 1500\nmax_header_bytes = 1024\n";

#[test]
fn slowloris_is_cut_off_at_the_handshake_timeout() {
    let s = start_sim(3, 100, &[], Some(TOML));
    // The server's clock starts at accept: start ours before connecting, so
    // that ours never reads less than the server's.
    let start = Instant::now();
    let mut c = TcpStream::connect_timeout(&s.addr, WAIT).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let head = b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
    let (mut sent, mut reply) = (0, Vec::new());
    let mut chunk = [0u8; 1024];
    // One byte, then a second of listening; at most 20 bytes (20 s).
    'send: for &byte in head.iter().take(20) {
        if c.write_all(&[byte]).is_err() {
            break;
        }
        sent += 1;
        loop {
            match c.read(&mut chunk) {
                Ok(0) => break 'send,
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if reply.is_empty() {
                        continue 'send;
                    }
                    break 'send;
                }
                Err(_) => break 'send,
            }
        }
    }
    let cut_after = start.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "slow client not answered 408 after {sent} bytes in {cut_after:?}: {reply:?}"
    );
    assert!(reply.contains(r#""error":"timeout""#), "{reply}");
    // Generous above: a loaded machine may answer late, never early.
    assert!(
        cut_after >= Duration::from_millis(TIMEOUT_MS - 100)
            && cut_after < Duration::from_millis(TIMEOUT_MS + 5000),
        "cut off after {cut_after:?}, timeout {TIMEOUT_MS} ms"
    );
    assert!(sent < head.len(), "the whole head went through");
    // The shard is free for the next client.
    connect(&s, &trader()).ping(1);
}

#[test]
fn oversized_request_head_gets_431() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let pad = "a".repeat(2000);
    let r = ws_upgrade_request(s.addr, "/v1/ws", &[("X-Pad", &pad)]);
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(r.json()["error"], "header_too_large", "{r:?}");
    // Just under the cap is an ordinary upgrade.
    let auth = format!("Bearer {}", trader());
    let r = ws_upgrade_request(
        s.addr,
        "/v1/ws",
        &[("Authorization", &auth), ("X-Pad", &pad[..400])],
    );
    assert_eq!(r.status, 101, "{r:?}");
}
