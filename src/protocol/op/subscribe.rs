//! `subscribe`: one shape for every channel kind; which fields apply is
//! checked when the op is carried out, against the channel.

use super::decode::Fields;
use super::ClientOp;
use crate::model::filter::{DataFilter, Scalar, MAX_FILTER_FIELDS, MAX_FILTER_VALUES};
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
    /// Keyed channels: keys or `PREFIX*` patterns (`None` = every key).
    pub keys: Option<Vec<String>>,
    /// `metrics.*`: metrics wanted (`None` = every metric of the channel).
    pub metrics: Option<Vec<String>>,
    /// `metrics.*`: `(dimension, value)` pairs an event must match.
    pub filters: Vec<(String, String)>,
    /// `metrics.*`: window size.
    pub window_ms: Option<u64>,
    /// `metrics.*`: a calendar period (`day`, `hour`, `session`) of running
    /// totals instead of tumbling windows.
    pub window: Option<String>,
    /// `metrics.*`: aggregation (`sum`, `avg`, `min`, `max`, `last`, `count`, `delta`).
    pub agg: Option<String>,
    /// Reliable channels: the last `seq` the client has; replay what follows.
    pub since: Option<u64>,
    /// Tenant-wide reliable channels: the last `seq` the client has of the
    /// broadcast stream (`tenant: "*"`); replay what follows.
    pub broadcast_since: Option<u64>,
    /// Reliable channels: only messages whose `data` fields match.
    pub filter: Option<DataFilter>,
}

/// The fields a `subscribe` may carry besides `op` and `id`.
pub(super) const FIELDS: &[&str] = &[
    "channel",
    "symbols",
    "metrics",
    "filters",
    "window_ms",
    "window",
    "agg",
    "since",
    "broadcast_since",
    "filter",
    "keys",
];

/// Reads a `subscribe` op; fields are read in order and the first bad one is reported.
pub(super) fn parse(id: u64, op: &Fields) -> Result<ClientOp, OpError> {
    Ok(ClientOp::Subscribe(SubscribeOp {
        id,
        channel: op.channel()?,
        symbols: op.names("symbols")?,
        keys: op.names("keys")?,
        metrics: op.names("metrics")?,
        filters: match op.get("filters") {
            None => Vec::new(),
            Some(v) => filters(v).ok_or_else(|| {
                op.bad("filters must be an object of at most 16 dimension: string pairs")
            })?,
        },
        window_ms: op.number("window_ms")?,
        window: op.text("window")?.map(str::to_owned),
        agg: op.text("agg")?.map(str::to_owned),
        since: op.number("since")?,
        broadcast_since: op.number("broadcast_since")?,
        filter: match op.get("filter") {
            None => None,
            Some(v) => Some(data_filter(v).ok_or_else(|| {
                op.bad(format!(
                    "filter must be an object of 1..={MAX_FILTER_FIELDS} fields, each a string, \
                     number or boolean or a non-empty array of at most {MAX_FILTER_VALUES} of them"
                ))
            })?),
        },
    }))
}

/// Reads `filter`: field → a scalar or a set of scalars, sorted by field.
fn data_filter(v: &Value) -> Option<DataFilter> {
    let obj = v.as_object()?;
    if obj.is_empty() || obj.len() > MAX_FILTER_FIELDS {
        return None;
    }
    let mut fields = obj
        .iter()
        .map(|(k, v)| {
            let values = match v.as_array() {
                Some(arr) if !arr.is_empty() && arr.len() <= MAX_FILTER_VALUES => {
                    arr.iter().map(scalar).collect::<Option<Vec<_>>>()?
                }
                Some(_) => return None,
                None => vec![scalar(v)?],
            };
            Some((k.to_string(), values))
        })
        .collect::<Option<Vec<_>>>()?;
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Some(DataFilter { fields })
}

fn scalar(v: &Value) -> Option<Scalar> {
    if let Some(s) = v.as_str() {
        Some(Scalar::Text(s.to_owned()))
    } else if let Some(b) = v.as_bool() {
        Some(Scalar::Bool(b))
    } else {
        v.cast_f64().filter(|x| x.is_finite()).map(Scalar::Number)
    }
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
