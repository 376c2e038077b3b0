//! Client ops in and server messages out: the PROTOCOL.md contract.
//!
//! Ops are parsed with simd-json into [`ClientOp`]; every failure becomes an
//! [`OpError`] carrying the op's `id` (when it could be read) and a protocol
//! error code. Server messages are written as JSON bytes; the hot one, `price`,
//! is written by hand into a reused buffer.

use crate::model::quote::BestPrice;
use crate::model::symbol::Universe;
use serde::Serialize;
use simd_json::prelude::*;
use simd_json::BorrowedValue;
use std::io::Write;

pub use crate::model::channel::PRICES;

/// Error codes of PROTOCOL.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The op is not valid JSON or a field has the wrong type.
    BadRequest,
    /// The `op` field names no known op.
    UnknownOp,
    /// The `channel` field names no known channel.
    UnknownChannel,
    /// The symbol is not served by this node.
    UnknownSymbol,
    /// The metric is not part of the channel.
    UnknownMetric,
    /// The token's roles do not allow the channel.
    Forbidden,
    /// The tenant or the token's `symbols` claim does not cover the symbol.
    NotEntitled,
    /// The op exceeded the connection's op rate.
    RateLimited,
    /// The connection has reached its subscription limit.
    TooManySubscriptions,
    /// The token has expired.
    TokenExpired,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::UnknownChannel => "unknown_channel",
            ErrorCode::UnknownSymbol => "unknown_symbol",
            ErrorCode::UnknownMetric => "unknown_metric",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotEntitled => "not_entitled",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::TokenExpired => "token_expired",
        }
    }
}

/// An op the server could not carry out; sent back as an `error` message.
#[derive(Clone, Debug, PartialEq)]
pub struct OpError {
    /// The op's `id`, when it could be read.
    pub id: Option<u64>,
    /// Protocol error code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl OpError {
    /// An error for the op with `id`.
    pub fn new(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Self {
        OpError {
            id,
            code,
            message: message.into(),
        }
    }

    /// The `error` message bytes.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(&ErrorMsg {
            kind: "error",
            id: self.id,
            code: self.code.as_str(),
            message: Some(&self.message),
        })
    }
}

/// A `subscribe` op. Which fields apply depends on the channel's kind,
/// checked when it is carried out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscribeOp {
    /// Client-chosen id echoed in the reply.
    pub id: u64,
    /// Channel name.
    pub channel: String,
    /// `prices`: symbols to add.
    pub symbols: Option<Vec<String>>,
    /// `metrics.*`: metrics wanted (`None` = every metric of the channel).
    pub metrics: Option<Vec<String>>,
    /// `metrics.*`: `(dimension, value)` pairs an event must match.
    pub filters: Vec<(String, String)>,
    /// `metrics.*`: window size.
    pub window_ms: Option<u64>,
    /// `metrics.*`: aggregation (`sum`, `avg`, `min`, `max`, `last`, `count`, `delta`).
    pub agg: Option<String>,
    /// Reliable channels: the last `seq` the client has; replay what follows.
    pub since: Option<u64>,
}

/// A parsed client op.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientOp {
    /// Subscribe to (part of) a channel.
    Subscribe(SubscribeOp),
    /// Unsubscribe from some (or, with `None`, all) symbols of a channel.
    Unsubscribe {
        /// Client-chosen id echoed in the reply.
        id: u64,
        /// Channel name.
        channel: String,
        /// Symbols to drop; `None` drops the whole channel.
        symbols: Option<Vec<String>>,
    },
    /// Application-level ping.
    Ping {
        /// Client-chosen id echoed in the `pong`.
        id: u64,
    },
    /// Refresh the connection's token.
    Auth {
        /// Client-chosen id echoed in the reply.
        id: u64,
        /// The new JWT.
        token: String,
    },
}

/// Most members an op object may have (ops use five at most).
const MAX_OP_MEMBERS: usize = 32;

