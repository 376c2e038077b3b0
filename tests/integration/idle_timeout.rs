//! The server pings every `heartbeat_ms`; a client silent for 3 intervals is
//! closed with 4000, one that answers pings is not.

use crate::util::*;
use std::time::{Duration, Instant};

const TOML: &str = "[server]\nheartbeat_ms = 300\n";

#[test]
fn silent_client_is_closed_with_4000() {
    let s = start_sim(3, 100, &[], Some(TOML));
    // Raw client: reads, but never answers a ping and never sends a frame.
    let mut raw = raw_connect(&s, &trader());
    let start = Instant::now();
    let (frames, end) = raw.read_frames(deadline(), |f| f.opcode == 8);
    assert_eq!(
        end,
        RawEnd::Stopped,
        "no Close frame; frames {:?}",
        frames.iter().map(|f| f.opcode).collect::<Vec<_>>()
    );
    let close = frames.last().unwrap();
    assert_eq!(
        close.close_code(),
        Some(4000),
        "close payload {:?}",
        close.payload
    );
    let pings = frames.iter().filter(|f| f.opcode == 9).count();
    assert!(pings >= 1, "no server ping before the idle close");
    let after = close.at.duration_since(start);
    assert!(
        after >= Duration::from_millis(600),
        "closed after only {after:?} (3 x 300 ms expected)"
    );
    // Generous: a loaded machine may close late, never early.
    assert!(
        after <= Duration::from_millis(6000),
        "closed after {after:?} (3 x 300 ms expected)"
    );
    // The server ends the TCP connection too.
    let (_, end) = raw.read_frames(deadline(), |_| false);
    assert!(
        matches!(end, RawEnd::Eof | RawEnd::Error(_)),
        "connection left open after the close: {end:?}"
    );
}

#[test]
fn client_answering_pings_stays_open() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = connect(&s, &trader());
    // tungstenite answers each ping while reading; 6 intervals pass, and
    // reading goes on until the third ping if a loaded machine pinged late.
    let mut frames = ws.collect_for(after_ms(2000));
    let wait = deadline();
    while ws.pings < 3 && Instant::now() < wait {
        frames.extend(ws.collect_for(after_ms(100)));
    }
    assert!(
        ws.pings >= 3,
        "only {} server pings at heartbeat 300 ms",
        ws.pings
    );
    assert!(
        frames.iter().all(|v| v["type"] != "error"),
        "{}",
        tail(&frames)
    );
    ws.ping(1);
}
