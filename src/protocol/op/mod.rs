//! Client ops: one file per op, and the decoding they share.
//!
//! [`parse_op`] decodes the JSON object once (`decode.rs`), reads the fields
//! every op has (`id`, `op`), then hands the object to that op's parser.

mod auth;
mod decode;
mod ping;
mod subscribe;
mod unsubscribe;

use crate::protocol::{ErrorCode, OpError};
use decode::Fields;
pub use subscribe::SubscribeOp;

/// A parsed client op.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientOp {
    /// Subscribe to (part of) a channel.
    Subscribe(SubscribeOp),
    /// Unsubscribe from some (or, with `None`, all) symbols or metrics of a channel.
    Unsubscribe {
        /// Client-chosen id echoed in the reply.
        id: u64,
        /// Channel name.
        channel: String,
        /// Symbols to drop; `None` drops the whole channel.
        symbols: Option<Vec<String>>,
        /// `metrics.*`: metrics to drop; `None` drops the whole subscription.
        metrics: Option<Vec<String>>,
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

/// Parses one op from a text message. The buffer is used as simd-json scratch;
/// `max_symbols` caps every list of names in the op.
pub fn parse_op(text: &mut [u8], max_symbols: usize) -> Result<ClientOp, OpError> {
    let obj = decode::object(text)?;
    let op = Fields::new(&obj, max_symbols)?;
    let name = op.text("op")?.ok_or_else(|| op.missing("op"))?;
    type Parse = fn(u64, &Fields) -> Result<ClientOp, OpError>;
    let (parse, fields): (Parse, &[&str]) = match name {
        "subscribe" => (subscribe::parse, subscribe::FIELDS),
        "unsubscribe" => (unsubscribe::parse, unsubscribe::FIELDS),
        "ping" => (ping::parse, &[]),
        "auth" => (auth::parse, auth::FIELDS),
        _ => {
            return Err(OpError::new(
                op.id,
                ErrorCode::UnknownOp,
                format!("unknown op {name:?}"),
            ))
        }
    };
    // Checked after the op name, so an unknown op without an id is `unknown_op`.
    let id = op.id.ok_or_else(|| op.missing("id"))?;
    op.only(fields)?;
    parse(id, &op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientOp, OpError> {
        parse_op(&mut s.as_bytes().to_vec(), 10)
    }

    #[test]
    fn refuses_repeated_keys_and_oversized_objects() {
        let members = |n: usize| -> String { (0..n).map(|i| format!(r#","k{i}":0"#)).collect() };
        // 32 distinct members pass the size check and reach the field check.
        let e = parse(&format!(r#"{{"op":"ping","id":1{}}}"#, members(30))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::UnknownField, "k0")
        );
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
                symbols: None,
                metrics: None,
            })
        );
        assert_eq!(
            parse(r#"{"op":"unsubscribe","id":8,"channel":"metrics.pnl","metrics":["a"]}"#),
            Ok(ClientOp::Unsubscribe {
                id: 8,
                channel: "metrics.pnl".into(),
                symbols: None,
                metrics: Some(vec!["a".into()]),
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
    fn a_member_outside_the_ops_fields_is_unknown_field() {
        for (text, field) in [
            (r#"{"op":"ping","id":1,"extra":true}"#, "extra"),
            (r#"{"op":"auth","id":1,"token":"x","sub":"u"}"#, "sub"),
            (
                r#"{"op":"unsubscribe","id":1,"channel":"prices","since":3}"#,
                "since",
            ),
            (
                r#"{"op":"subscribe","id":1,"channel":"prices","symbol":["A"]}"#,
                "symbol",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!((e.id, e.code), (Some(1), ErrorCode::UnknownField), "{text}");
            assert_eq!(e.message, field, "{text}");
        }
        let e = parse(r#"{"op":"dance","id":2,"extra":1}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOp);
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
}