/// Parses one op from a text message. The buffer is used as simd-json scratch.
pub fn parse_op(text: &mut [u8], max_symbols: usize) -> Result<ClientOp, OpError> {
    let value = simd_json::to_borrowed_value(text)
        .map_err(|e| OpError::new(None, ErrorCode::BadRequest, format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(OpError::new(
            None,
            ErrorCode::BadRequest,
            "an op must be a JSON object",
        ));
    };
    // simd-json keeps repeated keys in objects of up to 32 members (a lookup
    // finds the first) and keeps the last in larger ones (found by the
    // op_decoder fuzz target): refuse both shapes so an op has one meaning.
    if obj.len() > MAX_OP_MEMBERS {
        return Err(OpError::new(
            None,
            ErrorCode::BadRequest,
            format!("an op has at most {MAX_OP_MEMBERS} members"),
        ));
    }
    if obj
        .keys()
        .enumerate()
        .any(|(i, k)| obj.keys().take(i).any(|seen| seen == k))
    {
        return Err(OpError::new(
            None,
            ErrorCode::BadRequest,
            "an op must not repeat a key",
        ));
    }
    let id = match obj.get("id") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            OpError::new(
                None,
                ErrorCode::BadRequest,
                "id must be an unsigned integer",
            )
        })?),
    };
    let bad = |msg: &str| OpError::new(id, ErrorCode::BadRequest, msg);
    let op = match obj.get("op") {
        Some(v) => v.as_str().ok_or_else(|| bad("op must be a string"))?,
        None => return Err(bad("missing field op")),
    };
    let known = matches!(op, "subscribe" | "unsubscribe" | "ping" | "auth");
    if !known {
        return Err(OpError::new(
            id,
            ErrorCode::UnknownOp,
            format!("unknown op {op:?}"),
        ));
    }
    let id = id.ok_or_else(|| bad("missing field id"))?;
    let channel = || -> Result<String, OpError> {
        match obj.get("channel") {
            Some(v) => Ok(v
                .as_str()
                .ok_or_else(|| bad("channel must be a string"))?
                .to_owned()),
            None => Err(bad("missing field channel")),
        }
    };
    let names = |field: &str, v: &BorrowedValue| -> Result<Vec<String>, OpError> {
        let not_list = || bad(&format!("{field} must be an array of strings"));
        let arr = v.as_array().ok_or_else(not_list)?;
        if arr.len() > max_symbols {
            return Err(bad(&format!("at most {max_symbols} {field} per op")));
        }
        arr.iter()
            .map(|s| s.as_str().map(str::to_owned).ok_or_else(not_list))
            .collect()
    };
    let symbols = |v: &BorrowedValue| names("symbols", v);
    let number = |field: &str| -> Result<Option<u64>, OpError> {
        obj.get(field)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| bad(&format!("{field} must be an unsigned integer")))
            })
            .transpose()
    };
    Ok(match op {
        "subscribe" => ClientOp::Subscribe(SubscribeOp {
            id,
            channel: channel()?,
            symbols: obj.get("symbols").map(symbols).transpose()?,
            metrics: obj
                .get("metrics")
                .map(|v| names("metrics", v))
                .transpose()?,
            filters: match obj.get("filters") {
                None => Vec::new(),
                Some(v) => filters(v).ok_or_else(|| {
                    bad("filters must be an object of at most 16 dimension: string pairs")
                })?,
            },
            window_ms: number("window_ms")?,
            agg: obj
                .get("agg")
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("agg must be a string"))
                })
                .transpose()?,
            since: number("since")?,
        }),
        "unsubscribe" => ClientOp::Unsubscribe {
            id,
            channel: channel()?,
            symbols: obj.get("symbols").map(symbols).transpose()?,
        },
        "ping" => ClientOp::Ping { id },
        _ => ClientOp::Auth {
            id,
            token: obj
                .get("token")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("token must be a string"))?
                .to_owned(),
        },
    })
}

/// Reads `filters`: an object of dimension → string, sorted by dimension.
fn filters(v: &BorrowedValue) -> Option<Vec<(String, String)>> {
    let obj = v.as_object()?;
    if obj.len() > crate::model::event::MAX_DIMS {
        return None;
    }
    let mut pairs = obj
        .iter()
        .map(|(k, v)| Some((k.to_string(), v.as_str()?.to_owned())))
        .collect::<Option<Vec<_>>>()?;
    pairs.sort();
    Some(pairs)
}

