//! Why an input was refused: the error codes of PROTOCOL.md, shared by
//! client ops (`error` messages, ack refusals) and published events (the
//! `400` of `POST /v1/publish`).

use serde::{Serialize, Serializer};
use std::fmt;

/// Error codes of PROTOCOL.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The op is not valid JSON or a field has the wrong type.
    BadRequest,
    /// The `op` field names no known op.
    UnknownOp,
    /// An op carries a member that is not one of its fields.
    UnknownField,
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
    /// Every code, in declaration order (`code as usize` indexes it).
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownOp,
        ErrorCode::UnknownField,
        ErrorCode::UnknownChannel,
        ErrorCode::UnknownSymbol,
        ErrorCode::UnknownMetric,
        ErrorCode::Forbidden,
        ErrorCode::NotEntitled,
        ErrorCode::RateLimited,
        ErrorCode::TooManySubscriptions,
        ErrorCode::TokenExpired,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::UnknownField => "unknown_field",
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

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// By hand rather than derived, so `as_str` stays the one spelling of each code.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_indexed_by_the_discriminant() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, i, "{}", code.as_str());
        }
    }

    #[test]
    fn serializes_as_its_wire_spelling() {
        for code in [ErrorCode::BadRequest, ErrorCode::TooManySubscriptions] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.to_string(), code.as_str());
        }
    }
}
