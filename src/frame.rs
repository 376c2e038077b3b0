//! WebSocket frames: encode a server message ONCE into a complete frame
//! (`Bytes`: header + payload) that every subscriber's flush shares, and read
//! client frames within the server's limits.
//!
//! Server-to-client frames are never masked (RFC 6455 §5.1), so the same bytes
//! go to every client.

use bytes::{BufMut, Bytes, BytesMut};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close codes of PROTOCOL.md.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server shutting down (drain).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error (bad framing).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Policy violation (control frame flood).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too large (or in too many fragments).
    pub const TOO_LARGE: u16 = 1009;
    /// The server hit a bug handling this connection.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// No frame from the client for 3 heartbeats.
    pub const IDLE_TIMEOUT: u16 = 4000;
    /// Token expired and not refreshed.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// Slow consumer.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Rate limited.
    pub const RATE_LIMITED: u16 = 4029;
}

fn encode(opcode: OpCode, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = BytesMut::with_capacity(header.len(len) + payload.len()).writer();
    // Writing into a BytesMut cannot fail.
    let _ = header.format(len, &mut out);
    let mut out = out.into_inner();
    out.put_slice(payload);
    out.freeze()
}

/// A complete unmasked text frame carrying `payload`.
pub fn text(payload: &[u8]) -> Bytes {
    encode(OpCode::Data(Data::Text), payload)
}

/// A ping frame (heartbeat).
pub fn ping(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Ping), payload)
}

/// A pong frame echoing a client ping's payload.
pub fn pong(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Pong), payload)
}

/// A close frame with `code` and a short reason (truncated to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(OpCode::Control(Control::Close), &payload)
}

/// A client frame, unmasked, as read by [`FrameReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message (fragments joined).
    Text(Vec<u8>),
    /// A complete binary message (not part of the protocol; answered with an error).
    Binary,
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close with its code, if any.
    Close(Option<u16>),
}

/// Why the client's byte stream cannot be read further; the connection closes
/// with [`FrameError::close_code`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Malformed framing: unmasked frame, reserved bits, bad control frame,
    /// stray continuation, invalid UTF-8 or an unknown opcode.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A message larger than the configured limit.
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// A fragmented message spanning more frames than the configured limit.
    #[error("message in more than {0} fragments")]
    TooManyFragments(usize),
}

impl FrameError {
    /// The close code the server sends for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => close::PROTOCOL_ERROR,
            // Too many fragments is a message too big to buffer, counted in frames.
            FrameError::TooLarge(_) | FrameError::TooManyFragments(_) => close::TOO_LARGE,
        }
    }
}

/// Fragments per message a reader accepts unless told otherwise.
pub const DEFAULT_MAX_FRAGMENTS: usize = 64;

/// Reads client frames out of a byte buffer, joining fragments, enforcing the
/// message size and fragment limits and RFC 6455's rules for client frames.
///
/// Partial input is a normal state: [`FrameReader::next_message`] returns `Ok(None)`
/// and the caller appends more bytes with [`FrameReader::extend`].
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    max_message: usize,
    max_fragments: usize,
    fragments: Option<(bool, Vec<u8>)>,
    /// Frames of the message in `fragments` so far.
    fragment_count: usize,
}