fn to_json<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(msg).unwrap_or_default()
}

#[derive(Serialize)]
struct ErrorMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The `welcome` message sent right after the upgrade.
#[derive(Serialize, Debug, Clone)]
pub struct Welcome<'a> {
    /// Connection id, `<shard>-<n>`.
    pub conn: &'a str,
    /// Shard that owns the connection.
    pub shard: usize,
    /// Server time, milliseconds UNIX.
    pub server_time: u64,
    /// When the token expires, milliseconds UNIX.
    pub session_expires: u64,
    /// Server ping interval.
    pub heartbeat_ms: u64,
    /// Most flushes per second this connection receives.
    pub max_rate_hz: u32,
}

impl Welcome<'_> {
    /// The message bytes.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Tagged<'a, 'b> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            body: &'b Welcome<'a>,
        }
        to_json(&Tagged {
            kind: "welcome",
            body: self,
        })
    }
}

/// A per-symbol refusal inside an `ack`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SymbolError {
    /// The symbol as the client named it.
    pub symbol: String,
    /// Why it was refused.
    pub code: &'static str,
}

/// The `ack` of a subscribe.
pub fn subscribe_ack(
    id: u64,
    channel: &str,
    subscribed: &[&str],
    errors: &[SymbolError],
) -> Vec<u8> {
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel,
        "subscribed": subscribed, "errors": errors,
    }))
}

/// The `ack` of a `metrics.*` subscribe: the metrics subscribed, those
/// refused, and the window it runs on.
pub fn metrics_ack(
    id: u64,
    channel: &str,
    subscribed: &[&str],
    unknown: &[&str],
    window_ms: u64,
    agg: &str,
) -> Vec<u8> {
    let errors: Vec<_> = unknown
        .iter()
        .map(|m| serde_json::json!({"metric": m, "code": ErrorCode::UnknownMetric.as_str()}))
        .collect();
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "subscribed": subscribed,
        "errors": errors, "window_ms": window_ms, "agg": agg,
    }))
}

/// The `ack` of a reliable-channel subscribe: whether the history covered
/// `since` (`recovered`) and the stream's last `seq` when it was made.
pub fn reliable_ack(
    id: u64,
    channel: &str,
    since: Option<u64>,
    recovered: bool,
    last_seq: u64,
) -> Vec<u8> {
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "subscribed": true,
        "since": since, "recovered": recovered, "last_seq": last_seq,
    }))
}

/// The `ack` of an unsubscribe.
pub fn unsubscribe_ack(id: u64, channel: &str, unsubscribed: &[&str]) -> Vec<u8> {
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "unsubscribed": unsubscribed,
    }))
}

/// The `ack` of a successful `auth` refresh.
pub fn auth_ack(id: u64, session_expires_ms: u64) -> Vec<u8> {
    #[derive(Serialize)]
    struct Ack {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        op: &'static str,
        session_expires: u64,
    }
    to_json(&Ack {
        kind: "ack",
        id,
        op: "auth",
        session_expires: session_expires_ms,
    })
}

/// The `pong` reply to a `ping` op.
pub fn pong(id: u64, server_time_ms: u64) -> Vec<u8> {
    #[derive(Serialize)]
    struct Pong {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        server_time: u64,
    }
    to_json(&Pong {
        kind: "pong",
        id,
        server_time: server_time_ms,
    })
}

/// `{"type":"error","code":"token_expired"}`, sent before close 4001.
pub fn token_expired() -> Vec<u8> {
    to_json(&ErrorMsg {
        kind: "error",
        id: None,
        code: ErrorCode::TokenExpired.as_str(),
        message: None,
    })
}

