//! `auth`: refreshes the connection's token before it expires.

use super::decode::Fields;
use super::ClientOp;
use crate::protocol::OpError;
use simd_json::prelude::*;

/// The fields an `auth` op carries besides `op` and `id`.
pub(super) const FIELDS: &[&str] = &["token"];

/// Reads an `auth` op: the new JWT in `token`.
pub(super) fn parse(id: u64, op: &Fields) -> Result<ClientOp, OpError> {
    let token = op
        .get("token")
        .and_then(|v| v.as_str())
        .ok_or_else(|| op.bad("token must be a string"))?;
    Ok(ClientOp::Auth {
        id,
        token: token.to_owned(),
    })
}
