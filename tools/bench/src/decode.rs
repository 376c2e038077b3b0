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

/// What the harness reads of a price message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceFields<'a> {
    /// The `"symbol"` string (no escapes: symbol names are plain), if any.
    pub symbol: Option<&'a [u8]>,
    /// `"seq"`.
    pub seq: u64,
    /// The whole message, for the fields read only when needed.
    payload: &'a [u8],
}

impl PriceFields<'_> {
    /// `"ts"`, read only when asked: a run timed by the feed's own stamps
    /// never needs it, and reading the end of every message cost the load
    /// thread 7% of its core in `hot`.
    pub fn ts(&self) -> Option<u64> {
        ts_at_end(self.payload).or_else(|| {
            let at = FINDERS.ts.rfind(self.payload)?;
            u64_at(self.payload, at + 5)
        })
    }
}

/// Searchers built once: building one per message cost the load thread
/// more than the search itself.
struct Finders {
    seq: memchr::memmem::Finder<'static>,
    ts: memchr::memmem::FinderRev<'static>,
    symbol: memchr::memmem::Finder<'static>,
}

static FINDERS: std::sync::LazyLock<Finders> = std::sync::LazyLock::new(|| Finders {
    seq: memchr::memmem::Finder::new(br#""seq":"#),
    ts: memchr::memmem::FinderRev::new(br#""ts":"#),
    symbol: memchr::memmem::Finder::new(br#""symbol":""#),
});

/// `"symbol"` and `"seq"` of a price message (`"ts"` on demand). Quotecast's layout
/// (`{"type":"price","symbol":"..","seq":N,..,"ts":N}`) is read in one
/// pass; any other order is searched for.
pub fn price_fields(payload: &[u8]) -> Option<PriceFields<'_>> {
    if let Some(fields) = quotecast_price(payload) {
        return Some(fields);
    }
    let f = &*FINDERS;
    let seq = f.seq.find(payload).and_then(|i| u64_at(payload, i + 6))?;
    let symbol = f
        .symbol
        .find(payload)
        .and_then(|i| quoted(payload.get(i + 10..)?));
    Some(PriceFields {
        symbol,
        seq,
        payload,
    })
}

/// The fast path of [`price_fields`]: quotecast's own key order.
fn quotecast_price(payload: &[u8]) -> Option<PriceFields<'_>> {
    let rest = payload.strip_prefix(br#"{"type":"price","symbol":""#)?;
    let symbol = quoted(rest)?;
    let after = rest[symbol.len() + 1..].strip_prefix(br#","seq":"#)?;
    Some(PriceFields {
        symbol: Some(symbol),
        seq: u64_at(after, 0)?,
        payload,
    })
}

/// The string up to the next `"` of `rest`.
fn quoted(rest: &[u8]) -> Option<&[u8]> {
    memchr::memchr(b'"', rest).map(|len| &rest[..len])
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
        let fields = price_fields(p).unwrap();
        assert_eq!(
            (fields.seq, fields.ts()),
            (918_273, Some(1_763_769_600_123_456))
        );
        assert_eq!(fields.symbol, Some(&b"EURUSD"[..]));
        let reordered = br#"{"type":"price","ts":17,"seq":5,"bid":1}"#;
        let fields = price_fields(reordered).unwrap();
        assert_eq!(
            (fields.symbol, fields.seq, fields.ts()),
            (None, 5, Some(17))
        );
        let peer = br#"{"symbol":"S0042","seq":7,"type":"price","ts":9,"bid":1.5}"#;
        let fields = price_fields(peer).unwrap();
        assert_eq!(
            (fields.symbol, fields.seq, fields.ts()),
            (Some(&b"S0042"[..]), 7, Some(9))
        );
        assert_eq!(
            price_fields(br#"{"type":"price","symbol":"A","seq":1}"#).map(|f| f.ts()),
            Some(None),
            "no ts"
        );
        assert_eq!(price_fields(br#"{"type":"price","ts":1}"#), None, "no seq");
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
    }
}
