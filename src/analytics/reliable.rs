//! Reliable channels (`alerts`, `sessions`, `notifications`) on a shard:
//! never conflated, never skipped, replayable.
//!
//! The aggregator thread gives each message its stream's next `seq` and
//! encodes it ONCE into a complete frame
//! ([`crate::ingest::sequencer::Sequencer`]); every shard gets
//! the same `Arc` and keeps it in that stream's bounded history
//! ([`ReliableStreams`]), so `subscribe` with `since` replays from the shard
//! the client is on, and the replay and the live messages that follow come
//! from one thread: no gap, no duplicate.

use crate::fanout::wheel::ConnKey;
use crate::ingest::sequencer::ReliableMsg;
use crate::model::channel::ChannelId;
use crate::model::event::BROADCAST_TENANT;
use crate::model::filter::DataFilter;
use crate::model::reliable::ReliableKey;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a `subscribe` to a reliable stream gets before live messages.
#[derive(Debug, Default)]
pub struct Replay {
    /// False when the history no longer covers `since`: the client missed
    /// messages and gets `snapshot` (what the history still holds) instead.
    pub recovered: bool,
    /// The stream's last `seq` at the time of the subscribe.
    pub last_seq: u64,
    /// Messages after `since`, in order (replay when `recovered`).
    pub messages: Vec<Arc<ReliableMsg>>,
}

/// A connection subscribed to a stream, with the filter it asked for.
#[derive(Debug)]
struct Subscriber {
    conn: ConnKey,
    filter: Option<Arc<DataFilter>>,
}

impl Subscriber {
    fn wants(&self, msg: &ReliableMsg) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(&msg.data))
    }
}

#[derive(Debug, Default)]
struct Stream {
    history: VecDeque<Arc<ReliableMsg>>,
    last_seq: u64,
    subscribers: Vec<Subscriber>,
}

/// One shard's reliable streams: bounded history and subscribers of each.
#[derive(Debug)]
pub struct ReliableStreams {
    streams: HashMap<ReliableKey, Stream>,
    keep_max: usize,
    keep_us: u64,
    /// Channels whose history is not the default: (messages, µs).
    per_channel: HashMap<ChannelId, (usize, u64)>,
}

impl ReliableStreams {
    /// Keeps at most `keep_max` messages, none older than `keep_us`, per stream.
    pub fn new(keep_max: usize, keep_us: u64) -> Self {
        ReliableStreams {
            streams: HashMap::new(),
            keep_max: keep_max.max(1),
            keep_us,
            per_channel: HashMap::new(),
        }
    }

    /// Gives `channel` a history of its own: `keep_max` messages, none
    /// older than `keep_us`.
    pub fn keep_for(&mut self, channel: ChannelId, keep_max: usize, keep_us: u64) {
        self.per_channel.insert(channel, (keep_max.max(1), keep_us));
    }

    fn limits(&self, channel: ChannelId) -> (usize, u64) {
        self.per_channel
            .get(&channel)
            .copied()
            .unwrap_or((self.keep_max, self.keep_us))
    }

