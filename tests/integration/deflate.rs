//! permessage-deflate (RFC 7692): negotiation, one compressed frame shared by
//! every connection, compressed client ops, the decompression-bomb limit,
//! and a real client (Python `websockets`) reading the compressed frames.

use crate::util::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use quotecast_testkit::ws::{DEFLATE_OFFER, OP_TEXT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Inflates one message the way a browser does (no context takeover).
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(64 << 10);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("a valid deflate stream");
    out
}

/// `text` deflated on its own, the trailing `00 00 ff ff` stripped.
fn deflate(text: &[u8], level: Compression) -> Vec<u8> {
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(text.len() / 100 + 1024);
    while c.total_in() < text.len() as u64 || out.len() == out.capacity() {
        out.reserve(64 << 10);
        let at = c.total_in() as usize;
        c.compress_vec(&text[at..], &mut out, FlushCompress::Sync)
            .unwrap();
    }
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
    out
}

/// A masked client text frame with RSV1 set: a compressed message.
fn compressed_frame(text: &[u8], level: Compression) -> Vec<u8> {
    let mut frame = client_frame(OP_TEXT, &deflate(text, level));
    frame[0] |= 0x40;
    frame
}

/// Connects offering deflate the way browsers do; asserts it was accepted.
fn deflate_connect(s: &Server) -> RawWs {
    let (ws, resp) = RawWs::connect_with(
        s.addr,
        &trader(),
        &[("Sec-WebSocket-Extensions", DEFLATE_OFFER)],
    )
    .unwrap_or_else(|e| panic!("connect: {e}"));
    assert_eq!(
        resp.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        "{resp:?}"
    );
    ws
}

/// The JSON of a text frame, inflated if it is compressed.
fn message(f: &RawFrame) -> Option<Value> {
    if f.opcode != OP_TEXT {
        return None;
    }
    let text = if f.rsv1 {
        inflate(&f.payload)
    } else {
        f.payload.clone()
    };
    serde_json::from_slice(&text).ok()
}

