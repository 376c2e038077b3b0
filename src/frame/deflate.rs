//! permessage-deflate (RFC 7692) payloads: a message compressed ONCE into a
//! frame that every connection which negotiated deflate shares, and client
//! messages inflated within the message size limit.
//!
//! The server always uses `server_no_context_takeover` and asks the client
//! for `client_no_context_takeover`, so every message is compressed and
//! inflated on its own: a compressed frame is a pure function of its
//! message, and no connection keeps a deflate window between messages.

use super::{encode_with_rsv1, Data, OpCode};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The empty stored block a sync flush ends with; RFC 7692 §7.2.1 strips it
/// from every message and the receiver appends it back before inflating.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest LZ77 window (bits) this compressor uses; RFC 7692's maximum too.
pub const MAX_WINDOW_BITS: u8 = 15;

/// A text message compressed once, as a complete frame with RSV1 set.
#[derive(Clone, Debug)]
pub struct Deflated {
    frame: Bytes,
    /// Length of the message before compression.
    raw_len: usize,
}

impl Deflated {
    /// The complete frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Whether a peer that limited the server to a `window_bits` window can
    /// inflate this frame. Each message is compressed on its own, so no
    /// back-reference reaches further than the message's own length: a
    /// message no longer than the window fits whatever window the compressor
    /// used. A longer one goes to such a peer uncompressed, which RFC 7692
    /// allows for any message; one compression thus serves every window size.
    pub fn fits(&self, window_bits: u8) -> bool {
        window_bits >= MAX_WINDOW_BITS || self.raw_len <= 1 << window_bits
    }
}

/// What one connection agreed to (see [`super::extension`]) and the size
/// below which messages stay uncompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateUse {
    /// The server's LZ77 window limit the client asked for (8..=15).
    pub window_bits: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear).
    pub min_bytes: usize,
}

impl DeflateUse {
    /// The frame this connection is sent: `deflated` when there is one it
    /// can inflate, else `plain`.
    pub fn pick<'a>(&self, plain: &'a Bytes, deflated: Option<&'a Deflated>) -> &'a Bytes {
        match deflated {
            Some(d) if d.fits(self.window_bits) => d.frame(),
            _ => plain,
        }
    }

    /// A text frame of `payload` for this connection alone (acks, snapshots):
    /// compressed when it is long enough and the result fits its window.
    pub fn text(&self, payload: &[u8]) -> Bytes {
        self.frame(Data::Text, payload)
    }

    /// A binary frame of `payload` for this connection alone, compressed like [`DeflateUse::text`].
    pub fn binary(&self, payload: &[u8]) -> Bytes {
        self.frame(Data::Binary, payload)
    }

    /// Compressed with this connection's window, so even a long message
    /// fits it (a shared frame is compressed with the largest window).
    fn frame(&self, data: Data, payload: &[u8]) -> Bytes {
        match compressed(data, payload, self.min_bytes, self.window_bits) {
            Some(d) => d.frame,
            None => super::encode(OpCode::Data(data), payload),
        }
    }
}

thread_local! {
    /// One compressor per thread (one per shard) and window size, made when
    /// first needed and reset before every message: tables are allocated
    /// once, not once per message or connection.
    static COMPRESSORS: RefCell<[Option<Compress>; 8]> = const { RefCell::new([const { None }; 8]) };
}

/// `payload` compressed into a text frame with RSV1 set, if it is at least
/// `min_bytes` long: the frame shared by every connection it fits.
pub fn text(payload: &[u8], min_bytes: usize) -> Option<Deflated> {
    compressed(Data::Text, payload, min_bytes, MAX_WINDOW_BITS)
}

fn compressed(data: Data, payload: &[u8], min_bytes: usize, window_bits: u8) -> Option<Deflated> {
    if payload.len() < min_bytes.max(1) {
        return None;
    }
    // zlib refuses a raw deflate window of 8 bits; its 9-bit window never
    // reaches back more than 250 bytes (window - 262 of lookahead), so it
    // honours a limit of 8 too.
    let bits = window_bits.clamp(9, MAX_WINDOW_BITS);
    let compressed = COMPRESSORS.with(|cs| {
        let mut cs = cs.borrow_mut();
        let c = cs[usize::from(bits - 8)].get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::fast(), false, bits)
        });
        compress(c, payload)
    });
    Some(Deflated {
        frame: encode_with_rsv1(OpCode::Data(data), true, &compressed),
        raw_len: payload.len(),
    })
}

