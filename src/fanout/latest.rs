//! Conflation: the latest-value table of a shard and each connection's
//! subscriptions with the last `seq` it was sent.
//!
//! A connection's dirty set is not a queue: it is every subscription whose
//! stream's latest `seq` is ahead of the `seq` last sent. A flush reads the
//! latest frame of each, so a slow client only ever gets the newest value and
//! nothing per connection grows with the update rate.

use crate::frame::deflate::{self, DeflateUse, Deflated};
use crate::model::symbol::SymbolId;
use crate::sse;
use bytes::Bytes;

/// A latest-value stream: a symbol's best price, one metric value of a
/// tenant's window or calendar computation, one key of a keyed channel, or
/// the node's figures (`system`).
/// Each kind is numbered densely from 0, so tables indexed by stream stay
/// small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

/// What a [`StreamId`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// A symbol's best bid/ask (`prices`).
    Price,
    /// One (agg, metric) value of a window computation (`metrics.*`).
    Metric,
    /// One (agg, metric) running total of a calendar period (`metrics.*`
    /// with `window`).
    Calendar,
    /// One key's latest object of a keyed channel.
    Keyed,
    /// The node's figures, once a second (`system`); one stream.
    System,
}

impl StreamKind {
    const ALL: [StreamKind; 5] = [
        StreamKind::Price,
        StreamKind::Metric,
        StreamKind::Calendar,
        StreamKind::Keyed,
        StreamKind::System,
    ];
}

impl StreamId {
    /// The top three bits tell the kind (its index in [`StreamKind::ALL`]).
    const KIND_SHIFT: u32 = 29;
    const NUMBER: u32 = (1 << Self::KIND_SHIFT) - 1;

    fn new(kind: StreamKind, n: u32) -> Self {
        StreamId((kind as u32) << Self::KIND_SHIFT | (n & Self::NUMBER))
    }

    /// The price stream of `symbol`.
    pub fn price(symbol: SymbolId) -> Self {
        Self::new(StreamKind::Price, symbol.0)
    }

    /// Metric stream number `n` (allocated by the window computations).
    pub fn metric(n: u32) -> Self {
        Self::new(StreamKind::Metric, n)
    }

    /// Calendar stream number `n` (allocated by the calendar totals).
    pub fn calendar(n: u32) -> Self {
        Self::new(StreamKind::Calendar, n)
    }

    /// Keyed stream number `n` (allocated by the keyed channels).
    pub fn keyed(n: u32) -> Self {
        Self::new(StreamKind::Keyed, n)
    }

    /// The one stream of the node's figures.
    pub fn system() -> Self {
        Self::new(StreamKind::System, 0)
    }

    /// Which kind of stream this is.
    pub fn kind(self) -> StreamKind {
        StreamKind::ALL[(self.0 >> Self::KIND_SHIFT) as usize]
    }

    /// The symbol of a price stream.
    pub fn symbol(self) -> Option<SymbolId> {
        (self.kind() == StreamKind::Price).then_some(SymbolId(self.number()))
    }

    /// The number of the stream within its kind.
    pub fn number(self) -> u32 {
        self.0 & Self::NUMBER
    }

    /// The `type` of the messages the stream carries.
    pub fn message_type(self) -> &'static str {
        match self.kind() {
            StreamKind::Price => "price",
            StreamKind::Metric | StreamKind::Calendar => "metrics",
            StreamKind::Keyed => "keyed",
            StreamKind::System => "system",
        }
    }
}

/// A dense table per stream kind, indexed by [`StreamId::number`].
#[derive(Debug)]
pub struct PerStream<T> {
    sides: [Vec<T>; StreamKind::ALL.len()],
}

impl<T> Default for PerStream<T> {
    fn default() -> Self {
        PerStream {
            sides: Default::default(),
        }
    }
}

impl<T: Default> PerStream<T> {
    /// The entry of `stream`, if the table reaches it.
    pub fn get(&self, stream: StreamId) -> Option<&T> {
        self.sides[stream.kind() as usize].get(stream.number() as usize)
    }

