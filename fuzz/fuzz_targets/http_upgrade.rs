//! The HTTP request head parser and the upgrade/token checks that route a
//! request, fed in random split chunks as a socket would deliver them.
//!
//! Input: one byte seeding the chunk sizes, then the raw request bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quotecast::auth;
use quotecast::config::ServerConfig;
use quotecast::http::{check_upgrade, parse_head, HeadError};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    // The production cap, and a small one so the size limit is reached often.
    let max = if seed & 1 == 0 {
        ServerConfig::default().max_header_bytes
    } else {
        256
    };
    let mut buf = Vec::new();
    for chunk in quotecast_fuzz::chunks(seed, bytes) {
        buf.extend_from_slice(chunk);
        // As `http::read_head` does: parse after every read until complete or refused.
        match parse_head(&buf, max) {
            Ok(None) => assert!(buf.len() <= max, "incomplete head above the cap kept"),
            Err(HeadError::TooLarge) => return,
            Err(HeadError::Malformed) => {
                // A malformed prefix stays malformed whatever follows.
                assert_eq!(parse_head(bytes, max).err(), Some(HeadError::Malformed));
                return;
            }
            Ok(Some((req, used))) => {
                assert!(used <= buf.len() && used <= max);
                // The head is complete at `used`: parsing exactly it gives the same request.
                assert_eq!(parse_head(&buf[..used], max), Ok(Some((req.clone(), used))));
                assert!(!req.path.contains('?'));
                if let Ok(accept) = check_upgrade(&req) {
                    assert_eq!(accept.len(), 28, "base64 of a SHA-1");
                }
                // The token lookup every authenticated route does.
                let params = ["access_token".to_string(), "token".to_string()];
                let query = req.query.as_deref();
                let _ = auth::token_from_request(req.header("authorization"), query, &params);
                return;
            }
        }
    }
});
