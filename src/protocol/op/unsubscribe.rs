//! `unsubscribe`: drops some symbols of `prices`, some metrics of a
//! `metrics.*` subscription, or the whole channel.

use super::decode::Fields;
use super::ClientOp;
use crate::protocol::OpError;

/// The fields an `unsubscribe` may carry besides `op` and `id`.
pub(super) const FIELDS: &[&str] = &["channel", "symbols", "metrics"];

/// Reads an `unsubscribe` op; without `symbols` or `metrics` it drops the whole channel.
pub(super) fn parse(id: u64, op: &Fields) -> Result<ClientOp, OpError> {
    Ok(ClientOp::Unsubscribe {
        id,
        channel: op.channel()?,
        symbols: op.names("symbols")?,
        metrics: op.names("metrics")?,
    })
}
