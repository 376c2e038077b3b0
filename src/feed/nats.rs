//! Quotes and events from NATS: venue quotes on core subjects
//! `quotecast.quote.<venue>.<symbol>` and metric and reliable events from the
//! JetStream stream [`EVENT_STREAM`] on `quotecast.event.<tenant>.<channel>`.
//! Every message is one line of the replay format, so parsing, counting and
//! limits are the replay feed's ([`super::replay::Lines`]).
//!
//! The NATS client runs on a current-thread tokio runtime on this feed's own
//! thread; the shards never see it. The client reconnects by itself: while
//! NATS is away no quote arrives, the aggregator marks the feed stale and
//! `prices` subscribers are told `feed_stale`, then `ok` when quotes resume.

use super::replay::{EventInput, Lines, Replay};
use crate::model::symbol::Universe;
use async_nats::jetstream::{self, consumer, stream};
use futures_lite::StreamExt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Subjects venue quotes are published on.
pub const QUOTE_SUBJECTS: &str = "quotecast.quote.>";
/// Subjects metric and reliable events are published on.
pub const EVENT_SUBJECTS: &str = "quotecast.event.>";
/// The JetStream stream that keeps events.
pub const EVENT_STREAM: &str = "QUOTECAST_EVENTS";

/// Pause between attempts to set up the event consumer while JetStream is
/// unreachable.
const RETRY: Duration = Duration::from_secs(1);

/// The subject of a venue quote.
pub fn quote_subject(venue: &str, symbol: &str) -> String {
    format!("quotecast.quote.{venue}.{symbol}")
}

/// The subject of an event for `tenant` on `channel`.
pub fn event_subject(tenant: &str, channel: &str) -> String {
    format!("quotecast.event.{tenant}.{channel}")
}

/// The event stream's configuration: file storage, every event subject.
pub fn event_stream() -> stream::Config {
    stream::Config {
        name: EVENT_STREAM.into(),
        subjects: vec![EVENT_SUBJECTS.into()],
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// The state of the NATS connection, written by the client's event
/// callback and read by `/healthz`, `/metrics` and the `system` channel.
#[derive(Debug, Default)]
pub struct BusState {
    connected: AtomicBool,
    slow_consumer_events: AtomicU64,
}

impl BusState {
    /// Whether the client is connected to a NATS server now.
    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Times the client dropped messages because this node read them
    /// slower than they arrived (each event stands for one or more lost).
    pub fn slow_consumer_events(&self) -> u64 {
        self.slow_consumer_events.load(Relaxed)
    }

    fn on(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Connected => self.connected.store(true, Relaxed),
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                self.connected.store(false, Relaxed)
            }
            async_nats::Event::SlowConsumer(_) => {
                self.slow_consumer_events.fetch_add(1, Relaxed);
                tracing::warn!(
                    event = "bus_slow_consumer",
                    "NATS dropped messages: this node reads its subjects slower than they arrive"
                );
            }
            other => tracing::info!(event = "bus", "nats: {other}"),
        }
    }
}

/// Connects to `url` (comma-separated servers) in the background and feeds
/// what arrives from now on. Never fails for an unreachable server: the
/// client keeps trying and the feed is stale until it gets through.
pub fn open(url: &str, universe: Arc<Universe>, events: EventInput) -> io::Result<Replay> {
    let url = url.to_string();
    let since = time::OffsetDateTime::now_utc();
    let bus = Arc::new(BusState::default());
    let state = bus.clone();
    let mut feed = Replay::spawn_reader(
        "nats-feed",
        format!("nats:{url}"),
        universe,
        events,
        move |mut lines| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let end = match runtime {
                Ok(rt) => rt.block_on(consume(&url, since, &mut lines, state)),
                Err(e) => Err(e),
            };
            lines.finish(end);
        },
    )?;
    feed.bus = Some(bus);
    Ok(feed)
}

/// Hands every quote and event message to `lines` until the feed is dropped
/// (`Ok`) or the connection is gone for good.
async fn consume(
    url: &str,
    since: time::OffsetDateTime,
    lines: &mut Lines,
    bus: Arc<BusState>,
) -> io::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .name("quotecast feed")
        .event_callback(move |event| {
            bus.on(&event);
            async {}
        })
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(io::Error::other)?;
    let mut quotes = client
        .subscribe(QUOTE_SUBJECTS)
        .await
        .map_err(io::Error::other)?;
    tracing::info!(url, "nats feed subscribed to {QUOTE_SUBJECTS}");
    let mut events = event_messages(client, since).await;
    loop {
        let more = tokio::select! {
            quote = quotes.next() => match quote {
                Some(m) => lines.push(&m.payload),
                None => return Err(io::Error::other("the NATS quote subscription ended")),
            },
            event = events.next() => match event {
                Some(Ok(m)) => lines.push(&m.payload),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "nats event consumer");
                    true
                }
                None => return Err(io::Error::other("the NATS event consumer ended")),
            },
        };
        if !more {
            return Ok(());
        }
    }
}

/// The events stored since `since` and every one after, from an ordered
/// consumer (it recreates itself after a gap or a reconnect). Retries
/// until JetStream answers.
async fn event_messages(
    client: async_nats::Client,
    since: time::OffsetDateTime,
) -> consumer::pull::Ordered {
    let js = jetstream::new(client);
    loop {
        match ordered_consumer(&js, since).await {
            Ok(messages) => {
                tracing::info!("nats feed consuming stream {EVENT_STREAM}");
                return messages;
            }
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not ready for the event stream; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn ordered_consumer(
    js: &jetstream::Context,
    since: time::OffsetDateTime,
) -> Result<consumer::pull::Ordered, async_nats::Error> {
    let stream = js.get_or_create_stream(event_stream()).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: since },
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}
