//! `subscribe`: one shape for every channel kind; which fields apply is
//! checked when the op is carried out, against the channel.

use super::decode::Fields;
use super::ClientOp;
use crate::protocol::OpError;
use simd_json::borrowed::Value;
use simd_json::prelude::*;

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

/// The fields a `subscribe` may carry besides `op` and `id`.
pub(super) const FIELDS: &[&str] = &[
    "channel",
    "symbols",
    "metrics",
    "filters",
    "window_ms",
    "agg",
    "since",
];

/// Reads a `subscribe` op; fields are read in order and the first bad one is reported.
pub(super) fn parse(id: u64, op: &Fields) -> Result<ClientOp, OpError> {
    Ok(ClientOp::Subscribe(SubscribeOp {
        id,
        channel: op.channel()?,
        symbols: op.names("symbols")?,
        metrics: op.names("metrics")?,
        filters: match op.get("filters") {
            None => Vec::new(),
            Some(v) => filters(v).ok_or_else(|| {
                op.bad("filters must be an object of at most 16 dimension: string pairs")
            })?,
        },
        window_ms: op.number("window_ms")?,
        agg: op.text("agg")?.map(str::to_owned),
        since: op.number("since")?,
    }))
}

/// Reads `filters`: an object of dimension → string, sorted by dimension.
fn filters(v: &Value) -> Option<Vec<(String, String)>> {
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
