//! The error an op gets back.

use crate::model::error::ErrorCode;

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
        super::message::error(self.id, self.code, Some(&self.message))
    }
}
