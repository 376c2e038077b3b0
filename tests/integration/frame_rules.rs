//! RFC 6455 rules the production route (`/v1/ws`) enforces on client frames,
//! beyond the Autobahn run on the echo route: close codes for bad text and
//! bad close frames, and a 64-bit length that must not overflow the reader.

use crate::util::*;

/// Sends `bytes` on a fresh `/v1/ws` connection and returns the server's close code.
fn close_code_after(server: &Server, bytes: &[u8]) -> Option<u16> {
    let mut ws = raw_connect(server, &trader());
    std::io::Write::write_all(&mut ws.stream, bytes).unwrap();
    let (frames, end) = ws.read_frames(deadline(), |f| f.opcode == 8);
    assert_eq!(end, RawEnd::Stopped, "no close frame: {frames:?}");
    frames.last().and_then(RawFrame::close_code)
}

#[test]
fn text_that_is_not_utf8_closes_with_1007() {
    let server = start_server(&[], None);
    assert_eq!(
        close_code_after(&server, &client_frame(1, b"{\"op\":\xc0}")),
        Some(1007)
    );
}

#[test]
fn close_codes_a_peer_may_not_send_close_with_1002() {
    let server = start_server(&[], None);
    for code in [1005u16, 1006, 999, 5000] {
        let frame = client_frame(8, &code.to_be_bytes());
        assert_eq!(
            close_code_after(&server, &frame),
            Some(1002),
            "client code {code}"
        );
    }
}

#[test]
fn a_huge_continuation_length_is_too_large_not_a_crash() {
    let server = start_server(&[], None);
    let mut bytes = client_frame(1, b"{\"op\":");
    bytes[0] &= 0x7f; // not final: a fragmented message is now buffered
                      // A continuation claiming u64::MAX bytes (masked, no payload sent).
    bytes.extend_from_slice(&[0x80, 0x80 | 127]);
    bytes.extend_from_slice(&u64::MAX.to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_after(&server, &bytes), Some(1009));
    // The shard is still serving.
    assert_eq!(http_get(server.addr, "/healthz", &[]).status, 200);
}