/// `status: lagging` with the number of values skipped while behind.
pub fn status_lagging(skipped: u64) -> Vec<u8> {
    format!(r#"{{"type":"status","state":"lagging","skipped":{skipped}}}"#).into_bytes()
}

/// `status: feed_stale`: no venue quote since `since_ms` (UNIX ms).
pub fn status_feed_stale(since_ms: u64) -> Vec<u8> {
    format!(r#"{{"type":"status","state":"feed_stale","since":{since_ms}}}"#).into_bytes()
}

/// `status: ok`, once a lagging connection has caught up or the feed is back.
pub fn status_ok() -> Vec<u8> {
    br#"{"type":"status","state":"ok"}"#.to_vec()
}

/// Writes a `snapshot` message around already-encoded price objects.
pub fn snapshot<'a>(channel: &str, objects: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"type":"snapshot","channel":""#);
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(br#"","data":["#);
    for (i, obj) in objects.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(obj);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Writes the `price` message of `p` into `out` (cleared first).
///
/// Hand-written because it runs once per value per shard on the hot path.
/// `mid` and `spread` are rounded to one more and the same number of decimals
/// as the quotes, so float noise such as `0.00019999999999997797` never
/// reaches a terminal.
pub fn write_price(p: &BestPrice, universe: &Universe, out: &mut Vec<u8>) {
    out.clear();
    let bid_src = universe.venue_name(p.bid_venue);
    let ask_src = universe.venue_name(p.ask_venue);
    out.extend_from_slice(br#"{"type":"price","symbol":""#);
    out.extend_from_slice(universe.symbol_name(p.symbol).as_bytes());
    let _ = write!(out, r#"","seq":{},"bid":"#, p.seq);
    let bid_decimals = write_number(out, p.bid);
    out.extend_from_slice(br#","bid_size":"#);
    write_number(out, p.bid_size);
    let _ = write!(out, r#","bid_src":"{bid_src}","ask":"#);
    let ask_decimals = write_number(out, p.ask);
    out.extend_from_slice(br#","ask_size":"#);
    write_number(out, p.ask_size);
    let decimals = bid_decimals.max(ask_decimals).min(12);
    let spread = p.ask - p.bid;
    let mid = (p.bid + p.ask) / 2.0;
    let spread_bps = if mid != 0.0 {
        spread / mid * 10_000.0
    } else {
        0.0
    };
    let _ = write!(
        out,
        r#","ask_src":"{ask_src}","mid":{mid:.mp$},"spread":{spread:.sp$},"spread_bps":{spread_bps:.4},"ts":{}}}"#,
        p.ts_us,
        mp = decimals + 1,
        sp = decimals,
    );
}

/// Writes the shortest representation of `v` (integral values without a
/// fraction; a non-finite value as `null`) and returns its number of decimals.
pub fn write_number(out: &mut Vec<u8>, v: f64) -> usize {
    let start = out.len();
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        // Never produced by the aggregator; keep the JSON valid regardless.
        out.extend_from_slice(b"null");
    }
    let written = &out[start..];
    written
        .iter()
        .position(|&b| b == b'.')
        .map_or(0, |dot| written.len() - dot - 1)
}

/// Current time in milliseconds since the UNIX epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::symbol::{SymbolId, VenueId};

    fn parse(s: &str) -> Result<ClientOp, OpError> {
        parse_op(&mut s.as_bytes().to_vec(), 10)
    }

    #[test]
    fn refuses_repeated_keys_and_oversized_objects() {
        let members = |n: usize| -> String { (0..n).map(|i| format!(r#","k{i}":0"#)).collect() };
        assert!(parse(&format!(r#"{{"op":"ping","id":1{}}}"#, members(30))).is_ok());
        for text in [
            r#"{"op":"ping","id":1,"id":2}"#.to_string(),
            format!(r#"{{"op":"ping","id":1{},"id":2}}"#, members(20)),
            format!(r#"{{"op":"ping","id":1{},"id":2}}"#, members(40)),
            format!(r#"{{"op":"ping","id":1{}}}"#, members(31)),
        ] {
            assert_eq!(
                parse(&text).unwrap_err().code,
                ErrorCode::BadRequest,
                "{text}"
            );
        }
    }

    #[test]
    fn parses_every_op() {
        assert_eq!(
            parse(r#"{"op":"subscribe","id":1,"channel":"prices","symbols":["EURUSD"]}"#),
            Ok(ClientOp::Subscribe(SubscribeOp {
                id: 1,
                channel: "prices".into(),
                symbols: Some(vec!["EURUSD".into()]),
                ..SubscribeOp::default()
            }))
        );
        assert_eq!(
            parse(
                r#"{"op":"subscribe","id":2,"channel":"metrics.trading","metrics":["trade_count"],
                "filters":{"desk":"D","book":"FX1"},"window_ms":1000,"agg":"sum"}"#
            ),
            Ok(ClientOp::Subscribe(SubscribeOp {
                id: 2,
                channel: "metrics.trading".into(),
                metrics: Some(vec!["trade_count".into()]),
                filters: vec![("book".into(), "FX1".into()), ("desk".into(), "D".into())],
                window_ms: Some(1000),
                agg: Some("sum".into()),
                ..SubscribeOp::default()
            }))
        );
        assert_eq!(
            parse(r#"{"op":"subscribe","id":3,"channel":"alerts","since":41}"#),
            Ok(ClientOp::Subscribe(SubscribeOp {
                id: 3,
                channel: "alerts".into(),
                since: Some(41),
                ..SubscribeOp::default()
            }))
        );
        assert_eq!(
            parse(r#"{"op":"unsubscribe","id":4,"channel":"prices"}"#),
            Ok(ClientOp::Unsubscribe {
                id: 4,
                channel: "prices".into(),
                symbols: None
            })
        );
        assert_eq!(
            parse(r#"{"op":"ping","id":6}"#),
            Ok(ClientOp::Ping { id: 6 })
        );
        assert_eq!(
            parse(r#"{"op":"auth","id":7,"token":"x"}"#),
            Ok(ClientOp::Auth {
                id: 7,
                token: "x".into()
            })
        );
    }

    #[test]
    fn errors_carry_id_and_code() {
        let e = parse("not json").unwrap_err();
        assert_eq!((e.id, e.code), (None, ErrorCode::BadRequest));
        let e = parse(r#"{"op":"dance","id":3}"#).unwrap_err();
        assert_eq!((e.id, e.code), (Some(3), ErrorCode::UnknownOp));
        let e = parse(r#"{"op":"subscribe","id":2,"channel":"prices","symbols":"EURUSD"}"#)
            .unwrap_err();
        assert_eq!((e.id, e.code), (Some(2), ErrorCode::BadRequest));
        assert_eq!(e.message, "symbols must be an array of strings");
        let e = parse(r#"{"op":"subscribe","id":2,"channel":"prices","symbols":[1]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let too_many = format!(
            r#"{{"op":"subscribe","id":9,"channel":"prices","symbols":[{}]}}"#,
            [r#""A""#; 11].join(",")
        );
        assert_eq!(parse(&too_many).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(parse(r#"{"op":"ping","id":-1}"#).unwrap_err().id, None);
        assert_eq!(parse("[]").unwrap_err().code, ErrorCode::BadRequest);
        for bad in [
            r#"{"op":"subscribe","id":1,"channel":"alerts","since":-1}"#,
            r#"{"op":"subscribe","id":1,"channel":"metrics.pnl","filters":{"book":1}}"#,
            r#"{"op":"subscribe","id":1,"channel":"metrics.pnl","filters":[]}"#,
            r#"{"op":"subscribe","id":1,"channel":"metrics.pnl","agg":5}"#,
            r#"{"op":"subscribe","id":1,"channel":"metrics.pnl","metrics":"total_pnl"}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.id, e.code), (Some(1), ErrorCode::BadRequest), "{bad}");
        }
    }

    #[test]
    fn price_json_is_valid_and_rounded() {
        let u = Universe::new(vec!["EURUSD".into()], vec!["LP1".into(), "LP2".into()]);
        let p = BestPrice {
            symbol: SymbolId(0),
            seq: 7,
            ts_us: 1_763_769_600_123_456,
            bid: 1.0841,
            bid_size: 1_000_000.0,
            bid_venue: VenueId(1),
            ask: 1.0843,
            ask_size: 500_000.0,
            ask_venue: VenueId(0),
        };
        let mut out = Vec::new();
        write_price(&p, &u, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "price");
        assert_eq!(v["symbol"], "EURUSD");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["bid_src"], "LP2");
        assert_eq!(v["ask_src"], "LP1");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""mid":1.08420,"spread":0.0002,"#), "{text}");
        assert_eq!(v["ts"], 1_763_769_600_123_456u64);
    }
}