    /// The entry of `stream`, if the table reaches it, for changing.
    pub fn get_mut(&mut self, stream: StreamId) -> Option<&mut T> {
        self.sides[stream.kind() as usize].get_mut(stream.number() as usize)
    }

    /// The entry of `stream`, growing the table to reach it.
    pub fn entry(&mut self, stream: StreamId) -> &mut T {
        let side = &mut self.sides[stream.kind() as usize];
        let i = stream.number() as usize;
        if i >= side.len() {
            side.resize_with(i + 1, T::default);
        }
        &mut side[i]
    }
}

/// The newest value of one stream, already encoded as a shared frame.
#[derive(Clone, Debug)]
pub struct Latest {
    /// Strictly increasing per stream.
    pub seq: u64,
    /// Microsecond UNIX time at which the aggregator published it.
    pub ts_us: u64,
    /// The complete WebSocket frame every subscriber is sent.
    pub frame: Bytes,
    /// Where the JSON object starts inside `frame` (after the frame header).
    pub payload_at: usize,
}

impl Latest {
    /// The JSON object alone, for snapshots.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.payload_at..]
    }
}

/// The latest value of every stream on one shard, indexed by [`StreamId`].
#[derive(Debug, Default)]
pub struct LatestTable {
    slots: PerStream<Option<Latest>>,
    /// The SSE event of each latest value, built the first time an SSE
    /// connection is sent it and shared by every other (never per connection).
    sse: PerStream<Option<Bytes>>,
    /// The same values compressed once (permessage-deflate), while some
    /// connection on the shard negotiated it; `None` otherwise.
    deflated: PerStream<Option<Deflated>>,
}

impl LatestTable {
    /// Stores a newer value; an older or equal `seq` is ignored (returns false).
    pub fn publish(&mut self, stream: StreamId, latest: Latest) -> bool {
        let slot = self.slots.entry(stream);
        match slot {
            Some(old) if old.seq >= latest.seq => false,
            _ => {
                *slot = Some(latest);
                self.forget_encodings(stream);
                true
            }
        }
    }

    /// Compresses the latest value of `stream` once, for every connection
    /// that negotiated deflate, unless shorter than `min_bytes` or done.
    fn deflate(&mut self, stream: StreamId, min_bytes: usize) {
        let Some(Some(latest)) = self.slots.get(stream) else {
            return;
        };
        let slot = self.deflated.entry(stream);
        if slot.is_none() {
            *slot = deflate::text(latest.payload(), min_bytes);
        }
    }

    fn deflated(&self, stream: StreamId) -> Option<&Deflated> {
        self.deflated.get(stream)?.as_ref()
    }

    /// Forgets `stream` (its last subscriber left); the id may be reused.
    pub fn clear(&mut self, stream: StreamId) {
        if let Some(slot) = self.slots.get_mut(stream) {
            *slot = None;
        }
        self.forget_encodings(stream);
    }

    /// Drops the SSE and compressed forms of a value that changed or left.
    fn forget_encodings(&mut self, stream: StreamId) {
        if let Some(event) = self.sse.get_mut(stream) {
            *event = None;
        }
        if let Some(d) = self.deflated.get_mut(stream) {
            *d = None;
        }
    }

    /// Builds the SSE event of `stream`'s latest value unless it exists.
    fn prepare_sse(&mut self, stream: StreamId) {
        let Some(latest) = self.slots.get(stream).and_then(Option::as_ref) else {
            return;
        };
        let event = self.sse.entry(stream);
        if event.is_none() {
            *event = Some(sse::event(stream.message_type(), latest.payload()));
        }
    }

    /// The newest value of `stream`, if any.
    pub fn get(&self, stream: StreamId) -> Option<&Latest> {
        self.slots.get(stream)?.as_ref()
    }
}

