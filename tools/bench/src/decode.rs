//! Server text messages read by byte search, never parsed as JSON: what a
//! message is (its `"type"`), and the `seq` and `ts` of a price.

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
    memchr::memmem::find(hay, needle)
}

/// Last position of `needle` in `hay`.
pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(hay, needle)
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

/// The `"symbol"` string of a price message (no escapes: symbol names are
/// plain).
pub fn price_symbol(payload: &[u8]) -> Option<&[u8]> {
    let start = find(payload, br#""symbol":""#)? + 10;
    let rest = payload.get(start..)?;
    let len = memchr::memchr(b'"', rest)?;
    Some(&rest[..len])
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
    fn price_fields_are_found_without_json_parsing() {
        let p = br#"{"type":"price","symbol":"EURUSD","seq":918273,"bid":1.08412,"ask_src":"LP1","spread_bps":0.2767,"ts":1763769600123456}"#;
        assert_eq!(classify(p), Kind::Price);
        assert_eq!(price_seq_ts(p), Some((918_273, 1_763_769_600_123_456)));
        let reordered = br#"{"type":"price","ts":17,"seq":5,"bid":1}"#;
        assert_eq!(price_seq_ts(reordered), Some((5, 17)));
        assert_eq!(price_symbol(p), Some(&b"EURUSD"[..]));
        assert_eq!(price_symbol(reordered), None);
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