/// `payload` compressed on its own (no context from earlier messages) and
/// sync-flushed, without the trailing `00 00 ff ff`.
fn compress(c: &mut Compress, payload: &[u8]) -> Vec<u8> {
    c.reset();
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        // Writing to a Vec with room left cannot fail for a raw deflate stream.
        let _ = c.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync);
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    if out.ends_with(&SYNC_TAIL) {
        out.truncate(out.len() - SYNC_TAIL.len());
    }
    out
}

/// Why a compressed client message could not be inflated.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the limit (found as soon as the limit is
    /// crossed, without inflating the rest).
    TooLarge,
    /// Not a valid deflate stream.
    Corrupt,
}

/// Inflates one compressed message (`body`, to which the stripped tail is
/// appended) into at most `max` bytes. Output grows by steps capped at the
/// limit, so a decompression bomb costs at most `max + 1` bytes of memory
/// and the work to produce them.
pub fn inflate(mut body: Vec<u8>, max: usize) -> Result<Vec<u8>, InflateError> {
    body.extend_from_slice(&SYNC_TAIL);
    let mut d = Decompress::new(false);
    let mut out: Vec<u8> = Vec::with_capacity((body.len() * 4).max(64).min(max + 1));
    loop {
        if out.len() == out.capacity() {
            // `out.len() <= max` here, so there is always room for one more byte.
            out.reserve_exact(out.len().max(64).min(max + 1 - out.len()));
        }
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let consumed = before_in as usize;
        let status = d
            .decompress_vec(&body[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        if out.len() > max {
            return Err(InflateError::TooLarge);
        }
        let all_in = d.total_in() as usize == body.len();
        if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            return Ok(out);
        }
        if d.total_in() == before_in && d.total_out() == before_out && out.len() < out.capacity() {
            // Input left that produces nothing: a truncated stream.
            return Err(InflateError::Corrupt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(frame: &Bytes) -> &[u8] {
        let at = if frame[1] & 0x7f == 126 { 4 } else { 2 };
        &frame[at..]
    }

    #[test]
    fn compresses_each_message_alone_and_inflates_it_back() {
        let msg =
            br#"{"type":"price","symbol":"EURUSD","seq":1,"bid":1.08412,"ask":1.08415}"#.repeat(3);
        let a = text(&msg, 16).expect("long enough");
        let b = text(&msg, 16).expect("long enough");
        assert_eq!(a.frame(), b.frame(), "no context carried between messages");
        assert_eq!(a.frame()[0], 0xc1, "FIN, RSV1, text");
        assert!(a.frame().len() < msg.len());
        let back = inflate(payload_of(a.frame()).to_vec(), 1 << 20).unwrap();
        assert_eq!(back, msg);
        assert!(text(b"short", 16).is_none());
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let body = compress(&mut Compress::new(Compression::best(), false), &zeros);
        assert!(body.len() < 16 << 10, "{}", body.len());
        assert_eq!(inflate(body.clone(), 64 << 10), Err(InflateError::TooLarge));
        assert_eq!(inflate(body, 10 << 20).map(|v| v.len()), Ok(10 << 20));
        assert_eq!(inflate(vec![0xff; 8], 100), Err(InflateError::Corrupt));
    }

    #[test]
    fn every_window_size_compresses() {
        let msg: Vec<u8> = (0..3000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for bits in 8..=15 {
            let d = compressed(Data::Binary, &msg, 1, bits).unwrap();
            // Inflated with the window the peer limited the server to (flate2
            // has no 8-bit inflater; zlib's 9-bit deflate window reaches back
            // 250 bytes at most).
            let mut input = payload_of(d.frame()).to_vec();
            input.extend_from_slice(&SYNC_TAIL);
            let mut out = Vec::with_capacity(2 * msg.len());
            Decompress::new_with_window_bits(false, bits.max(9))
                .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, msg, "{bits} bits");
        }
    }

    #[test]
    fn windows_smaller_than_the_message_get_the_plain_frame() {
        let use9 = DeflateUse {
            window_bits: 9,
            min_bytes: 1,
        };
        let plain = crate::frame::text(&[b'a'; 600]);
        let big = text(&[b'a'; 600], 1).unwrap();
        let small = text(&[b'a'; 500], 1).unwrap();
        assert_eq!(use9.pick(&plain, Some(&big)), &plain);
        assert_eq!(use9.pick(&plain, Some(&small)), small.frame());
        assert!(big.fits(15));
        // A message for this connection alone is compressed with its window.
        let own = use9.text(&[b'a'; 600]);
        assert_eq!(own[0], 0xc1);
        assert_eq!(
            inflate(payload_of(&own).to_vec(), 1000).unwrap(),
            [b'a'; 600]
        );
    }
}
