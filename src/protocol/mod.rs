//! Client ops in and server messages out: the PROTOCOL.md contract.
//!
//! | file | owns |
//! | --- | --- |
//! | `op/` | [`parse_op`]: one parser per client op, sharing one simd-json decode |
//! | `message.rs` | server messages: welcome, acks, pong, `error`, status, snapshot |
//! | `price.rs` | the hot `price` message, written by hand into a reused buffer |
//! | `error.rs` | [`OpError`]; its [`ErrorCode`] lives in `model`, shared with published events |
//!
//! Every op failure becomes an [`OpError`] carrying the op's `id` (when it
//! could be read) and an [`ErrorCode`]; it is sent back as an `error` message.

mod error;
mod message;
mod op;
mod price;

pub use crate::model::channel::PRICES;
pub use crate::model::error::ErrorCode;
pub use error::OpError;
pub use message::{
    auth_ack, ended_error, keyed_ack, metrics_ack, metrics_unsubscribe_ack, pong, reliable_ack,
    snapshot, status_feed_stale, status_lagging, status_ok, subscribe_ack, token_expired,
    unsubscribe_ack, Ended, StreamStart, SymbolError, Welcome,
};
pub use op::{parse_op, ClientOp, SubscribeOp};
pub use price::{write_number, write_price};
