//! Carries out one client op and queues its reply.

use super::refresh::refresh_token;
use super::state::Session;
use super::subscribe::{subscribe, unsubscribe};
use super::{Rules, Streams};
use crate::clock;
use crate::frame::CloseCode;
use crate::protocol::{self, ClientOp, ErrorCode, OpError, SubscribeOp};
use std::time::Instant;

/// Parses `text` as a client op, applies the op rate limit, carries it out
/// and queues the reply (or the error) in the session's outbox.
pub fn handle_op(
    session: &mut Session,
    text: &mut [u8],
    now: Instant,
    streams: &mut Streams,
    rules: Rules<'_>,
) {
    let parsed = protocol::parse_op(text, rules.config.server.max_symbols_per_op);
    handle_parsed(session, parsed, now, streams, rules);
}

/// [`handle_op`] for an op already parsed (an SSE request's subscriptions
/// come parsed from its query): the same rate limit, the same replies.
pub fn handle_parsed(
    session: &mut Session,
    parsed: Result<ClientOp, OpError>,
    now: Instant,
    streams: &mut Streams,
    rules: Rules<'_>,
) {
    let cfg = &rules.config.server;
    if !session.ops.try_take(now) {
        session.refused_in_row += 1;
        let id = parsed.as_ref().ok().map(op_id);
        let outbox = session.outbox_mut();
        outbox.push_json(&OpError::new(id, ErrorCode::RateLimited, "too many ops").to_json());
        if session.refused_in_row >= cfg.rate_limit_close_after {
            session.outbox_mut().request_close(CloseCode::RATE_LIMITED);
        }
        return;
    }
    session.refused_in_row = 0;
    let reply = match parsed {
        Err(e) => Err(e),
        Ok(ClientOp::Ping { id }) => Ok(protocol::pong(id, clock::now_ms())),
        Ok(ClientOp::Auth { id, token }) => refresh_token(session, id, &token, streams, rules),
        Ok(ClientOp::Subscribe(op)) => subscribe(session, op, streams, rules),
        Ok(ClientOp::Unsubscribe {
            id,
            channel,
            symbols,
            metrics,
        }) => unsubscribe(
            session,
            id,
            &channel,
            (symbols.as_deref(), metrics.as_deref()),
            streams,
            rules,
        ),
    };
    let outbox = session.outbox_mut();
    match reply {
        Ok(json) => outbox.push_json(&json),
        Err(e) => outbox.push_json(&e.to_json()),
    }
}

fn op_id(op: &ClientOp) -> u64 {
    match op {
        ClientOp::Subscribe(SubscribeOp { id, .. })
        | ClientOp::Unsubscribe { id, .. }
        | ClientOp::Ping { id }
        | ClientOp::Auth { id, .. } => *id,
    }
}
