//! Server-Sent Events: the second wire format, beside [`crate::frame`].
//!
//! An event is `event: <type>\ndata: <json>\n` and a blank line; the JSON is
//! the same object a WebSocket frame carries (compact JSON never holds a raw
//! line break, so one `data:` line is always enough). A value is encoded once
//! per shard and shared like a frame. Reliable messages leave the blank line
//! off: each connection appends its own `id:` line (its resume cursor) and
//! the blank line that dispatches the event, so the id and the message
//! arrive together or not at all.

use crate::model::channel::ChannelId;
use bytes::{BufMut, Bytes, BytesMut};

/// A comment line: keeps proxies from timing the stream out (the heartbeat).
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

fn fields(kind: &str, json: &[u8], extra: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(kind.len() + json.len() + 16 + extra);
    out.put_slice(b"event: ");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(json);
    out.put_u8(b'\n');
    out
}

/// A complete event of type `kind` carrying `json`.
pub fn event(kind: &str, json: &[u8]) -> Bytes {
    let mut out = fields(kind, json, 1);
    out.put_u8(b'\n');
    out.freeze()
}

/// The `event:` and `data:` lines of an event whose `id:` line and
/// terminating blank line each connection adds.
pub fn event_fields(kind: &str, json: &[u8]) -> Bytes {
    fields(kind, json, 0).freeze()
}

/// A complete event for a server message, named after its `type` member
/// (`message` if it has none, which no server message lacks).
pub fn message(json: &[u8]) -> Bytes {
    event(&type_of(json), json)
}

/// The `type` member of a server message.
pub fn type_of(json: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<Typed>(json).map_or_else(|_| "message".to_owned(), |t| t.kind)
}

/// The event that ends a stream in place of a WebSocket close frame:
/// `{"type":"close","code":..,"reason":..}`.
pub fn close(code: u16, reason: &str) -> Bytes {
    let json = serde_json::json!({"type": "close", "code": code, "reason": reason}).to_string();
    event("close", json.as_bytes())
}

/// Where an SSE connection stands in each reliable stream it follows: the
/// `id:` of its reliable events, which `Last-Event-ID` hands back on
/// reconnect. Text: the `seq` alone when the connection follows one
/// reliable stream (`57`, the contract's `id` = `seq`); else `<channel>:<seq>`
/// per stream, comma-separated (`alerts:57,sessions:12`), every stream of
/// the connection in each id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cursor {
    streams: Vec<(ChannelId, Box<str>, u64)>,
}

impl Cursor {
    /// Starts following `channel` (named `name`) at `seq`.
    pub fn follow(&mut self, channel: ChannelId, name: &str, seq: u64) {
        match self.streams.iter_mut().find(|(c, _, _)| *c == channel) {
            Some(entry) => entry.2 = seq,
            None => self.streams.push((channel, name.into(), seq)),
        }
    }

    /// `channel` was sent everything up to `seq`.
    pub fn advance(&mut self, channel: ChannelId, seq: u64) {
        if let Some(entry) = self.streams.iter_mut().find(|(c, _, _)| *c == channel) {
            entry.2 = seq;
        }
    }

    /// Appends `id: <cursor>` and the blank line that ends the event.
    pub fn write_id(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"id: ");
        match self.streams.as_slice() {
            [(_, _, seq)] => out.extend_from_slice(seq.to_string().as_bytes()),
            streams => {
                for (i, (_, name, seq)) in streams.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(name.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(seq.to_string().as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\n\n");
    }
}

/// What a `Last-Event-ID` written by [`Cursor::write_id`] says.
#[derive(Debug, PartialEq)]
pub enum Resume<'a> {
    /// The `seq` of the one reliable stream followed.
    Seq(u64),
    /// Each channel named and the `seq` it had reached.
    Channels(Vec<(&'a str, u64)>),
}

/// Reads a `Last-Event-ID` written by [`Cursor::write_id`].
pub fn parse_cursor(text: &str) -> Result<Resume<'_>, String> {
    if let Ok(seq) = text.trim().parse() {
        return Ok(Resume::Seq(seq));
    }
    let bad =
        || format!("Last-Event-ID {text:?} is not <seq> or <channel>:<seq>[,<channel>:<seq>...]");
    text.trim()
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (channel, seq) = part.rsplit_once(':').ok_or_else(bad)?;
            let seq = seq.parse().map_err(|_| bad())?;
            if channel.is_empty() {
                return Err(bad());
            }
            Ok((channel, seq))
        })
        .collect::<Result<_, _>>()
        .map(Resume::Channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_round_trips_through_last_event_id() {
        let mut cursor = Cursor::default();
        cursor.follow(ChannelId(5), "alerts", 41);
        cursor.follow(ChannelId(6), "sessions", 0);
        cursor.advance(ChannelId(5), 42);
        cursor.advance(ChannelId(9), 7);
        let mut out = Vec::new();
        cursor.write_id(&mut out);
        assert_eq!(out, b"id: alerts:42,sessions:0\n\n");
        let text = std::str::from_utf8(&out[4..out.len() - 2]).unwrap();
        let both = Resume::Channels(vec![("alerts", 42), ("sessions", 0)]);
        assert_eq!(parse_cursor(text), Ok(both));
        assert_eq!(parse_cursor(""), Ok(Resume::Channels(vec![])));

        let mut one = Cursor::default();
        one.follow(ChannelId(5), "alerts", 41);
        out.clear();
        one.write_id(&mut out);
        assert_eq!(out, b"id: 41\n\n", "one stream: the seq alone");
        assert_eq!(parse_cursor(" 41"), Ok(Resume::Seq(41)));
        for bad in ["alerts", "alerts:x", ":4", "alerts:-1", "-1"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_are_named_after_the_message_type() {
        let json = br#"{"channel":"prices","seq":3,"type":"price"}"#;
        assert_eq!(
            &message(json)[..],
            &b"event: price\ndata: {\"channel\":\"prices\",\"seq\":3,\"type\":\"price\"}\n\n"[..]
        );
        assert_eq!(
            &event_fields("alert", b"{}")[..],
            b"event: alert\ndata: {}\n"
        );
        assert_eq!(type_of(b"[1]"), "message");
        let closed = close(4008, "slow consumer");
        assert!(closed.starts_with(b"event: close\ndata: {"), "{closed:?}");
        assert!(closed.ends_with(b"\n\n"));
    }
}
