//! Server messages as Rust types (see docs/PROTOCOL.md of quotecast).

use serde::Deserialize;
use serde_json::Value;

/// The first message of every connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Welcome {
    /// Connection id, `<shard>-<n>`.
    pub conn: String,
    /// The shard serving it.
    pub shard: u32,
    /// Server clock, UNIX ms.
    pub server_time: u64,
    /// When the token (and so the session) expires, UNIX ms.
    pub session_expires: u64,
    /// Server ping interval.
    pub heartbeat_ms: u64,
    /// Most flushes per second this connection gets.
    pub max_rate_hz: u32,
}

/// A best bid/ask of one symbol.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Price {
    /// Symbol, e.g. `EURUSD`.
    pub symbol: String,
    /// Per-symbol sequence; a jump means conflated values were skipped.
    pub seq: u64,
    /// Best bid.
    pub bid: f64,
    /// Size at the best bid.
    pub bid_size: f64,
    /// Venue of the best bid.
    pub bid_src: String,
    /// Best ask.
    pub ask: f64,
    /// Size at the best ask.
    pub ask_size: f64,
    /// Venue of the best ask.
    pub ask_src: String,
    /// Mid price.
    pub mid: f64,
    /// Ask minus bid.
    pub spread: f64,
    /// Spread in basis points of the mid.
    pub spread_bps: f64,
    /// When the aggregator published it, UNIX µs.
    pub ts: u64,
}

/// A message of a reliable channel (`alerts`, `sessions`, `notifications`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reliable {
    /// `alert`, `session` or `notification`.
    pub kind: String,
    /// The channel.
    pub channel: String,
    /// Per-stream sequence, without gaps.
    pub seq: u64,
    /// The whole message (its data fields, `ts`, ...).
    pub body: Value,
}

/// Anything the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// See [`Welcome`].
    Welcome(Welcome),
    /// A live price.
    Price(Price),
    /// The current values of a new subscription, before its live values.
    Snapshot {
        /// The channel.
        channel: String,
        /// One object per stream that has a value.
        data: Vec<Value>,
    },
    /// A metrics window update.
    Metrics(Value),
    /// A reliable channel's message.
    Reliable(Reliable),
    /// The answer to an op with this `id`.
    Ack {
        /// The op's id.
        id: u64,
        /// The whole ack.
        body: Value,
    },
    /// A refused op (or input the server could not read).
    Error {
        /// The op's id, when it could be read.
        id: Option<u64>,
        /// Protocol error code, e.g. `rate_limited`.
        code: String,
        /// Detail.
        message: String,
    },
    /// The answer to a `ping` op.
    Pong {
        /// The op's id.
        id: u64,
        /// Server clock, UNIX ms.
        server_time: u64,
    },
    /// The connection's or the feed's health: `lagging`, `ok`, `feed_stale`.
    Status {
        /// The state.
        state: String,
        /// The whole message (`skipped`, `since`).
        body: Value,
    },
    /// A message type this client does not know (a newer server).
    Other(Value),
}

/// Why a text frame is not a server message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Deserializes a message whose fields this client types.
fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ParseError> {
    serde_json::from_value(v).map_err(|e| ParseError(e.to_string()))
}

impl ServerMessage {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<ServerMessage, ParseError> {
        let v: Value = serde_json::from_str(text).map_err(|e| ParseError(e.to_string()))?;
        let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok(match v["type"].as_str().unwrap_or_default() {
            "welcome" => ServerMessage::Welcome(typed(v)?),
            "price" => ServerMessage::Price(typed(v)?),
            "snapshot" => ServerMessage::Snapshot {
                channel: str_of(&v, "channel"),
                data: v["data"].as_array().cloned().unwrap_or_default(),
            },
            "metrics" => ServerMessage::Metrics(v),
            "alert" | "session" | "notification" => ServerMessage::Reliable(Reliable {
                kind: str_of(&v, "type"),
                channel: str_of(&v, "channel"),
                seq: v["seq"]
                    .as_u64()
                    .ok_or_else(|| ParseError("no seq".into()))?,
                body: v,
            }),
            "ack" => ServerMessage::Ack {
                id: v["id"].as_u64().unwrap_or_default(),
                body: v,
            },
            "error" => ServerMessage::Error {
                id: v["id"].as_u64(),
                code: str_of(&v, "code"),
                message: str_of(&v, "message"),
            },
            "pong" => ServerMessage::Pong {
                id: v["id"].as_u64().unwrap_or_default(),
                server_time: v["server_time"].as_u64().unwrap_or_default(),
            },
            "status" => ServerMessage::Status {
                state: str_of(&v, "state"),
                body: v,
            },
            _ => ServerMessage::Other(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let p = ServerMessage::parse(
            r#"{"type":"price","symbol":"EURUSD","seq":9,"bid":1.1,"bid_size":1e6,"bid_src":"LP2",
               "ask":1.2,"ask_size":5e5,"ask_src":"LP1","mid":1.15,"spread":0.1,"spread_bps":869.5,"ts":17}"#,
        )
        .unwrap();
        assert!(matches!(p, ServerMessage::Price(Price { seq: 9, .. })));
        let a =
            ServerMessage::parse(r#"{"type":"alert","channel":"alerts","seq":4,"level":"info"}"#)
                .unwrap();
        assert!(matches!(&a, ServerMessage::Reliable(r) if r.seq == 4 && r.channel == "alerts"));
        let e =
            ServerMessage::parse(r#"{"type":"error","code":"bad_request","message":"x"}"#).unwrap();
        assert!(matches!(e, ServerMessage::Error { id: None, .. }));
        assert!(matches!(
            ServerMessage::parse(r#"{"type":"future"}"#).unwrap(),
            ServerMessage::Other(_)
        ));
        assert!(ServerMessage::parse("not json").is_err());
        assert!(ServerMessage::parse(r#"{"type":"alert","channel":"alerts"}"#).is_err());
    }
}
