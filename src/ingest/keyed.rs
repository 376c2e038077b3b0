//! Keyed channels on the aggregator thread: each key's next `seq` and its
//! frame, encoded ONCE for every shard and subscriber.

use crate::frame;
use crate::model::channel::{Catalogue, ChannelId};
use crate::model::event::KeyedEvent;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// One key of a tenant's keyed channel.
pub type KeyedKey = (Arc<str>, ChannelId, Arc<str>);

/// A key's new latest object, sequenced and encoded.
#[derive(Debug)]
pub struct KeyedMsg {
    /// Tenant, channel and key.
    pub key: KeyedKey,
    /// Strictly increasing per key.
    pub seq: u64,
    /// Microsecond UNIX time at which it was sequenced.
    pub ts_us: u64,
    /// The complete WebSocket frame.
    pub frame: Bytes,
    /// Where the JSON object starts inside `frame`.
    pub payload_at: usize,
}

/// Numbers each key's objects (one writer: the order of arrival).
#[derive(Debug, Default)]
pub struct KeyedSequencer {
    last: HashMap<KeyedKey, u64>,
}

impl KeyedSequencer {
    /// Sequences `event` received at `now_us` and encodes
    /// `{"type":"keyed","channel":..,"key":..,"seq":..,"data":{..},"ts":..}`.
    pub fn stamp(&mut self, event: KeyedEvent, cat: &Catalogue, now_us: u64) -> KeyedMsg {
        let key = (event.tenant, event.channel, event.key);
        let seq = self.last.entry(key.clone()).or_insert(0);
        *seq += 1;
        let json = serde_json::json!({
            "type": "keyed", "channel": cat.get(key.1).name, "key": &*key.2,
            "seq": *seq, "data": event.data, "ts": now_us,
        })
        .to_string();
        let frame = frame::text(json.as_bytes());
        KeyedMsg {
            key,
            seq: *seq,
            ts_us: now_us,
            payload_at: frame.len() - json.len(),
            frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;

    #[test]
    fn each_key_is_numbered_on_its_own() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let channel = cat.find("exposure").unwrap().0;
        let event = |key: &str, n: i64| KeyedEvent {
            tenant: "t1".into(),
            channel,
            key: key.into(),
            data: serde_json::json!({ "net": n }).as_object().unwrap().clone(),
        };
        let mut seq = KeyedSequencer::default();
        let a1 = seq.stamp(event("EURUSD", 1), &cat, 5);
        let b1 = seq.stamp(event("USDJPY", 2), &cat, 6);
        let a2 = seq.stamp(event("EURUSD", 3), &cat, 7);
        assert_eq!((a1.seq, b1.seq, a2.seq), (1, 1, 2));
        let json: serde_json::Value = serde_json::from_slice(&a2.frame[a2.payload_at..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"keyed","channel":"exposure","key":"EURUSD","seq":2,
                "data":{"net":3},"ts":7})
        );
    }
}
