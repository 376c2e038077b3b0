//! The client side of RFC 6455, as bytes: the upgrade request, server frame
//! parsing (unmasked) and masked client frames. Keys and the accept check
//! come from tungstenite. Blocking clients built on it are in `client`.

pub use tungstenite::handshake::client::generate_key;
pub use tungstenite::handshake::derive_accept_key;

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// Largest server frame accepted; quotecast's snapshots stay far below it.
pub const MAX_FRAME: u64 = 16 << 20;

/// The upgrade request for `path` on `host` with `key` and a bearer token.
pub fn upgrade_request(host: &str, path: &str, key: &str, token: &str) -> Vec<u8> {
    upgrade_request_with(host, path, key, token, &[])
}

/// [`upgrade_request`] with `headers` added (e.g. `Sec-WebSocket-Extensions`).
pub fn upgrade_request_with(
    host: &str,
    path: &str,
    key: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// The permessage-deflate offer browsers make.
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// One server frame, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN bit: the last frame of a message.
    pub fin: bool,
    /// Opcode (low four bits of the first byte).
    pub opcode: u8,
    /// RSV1: a compressed message (permessage-deflate).
    pub rsv1: bool,
    /// The payload (servers never mask).
    pub payload: &'a [u8],
}

/// A server frame a client must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Servers must not mask their frames (RFC 6455 §5.1).
    Masked,
    /// Larger than [`MAX_FRAME`].
    TooLarge,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Masked => f.write_str("masked server frame"),
            FrameError::TooLarge => write!(f, "server frame over {MAX_FRAME} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Parses one server frame at the start of `buf`: the frame and the bytes it
/// took, or `Ok(None)` while `buf` does not hold a whole frame yet.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let (len, head) = match buf[1] & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
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
            rsv1: buf[0] & 0x40 != 0,
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

/// A masked client frame (FIN set) with a fixed mask: for tests that write
/// frames by hand (clear FIN with `frame[0] &= 0x7f`).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_client_frame(opcode, payload, [0x5a, 0x17, 0xc3, 0x88], &mut out);
    out
}

/// The status code of a Close frame's payload; `None` when it has none.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(generate_key().len(), 24);
    }

    #[test]
    fn frames_parse_in_all_length_forms() {
        assert_eq!(parse_frame(b"\x81"), Ok(None));
        let (f, n) = parse_frame(b"\x81\x02hiX").unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, f.payload, n), (true, 1, &b"hi"[..], 4));
        let mut mid = vec![0x81, 126, 0x01, 0x00];
        mid.extend(std::iter::repeat_n(b'a', 256));
        assert_eq!(parse_frame(&mid[..3]), Ok(None));
        assert_eq!(parse_frame(&mid[..100]), Ok(None));
        assert_eq!(parse_frame(&mid).unwrap().unwrap().1, 260);
        let mut big = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        big.extend(std::iter::repeat_n(0, 65_536));
        assert_eq!(parse_frame(&big[..9]), Ok(None));
        assert_eq!(parse_frame(&big).unwrap().unwrap().0.payload.len(), 65_536);
        assert_eq!(parse_frame(b"\x81\x82abcd"), Err(FrameError::Masked));
        let huge = [0x82, 127, 0, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(parse_frame(&huge), Err(FrameError::TooLarge));
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
        assert_eq!(
            &client_frame(OP_TEXT, &[b'x'; 300])[..4],
            &[0x81, 0xFE, 0x01, 0x2C]
        );
        assert_eq!(client_frame(OP_PING, &[0; 70_000])[1], 0x80 | 127);
        assert_eq!(close_code(&[0x03, 0xE8, b'x']), Some(1000));
        assert_eq!(close_code(&[]), None);
    }
}
