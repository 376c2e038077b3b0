//! The conflation state machine (latest-value table, subscriptions, dirty
//! collection) driven by random op sequences and checked against a model:
//! a client only ever gets the latest value, `seq` strictly increases per
//! stream and client, nothing arrives of a stream it is not subscribed to,
//! and no update it is subscribed to is missed.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use quotecast::parts::{Latest, LatestTable, StreamId, Subscriptions};
use std::collections::BTreeMap;

const STREAMS: u8 = 6;
const CLIENTS: usize = 3;

#[derive(Arbitrary, Debug)]
enum Op {
    Publish { stream: u8, seq: u16, ts: u16 },
    Subscribe { client: u8, stream: u8 },
    Unsubscribe { client: u8, stream: u8 },
    Clear { client: u8 },
    Flush { client: u8 },
}

/// The frame of a value names its stream and seq, so a flush can be decoded.
fn frame(stream: StreamId, seq: u64) -> Bytes {
    Bytes::from(format!("{}:{};", stream.number(), seq))
}

#[derive(Default)]
struct Client {
    subs: Subscriptions,
    /// Model: subscribed streams → last seq the client has (snapshot or frame).
    sent: BTreeMap<u32, u64>,
    /// Highest seq ever delivered per stream, across re-subscriptions.
    seen: BTreeMap<u32, u64>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut table = LatestTable::default();
    let mut latest: BTreeMap<u32, (u64, u64)> = BTreeMap::new(); // stream → (seq, ts)
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::default()).collect();
    // `arbitrary` keeps producing default ops from exhausted input: stop at its end.
    while !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        match op {
            Op::Publish { stream, seq, ts } => {
                let s = StreamId::metric(u32::from(stream % STREAMS));
                let seq = u64::from(seq);
                let value = Latest {
                    seq,
                    ts_us: ts.into(),
                    frame: frame(s, seq),
                    payload_at: 0,
                };
                let newer = latest.get(&s.number()).is_none_or(|&(old, _)| seq > old);
                assert_eq!(
                    table.publish(s, value),
                    newer,
                    "publish of seq {seq} on {s:?}"
                );
                if newer {
                    latest.insert(s.number(), (seq, ts.into()));
                }
            }
            Op::Subscribe { client, stream } => {
                let c = &mut clients[usize::from(client) % CLIENTS];
                let s = StreamId::metric(u32::from(stream % STREAMS));
                // As `conn` does: the snapshot carries the latest value, if any.
                let snapshot = table.get(s).map_or(0, |l| l.seq);
                let added = c.subs.add(s, snapshot);
                assert_eq!(added, !c.sent.contains_key(&s.number()));
                if added {
                    c.sent.insert(s.number(), snapshot);
                    if snapshot > 0 {
                        let seen = c.seen.entry(s.number()).or_default();
                        assert!(snapshot >= *seen, "snapshot went back in seq");
                        *seen = snapshot;
                    }
                }
            }
            Op::Unsubscribe { client, stream } => {
                let c = &mut clients[usize::from(client) % CLIENTS];
                let s = StreamId::metric(u32::from(stream % STREAMS));
                assert_eq!(c.subs.remove(s), c.sent.remove(&s.number()).is_some());
            }
            Op::Clear { client } => {
                let c = &mut clients[usize::from(client) % CLIENTS];
                let mut cleared: Vec<u32> = c.subs.clear().iter().map(|s| s.number()).collect();
                cleared.sort_unstable();
                assert_eq!(
                    cleared,
                    std::mem::take(&mut c.sent).into_keys().collect::<Vec<_>>()
                );
            }
            Op::Flush { client } => {
                let c = &mut clients[usize::from(client) % CLIENTS];
                let mut out = Vec::new();
                let got = c.subs.collect_dirty(&table, &mut out);
                let text = String::from_utf8(out).expect("frames are ours");
                let mut frames = 0;
                let mut skipped = 0;
                let mut oldest = u64::MAX;
                let mut in_flush = Vec::new();
                for f in text.split_terminator(';') {
                    let (s, seq) = f.split_once(':').expect("stream:seq");
                    let (s, seq): (u32, u64) = (s.parse().unwrap(), seq.parse().unwrap());
                    assert!(!in_flush.contains(&s), "stream {s} twice in one flush");
                    in_flush.push(s);
                    let sent = c.sent.get_mut(&s).expect("frame of an unsubscribed stream");
                    let (newest, ts) = latest[&s];
                    assert_eq!(seq, newest, "not the latest value");
                    assert!(seq > *sent, "seq did not increase");
                    let seen = c.seen.entry(s).or_default();
                    assert!(seq > *seen, "seq went back across re-subscription");
                    if *sent > 0 {
                        skipped += seq - *sent - 1;
                    }
                    *sent = seq;
                    *seen = seq;
                    frames += 1;
                    oldest = oldest.min(ts);
                }
                // Nothing newer left behind.
                for (s, sent) in &c.sent {
                    assert!(
                        latest.get(s).is_none_or(|&(seq, _)| seq <= *sent),
                        "missed {s}"
                    );
                }
                assert_eq!(
                    (got.frames, got.skipped, got.oldest_ts_us),
                    (frames, skipped, oldest)
                );
                assert_eq!(c.subs.len(), c.sent.len());
            }
        }
    }
});