impl FrameReader {
    /// A reader refusing messages above `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            max_message,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            fragments: None,
            fragment_count: 0,
        }
    }

    /// The same reader refusing messages split into more than `max` frames.
    pub fn with_max_fragments(mut self, max: usize) -> Self {
        self.max_fragments = max.max(1);
        self
    }

    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Records that the message has `count` frames so far and more to come.
    fn count_fragment(&mut self, count: usize) -> Result<(), FrameError> {
        self.fragment_count = count;
        if count >= self.max_fragments {
            return Err(FrameError::TooManyFragments(self.max_fragments));
        }
        Ok(())
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete message or control frame, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            let mut cursor = Cursor::new(&self.buf[self.start..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                Err(_) => return Err(FrameError::Protocol("bad frame header")),
            };
            let Some(mask) = header.mask else {
                return Err(FrameError::Protocol("client frames must be masked"));
            };
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return Err(FrameError::Protocol("reserved bits set"));
            }
            let buffered = self.fragments.as_ref().map_or(0, |(_, b)| b.len()) as u64;
            // Saturating: a hostile 64-bit length must not wrap past the check.
            if len.saturating_add(buffered) > self.max_message as u64 {
                return Err(FrameError::TooLarge(self.max_message));
            }
            let head = cursor.position() as usize;
            let len = len as usize;
            if self.buf.len() - self.start < head + len {
                return Ok(None);
            }
            let from = self.start + head;
            let payload = &mut self.buf[from..from + len];
            unmask(payload, mask);
            let payload: &[u8] = payload;
            self.start = from + len;
            match header.opcode {
                OpCode::Control(ctl) => {
                    if !header.is_final || len > 125 {
                        return Err(FrameError::Protocol("bad control frame"));
                    }
                    return match ctl {
                        Control::Ping => Ok(Some(Incoming::Ping(payload.to_vec()))),
                        Control::Pong => Ok(Some(Incoming::Pong)),
                        Control::Close => Ok(Some(Incoming::Close(close_code(payload)?))),
                        Control::Reserved(_) => Err(FrameError::Protocol("reserved opcode")),
                    };
                }
                OpCode::Data(Data::Continue) => {
                    let Some((is_text, mut body)) = self.fragments.take() else {
                        return Err(FrameError::Protocol("continuation without a message"));
                    };
                    body.extend_from_slice(payload);
                    if !header.is_final {
                        self.count_fragment(self.fragment_count + 1)?;
                        self.fragments = Some((is_text, body));
                        continue;
                    }
                    return finish(is_text, body).map(Some);
                }
                OpCode::Data(data @ (Data::Text | Data::Binary)) => {
                    if self.fragments.is_some() {
                        return Err(FrameError::Protocol("new message inside a fragmented one"));
                    }
                    let is_text = data == Data::Text;
                    if !header.is_final {
                        let payload = payload.to_vec();
                        self.count_fragment(1)?;
                        self.fragments = Some((is_text, payload));
                        continue;
                    }
                    return finish(is_text, payload.to_vec()).map(Some);
                }
                OpCode::Data(Data::Reserved(_)) => {
                    return Err(FrameError::Protocol("reserved opcode"))
                }
            }
        }
    }
}

fn finish(is_text: bool, body: Vec<u8>) -> Result<Incoming, FrameError> {
    if !is_text {
        return Ok(Incoming::Binary);
    }
    if std::str::from_utf8(&body).is_err() {
        return Err(FrameError::Protocol("text message is not UTF-8"));
    }
    Ok(Incoming::Text(body))
}

fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close payload of one byte")),
        [a, b, ..] => Ok(Some(u16::from_be_bytes([*a, *b]))),
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![opcode | if fin { 0x80 } else { 0 }];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn server_text_frame_is_unmasked_and_complete() {
        let f = text(b"hello");
        assert_eq!(&f[..], &[0x81, 5, b'h', b'e', b'l', b'l', b'o']);
        let big = text(&[b'x'; 300]);
        assert_eq!(&big[..4], &[0x81, 126, 1, 44]);
        assert_eq!(big.len(), 304);
    }

    #[test]
    fn reads_split_and_fragmented_messages() {
        let mut bytes = client_frame(0x1, false, b"{\"op\":");
        bytes.extend(client_frame(0x9, true, b"hb"));
        bytes.extend(client_frame(0x0, true, b"\"ping\"}"));
        let mut r = FrameReader::new(1024);
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            r.extend(chunk);
            while let Some(m) = r.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                Incoming::Ping(b"hb".to_vec()),
                Incoming::Text(b"{\"op\":\"ping\"}".to_vec())
            ]
        );
    }

    #[test]
    fn enforces_limits_and_rules() {
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, true, &[b'a'; 200]));
        assert_eq!(r.next_message(), Err(FrameError::TooLarge(100)));

        let mut r = FrameReader::new(100);
        r.extend(&[0x81, 2, b'h', b'i']);
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));

        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x0, true, b"x"));
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));

        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, true, &[0xff, 0xfe]));
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));

        // Three fragments fit a cap of 3; a fourth frame does not.
        let mut r = FrameReader::new(100).with_max_fragments(3);
        r.extend(&client_frame(0x1, false, b"a"));
        r.extend(&client_frame(0x0, false, b"b"));
        r.extend(&client_frame(0x0, true, b"c"));
        assert_eq!(r.next_message(), Ok(Some(Incoming::Text(b"abc".to_vec()))));
        for (op, fin) in [(0x1, false), (0x0, false), (0x0, false), (0x0, true)] {
            r.extend(&client_frame(op, fin, b"x"));
        }
        assert_eq!(r.next_message(), Err(FrameError::TooManyFragments(3)));

        // A 64-bit length near u64::MAX behind a buffered fragment is too
        // large, not an overflow.
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, false, b"ab"));
        r.extend(&[0x80, 0x80 | 127]);
        r.extend(&(u64::MAX - 1).to_be_bytes());
        r.extend(&[1, 2, 3, 4]);
        assert_eq!(r.next_message(), Err(FrameError::TooLarge(100)));

        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x8, true, &1000u16.to_be_bytes()));
        assert_eq!(r.next_message(), Ok(Some(Incoming::Close(Some(1000)))));
    }
}
