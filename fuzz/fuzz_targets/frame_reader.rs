//! The server-role frame reader with our limits, fed in random chunks.
//!
//! Input: one byte seeding the chunk sizes (its low bit picks the production
//! message cap or a small one), then the bytes a client sends.
//! Checks: no panic; every message respects the cap, text is UTF-8, control
//! payloads fit 125 bytes, close codes are ones a peer may send; an error is
//! 1002, 1007 or 1009 and ends the stream; and the chunking never changes what is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quotecast::config::ServerConfig;
use quotecast::frame::{is_sendable_close_code, CloseCode, FrameError, FrameReader, Incoming};

/// Everything read from `chunks`, up to and including the first error.
fn read_all<'a>(
    max: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<Incoming, FrameError>> {
    let mut reader = FrameReader::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        reader.extend(chunk);
        loop {
            match reader.next_message() {
                Ok(None) => break,
                Ok(Some(m)) => out.push(Ok(m)),
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let max = if seed & 1 == 0 {
        ServerConfig::default().max_message_bytes
    } else {
        300
    };
    let chunked = read_all(max, quotecast_fuzz::chunks(seed, bytes));
    for event in &chunked {
        match event {
            Ok(Incoming::Text(t)) => {
                assert!(t.len() <= max);
                assert!(std::str::from_utf8(t).is_ok());
            }
            Ok(Incoming::Binary(b)) => assert!(b.len() <= max),
            Ok(Incoming::Ping(p)) => assert!(p.len() <= 125),
            Ok(Incoming::Close(code)) => assert!(code.is_none_or(is_sendable_close_code)),
            Ok(Incoming::Pong) => {}
            Err(e) => {
                assert!(matches!(
                    e.close_code(),
                    CloseCode::PROTOCOL_ERROR | CloseCode::INVALID_DATA | CloseCode::TOO_LARGE
                ));
                if let FrameError::TooLarge(n) = e {
                    assert_eq!(*n, max);
                }
            }
        }
    }
    assert_eq!(
        chunked,
        read_all(max, [bytes]),
        "chunking changed the result"
    );
});
