//! Carries out one client op and queues its reply.

use super::refresh::refresh_token;
use super::state::Session;
use super::subscribe::{subscribe, unsubscribe};
use super::{Rules, Streams};
use crate::clock;
use crate::frame::CloseCode;
use crate::protocol::{self, ClientOp, ErrorCode, OpError, SubscribeOp};
use std::time::Instant;

/// What a client op was, for counting (`invalid`: it did not parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `auth` (token refresh).
    Auth,
    /// `ping`.
    Ping,
    /// Not a valid op.
    Invalid,
}

impl OpKind {
    /// Every kind, in label order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Subscribe,
        OpKind::Unsubscribe,
        OpKind::Auth,
        OpKind::Ping,
        OpKind::Invalid,
    ];

    /// The `op` label.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Subscribe => "subscribe",
            OpKind::Unsubscribe => "unsubscribe",
            OpKind::Auth => "auth",
            OpKind::Ping => "ping",
            OpKind::Invalid => "invalid",
        }
    }
}

/// How one op ended: its kind, and the error code it was refused with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpOutcome {
    /// What the op was.
    pub op: OpKind,
    /// `None` when it succeeded.
    pub error: Option<ErrorCode>,
}

/// Parses `text` as a client op, applies the op rate limit, carries it out
/// and queues the reply (or the error) in the session's outbox; says what
/// the op was and how it ended.
pub fn handle_op(
    session: &mut Session,
    text: &mut [u8],
    now: Instant,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> OpOutcome {
    let parsed = protocol::parse_op(text, rules.config.server.max_symbols_per_op);
    handle_parsed(session, parsed, now, streams, rules)
}

/// [`handle_op`] for an op already parsed (an SSE request's subscriptions
/// come parsed from its query): the same rate limit, the same replies.
pub fn handle_parsed(
    session: &mut Session,
    parsed: Result<ClientOp, OpError>,
    now: Instant,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> OpOutcome {
    let cfg = &rules.config.server;
    let op = parsed.as_ref().map_or(OpKind::Invalid, op_kind);
    if !session.ops.try_take(now) {
        session.refused_in_row += 1;
        let id = parsed.as_ref().ok().map(op_id);
        let outbox = session.outbox_mut();
        outbox.push_json(&OpError::new(id, ErrorCode::RateLimited, "too many ops").to_json());
        if session.refused_in_row >= cfg.rate_limit_close_after && !session.outbox().is_closing() {
            let claims = session.claims();
            tracing::warn!(
                event = "rate_limited",
                tenant = claims.tenant,
                sub = claims.sub,
                refused_in_row = session.refused_in_row,
                "closing a client that keeps exceeding its op rate (4029)"
            );
            session.outbox_mut().request_close(CloseCode::RATE_LIMITED);
        }
        return OpOutcome {
            op,
            error: Some(ErrorCode::RateLimited),
        };
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
    let error = match reply {
        Ok(json) => {
            outbox.push_json(&json);
            None
        }
        Err(e) => {
            outbox.push_json(&e.to_json());
            Some(e.code)
        }
    };
    OpOutcome { op, error }
}

fn op_id(op: &ClientOp) -> u64 {
    match op {
        ClientOp::Subscribe(SubscribeOp { id, .. })
        | ClientOp::Unsubscribe { id, .. }
        | ClientOp::Ping { id }
        | ClientOp::Auth { id, .. } => *id,
    }
}

fn op_kind(op: &ClientOp) -> OpKind {
    match op {
        ClientOp::Subscribe(_) => OpKind::Subscribe,
        ClientOp::Unsubscribe { .. } => OpKind::Unsubscribe,
        ClientOp::Ping { .. } => OpKind::Ping,
        ClientOp::Auth { .. } => OpKind::Auth,
    }
}
