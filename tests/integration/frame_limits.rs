//! Hostile framing: too many fragments (1009), a frame header announcing an
//! oversized payload that never comes (1009 at once), a 64-bit length that
//! would wrap a naive size check (1009, server unharmed), and a ping flood
//! (1008 past `pings_burst`).

use crate::util::*;
use std::io::Write;

const TOML: &str = "[server]\nmax_message_bytes = 4096\nmax_fragments = 4\n\
                    pings_per_sec = 5\npings_burst = 10\n";

/// A masked client frame, FIN set only when `fin`.
fn fragment(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = client_frame(opcode, payload);
    if !fin {
        f[0] &= 0x7f;
    }
    f
}

/// Reads until a Close frame; returns its code (panics on a silent end).
fn close_code(ws: &mut RawWs) -> Option<u16> {
    let (frames, end) = ws.read_frames(deadline(), |f| f.opcode == 8);
    assert_eq!(
        end,
        RawEnd::Stopped,
        "no Close frame: {} frames",
        frames.len()
    );
    frames.last().and_then(RawFrame::close_code)
}

#[test]
fn too_many_fragments_close_1009() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = raw_connect(&s, &trader());
    // Four fragments: within max_fragments, answered.
    let parts: [&[u8]; 4] = [b"{\"op\":", b"\"ping\",", b"\"id\":", b"7}"];
    for (i, part) in parts.iter().enumerate() {
        let f = fragment(if i == 0 { 1 } else { 0 }, i == 3, part);
        ws.stream.write_all(&f).unwrap();
    }
    let (frames, end) = ws.read_frames(deadline(), |f| {
        f.json()
            .is_some_and(|v| v["type"] == "pong" && v["id"] == 7)
    });
    assert_eq!(end, RawEnd::Stopped, "4 fragments not answered: {frames:?}");
    // Five tiny fragments of one message: closed with 1009.
    ws.stream.write_all(&fragment(1, false, b"{")).unwrap();
    for _ in 0..4 {
        ws.stream.write_all(&fragment(0, false, b" ")).unwrap();
    }
    assert_eq!(close_code(&mut ws), Some(1009));
}

#[test]
fn oversized_frame_header_closes_1009_before_its_payload() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = raw_connect(&s, &trader());
    // A text frame announcing 1 MiB, and not one byte of it.
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(1u64 << 20).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    ws.stream.write_all(&head).unwrap();
    assert_eq!(close_code(&mut ws), Some(1009));
}

#[test]
fn wrapping_64bit_length_after_a_fragment_closes_1009_and_the_server_keeps_serving() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = raw_connect(&s, &trader());
    ws.stream.write_all(&fragment(1, false, b"ab")).unwrap();
    // Buffered 2 + this length overflows u64: must be "too large", not a panic.
    let mut head = vec![0x80, 0x80 | 127];
    head.extend_from_slice(&(u64::MAX - 1).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0]);
    ws.stream.write_all(&head).unwrap();
    assert_eq!(close_code(&mut ws), Some(1009));
    connect(&s, &trader()).ping(1);
}

#[test]
fn ping_flood_closes_1008() {
    let s = start_sim(3, 100, &[], Some(TOML));
    let mut ws = raw_connect(&s, &trader());
    // Within the burst: every ping gets its pong.
    for i in 0..5u8 {
        ws.stream.write_all(&client_frame(9, &[i])).unwrap();
    }
    let mut pongs = 0;
    let (frames, end) = ws.read_frames(deadline(), |f| {
        pongs += usize::from(f.opcode == 10);
        pongs == 5 || f.opcode == 8
    });
    assert_eq!(end, RawEnd::Stopped, "{frames:?}");
    assert_eq!(pongs, 5, "{frames:?}");
    // A flood: 100 pings at once, well past burst 10 at 5/s.
    let flood: Vec<u8> = (0..100u8).flat_map(|i| client_frame(9, &[i])).collect();
    let _ = ws.stream.write_all(&flood);
    let (frames, end) = ws.read_frames(deadline(), |f| f.opcode == 8);
    assert_eq!(end, RawEnd::Stopped, "flood not closed");
    let answered = frames.iter().filter(|f| f.opcode == 10).count();
    assert!(answered <= 10, "{answered} pongs to the flood, burst is 10");
    assert_eq!(frames.last().and_then(RawFrame::close_code), Some(1008));
}
