//! sockudo as a peer, spoken to in the Pusher protocol: its configuration,
//! the subscribe frames (one public channel per symbol), the signed
//! `batch_events` triggers the feed sends, and the price message a client
//! finds inside a Pusher event.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::fmt::Write;
use std::net::SocketAddr;

/// The app every run uses.
const APP_ID: &str = "bench";
const APP_KEY: &str = "bench-key";
const APP_SECRET: &str = "bench-secret";
/// Events per `batch_events` request (the app allows this many).
pub const BATCH: usize = 100;

/// sockudo's TOML configuration for a run on `addr`: one app with no
/// connection limit, memory app manager and local adapter (one node), rate
/// limits and metrics off.
pub fn config(addr: SocketAddr) -> String {
    format!(
        "host = \"{}\"\nport = {}\ndebug = false\n\n[app_manager]\ndriver = \"memory\"\n\n\
         [app_manager.array]\n[[app_manager.array.apps]]\nid = \"{APP_ID}\"\nkey = \"{APP_KEY}\"\n\
         secret = \"{APP_SECRET}\"\nenabled = true\nenable_client_messages = false\n\
         max_connections = 1000000\nmax_event_batch_size = {BATCH}\n\n\
         [metrics]\nenabled = false\n\n[rate_limiter]\nenabled = false\n",
        addr.ip(),
        addr.port()
    )
}

/// The upgrade path and one `pusher:subscribe` per symbol.
pub fn subscribe(symbols: &[&str]) -> (Vec<Vec<u8>>, Option<String>) {
    let frames = symbols
        .iter()
        .map(|s| {
            format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{s}"}}}}"#).into_bytes()
        })
        .collect();
    let path = format!("/app/{APP_KEY}?protocol=7&client=quotecast-bench&version=1.0");
    (frames, Some(path))
}

/// A signed `POST /apps/<id>/batch_events` carrying `events` (symbol,
/// price message) as `price` events on the symbols' channels, at `unix_s`.
pub fn batch_request(host: &str, events: &[(&str, String)], unix_s: u64) -> String {
    let mut body = String::from(r#"{"batch":["#);
    for (i, (channel, message)) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let data = serde_json::to_string(message).expect("a string serializes");
        let _ = write!(
            body,
            r#"{{"channel":"{channel}","name":"price","data":{data}}}"#
        );
    }
    body.push_str("]}");
    let path = format!("/apps/{APP_ID}/batch_events");
    let query = format!(
        "auth_key={APP_KEY}&auth_timestamp={unix_s}&auth_version=1.0&body_md5={}",
        hex(&Md5::digest(body.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key length");
    mac.update(format!("POST\n{path}\n{query}").as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    format!(
        "POST {path}?{query}&auth_signature={signature} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What a Pusher message from the server is.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A `price` event; its `data`, still JSON-string escaped.
    Price(&'a [u8]),
    /// `pusher_internal:subscription_succeeded`.
    Subscribed,
    /// `pusher:error` (or a subscription error).
    Error,
    /// Anything else (`pusher:connection_established`, pings).
    Other,
}

/// Reads a server message by byte search, as the harness reads quotecast's.
pub fn event(payload: &[u8]) -> Event<'_> {
    use crate::decode::find;
    if find(payload, br#""event":"price""#).is_some() {
        let Some(start) = find(payload, br#""data":""#).map(|i| i + 8) else {
            return Event::Other;
        };
        // The string ends at the first quote not escaped by a backslash.
        let rest = &payload[start..];
        let end = (0..rest.len()).find(|&i| rest[i] == b'"' && (i == 0 || rest[i - 1] != b'\\'));
        return end.map_or(Event::Other, |end| Event::Price(&rest[..end]));
    }
    if find(payload, b"subscription_succeeded").is_some() {
        Event::Subscribed
    } else if find(payload, b"error").is_some() {
        Event::Error
    } else {
        Event::Other
    }
}

/// `escaped` (a JSON string's contents holding only `\"` escapes, as the
/// feed's price messages do) unescaped into `out`.
pub fn unescape_into(escaped: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut bytes = escaped.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\\' && bytes.peek() == Some(&&b'"') {
            continue;
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_event_gives_back_the_message_it_carries() {
        let message = r#"{"type":"price","symbol":"S001","seq":7,"bid":1.5,"ts":1700000000000000}"#;
        let data = serde_json::to_string(message).unwrap();
        let frame = format!(r#"{{"event":"price","channel":"S001","data":{data}}}"#);
        let Event::Price(escaped) = event(frame.as_bytes()) else {
            panic!("not a price: {frame}");
        };
        let mut out = Vec::new();
        unescape_into(escaped, &mut out);
        assert_eq!(out, message.as_bytes());
        let ok = br#"{"event":"pusher_internal:subscription_succeeded","channel":"S001"}"#;
        assert_eq!(event(ok), Event::Subscribed);
        assert_eq!(
            event(br#"{"event":"pusher:error","data":{}}"#),
            Event::Error
        );
    }

    #[test]
    fn batch_requests_are_signed_over_method_path_and_sorted_query() {
        let req = batch_request("h", &[("S001", "{}".into())], 1_700_000_000);
        let body = req.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body,
            r#"{"batch":[{"channel":"S001","name":"price","data":"{}"}]}"#
        );
        let line = req.lines().next().unwrap();
        let query = line.split(['?', ' ']).nth(2).unwrap();
        let (signed, sig) = query.rsplit_once("&auth_signature=").unwrap();
        assert!(signed.starts_with(
            "auth_key=bench-key&auth_timestamp=1700000000&auth_version=1.0&body_md5="
        ));
        let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
        mac.update(format!("POST\n/apps/bench/batch_events\n{signed}").as_bytes());
        assert_eq!(sig, hex(&mac.finalize().into_bytes()));
    }
}
