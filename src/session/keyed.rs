//! `subscribe` and `unsubscribe` of keyed channels: the tenant's keys that
//! match the asked patterns and the token's roles, each a latest-value
//! stream; a snapshot of their current objects first.

use super::state::Session;
use super::subscribe::{follow, snapshot};
use super::{Rules, Streams};
use crate::analytics::keyed::KeyWatch;
use crate::model::channel::ChannelId;
use crate::protocol::{self, SubscribeOp};
use std::sync::Arc;

/// Carries out a keyed `subscribe` (replacing the connection's previous
/// one to the channel); queues the ack and returns the snapshot.
pub(super) fn subscribe(
    session: &mut Session,
    channel: ChannelId,
    op: &SubscribeOp,
    streams: &mut Streams,
    rules: Rules<'_>,
) -> Vec<u8> {
    let def = rules.catalogue.get(channel);
    let visible: Option<Vec<String>> = def
        .visible_keys(session.claims())
        .map(|v| v.into_iter().map(str::to_owned).collect());
    let wanted = op.keys.clone().unwrap_or_else(|| vec!["*".to_owned()]);
    // A key named exactly that the roles cannot see is refused; a pattern
    // is narrowed to what they can.
    let (refused, taken): (Vec<&String>, Vec<&String>) = wanted.iter().partition(|k| {
        !k.ends_with('*')
            && visible
                .as_ref()
                .is_some_and(|v| !v.iter().any(|p| crate::model::channel::key_matches(p, k)))
    });
    drop_keyed(session, channel, streams);
    let tenant: Arc<str> = Arc::from(session.claims().tenant.as_str());
    let watch = KeyWatch {
        conn: session.key().index,
        wanted: taken.iter().map(|k| k.to_string()).collect(),
        visible,
    };
    let now = streams.keyed.subscribe(&tenant, channel, watch);
    for &stream in &now {
        follow(session, stream, streams);
    }
    let taken: Vec<&str> = taken.iter().map(|k| k.as_str()).collect();
    let refused: Vec<&str> = refused.iter().map(|k| k.as_str()).collect();
    session
        .outbox_mut()
        .push_json(&protocol::keyed_ack(op.id, &def.name, &taken, &refused));
    snapshot(&def.name, &now, streams)
}

/// Ends the connection's subscription to a keyed channel; true when it had one.
pub(super) fn drop_keyed(session: &mut Session, channel: ChannelId, streams: &mut Streams) -> bool {
    let tenant: Arc<str> = Arc::from(session.claims().tenant.as_str());
    let index = session.key().index;
    let Some(dropped) = streams.keyed.unsubscribe(&tenant, channel, index) else {
        return false;
    };
    let subs = session.outbox_mut().subs_mut();
    for stream in dropped {
        if subs.remove(stream) {
            streams.topics.unsubscribe(stream, index);
        }
    }
    true
}
