//! Server messages other than live values: welcome, acks, pong, errors,
//! status and snapshots, each the JSON bytes of one text frame. They go to one
//! connection, off the fan-out path, so most are plain serde; the hot `price`
//! message is in `price.rs`.

use super::ErrorCode;
use serde::Serialize;

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
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The `error` message; `id` and `message` are left out when absent.
pub(super) fn error(id: Option<u64>, code: ErrorCode, message: Option<&str>) -> Vec<u8> {
    to_json(&ErrorMsg {
        kind: "error",
        id,
        code,
        message,
    })
}

/// `{"type":"error","code":"token_expired"}`, sent before close 4001.
pub fn token_expired() -> Vec<u8> {
    error(None, ErrorCode::TokenExpired, None)
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
    pub code: ErrorCode,
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

/// The `ack` of a keyed-channel subscribe: the keys (or patterns) taken
/// and those refused as outside the token's roles.
pub fn keyed_ack(id: u64, channel: &str, keys: &[&str], not_entitled: &[&str]) -> Vec<u8> {
    let errors: Vec<_> = not_entitled
        .iter()
        .map(|k| serde_json::json!({"key": k, "code": ErrorCode::NotEntitled}))
        .collect();
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "subscribed": keys, "errors": errors,
    }))
}

/// The `ack` of a `metrics.*` subscribe: the metrics subscribed, those
/// refused, and the window (`("window_ms", ms)` or `("window", period)`)
/// it runs on.
pub fn metrics_ack(
    id: u64,
    channel: &str,
    subscribed: &[&str],
    unknown: &[&str],
    window: (&str, serde_json::Value),
    agg: &str,
) -> Vec<u8> {
    let errors: Vec<_> = unknown
        .iter()
        .map(|m| serde_json::json!({"metric": m, "code": ErrorCode::UnknownMetric}))
        .collect();
    let mut ack = serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "subscribed": subscribed,
        "errors": errors, "agg": agg,
    });
    // `window_ms` for tumbling windows, `window` for calendar periods.
    ack[window.0] = window.1;
    to_json(&ack)
}

/// Where a subscription to one reliable stream starts.
#[derive(Clone, Copy, Debug)]
pub struct StreamStart {
    /// The `since` the client gave.
    pub since: Option<u64>,
    /// Whether the replay is complete (else a snapshot follows).
    pub recovered: bool,
    /// The stream's last `seq` at the subscribe.
    pub last_seq: u64,
}

/// The `ack` of a reliable-channel subscribe: where the tenant's (or
/// user's) stream starts, and the broadcast stream's for tenant-wide
/// channels; `filtered` when a filter leaves gaps in `seq`.
pub fn reliable_ack(
    id: u64,
    channel: &str,
    own: StreamStart,
    broadcast: Option<StreamStart>,
    filtered: bool,
) -> Vec<u8> {
    let mut ack = serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "subscribed": true,
        "since": own.since, "recovered": own.recovered, "last_seq": own.last_seq,
    });
    if let Some(b) = broadcast {
        ack["broadcast"] = serde_json::json!({
            "since": b.since, "recovered": b.recovered, "last_seq": b.last_seq,
        });
    }
    if filtered {
        // `seq` stays the stream's: the client's gap check must know the
        // jumps are messages its filter left out, not losses.
        ack["filtered"] = true.into();
    }
    to_json(&ack)
}

/// The `ack` of an unsubscribe.
pub fn unsubscribe_ack(id: u64, channel: &str, unsubscribed: &[&str]) -> Vec<u8> {
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel, "unsubscribed": unsubscribed,
    }))
}

/// The `ack` of a `metrics.*` unsubscribe: the metrics dropped and those
/// the subscription still holds.
pub fn metrics_unsubscribe_ack(
    id: u64,
    channel: &str,
    unsubscribed: &[&str],
    remaining: &[&str],
) -> Vec<u8> {
    to_json(&serde_json::json!({
        "type": "ack", "id": id, "channel": channel,
        "unsubscribed": unsubscribed, "remaining": remaining,
    }))
}

/// A subscription an `auth` refresh ended: the whole `channel`
/// (`forbidden`), or some `prices` `symbols` (`not_entitled`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Ended {
    /// The channel.
    pub channel: String,
    /// Why: `forbidden` (roles) or `not_entitled` (symbols).
    pub code: ErrorCode,
    /// The symbols ended, when not the whole channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
}

/// The `error` (without `id`) that tells a client a refresh ended `what`.
pub fn ended_error(what: &Ended, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Msg<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        what: &'a Ended,
        message: &'a str,
    }
    to_json(&Msg {
        kind: "error",
        what,
        message,
    })
}

/// The `ack` of a successful `auth` refresh, with what it `ended`.
pub fn auth_ack(id: u64, session_expires_ms: u64, ended: &[Ended]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Ack<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        op: &'static str,
        session_expires: u64,
        ended: &'a [Ended],
    }
    to_json(&Ack {
        kind: "ack",
        id,
        op: "auth",
        session_expires: session_expires_ms,
        ended,
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
