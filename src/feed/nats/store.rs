//! Publishing onto the bus: reliable messages numbered by JetStream so
//! every node delivers them with the same `seq`, and metric and keyed
//! events stored for every node to read.
//!
//! Each reliable stream (a tenant's channel, or one user's notifications)
//! is one subject of the JetStream stream [`RELIABLE_STREAM`]. Its `seq`
//! travels in the `Quotecast-Seq` header, written by the publisher as the
//! subject's last `seq` + 1 and guarded by JetStream's
//! `Nats-Expected-Last-Subject-Sequence`: when another node stored a message
//! on that subject in between, JetStream refuses this one and the publisher
//! reads the new last message and tries again. So each stream's numbers are
//! contiguous and written once, and every node reads the same ones back.
//! A `Nats-Msg-Id` makes a retry after a lost acknowledgement a duplicate
//! JetStream recognises, not a second message. See docs/scale-out.md.

use super::{event_stream, event_subject, token};
use crate::clock;
use crate::model::channel::{Catalogue, ChannelId};
use crate::model::event::Event;
use crate::model::reliable::{self, ReliableKey, Sequenced, Stamp};
use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, context::Publish, stream};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// The JetStream stream that keeps reliable messages.
pub const RELIABLE_STREAM: &str = "QUOTECAST_RELIABLE";
/// Its subjects: `quotecast.reliable.<tenant>.<channel>[.<sub>]`.
pub const RELIABLE_SUBJECTS: &str = "quotecast.reliable.>";
/// The header carrying a reliable message's `seq`.
const SEQ_HEADER: &str = "Quotecast-Seq";
/// The header carrying the time it was stored (UNIX µs), its `ts`.
const TS_HEADER: &str = "Quotecast-Ts";
/// Tries to store one message while other nodes keep getting there first.
const ATTEMPTS: usize = 32;

/// How the reliable stream keeps messages.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Copies JetStream keeps (1, or 3 on a 3-server cluster).
    pub replicas: usize,
    /// Messages kept per reliable stream: the nodes' `history_max`.
    pub per_stream: usize,
}

/// The reliable stream's configuration: file storage, a count per subject.
/// No age limit: a subject whose messages all expired would restart at
/// `seq` 1, so age is applied by each node's history instead.
pub fn reliable_stream(retention: Retention) -> stream::Config {
    stream::Config {
        name: RELIABLE_STREAM.into(),
        subjects: vec![RELIABLE_SUBJECTS.into()],
        storage: stream::StorageType::File,
        num_replicas: retention.replicas,
        max_messages_per_subject: retention.per_stream as i64,
        // Every replica answers reads: see `direct.rs`.
        allow_direct: true,
        ..Default::default()
    }
}

/// The subject of one reliable stream.
pub fn reliable_subject(key: &ReliableKey, cat: &Catalogue) -> String {
    let mut subject = format!(
        "quotecast.reliable.{}.{}",
        token(&key.tenant),
        token(&cat.get(key.channel).name)
    );
    if let Some(sub) = &key.sub {
        subject.push('.');
        subject.push_str(&token(sub));
    }
    subject
}

/// The stamp a stored reliable message carries; `None` without one.
pub fn stamp_of(headers: Option<&HeaderMap>) -> Option<Stamp> {
    let read = |name: &str| headers?.get(name)?.as_str().parse::<u64>().ok();
    Some(Stamp {
        seq: read(SEQ_HEADER)?,
        ts_us: read(TS_HEADER)?,
    })
}

/// One event to store, with the JSON it was published as (what every node
/// parses back).
#[derive(Debug)]
pub struct Outgoing {
    /// The validated event.
    pub event: Event,
    /// Its JSON object.
    pub json: Bytes,
}

/// Why a batch was not stored whole.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct StoreError {
    /// Events of the batch stored before the failure, in order.
    pub stored: usize,
    /// The `seq`s the stored reliable ones got.
    pub sequenced: Vec<Sequenced>,
    /// What failed.
    pub reason: String,
}

/// The subject's last message as this node knows it.
#[derive(Clone, Copy)]
struct Last {
    /// Its JetStream sequence (what `Nats-Expected-Last-Subject-Sequence` names).
    stream_seq: u64,
    /// Its `seq` in the reliable stream.
    seq: u64,
}

/// Stores events in JetStream for every node; one per bus connection, used
/// by one task, so its memory of each subject's last message is its own.
pub struct Store {
    js: jetstream::Context,
    catalogue: Arc<Catalogue>,
    last: HashMap<String, Last>,
    /// Unique per process and message: the `Nats-Msg-Id`.
    id_prefix: String,
    next_id: u64,
}

impl Store {
    /// Creates (or finds) both streams on `js`.
    pub async fn open(
        js: jetstream::Context,
        catalogue: Arc<Catalogue>,
        retention: Retention,
    ) -> Result<Store, async_nats::Error> {
        js.get_or_create_stream(event_stream(retention.replicas))
            .await?;
        let mut reliable = js.get_or_create_stream(reliable_stream(retention)).await?;
        // A stream an older version created lacks direct gets, which every
        // node reads it with (`direct.rs`).
        if !reliable.info().await?.config.allow_direct {
            js.update_stream(stream::Config {
                allow_direct: true,
                ..reliable.cached_info().config.clone()
            })
            .await?;
        }
        Ok(Store {
            js,
            catalogue,
            last: HashMap::new(),
            id_prefix: format!("{}-{}", std::process::id(), clock::now_us()),
            next_id: 0,
        })
    }

