//! WebSocket frames: encode a server message ONCE into a complete frame
//! (`Bytes`: header + payload) that every subscriber's flush shares, and read
//! client frames within the server's limits.
//!
//! Server-to-client frames are never masked (RFC 6455 §5.1), so the same bytes
//! go to every client. With permessage-deflate ([`deflate`], negotiated in
//! [`extension`]) a message is also compressed once and that frame shared.

pub mod deflate;
pub mod extension;

use bytes::{BufMut, Bytes, BytesMut};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// A close code the server sends (PROTOCOL.md), with the reason that goes with it.
///
/// A newtype with constants rather than an enum: the echo route sends back
/// whatever code the client closed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode(u16);

impl CloseCode {
    /// Normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// Server shutting down (drain).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// Protocol error (bad framing).
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// Text that is not UTF-8 (RFC 6455 §7.4.1: data inconsistent with its type).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// Policy violation (control frame flood).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// Message too large (or in too many fragments).
    pub const TOO_LARGE: CloseCode = CloseCode(1009);
    /// The server hit a bug handling this connection.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// No frame from the client for 3 heartbeats.
    pub const IDLE_TIMEOUT: CloseCode = CloseCode(4000);
    /// Token expired and not refreshed.
    pub const TOKEN_EXPIRED: CloseCode = CloseCode(4001);
    /// Slow consumer.
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4008);
    /// Rate limited.
    pub const RATE_LIMITED: CloseCode = CloseCode(4029);

    /// `code`, if an endpoint may send it ([`is_sendable_close_code`]).
    pub fn new(code: u16) -> Option<CloseCode> {
        is_sendable_close_code(code).then_some(CloseCode(code))
    }

    /// The code on the wire.
    pub fn code(self) -> u16 {
        self.0
    }

    /// The reason [`close_frame`] sends with this code; empty for a normal
    /// closure and for codes the server only echoes.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::GOING_AWAY => "server shutting down",
            CloseCode::PROTOCOL_ERROR => "protocol error",
            CloseCode::INVALID_DATA => "invalid UTF-8",
            CloseCode::POLICY_VIOLATION => "policy violation",
            CloseCode::TOO_LARGE => "message too large",
            CloseCode::INTERNAL_ERROR => "internal error",
            // PROTOCOL.md names the reason of 4000 in snake case.
            CloseCode::IDLE_TIMEOUT => "idle_timeout",
            CloseCode::TOKEN_EXPIRED => "token expired",
            CloseCode::SLOW_CONSUMER => "slow consumer",
            CloseCode::RATE_LIMITED => "rate limited",
            _ => "",
        }
    }
}

fn encode(opcode: OpCode, payload: &[u8]) -> Bytes {
    encode_with_rsv1(opcode, false, payload)
}

/// A complete unmasked frame; `rsv1` marks a compressed message (RFC 7692).
fn encode_with_rsv1(opcode: OpCode, rsv1: bool, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        opcode,
        rsv1,
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

/// A complete unmasked binary frame carrying `payload`.
pub fn binary(payload: &[u8]) -> Bytes {
    encode(OpCode::Data(Data::Binary), payload)
}

/// A ping frame (heartbeat).
pub fn ping(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Ping), payload)
}

/// A pong frame echoing a client ping's payload.
pub fn pong(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Pong), payload)
}

/// A close frame with `code` and its default [`CloseCode::reason`].
pub fn close_frame(code: CloseCode) -> Bytes {
    close_frame_with_reason(code, code.reason())
}

/// A close frame with `code` and a reason of the caller's (truncated to fit
/// 125 bytes), for when it says more than the code's default.
pub fn close_frame_with_reason(code: CloseCode, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.code().to_be_bytes());
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
    /// A complete text message (fragments joined), valid UTF-8.
    Text(Vec<u8>),
    /// A complete binary message (fragments joined).
    Binary(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close with its code, if any (only codes a peer may send).
    Close(Option<u16>),
}

/// Why the client's byte stream cannot be read further; the connection closes
/// with [`FrameError::close_code`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Malformed framing: unmasked frame, reserved bits, bad control frame,
    /// stray continuation, an unknown opcode, or a close frame with a code a
    /// peer may not send or a reason that is not UTF-8.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message (or a fragment of one) that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// A message larger than the configured limit.
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// A fragmented message spanning more frames than the configured limit.
    #[error("message in more than {0} fragments")]
    TooManyFragments(usize),
    /// A compressed message that is not a valid deflate stream.
    #[error("invalid compressed data")]
    BadDeflate,
}