/// What one flush collected from a connection's dirty subscriptions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Frames appended.
    pub frames: u64,
    /// Values replaced before they were sent (gaps in `seq`).
    pub skipped: u64,
    /// Oldest `ts_us` among the frames appended (for latency accounting).
    pub oldest_ts_us: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sub {
    stream: StreamId,
    sent_seq: u64,
}

/// One connection's subscriptions, each with the last `seq` it was sent.
#[derive(Debug, Default)]
pub struct Subscriptions {
    subs: Vec<Sub>,
}

impl Subscriptions {
    /// Starts loading the list into the cache, ahead of a flush reading it.
    pub fn prefetch(&self) {
        crate::prefetch::slice(&self.subs);
    }

    /// Adds `stream`, treating everything up to `sent_seq` as already sent
    /// (the snapshot). Returns false if it was already subscribed.
    pub fn add(&mut self, stream: StreamId, sent_seq: u64) -> bool {
        if self.contains(stream) {
            return false;
        }
        self.subs.push(Sub { stream, sent_seq });
        true
    }

    /// Removes `stream`; returns false if it was not subscribed.
    pub fn remove(&mut self, stream: StreamId) -> bool {
        match self.subs.iter().position(|s| s.stream == stream) {
            Some(i) => {
                self.subs.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `stream` is subscribed.
    pub fn contains(&self, stream: StreamId) -> bool {
        self.subs.iter().any(|s| s.stream == stream)
    }

    /// Whether any subscribed stream satisfies `pred`.
    pub fn any(&self, pred: impl Fn(StreamId) -> bool) -> bool {
        self.subs.iter().any(|s| pred(s.stream))
    }

    /// The subscribed streams.
    pub fn streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.subs.iter().map(|s| s.stream)
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Removes every subscription, returning the streams.
    pub fn clear(&mut self) -> Vec<StreamId> {
        self.subs.drain(..).map(|s| s.stream).collect()
    }

    /// Removes the subscriptions whose stream satisfies `pred`, returning them.
    pub fn remove_where(&mut self, pred: impl Fn(StreamId) -> bool) -> Vec<StreamId> {
        let mut removed = Vec::new();
        self.subs.retain(|s| {
            let hit = pred(s.stream);
            if hit {
                removed.push(s.stream);
            }
            !hit
        });
        removed
    }

    /// Appends the latest frame of every stream that moved since it was last
    /// sent to `out`, and marks it sent. Linear in the number of subscriptions.
    pub fn collect_dirty(&mut self, table: &LatestTable, out: &mut Vec<u8>) -> Collected {
        self.collect_with(table, out, |_, latest, out| {
            out.extend_from_slice(&latest.frame)
        })
    }

    /// [`Subscriptions::collect_dirty`] for a connection that negotiated
    /// `deflate`: it gets the shared compressed frame of a value when there
    /// is one it can inflate (compressing it first where this shard has not
    /// yet), the plain one otherwise.
    pub fn collect_dirty_deflated(
        &mut self,
        table: &mut LatestTable,
        out: &mut Vec<u8>,
        deflate: &DeflateUse,
    ) -> Collected {
        self.prepare_dirty(table, |t, stream| t.deflate(stream, deflate.min_bytes));
        let table = &*table;
        self.collect_with(table, out, |stream, latest, out| {
            out.extend_from_slice(deflate.pick(&latest.frame, table.deflated(stream)))
        })
    }

    /// [`Subscriptions::collect_dirty`] for an SSE connection: appends the
    /// shared SSE event of each value, building it first where this shard
    /// has not yet.
    pub fn collect_dirty_sse(&mut self, table: &mut LatestTable, out: &mut Vec<u8>) -> Collected {
        self.prepare_dirty(table, LatestTable::prepare_sse);
        let table = &*table;
        self.collect_with(table, out, |stream, _, out| {
            if let Some(event) = table.sse.get(stream).and_then(Option::as_ref) {
                out.extend_from_slice(event);
            }
        })
    }

    /// Builds, once per value and shard, the other encoding of every value
    /// this connection is about to be sent: only values some connection
    /// needs in that encoding are ever encoded so.
    fn prepare_dirty(&self, table: &mut LatestTable, prepare: impl Fn(&mut LatestTable, StreamId)) {
        for sub in &self.subs {
            if table.get(sub.stream).is_some_and(|l| l.seq > sub.sent_seq) {
                prepare(table, sub.stream);
            }
        }
    }

    fn collect_with(
        &mut self,
        table: &LatestTable,
        out: &mut Vec<u8>,
        mut write: impl FnMut(StreamId, &Latest, &mut Vec<u8>),
    ) -> Collected {
        let mut c = Collected {
            oldest_ts_us: u64::MAX,
            ..Collected::default()
        };
        for sub in &mut self.subs {
            let Some(latest) = table.get(sub.stream) else {
                continue;
            };
            if latest.seq <= sub.sent_seq {
                continue;
            }
            if sub.sent_seq > 0 {
                c.skipped += latest.seq - sub.sent_seq - 1;
            }
            sub.sent_seq = latest.seq;
            write(sub.stream, latest, out);
            c.frames += 1;
            c.oldest_ts_us = c.oldest_ts_us.min(latest.ts_us);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(seq: u64) -> Latest {
        Latest {
            seq,
            ts_us: seq * 10,
            frame: Bytes::from(format!("F{seq};")),
            payload_at: 1,
        }
    }

    #[test]
    fn only_the_latest_value_is_sent_and_gaps_are_counted() {
        let mut table = LatestTable::default();
        let mut subs = Subscriptions::default();
        let (a, b) = (StreamId::price(SymbolId(0)), StreamId::metric(3));
        table.publish(a, latest(1));
        assert!(subs.add(a, 1), "subscribed after the snapshot of seq 1");
        assert!(subs.add(b, 0));
        assert!(!subs.add(b, 0));
        let mut out = Vec::new();
        assert_eq!(subs.collect_dirty(&table, &mut out).frames, 0);

        for seq in 2..=5 {
            table.publish(a, latest(seq));
        }
        table.publish(b, latest(1));
        let c = subs.collect_dirty(&table, &mut out);
        assert_eq!(out, b"F5;F1;");
        assert_eq!((c.frames, c.skipped, c.oldest_ts_us), (2, 3, 10));

        out.clear();
        assert_eq!(subs.collect_dirty(&table, &mut out).frames, 0);
        assert!(
            !table.publish(a, latest(4)),
            "older values never replace newer"
        );
        assert!(subs.remove(a));
        table.publish(a, latest(9));
        assert_eq!(subs.collect_dirty(&table, &mut out).frames, 0);
        assert_eq!(table.get(a).map(Latest::payload), Some(&b"9;"[..]));
    }

    #[test]
    fn sse_events_are_built_once_per_value_and_shared() {
        let mut table = LatestTable::default();
        let stream = StreamId::price(SymbolId(2));
        let (mut one, mut two) = (Subscriptions::default(), Subscriptions::default());
        one.add(stream, 0);
        two.add(stream, 0);
        table.publish(stream, latest(1));
        let (mut out1, mut out2) = (Vec::new(), Vec::new());
        assert_eq!(one.collect_dirty_sse(&mut table, &mut out1).frames, 1);
        let built = table.sse.get(stream).cloned().flatten().unwrap();
        assert_eq!(two.collect_dirty_sse(&mut table, &mut out2).frames, 1);
        let shared = table.sse.get(stream).cloned().flatten().unwrap();
        assert_eq!(
            built.as_ptr(),
            shared.as_ptr(),
            "one event for both connections"
        );
        assert_eq!(out1, b"event: price\ndata: 1;\n\n");
        assert_eq!(out1, out2);
        table.publish(stream, latest(2));
        assert!(
            table.sse.get(stream).unwrap().is_none(),
            "a new value drops the old event"
        );
    }
}