    /// Stores `batch` in order; stops at the first failure and says how far
    /// it got. The ranges are the `seq`s the reliable events got.
    pub async fn store(&mut self, batch: Vec<Outgoing>) -> Result<Vec<Sequenced>, StoreError> {
        let mut sequenced = Vec::new();
        for (stored, out) in batch.into_iter().enumerate() {
            let result = match &out.event {
                Event::Reliable(r) => {
                    let key = ReliableKey {
                        tenant: r.tenant.clone(),
                        channel: r.channel,
                        sub: r.sub.clone(),
                    };
                    self.store_reliable(&key, out.json).await.map(|seq| {
                        reliable::record(&mut sequenced, &key, seq);
                    })
                }
                Event::Metric(m) => self.store_event(&m.tenant, m.channel, out.json).await,
                Event::Keyed(k) => self.store_event(&k.tenant, k.channel, out.json).await,
            };
            if let Err(e) = result {
                return Err(StoreError {
                    stored,
                    sequenced,
                    reason: format!("JetStream did not store event {stored}: {e}"),
                });
            }
        }
        Ok(sequenced)
    }

    async fn store_event(
        &self,
        tenant: &str,
        channel: ChannelId,
        json: Bytes,
    ) -> Result<(), async_nats::Error> {
        let subject = event_subject(tenant, &self.catalogue.get(channel).name);
        self.js.publish(subject, json).await?.await?;
        Ok(())
    }

    /// Stores one reliable message as its subject's next `seq`; returns it.
    async fn store_reliable(
        &mut self,
        key: &ReliableKey,
        json: Bytes,
    ) -> Result<u64, async_nats::Error> {
        let subject = reliable_subject(key, &self.catalogue);
        self.next_id += 1;
        let id = format!("{}-{}", self.id_prefix, self.next_id);
        for _ in 0..ATTEMPTS {
            let last = match self.last.get(&subject) {
                Some(last) => *last,
                None => self.read_last(&subject).await?,
            };
            let seq = last.seq + 1;
            let publish = Publish::build()
                .payload(json.clone())
                .message_id(&id)
                .expected_last_subject_sequence(last.stream_seq)
                .header(SEQ_HEADER, seq.to_string().as_str())
                .header(TS_HEADER, clock::now_us().to_string().as_str());
            let acked = self.js.send_publish(subject.clone(), publish).await?.await;
            match acked {
                Ok(ack) if ack.duplicate => {
                    // Stored by an earlier attempt whose ack was lost: its seq
                    // is in the stored copy.
                    let stored = self.read_at(ack.sequence).await?;
                    self.last.insert(subject, stored);
                    return Ok(stored.seq);
                }
                Ok(ack) => {
                    let stored = Last {
                        stream_seq: ack.sequence,
                        seq,
                    };
                    self.last.insert(subject, stored);
                    return Ok(seq);
                }
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                    // Another node stored one first: read the new last one.
                    self.last.remove(&subject);
                }
                Err(e) => {
                    self.last.remove(&subject);
                    return Err(e.into());
                }
            }
        }
        Err(format!("{subject}: other publishers kept storing first ({ATTEMPTS} attempts)").into())
    }

    /// The last message stored on `subject`, or zeros when there is none.
    async fn read_last(&self, subject: &str) -> Result<Last, async_nats::Error> {
        let stream = self.js.get_stream(RELIABLE_STREAM).await?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(msg) => last_of(&msg),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(Last {
                stream_seq: 0,
                seq: 0,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn read_at(&self, stream_seq: u64) -> Result<Last, async_nats::Error> {
        let stream = self.js.get_stream(RELIABLE_STREAM).await?;
        last_of(&stream.get_raw_message(stream_seq).await?)
    }
}

fn last_of(msg: &jetstream::message::StreamMessage) -> Result<Last, async_nats::Error> {
    let stamp = stamp_of(Some(&msg.headers))
        .ok_or_else(|| format!("message {} has no {SEQ_HEADER} header", msg.sequence))?;
    Ok(Last {
        stream_seq: msg.sequence,
        seq: stamp.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelsConfig;

    #[test]
    fn every_reliable_stream_has_its_own_subject() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let key = |tenant: &str, channel: &str, sub: Option<&str>| ReliableKey {
            tenant: tenant.into(),
            channel: cat.find(channel).unwrap().0,
            sub: sub.map(Arc::from),
        };
        assert_eq!(
            reliable_subject(&key("t1", "alerts", None), &cat),
            "quotecast.reliable.t1.alerts"
        );
        assert_eq!(
            reliable_subject(&key("t.1", "notifications", Some("u 1")), &cat),
            "quotecast.reliable.t~2E1.notifications.u~201"
        );
        assert_eq!(
            reliable_subject(&key("*", "alerts", None), &cat),
            "quotecast.reliable.~2A.alerts"
        );
    }

    #[test]
    fn stamps_come_from_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(SEQ_HEADER, "7");
        assert_eq!(stamp_of(Some(&headers)), None);
        headers.insert(TS_HEADER, "1700000000000000");
        assert_eq!(
            stamp_of(Some(&headers)),
            Some(Stamp {
                seq: 7,
                ts_us: 1_700_000_000_000_000
            })
        );
        assert_eq!(stamp_of(None), None);
    }
}
