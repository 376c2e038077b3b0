//! Keyed channels on one shard: the latest object of every key of a
//! tenant's channel is a latest-value stream (conflated per key like a
//! price), and a subscription is a set of key patterns that also picks up
//! keys first published after it was made.

use crate::fanout::latest::{Latest, LatestTable, StreamId};
use crate::fanout::topic::ConnIndex;
use crate::ingest::keyed::KeyedMsg;
use crate::model::channel::{key_matches, ChannelId};
use std::collections::HashMap;
use std::sync::Arc;

/// A connection's subscription to one keyed channel of its tenant.
#[derive(Debug, Clone)]
pub struct KeyWatch {
    /// The subscriber.
    pub conn: ConnIndex,
    /// Keys or `PREFIX*` patterns it asked for.
    pub wanted: Vec<String>,
    /// Key patterns its roles may see (`None` = every key).
    pub visible: Option<Vec<String>>,
}

impl KeyWatch {
    /// Whether the subscriber gets `key`.
    pub fn wants(&self, key: &str) -> bool {
        self.wanted.iter().any(|p| key_matches(p, key))
            && self
                .visible
                .as_ref()
                .is_none_or(|v| v.iter().any(|p| key_matches(p, key)))
    }
}

#[derive(Debug, Default)]
struct ChannelKeys {
    streams: HashMap<Arc<str>, StreamId>,
    watches: Vec<KeyWatch>,
}

/// Every keyed channel's keys on one shard, and who watches them.
#[derive(Debug, Default)]
pub struct KeyedStreams {
    channels: HashMap<(Arc<str>, ChannelId), ChannelKeys>,
    next_id: u32,
}

impl KeyedStreams {
    /// Stores a key's new object in `table`. Returns its stream and, when
    /// the key is new, the connections whose subscription it joins.
    pub fn on_message(
        &mut self,
        msg: &KeyedMsg,
        table: &mut LatestTable,
    ) -> (StreamId, Vec<ConnIndex>) {
        let (tenant, channel, key) = &msg.key;
        let keys = self.channels.entry((tenant.clone(), *channel)).or_default();
        let mut joining = Vec::new();
        let stream = match keys.streams.get(key) {
            Some(stream) => *stream,
            None => {
                let stream = StreamId::keyed(self.next_id);
                self.next_id += 1;
                keys.streams.insert(key.clone(), stream);
                joining.extend(keys.watches.iter().filter(|w| w.wants(key)).map(|w| w.conn));
                stream
            }
        };
        table.publish(
            stream,
            Latest {
                seq: msg.seq,
                ts_us: msg.ts_us,
                frame: msg.frame.clone(),
                payload_at: msg.payload_at,
            },
        );
        (stream, joining)
    }

    /// Records `watch` on the tenant's channel (replacing the connection's
    /// previous one) and returns the streams of the keys it gets now.
    pub fn subscribe(
        &mut self,
        tenant: &Arc<str>,
        channel: ChannelId,
        watch: KeyWatch,
    ) -> Vec<StreamId> {
        let keys = self.channels.entry((tenant.clone(), channel)).or_default();
        keys.watches.retain(|w| w.conn != watch.conn);
        let streams = keys
            .streams
            .iter()
            .filter(|(k, _)| watch.wants(k))
            .map(|(_, s)| *s)
            .collect();
        keys.watches.push(watch);
        streams
    }

    /// Ends `conn`'s subscription to the tenant's channel; `None` when it
    /// had none, else every stream of that channel (for the caller to drop
    /// from the connection).
    pub fn unsubscribe(
        &mut self,
        tenant: &Arc<str>,
        channel: ChannelId,
        conn: ConnIndex,
    ) -> Option<Vec<StreamId>> {
        let keys = self.channels.get_mut(&(tenant.clone(), channel))?;
        let before = keys.watches.len();
        keys.watches.retain(|w| w.conn != conn);
        (keys.watches.len() < before).then(|| keys.streams.values().copied().collect())
    }

    /// The keyed channels connection `conn` of `tenant` watches.
    pub fn watched_by<'a>(
        &'a self,
        tenant: &'a str,
        conn: ConnIndex,
    ) -> impl Iterator<Item = ChannelId> + 'a {
        self.channels
            .iter()
            .filter(move |((t, _), keys)| {
                &**t == tenant && keys.watches.iter().any(|w| w.conn == conn)
            })
            .map(|((_, channel), _)| *channel)
    }

    /// Subscriptions (one per connection and tenant) of each keyed channel.
    pub fn subscriptions_per_channel(&self) -> impl Iterator<Item = (ChannelId, usize)> + '_ {
        self.channels
            .iter()
            .map(|((_, channel), keys)| (*channel, keys.watches.len()))
    }

    /// Forgets every subscription of a leaving connection.
    pub fn release(&mut self, conn: ConnIndex) {
        for keys in self.channels.values_mut() {
            keys.watches.retain(|w| w.conn != conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;
    use crate::ingest::keyed::KeyedSequencer;
    use crate::model::channel::Catalogue;
    use crate::model::event::KeyedEvent;

    #[test]
    fn a_watch_gets_matching_visible_keys_now_and_later() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let channel = cat.find("exposure").unwrap().0;
        let tenant: Arc<str> = "t1".into();
        let mut seq = KeyedSequencer::default();
        let mut msg = |key: &str| {
            let event = KeyedEvent {
                tenant: tenant.clone(),
                channel,
                key: key.into(),
                data: Default::default(),
            };
            seq.stamp(event, &cat, 1)
        };
        let mut shard = KeyedStreams::default();
        let mut table = LatestTable::default();
        let (eur, joined) = shard.on_message(&msg("EURUSD"), &mut table);
        assert!(joined.is_empty());
        let watch = KeyWatch {
            conn: 7,
            wanted: vec!["*".into()],
            visible: Some(vec!["EUR*".into()]),
        };
        assert_eq!(shard.subscribe(&tenant, channel, watch), [eur]);
        let (_, joined) = shard.on_message(&msg("USDJPY"), &mut table);
        assert!(joined.is_empty(), "not visible to its roles");
        let (eurgbp, joined) = shard.on_message(&msg("EURGBP"), &mut table);
        assert_eq!(joined, [7]);
        let (again, joined) = shard.on_message(&msg("EURGBP"), &mut table);
        assert_eq!((again, joined.len()), (eurgbp, 0));
        assert_eq!(table.get(eurgbp).unwrap().seq, 2);
        assert_eq!(
            shard.unsubscribe(&tenant, channel, 7).map(|s| s.len()),
            Some(3)
        );
        assert_eq!(shard.unsubscribe(&tenant, channel, 7), None);
        let (_, joined) = shard.on_message(&msg("EURCHF"), &mut table);
        assert!(joined.is_empty());
    }
}