impl FrameError {
    /// The close code the server sends for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            FrameError::Protocol(_) => CloseCode::PROTOCOL_ERROR,
            FrameError::InvalidUtf8 | FrameError::BadDeflate => CloseCode::INVALID_DATA,
            // Too many fragments is a message too big to buffer, counted in frames.
            FrameError::TooLarge(_) | FrameError::TooManyFragments(_) => CloseCode::TOO_LARGE,
        }
    }

    /// The reason sent with [`FrameError::close_code`]: its default, except
    /// that too many fragments is told apart from too many bytes.
    pub fn close_reason(&self) -> &'static str {
        match self {
            FrameError::TooManyFragments(_) => "too many fragments",
            FrameError::BadDeflate => "invalid compressed data",
            _ => self.close_code().reason(),
        }
    }
}

/// Fragments per message a reader accepts unless told otherwise.
pub const DEFAULT_MAX_FRAGMENTS: usize = 64;

/// A message whose first fragments have arrived.
#[derive(Debug)]
struct Fragments {
    is_text: bool,
    body: Vec<u8>,
    /// Frames of the message so far.
    frames: usize,
    /// Length of the prefix of `body` already known to be valid UTF-8.
    utf8_checked: usize,
    /// RSV1 was set on its first frame: `body` is deflated (RFC 7692).
    compressed: bool,
}

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
    fragments: Option<Fragments>,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
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
            deflate: false,
        }
    }

    /// The same reader for a connection that negotiated permessage-deflate:
    /// a message whose first frame has RSV1 set is inflated, within the
    /// message size limit, once its last fragment arrives.
    pub fn with_deflate(mut self, on: bool) -> Self {
        self.deflate = on;
        self
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

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete message or control frame, `Ok(None)` when more bytes are needed.
    ///
    /// Errors are found as early as the bytes allow (a frame header is judged
    /// before its payload arrives, invalid UTF-8 in a fragment before the
    /// message ends), so a hostile client is cut off without being buffered.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            let mut cursor = Cursor::new(&self.buf[self.start..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                Err(_) => return Err(FrameError::Protocol("bad frame header")),
            };
            let mask = self.check_header(&header, len)?;
            // Both bounded above: a control frame by 125, a data frame by `max_message`.
            let len = len as usize;
            let head = cursor.position() as usize;
            if self.buf.len() - self.start < head + len {
                return Ok(None);
            }
            let from = self.start + head;
            let payload = &mut self.buf[from..from + len];
            unmask(payload, mask);
            let payload: &[u8] = payload;
            self.start = from + len;
            let mut message = match header.opcode {
                OpCode::Control(ctl) => return control(ctl, payload).map(Some),
                OpCode::Data(Data::Continue) => {
                    let Some(mut m) = self.fragments.take() else {
                        return Err(FrameError::Protocol("continuation without a message"));
                    };
                    m.body.extend_from_slice(payload);
                    m.frames += 1;
                    m
                }
                OpCode::Data(data) => Fragments {
                    is_text: data == Data::Text,
                    body: payload.to_vec(),
                    frames: 1,
                    utf8_checked: 0,
                    compressed: header.rsv1,
                },
            };
            // A compressed message is checked once inflated.
            if message.is_text && !message.compressed {
                check_utf8(&message.body, &mut message.utf8_checked, header.is_final)?;
            }
            if !header.is_final {
                if message.frames >= self.max_fragments {
                    return Err(FrameError::TooManyFragments(self.max_fragments));
                }
                self.fragments = Some(message);
                continue;
            }
            if message.compressed {
                message.body =
                    deflate::inflate(message.body, self.max_message).map_err(|e| match e {
                        deflate::InflateError::TooLarge => FrameError::TooLarge(self.max_message),
                        deflate::InflateError::Corrupt => FrameError::BadDeflate,
                    })?;
                if message.is_text {
                    check_utf8(&message.body, &mut message.utf8_checked, true)?;
                }
            }
            return Ok(Some(if message.is_text {
                Incoming::Text(message.body)
            } else {
                Incoming::Binary(message.body)
            }));
        }
    }

    /// Judges a frame by its header alone, before its payload arrives:
    /// RFC 6455's rules for client frames and the message size limit.
    /// Returns the frame's mask.
    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<[u8; 4], FrameError> {
        let Some(mask) = header.mask else {
            return Err(FrameError::Protocol("client frames must be masked"));
        };
        // RSV1 is permessage-deflate's, on the first frame of a data message only.
        let compressed_start =
            self.deflate && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
        if (header.rsv1 && !compressed_start) || header.rsv2 || header.rsv3 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        match header.opcode {
            OpCode::Control(_) if !header.is_final || len > 125 => {
                return Err(FrameError::Protocol("bad control frame"));
            }
            OpCode::Control(_) => {}
            OpCode::Data(Data::Text | Data::Binary) if self.fragments.is_some() => {
                return Err(FrameError::Protocol("new message inside a fragmented one"));
            }
            OpCode::Data(Data::Reserved(_)) => {
                return Err(FrameError::Protocol("reserved opcode"));
            }
            OpCode::Data(_) => {
                let buffered = self.fragments.as_ref().map_or(0, |f| f.body.len()) as u64;
                if len.saturating_add(buffered) > self.max_message as u64 {
                    return Err(FrameError::TooLarge(self.max_message));
                }
            }
        }
        Ok(mask)
    }
}