    /// Appends a message to its stream's history; returns the subscribers to
    /// hand it to (those whose filter it passes).
    pub fn on_message(
        &mut self,
        msg: Arc<ReliableMsg>,
        now_us: u64,
    ) -> impl Iterator<Item = ConnKey> + '_ {
        let (keep_max, keep_us) = self.limits(msg.key.channel);
        let stream = self.streams.entry(msg.key.clone()).or_default();
        stream.last_seq = stream.last_seq.max(msg.seq);
        stream.history.push_back(msg.clone());
        while stream.history.len() > keep_max {
            stream.history.pop_front();
        }
        trim_older(&mut stream.history, now_us.saturating_sub(keep_us));
        stream
            .subscribers
            .iter()
            .filter(move |s| s.wants(&msg))
            .map(|s| s.conn)
    }

    /// Adds `conn` to `key`'s subscribers (replacing its filter if it was
    /// one already) and returns what it must be sent first: with `since`,
    /// the messages after it that pass the filter (or the retained history
    /// that passes it, with `recovered: false`, when the history does not
    /// reach back to `since`).
    pub fn subscribe(
        &mut self,
        key: &ReliableKey,
        conn: ConnKey,
        since: Option<u64>,
        filter: Option<Arc<DataFilter>>,
    ) -> Replay {
        let stream = self.streams.entry(key.clone()).or_default();
        stream.subscribers.retain(|s| s.conn != conn);
        stream.subscribers.push(Subscriber { conn, filter });
        let subscriber = stream.subscribers.last().expect("just pushed");
        let last_seq = stream.last_seq;
        let Some(since) = since else {
            return Replay {
                recovered: true,
                last_seq,
                messages: Vec::new(),
            };
        };
        let first = stream.history.front().map_or(last_seq + 1, |m| m.seq);
        let recovered = since <= last_seq && since + 1 >= first;
        let messages = stream
            .history
            .iter()
            .filter(|m| (!recovered || m.seq > since) && subscriber.wants(m))
            .cloned()
            .collect();
        Replay {
            recovered,
            last_seq,
            messages,
        }
    }

    /// Removes `conn` from `key`'s subscribers.
    pub fn unsubscribe(&mut self, key: &ReliableKey, conn: ConnKey) {
        if let Some(stream) = self.streams.get_mut(key) {
            stream.subscribers.retain(|s| s.conn != conn);
        }
    }

    /// Drops messages past their age and streams with neither history nor
    /// subscribers. Runs from housekeeping.
    pub fn prune(&mut self, now_us: u64) {
        let (per_channel, default) = (&self.per_channel, (self.keep_max, self.keep_us));
        self.streams.retain(|key, s| {
            let (_, keep_us) = per_channel.get(&key.channel).copied().unwrap_or(default);
            trim_older(&mut s.history, now_us.saturating_sub(keep_us));
            !s.history.is_empty() || !s.subscribers.is_empty()
        });
    }

    /// Subscriptions across streams.
    pub fn subscriptions(&self) -> usize {
        self.streams.values().map(|s| s.subscribers.len()).sum()
    }

    /// The channel and subscription count of every stream. The broadcast
    /// streams are left out: a subscription follows one alongside its
    /// tenant's stream, and counts once.
    pub fn subscriptions_per_stream(&self) -> impl Iterator<Item = (ChannelId, usize)> + '_ {
        self.streams
            .iter()
            .filter(|(key, _)| &*key.tenant != BROADCAST_TENANT)
            .map(|(key, s)| (key.channel, s.subscribers.len()))
    }
}

fn trim_older(history: &mut VecDeque<Arc<ReliableMsg>>, oldest_us: u64) {
    while history.front().is_some_and(|m| m.ts_us < oldest_us) {
        history.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;
    use crate::ingest::sequencer::{tests::alert, Sequencer};
    use crate::model::channel::Catalogue;

    #[test]
    fn since_replays_exactly_what_was_missed_or_says_it_cannot() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let mut seq = Sequencer::default();
        let mut shard = ReliableStreams::new(3, 1_000);
        let key = ReliableKey {
            tenant: "t1".into(),
            channel: cat.find("alerts").unwrap().0,
            sub: None,
        };
        let conn = ConnKey {
            index: 0,
            generation: 1,
        };
        for n in 1..=5 {
            let msg = Arc::new(seq.stamp(alert(&cat, "t1", n), &cat, 100 + n).unwrap());
            assert_eq!(shard.on_message(msg, 100 + n).count(), 0);
        }
        // History keeps seq 3..=5.
        let seqs = |r: &Replay| r.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
        let r = shard.subscribe(&key, conn, Some(3), None);
        assert!(r.recovered);
        assert_eq!((seqs(&r), r.last_seq), (vec![4, 5], 5));
        let r = shard.subscribe(&key, conn, Some(2), None);
        assert!(r.recovered, "since=2 needs 3.. which is all retained");
        assert_eq!(seqs(&r), vec![3, 4, 5]);
        let r = shard.subscribe(&key, conn, Some(1), None);
        assert!(!r.recovered);
        assert_eq!(seqs(&r), vec![3, 4, 5], "the snapshot is what is retained");
        let r = shard.subscribe(&key, conn, Some(9), None);
        assert!(!r.recovered, "a since from the future is not covered");
        assert!(shard.subscribe(&key, conn, None, None).messages.is_empty());
        assert_eq!(shard.subscriptions(), 1);

        let next = Arc::new(seq.stamp(alert(&cat, "t1", 6), &cat, 106).unwrap());
        assert_eq!(shard.on_message(next, 106).collect::<Vec<_>>(), [conn]);
        shard.prune(2_000);
        let r = shard.subscribe(&key, conn, Some(5), None);
        assert!(!r.recovered, "everything aged out");
        shard.unsubscribe(&key, conn);
        shard.prune(2_000);
        assert_eq!(shard.subscriptions(), 0);
    }
}
