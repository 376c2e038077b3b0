//! `unsubscribe`: drops some symbols of a channel, or the whole channel.

use super::decode::Fields;
use super::ClientOp;
use crate::protocol::OpError;

/// Reads an `unsubscribe` op; without `symbols` it drops the whole channel.
pub(super) fn parse(id: u64, op: &Fields) -> Result<ClientOp, OpError> {
    Ok(ClientOp::Unsubscribe {
        id,
        channel: op.channel()?,
        symbols: op.names("symbols")?,
    })
}
