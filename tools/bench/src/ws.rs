//! The client side of RFC 6455, only as much as the harness needs: the
//! upgrade request, the `101` check, server frame parsing (unmasked) and
//! masked client frames. Payloads are searched by bytes, never parsed as JSON.

use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID that RFC 6455 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// Largest server frame accepted; quotecast's snapshots stay far below it.
const MAX_FRAME: u64 = 16 << 20;

/// The upgrade request for `path` on `host`, with a bearer token.
pub fn upgrade_request(host: &str, path: &str, key: &str, token: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes()
}

/// A fresh `Sec-WebSocket-Key` from 16 random bytes.
pub fn new_key(bytes: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `Sec-WebSocket-Accept` value the server must answer for `key`.
pub fn accept_for(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The parts of an HTTP response head the harness checks.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code of the first line.
    pub status: u16,
    /// The `Sec-WebSocket-Accept` header, if any.
    pub accept: Option<String>,
    /// Length of the head including the blank line; frames start after it.
    pub len: usize,
}

/// Parses an HTTP/1.1 response head; `Ok(None)` while the blank line has not arrived.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, &'static str> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > 16 * 1024 {
            Err("response head too large")
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "response head not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err("not an HTTP/1.x response");
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim().to_string())
    });
    Ok(Some(ResponseHead {
        status,
        accept,
        len: end + 4,
    }))
}

/// One server frame, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN bit: the last frame of a message.
    pub fin: bool,
    /// Opcode (low four bits of the first byte).
    pub opcode: u8,
    /// The (unmasked) payload.
    pub payload: &'a [u8],
}

/// A server frame the harness refuses.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Servers must not mask their frames (RFC 6455 §5.1).
    Masked,
    /// Larger than [`MAX_FRAME`].
    TooLarge,
}

/// Parses one server frame at the start of `buf`: the frame and the bytes it
/// took, or `Ok(None)` when `buf` does not hold a whole frame yet.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let (len, head) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    let total = head + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            fin: buf[0] & 0x80 != 0,
            opcode: buf[0] & 0x0F,
            payload: &buf[head..total],
        },
        total,
    )))
}

/// Appends a masked client frame (FIN set) to `out`.
pub fn encode_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// What a server text message is, from its `"type"` (always the first key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A live `price`.
    Price,
    /// The `snapshot` that follows a subscribe.
    Snapshot,
    /// An `ack` of an op.
    Ack,
    /// The `welcome` sent on open.
    Welcome,
    /// A `status` (lagging, ok, feed_stale).
    Status,
    /// An `error`.
    Error,
    /// Anything else.
    Other,
}

/// Classifies a server text message by its `"type"`: as the first key (prices,
/// the fast path), else wherever it is (quotecast's acks sort their keys).
pub fn classify(payload: &[u8]) -> Kind {
    const KEY: &[u8] = br#""type":""#;
    let rest = match payload.strip_prefix(b"{").and_then(|p| p.strip_prefix(KEY)) {
        Some(rest) => rest,
        None => match find(payload, KEY) {
            Some(i) => &payload[i + KEY.len()..],
            None => return Kind::Other,
        },
    };
    let starts = |word: &[u8]| rest.starts_with(word) && rest.get(word.len()) == Some(&b'"');
    if starts(b"price") {
        Kind::Price
    } else if starts(b"snapshot") {
        Kind::Snapshot
    } else if starts(b"ack") {
        Kind::Ack
    } else if starts(b"welcome") {
        Kind::Welcome
    } else if starts(b"status") {
        Kind::Status
    } else if starts(b"error") {
        Kind::Error
    } else {
        Kind::Other
    }
}

/// First position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from
            + hay[from..=hay.len() - needle.len()]
                .iter()
                .position(|&b| b == first)?;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Last position of `needle` in `hay`.
pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// The unsigned integer right after `at` in `hay`.
pub fn u64_at(hay: &[u8], at: usize) -> Option<u64> {
    let digits = hay.get(at..)?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    Some(
        digits[..n]
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

/// `"seq"` and `"ts"` of a price message. `ts` is the last key, so it is
/// searched from the end; `seq` follows the symbol near the start.
pub fn price_seq_ts(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = find(payload, br#""seq":"#).and_then(|i| u64_at(payload, i + 6))?;
    Some((
        seq,
        ts_at_end(payload)
            .or_else(|| rfind(payload, br#""ts":"#).and_then(|i| u64_at(payload, i + 5)))?,
    ))
}

/// Fast path: `..."ts":<digits>}` at the very end, as quotecast writes it.
fn ts_at_end(payload: &[u8]) -> Option<u64> {
    let body = payload.strip_suffix(b"}")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let start = body.len() - digits;
    if body[..start].ends_with(br#""ts":"#) {
        u64_at(body, start)
    } else {
        None
    }
}

/// The integer value of `"key":` anywhere in `payload` (`key` given with quotes and colon).
pub fn u64_field(payload: &[u8], key: &[u8]) -> Option<u64> {
    find(payload, key).and_then(|i| u64_at(payload, i + key.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn response_head_waits_for_blank_line() {
        let full = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     sec-websocket-accept: abc=\r\n\r\n\x81\x02hi";
        assert_eq!(parse_response_head(&full[..30]), Ok(None));
        let head = parse_response_head(full).unwrap().unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(head.accept.as_deref(), Some("abc="));
        assert_eq!(&full[head.len..], b"\x81\x02hi");
        let refused = parse_response_head(b"HTTP/1.1 401 Unauthorized\r\n\r\n").unwrap();
        assert_eq!(refused.unwrap().status, 401);
    }

    #[test]
    fn frames_parse_in_all_length_forms() {
        assert_eq!(parse_frame(b"\x81"), Ok(None));
        let (f, n) = parse_frame(b"\x81\x02hiX").unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, f.payload, n), (true, 1, &b"hi"[..], 4));
        let mut mid = vec![0x81, 126, 0x01, 0x00];
        mid.extend(std::iter::repeat_n(b'a', 256));
        assert_eq!(parse_frame(&mid[..100]), Ok(None));
        assert_eq!(parse_frame(&mid).unwrap().unwrap().1, 260);
        let mut big = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        big.extend(std::iter::repeat_n(0, 65_536));
        assert_eq!(parse_frame(&big).unwrap().unwrap().0.payload.len(), 65_536);
        assert_eq!(parse_frame(b"\x81\x82abcd"), Err(FrameError::Masked));
    }

    #[test]
    fn client_frames_are_masked() {
        let mut out = Vec::new();
        encode_client_frame(OP_TEXT, b"hello", [1, 2, 3, 4], &mut out);
        assert_eq!(&out[..2], &[0x81, 0x85]);
        assert_eq!(&out[2..6], &[1, 2, 3, 4]);
        let unmasked: Vec<u8> = out[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i & 3])
            .collect();
        assert_eq!(unmasked, b"hello");
        let mut long = Vec::new();
        encode_client_frame(OP_TEXT, &[b'x'; 300], [0; 4], &mut long);
        assert_eq!(&long[..4], &[0x81, 0xFE, 0x01, 0x2C]);
    }

    #[test]
    fn price_fields_are_found_without_json_parsing() {
        let p = br#"{"type":"price","symbol":"EURUSD","seq":918273,"bid":1.08412,"ask_src":"LP1","spread_bps":0.2767,"ts":1763769600123456}"#;
        assert_eq!(classify(p), Kind::Price);
        assert_eq!(price_seq_ts(p), Some((918_273, 1_763_769_600_123_456)));
        let reordered = br#"{"type":"price","ts":17,"seq":5,"bid":1}"#;
        assert_eq!(price_seq_ts(reordered), Some((5, 17)));
        assert_eq!(
            classify(br#"{"type":"snapshot","data":[]}"#),
            Kind::Snapshot
        );
        assert_eq!(classify(br#"{"type":"prices"}"#), Kind::Other);
        assert_eq!(
            classify(br#"{"accepted":["A"],"channel":"prices","id":1,"type":"ack"}"#),
            Kind::Ack
        );
        assert_eq!(classify(br#"{"id":1}"#), Kind::Other);
        assert_eq!(
            u64_field(
                br#"{"type":"welcome","max_rate_hz":60}"#,
                br#""max_rate_hz":"#
            ),
            Some(60)
        );
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(rfind(b"abab", b"ab"), Some(2));
    }
}
