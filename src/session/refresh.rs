//! `auth`: a refreshed token extends the session and re-checks what it may
//! keep. Subscriptions the new roles or `symbols` no longer allow end, each
//! told with an `error`, and the ack lists them.

use super::state::Session;
use super::subscribe::unsubscribe;
use super::{Rules, Streams};
use crate::auth::{AuthError, Claims};
use crate::fanout::latest::{StreamId, StreamKind};
use crate::model::channel::SYSTEM;
use crate::protocol::{self, Ended, ErrorCode, OpError, PRICES};

/// `auth`: a new token for the same `sub` and tenant replaces the session's
/// claims; what they no longer allow is ended first.
pub(super) fn refresh_token(
    session: &mut Session,
    id: u64,
    token: &str,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Result<Vec<u8>, OpError> {
    let claims = rules.verifier.verify_now(token).map_err(|e| {
        let code = match e {
            AuthError::TokenExpired => ErrorCode::TokenExpired,
            _ => ErrorCode::BadRequest,
        };
        OpError::new(Some(id), code, format!("token refused: {}", e.reason()))
    })?;
    let current = session.claims();
    if claims.sub != current.sub || claims.tenant != current.tenant {
        return Err(OpError::new(
            Some(id),
            ErrorCode::Forbidden,
            "a refreshed token must have the same sub and tenant",
        ));
    }
    // Ended while the old claims are in place, which admit every channel held.
    let mut ended = Vec::new();
    for channel in forbidden_channels(session, &claims, streams, rules) {
        unsubscribe(session, id, &channel, (None, None), streams, rules)?;
        let what = Ended {
            channel,
            code: ErrorCode::Forbidden,
            symbols: None,
        };
        let message = format!("the refreshed token's roles do not allow {}", what.channel);
        session
            .outbox_mut()
            .push_json(&protocol::ended_error(&what, &message));
        ended.push(what);
    }
    let allowed = rules.entitlements.allowed(&claims, rules.universe);
    let exp = session.refresh(claims, allowed);
    let lost: Vec<String> = session
        .outbox()
        .subs()
        .streams()
        .filter(|s| s.kind() == StreamKind::Price)
        .filter_map(|s| s.symbol())
        .filter(|&symbol| !session.may_see(symbol))
        .map(|symbol| rules.universe.symbol_name(symbol).to_owned())
        .collect();
    if !lost.is_empty() {
        unsubscribe(session, id, PRICES, (Some(&lost), None), streams, rules)?;
        let what = Ended {
            channel: PRICES.to_owned(),
            code: ErrorCode::NotEntitled,
            symbols: Some(lost),
        };
        let message = "the refreshed token is not entitled to these symbols";
        session
            .outbox_mut()
            .push_json(&protocol::ended_error(&what, message));
        ended.push(what);
    }
    Ok(protocol::auth_ack(id, exp.saturating_mul(1000), &ended))
}

/// The channels the session holds that `claims` may not subscribe to, by name.
fn forbidden_channels(
    session: &Session,
    claims: &Claims,
    streams: &Streams,
    rules: Rules<'_>,
) -> Vec<String> {
    let catalogue = rules.catalogue;
    let prices = session
        .outbox()
        .subs()
        .any(|s| s.kind() == StreamKind::Price)
        .then(|| catalogue.find(PRICES).map(|(id, _)| id))
        .flatten();
    let system = session
        .outbox()
        .subs()
        .contains(StreamId::system())
        .then(|| catalogue.find(SYSTEM).map(|(id, _)| id))
        .flatten();
    let metrics = session.metric_subs.iter().map(|m| m.spec.channel);
    let reliable = session.reliable_subs.iter().map(|r| r.channel);
    let tenant = session.claims().tenant.as_str();
    let keyed = streams.keyed.watched_by(tenant, session.key().index);
    let mut held: Vec<_> = prices
        .into_iter()
        .chain(metrics)
        .chain(reliable)
        .chain(keyed)
        .chain(system)
        .collect();
    held.sort_unstable();
    held.dedup();
    held.into_iter()
        .map(|id| catalogue.get(id))
        .filter(|def| !def.admits(claims))
        .map(|def| def.name.clone())
        .collect()
}
