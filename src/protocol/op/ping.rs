//! `ping`: the application-level ping, answered with a `pong`.

use super::decode::Fields;
use super::ClientOp;
use crate::protocol::OpError;

/// Reads a `ping` op: nothing but its `id`.
pub(super) fn parse(id: u64, _op: &Fields) -> Result<ClientOp, OpError> {
    Ok(ClientOp::Ping { id })
}
