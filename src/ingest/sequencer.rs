//! Reliable messages get their per-stream `seq` here, on the aggregator
//! thread (one writer, so the numbering is the order of arrival), and are
//! encoded ONCE into a complete frame that every shard and subscriber shares.

use crate::frame;
use crate::frame::deflate::{self, Deflated};
use crate::model::channel::{Catalogue, ChannelId};
use crate::model::event::{ReliableEvent, BROADCAST_TENANT};
use crate::sse;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// One reliable stream: a tenant's channel, or one user's notifications.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReliableKey {
    /// Owning tenant.
    pub tenant: Arc<str>,
    /// `alerts`, `sessions` or `notifications`.
    pub channel: ChannelId,
    /// The user, for per-user channels.
    pub sub: Option<Arc<str>>,
}

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
/// numbering is the order of arrival) and encodes each message.
#[derive(Debug, Default)]
pub struct Sequencer {
    last: HashMap<ReliableKey, u64>,
}

impl Sequencer {
    /// Sequences `event` received at `now_us` and encodes its frame:
    /// `{"type":<alert|session|notification>,"channel":..,"seq":..,<data>,"ts":..}`.
    pub fn stamp(&mut self, event: ReliableEvent, cat: &Catalogue, now_us: u64) -> ReliableMsg {
        let key = ReliableKey {
            tenant: event.tenant,
            channel: event.channel,
            sub: event.sub,
        };
        let seq = self.last.entry(key.clone()).or_insert(0);
        *seq += 1;
        let def = cat.get(key.channel);
        let (name, kind) = (&def.name, &def.message_type);
        let mut head = serde_json::json!({ "type": kind, "channel": name, "seq": *seq });
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
        ReliableMsg {
            key,
            seq: *seq,
            ts_us: now_us,
            payload_at: frame.len() - json.len(),
            deflated: OnceLock::new(),
            frame,
            sse: OnceLock::new(),
            data: event.data,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::ChannelsConfig;

    /// An `alerts` event for `tenant` with message `m<n>`.
    pub(crate) fn alert(cat: &Catalogue, tenant: &str, n: u64) -> ReliableEvent {
        let data = serde_json::json!({"level":"info","kind":"k","message":format!("m{n}")});
        ReliableEvent {
            tenant: tenant.into(),
            channel: cat.find("alerts").unwrap().0,
            sub: None,
            data: data.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn messages_are_numbered_per_stream_and_encoded_once() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let mut seq = Sequencer::default();
        let a1 = seq.stamp(alert(&cat, "t1", 1), &cat, 7);
        let b1 = seq.stamp(alert(&cat, "t2", 1), &cat, 8);
        let a2 = seq.stamp(alert(&cat, "t1", 2), &cat, 9);
        assert_eq!((a1.seq, b1.seq, a2.seq), (1, 1, 2));
        let json: serde_json::Value = serde_json::from_slice(a2.payload()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"alert","channel":"alerts","seq":2,"level":"info",
                "kind":"k","message":"m2","ts":9})
        );
    }
}
