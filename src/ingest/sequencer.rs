//! Reliable messages get their per-stream `seq` here, on the aggregator
//! thread (one writer, so the numbering is the order of arrival), and are
//! encoded ONCE into a complete frame that every shard and subscriber shares.

use crate::frame;
use crate::frame::deflate::{self, Deflated};
use crate::model::channel::Catalogue;
use crate::model::event::{ReliableEvent, BROADCAST_TENANT};
use crate::model::reliable::ReliableKey;
use crate::sse;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A sequenced reliable message, encoded once for every shard and subscriber.
#[derive(Debug)]
pub struct ReliableMsg {
    /// The stream it belongs to.
    pub key: ReliableKey,
    /// Strictly increasing per stream, without gaps.
    pub seq: u64,
    /// Microsecond UNIX time at which it was sequenced.
    pub ts_us: u64,
    /// The complete WebSocket frame.
    pub frame: Bytes,
    /// Where the JSON object starts inside `frame`.
    pub payload_at: usize,
    /// The `event:` and `data:` lines for SSE connections
    /// ([`sse::event_fields`]), built once, when the first one is sent it.
    sse: OnceLock<Bytes>,
    /// The published `data` fields, kept for subscribers' filters.
    pub data: Map<String, Value>,
    /// The frame compressed (permessage-deflate), made by the first shard
    /// that has a deflate subscriber for it and shared by every other.
    deflated: OnceLock<Option<Deflated>>,
}

impl ReliableMsg {
    /// The JSON object alone, for snapshots.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.payload_at..]
    }

    /// The message as SSE fields, shared by every SSE connection of every shard.
    pub fn sse_fields(&self) -> &Bytes {
        self.sse
            .get_or_init(|| sse::event_fields(&sse::type_of(self.payload()), self.payload()))
    }

    /// The message compressed once for every connection that negotiated
    /// deflate; none if it is shorter than `min_bytes` (the same setting
    /// on every shard).
    pub fn deflated(&self, min_bytes: usize) -> Option<&Deflated> {
        self.deflated
            .get_or_init(|| deflate::text(self.payload(), min_bytes))
            .as_ref()
    }
}

/// Assigns per-stream `seq` on the aggregator thread (one writer, so the
/// numbering is the order of arrival) and encodes each message. Messages a
/// bus already numbered ([`ReliableEvent::stamp`]) keep their `seq`.
#[derive(Debug, Default)]
pub struct Sequencer {
    last: HashMap<ReliableKey, u64>,
}

impl Sequencer {
    /// Sequences `event` received at `now_us` and encodes its frame:
    /// `{"type":<alert|session|notification>,"channel":..,"seq":..,<data>,"ts":..}`.
    /// `None` for a stamped message at or below its stream's last `seq`: a
    /// copy of one already delivered.
    pub fn stamp(
        &mut self,
        event: ReliableEvent,
        cat: &Catalogue,
        now_us: u64,
    ) -> Option<ReliableMsg> {
        let key = ReliableKey {
            tenant: event.tenant,
            channel: event.channel,
            sub: event.sub,
        };
        let last = self.last.entry(key.clone()).or_insert(0);
        let (seq, now_us) = match event.stamp {
            Some(stamp) if stamp.seq <= *last => return None,
            Some(stamp) => (stamp.seq, stamp.ts_us),
            None => (*last + 1, now_us),
        };
        *last = seq;
        let def = cat.get(key.channel);
        let (name, kind) = (&def.name, &def.message_type);
        let mut head = serde_json::json!({ "type": kind, "channel": name, "seq": seq });
        if &*key.tenant == BROADCAST_TENANT {
            // Its own seq stream: a subscriber tells the two apart by this.
            head["broadcast"] = true.into();
        }
        let mut json = head.to_string().into_bytes();
        json.pop(); // reopen the object to append data fields and ts
        let data = serde_json::to_vec(&event.data).unwrap_or_default();
        if data.len() > 2 {
            json.push(b',');
            json.extend_from_slice(&data[1..data.len() - 1]);
        }
        json.extend_from_slice(format!(",\"ts\":{now_us}}}").as_bytes());
        let frame = frame::text(&json);
        Some(ReliableMsg {
            key,
            seq,
            ts_us: now_us,
            payload_at: frame.len() - json.len(),
            deflated: OnceLock::new(),
            frame,
            sse: OnceLock::new(),
            data: event.data,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::ChannelsConfig;
    use crate::model::reliable::Stamp;

    /// An `alerts` event for `tenant` with message `m<n>`.
    pub(crate) fn alert(cat: &Catalogue, tenant: &str, n: u64) -> ReliableEvent {
        let data = serde_json::json!({"level":"info","kind":"k","message":format!("m{n}")});
        ReliableEvent {
            tenant: tenant.into(),
            channel: cat.find("alerts").unwrap().0,
            sub: None,
            data: data.as_object().unwrap().clone(),
            stamp: None,
        }
    }

    #[test]
    fn messages_are_numbered_per_stream_and_encoded_once() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let mut seq = Sequencer::default();
        let a1 = seq.stamp(alert(&cat, "t1", 1), &cat, 7).unwrap();
        let b1 = seq.stamp(alert(&cat, "t2", 1), &cat, 8).unwrap();
        let a2 = seq.stamp(alert(&cat, "t1", 2), &cat, 9).unwrap();
        assert_eq!((a1.seq, b1.seq, a2.seq), (1, 1, 2));
        let json: serde_json::Value = serde_json::from_slice(a2.payload()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"alert","channel":"alerts","seq":2,"level":"info",
                "kind":"k","message":"m2","ts":9})
        );
    }

    #[test]
    fn stamped_messages_keep_their_seq_and_time_and_copies_are_dropped() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let mut seq = Sequencer::default();
        let stamped = |n: u64| ReliableEvent {
            stamp: Some(Stamp {
                seq: n,
                ts_us: 1_000 + n,
            }),
            ..alert(&cat, "t1", n)
        };
        // A node that joins late starts where the bus's history starts.
        let first = seq.stamp(stamped(41), &cat, 7).unwrap();
        assert_eq!((first.seq, first.ts_us), (41, 1_041));
        assert!(seq.stamp(stamped(41), &cat, 8).is_none(), "a copy");
        assert!(seq.stamp(stamped(40), &cat, 8).is_none(), "an older one");
        assert_eq!(seq.stamp(stamped(42), &cat, 9).unwrap().seq, 42);
        let json: serde_json::Value =
            serde_json::from_slice(seq.stamp(stamped(43), &cat, 9).unwrap().payload()).unwrap();
        assert_eq!((&json["seq"], &json["ts"]), (&43.into(), &1_043.into()));
    }
}