/// Reads until `want` prices arrived; returns every price frame by (symbol, seq).
fn price_frames(ws: &mut RawWs, want: usize) -> HashMap<(String, u64), RawFrame> {
    let mut got = HashMap::new();
    let (frames, end) = ws.read_frames(deadline(), |f| {
        if let Some(m) = message(f).filter(|m| m["type"] == "price") {
            let key = (
                m["symbol"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            );
            got.insert(key, f.clone());
        }
        got.len() >= want
    });
    assert_eq!(
        end,
        RawEnd::Stopped,
        "{} frames, {} prices",
        frames.len(),
        got.len()
    );
    got
}

fn subscribe(ws: &mut RawWs, symbols: &[&str]) {
    let op = json!({"op": "subscribe", "id": 1, "channel": "prices", "symbols": symbols});
    ws.send_text(&op.to_string()).unwrap();
}

#[test]
fn two_deflate_connections_get_the_same_compressed_frame_for_a_price() {
    // A slow feed and a high rate cap: every update reaches every
    // connection, so both see the same `seq`s.
    let s = start_sim(2, 40, &["--max-rate-hz", "500"], None);
    let symbols = channel_symbols(&s);
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let (mut a, mut b) = (deflate_connect(&s), deflate_connect(&s));
    let mut plain = raw_connect(&s, &trader());
    for ws in [&mut a, &mut b, &mut plain] {
        subscribe(ws, &symbols);
    }
    let from_a = price_frames(&mut a, 10);
    let from_plain = price_frames(&mut plain, 10);
    let (mut shared, mut stop_at) = (0, None);
    let (_, end) = b.read_frames(deadline(), |f| {
        let Some(m) = message(f).filter(|m| m["type"] == "price") else {
            return false;
        };
        let key = (
            m["symbol"].as_str().unwrap().to_owned(),
            m["seq"].as_u64().unwrap(),
        );
        if let Some(fa) = from_a.get(&key) {
            assert!(
                f.rsv1 && fa.rsv1,
                "prices are compressed for deflate connections"
            );
            assert_eq!(f.payload, fa.payload, "{key:?}: the same compressed bytes");
            assert!(f.payload.len() < inflate(&f.payload).len());
            if let Some(fp) = from_plain.get(&key) {
                assert!(
                    !fp.rsv1,
                    "a connection without deflate gets the plain frame"
                );
                assert_eq!(inflate(&f.payload), fp.payload, "{key:?}");
                stop_at.get_or_insert(key);
            }
            shared += 1;
        }
        shared >= 5 && stop_at.is_some()
    });
    assert_eq!(
        end,
        RawEnd::Stopped,
        "{shared} shared frames, plain match {stop_at:?}"
    );
}

#[test]
fn compressed_ops_are_inflated_and_a_decompression_bomb_is_closed_1009() {
    let s = start_sim(2, 10, &[], None);
    let mut ws = deflate_connect(&s);
    // A compressed op (padded with spaces, which JSON allows) gets its reply.
    let ping = format!("{{\"op\":\"ping\",\"id\":7}}{}", " ".repeat(300));
    ws.stream
        .write_all(&compressed_frame(ping.as_bytes(), Compression::default()))
        .unwrap();
    let (_, end) = ws.read_frames(deadline(), |f| {
        message(f).is_some_and(|m| m["type"] == "pong" && m["id"] == 7)
    });
    assert_eq!(end, RawEnd::Stopped, "no pong for a compressed ping op");

    // 10 MB of zeros in a ~10 KB frame, against max_message_bytes = 64 KiB.
    let bomb = compressed_frame(&vec![0u8; 10 << 20], Compression::best());
    assert!(bomb.len() < 16 << 10, "bomb frame of {} bytes", bomb.len());
    let sent = Instant::now();
    ws.stream.write_all(&bomb).unwrap();
    let (frames, end) = ws.read_frames(deadline(), |f| f.close_code().is_some());
    assert_eq!(end, RawEnd::Stopped, "no close after the bomb");
    assert_eq!(frames.last().and_then(RawFrame::close_code), Some(1009));
    eprintln!(
        "decompression bomb ({} B frame) closed 1009 after {:?}",
        bomb.len(),
        sent.elapsed()
    );
    // The shard is fine: a new connection is served.
    let mut again = deflate_connect(&s);
    let (_, end) = again.read_frames(deadline(), |f| {
        message(f).is_some_and(|m| m["type"] == "welcome")
    });
    assert_eq!(end, RawEnd::Stopped);
}

#[test]
fn offers_the_server_cannot_honour_leave_the_connection_uncompressed() {
    let s = start_sim(2, 10, &[], None);
    let bearer = format!("Bearer {}", trader());
    let offer = |s: &Server, ext: &str| {
        let r = ws_upgrade_request(
            s.addr,
            "/v1/ws",
            &[
                ("Authorization", &bearer),
                ("Sec-WebSocket-Extensions", ext),
            ],
        );
        assert_eq!(r.status, 101, "{ext}: {r:?}");
        r.header("sec-websocket-extensions").map(str::to_owned)
    };
    for ext in [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown_param",
        "x-webkit-deflate-frame",
    ] {
        assert_eq!(offer(&s, ext), None, "{ext}");
    }
    assert_eq!(
        offer(&s, "permessage-deflate; server_max_window_bits=20, permessage-deflate; server_max_window_bits=10").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"),
        "the first offer it can honour is taken"
    );

    let off = start_sim(2, 10, &[], Some("[server]\ncompression = \"off\"\n"));
    assert_eq!(offer(&off, DEFLATE_OFFER), None, "compression = off");
}

/// A real client: Python `websockets` with its permessage-deflate, from a
/// venv at `$QUOTECAST_PY` (default `target/py-venv/bin/python`; make it
/// with `python3 -m venv target/py-venv && target/py-venv/bin/pip install
/// websockets`). CI runs it (`.ci/run`); `cargo test` skips it by default
/// because it needs that venv.
#[test]
#[ignore = "needs Python websockets in target/py-venv (CI installs it)"]
fn python_websockets_reads_the_compressed_frames() {
    let python = std::env::var("QUOTECAST_PY")
        .unwrap_or_else(|_| format!("{}/target/py-venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let s = start_sim(2, 40, &[], None);
    let symbols = channel_symbols(&s);
    let script = r#"
import json, sys
from websockets.sync.client import connect
url, token, symbols = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with connect(url, additional_headers={"Authorization": "Bearer " + token},
             compression="deflate", open_timeout=20) as ws:
    print("extensions:", ws.response.headers.get("Sec-WebSocket-Extensions"))
    ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": "prices", "symbols": symbols}))
    prices = 0
    while prices < 5:
        m = json.loads(ws.recv(timeout=20))
        if m["type"] == "price":
            prices += 1
            print("price", m["symbol"], m["seq"])
"#;
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            script,
            &format!("ws://{}/v1/ws", s.addr),
            &trader(),
            &symbols.join(","),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("extensions: permessage-deflate; server_no_context_takeover"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("price ")).count(),
        5,
        "{stdout}"
    );
}