/// The control frame `ctl` with its (unmasked) `payload`.
fn control(ctl: Control, payload: &[u8]) -> Result<Incoming, FrameError> {
    match ctl {
        Control::Ping => Ok(Incoming::Ping(payload.to_vec())),
        Control::Pong => Ok(Incoming::Pong),
        Control::Close => Ok(Incoming::Close(close_code(payload)?)),
        Control::Reserved(_) => Err(FrameError::Protocol("reserved opcode")),
    }
}

/// Checks that `body[*checked..]` is UTF-8 and advances `checked`. A sequence
/// cut at the end is allowed until the message is `complete`.
fn check_utf8(body: &[u8], checked: &mut usize, complete: bool) -> Result<(), FrameError> {
    match std::str::from_utf8(&body[*checked..]) {
        Ok(_) => *checked = body.len(),
        Err(e) if e.error_len().is_none() && !complete => *checked += e.valid_up_to(),
        Err(_) => return Err(FrameError::InvalidUtf8),
    }
    Ok(())
}

/// Whether a peer may send close `code` (RFC 6455 §7.4: 1004-1006 and 1015
/// are reserved, 1012-2999 unassigned to peers, 5000+ undefined).
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close payload of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_sendable_close_code(code) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(FrameError::Protocol("close reason is not UTF-8"));
            }
            Ok(Some(code))
        }
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
    fn close_frames_carry_the_code_and_its_reason() {
        let f = close_frame(CloseCode::SLOW_CONSUMER);
        assert_eq!(&f[..4], &[0x88, 15, 0x0f, 0xa8]);
        assert_eq!(&f[4..], b"slow consumer");
        assert_eq!(&close_frame(CloseCode::NORMAL)[..], &[0x88, 2, 0x03, 0xe8]);
        let f = close_frame_with_reason(CloseCode::TOO_LARGE, &"é".repeat(100));
        assert_eq!(
            (f[1], f.len()),
            (124, 126),
            "cut to whole characters within 125 bytes"
        );
        assert_eq!(CloseCode::new(4321).map(CloseCode::code), Some(4321));
        assert_eq!(CloseCode::new(1005), None);
        let e = FrameError::TooManyFragments(3);
        assert_eq!(
            (e.close_code(), e.close_reason()),
            (CloseCode::TOO_LARGE, "too many fragments")
        );
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
    fn binary_messages_keep_their_payload() {
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x2, false, &[0, 1]));
        r.extend(&client_frame(0x0, true, &[255]));
        assert_eq!(
            r.next_message(),
            Ok(Some(Incoming::Binary(vec![0, 1, 255])))
        );
    }

    #[test]
    fn fails_fast_on_bad_utf8_close_codes_and_huge_lengths() {
        // An invalid sequence in the first fragment is refused before the message ends.
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, false, &[b'a', 0xc0, b'b']));
        assert_eq!(r.next_message(), Err(FrameError::InvalidUtf8));
        // A character split across fragments is fine.
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, false, &"é".as_bytes()[..1]));
        r.extend(&client_frame(0x0, true, &"é".as_bytes()[1..]));
        assert_eq!(r.next_message(), Ok(Some(Incoming::Text("é".into()))));

        for code in [999u16, 1005, 1006, 1015, 2000, 5000] {
            let mut r = FrameReader::new(100);
            r.extend(&client_frame(0x8, true, &code.to_be_bytes()));
            assert!(
                matches!(r.next_message(), Err(FrameError::Protocol(_))),
                "{code}"
            );
        }
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x8, true, &[0x03, 0xe8, 0xff]));
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));

        // A 64-bit length near u64::MAX plus buffered fragments must not overflow.
        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x1, false, b"ab"));
        r.extend(&[
            0x80,
            0x80 | 127,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ]);
        r.extend(&[1, 2, 3, 4]);
        assert_eq!(r.next_message(), Err(FrameError::TooLarge(100)));
    }

    #[test]
    fn caps_fragments_per_message() {
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
        assert_eq!(r.next_message(), Err(FrameError::InvalidUtf8));

        let mut r = FrameReader::new(100);
        r.extend(&client_frame(0x8, true, &1000u16.to_be_bytes()));
        assert_eq!(r.next_message(), Ok(Some(Incoming::Close(Some(1000)))));
    }
}
