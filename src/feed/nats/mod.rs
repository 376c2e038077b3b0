//! Quotes and events from NATS, for nodes that scale out: venue quotes on
//! core subjects `quotecast.quote.<venue>.<symbol>`, metric and keyed
//! events from the JetStream stream [`EVENT_STREAM`] on
//! `quotecast.event.<tenant>.<channel>`, and reliable messages from
//! [`store::RELIABLE_STREAM`], numbered there ([`store`]) so every node
//! gives them the same `seq`. Events are followed with a consumer
//! ([`tail`]), reliable messages with direct gets any replica answers
//! ([`direct`]). Every message is one line of the replay format, so
//! parsing, counting and limits are the replay feed's
//! ([`super::replay::Lines`]).
//!
//! The NATS client runs on a current-thread tokio runtime on this feed's own
//! thread; the shards never see it. Publishing (`POST /v1/publish`) reaches
//! it through [`BusState::publish`]. The client reconnects by itself: while
//! NATS is away no quote arrives, the aggregator marks the feed stale and
//! `prices` subscribers are told `feed_stale`, then `ok` when quotes resume.

mod direct;
mod store;
mod tail;

pub use store::{reliable_stream, Outgoing, Retention, Store, StoreError};

use super::replay::{EventInput, Lines, Replay};
use crate::model::reliable::Sequenced;
use crate::model::symbol::Universe;
use async_nats::jetstream::{self, consumer, stream};
use futures_lite::StreamExt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use store::stamp_of;
use tokio::sync::{mpsc, oneshot};

/// Subjects venue quotes are published on.
pub const QUOTE_SUBJECTS: &str = "quotecast.quote.>";
/// Subjects metric and reliable events are published on.
pub const EVENT_SUBJECTS: &str = "quotecast.event.>";
/// The JetStream stream that keeps events.
pub const EVENT_STREAM: &str = "QUOTECAST_EVENTS";

/// Pause between attempts to set up a consumer while JetStream is
/// unreachable.
pub(super) const RETRY: Duration = Duration::from_secs(1);
/// Stream messages read ahead of the feed.
const TAIL_BUFFER: usize = 1_024;

/// The subject of a venue quote.
pub fn quote_subject(venue: &str, symbol: &str) -> String {
    format!("quotecast.quote.{venue}.{symbol}")
}

/// The subject of an event for `tenant` on `channel` (whose dots separate
/// subject tokens, as in `metrics.trading`).
pub fn event_subject(tenant: &str, channel: &str) -> String {
    let channel: Vec<String> = channel.split('.').map(token).collect();
    format!("quotecast.event.{}.{}", token(tenant), channel.join("."))
}

/// `text` as one subject token: bytes other than ASCII letters, digits,
/// `-` and `_` become `~XX` (hex), so tenants such as `*` (broadcast) or
/// names with dots or spaces stay one token.
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// The servers of `urls` (comma-separated `nats://host:port`), checked
/// now so a typo is a start-up error.
pub fn server_addrs(urls: &str) -> io::Result<Vec<async_nats::ServerAddr>> {
    urls.split(',')
        .map(|url| {
            url.trim().parse().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NATS URL {url:?}: {e}"),
                )
            })
        })
        .collect()
}

/// How a node uses the bus: where it is, how the reliable stream keeps
/// messages, and how far back metric events are replayed at start.
#[derive(Clone, Debug)]
pub struct BusSettings {
    /// NATS server(s), comma-separated.
    pub url: String,
    /// The reliable stream's replicas and per-stream count.
    pub retention: Retention,
    /// Metric events replayed at start (µs back from now), so a node that
    /// starts late computes the same windows as the others.
    pub metric_replay_us: u64,
}

/// The event stream's configuration: file storage, every event subject,
/// `replicas` copies.
pub fn event_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: EVENT_STREAM.into(),
        subjects: vec![EVENT_SUBJECTS.into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// The NATS connection: its state, written by the client's event callback
/// and read by `/healthz`, `/metrics` and the `system` channel, and the way
/// publishers store events on it.
#[derive(Debug)]
pub struct BusState {
    connected: AtomicBool,
    slow_consumer_events: AtomicU64,
    /// How far behind each stream this node reads.
    lags: [StreamLag; 2],
    jobs: mpsc::UnboundedSender<Job>,
}

/// How far behind one stream this node reads.
#[derive(Debug)]
struct StreamLag {
    stream: &'static str,
    /// Messages stored after the last one read, as of the last check.
    pending: AtomicU64,
    /// Whether it has been read to its end once since the node started.
    read_through: AtomicBool,
}

/// A batch to store, and where its outcome goes.
#[derive(Debug)]
struct Job {
    batch: Vec<Outgoing>,
    reply: oneshot::Sender<Result<Vec<Sequenced>, StoreError>>,
}

/// Why a publication was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The client is not connected to NATS now: nothing was tried.
    #[error("the message bus (NATS) is not connected")]
    Disconnected,
    /// Storing stopped part-way (or never started); what was stored is in it.
    #[error(transparent)]
    Failed(#[from] StoreError),
}

impl BusState {
    fn new(jobs: mpsc::UnboundedSender<Job>) -> Self {
        BusState {
            connected: AtomicBool::new(false),
            slow_consumer_events: AtomicU64::new(0),
            lags: [EVENT_STREAM, store::RELIABLE_STREAM].map(|stream| StreamLag {
                stream,
                pending: AtomicU64::new(0),
                read_through: AtomicBool::new(false),
            }),
            jobs,
        }
    }

    /// Stores `batch` in JetStream, in order, for every node; resolves once
    /// JetStream acknowledged all of it, with the `seq`s its reliable
    /// messages got. Runs on any executor (the store works on the feed's
    /// thread).
    pub async fn publish(&self, batch: Vec<Outgoing>) -> Result<Vec<Sequenced>, PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        let (reply, outcome) = oneshot::channel();
        let stopped = || StoreError {
            stored: 0,
            sequenced: Vec::new(),
            reason: "the bus client has stopped".into(),
        };
        self.jobs
            .send(Job { batch, reply })
            .map_err(|_| stopped())?;
        Ok(outcome.await.map_err(|_| stopped())??)
    }

    /// Whether the client is connected to a NATS server now.
    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Each stream and the messages stored after the last one this node
    /// read (its lag).
    pub fn consumer_pending(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.lags
            .iter()
            .map(|lag| (lag.stream, lag.pending.load(Relaxed)))
    }

    /// Whether this node is still replaying what the bus keeps (the metric
    /// span and the reliable history) after its start: `/healthz` keeps it
    /// out of a balancer's rotation until it has read both to their end.
    pub fn replaying(&self) -> bool {
        self.lags.iter().any(|lag| !lag.read_through.load(Relaxed))
    }

    /// The state as JSON, for `/v1/status` and the `system` channel:
    /// `{"connected", "replaying", "slow_consumer_events", "consumer_pending": {stream: n}}`.
    pub fn summary(&self) -> serde_json::Value {
        let pending: serde_json::Map<_, _> = self
            .consumer_pending()
            .map(|(stream, n)| (stream.to_string(), n.into()))
            .collect();
        serde_json::json!({
            "connected": self.connected(),
            "replaying": self.replaying(),
            "slow_consumer_events": self.slow_consumer_events(),
            "consumer_pending": pending,
        })
    }

    /// Records the lag of `stream`; a 0 means it has been read to its end.
    fn set_pending(&self, stream: &str, n: u64) {
        if let Some(lag) = self.lags.iter().find(|lag| lag.stream == stream) {
            lag.pending.store(n, Relaxed);
            if n == 0 {
                lag.read_through.store(true, Relaxed);
            }
        }
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

/// Connects to the bus in the background and feeds what arrives from now
/// on (and the metric events of the last `metric_replay_us`, and every
/// reliable message JetStream keeps). Never fails for an unreachable
/// server: the client keeps trying and the feed is stale until it gets
/// through.
pub fn open(
    settings: BusSettings,
    universe: Arc<Universe>,
    events: EventInput,
) -> io::Result<Replay> {
    let servers = server_addrs(&settings.url)?;
    let (jobs, queued) = mpsc::unbounded_channel();
    let bus = Arc::new(BusState::new(jobs));
    let state = bus.clone();
    let catalogue = events.catalogue.clone();
    let mut feed = Replay::spawn_reader(
        "nats-feed",
        format!("nats:{}", settings.url),
        universe,
        events,
        move |mut lines| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let end = match runtime {
                Ok(rt) => rt.block_on(async {
                    let client = connect(servers, state.clone()).await?;
                    let js = jetstream::new(client.clone());
                    let store = until_ready("the reliable stream", || {
                        Store::open(js.clone(), catalogue.clone(), settings.retention)
                    })
                    .await;
                    tokio::spawn(serve_jobs(store, queued));
                    consume(&client, &js, &settings, &mut lines, state).await
                }),
                Err(e) => Err(e),
            };
            lines.finish(end);
        },
    )?;
    feed.bus = Some(bus);
    Ok(feed)
}

/// A client that keeps (re)connecting to `servers` and reports to `bus`.
async fn connect(
    servers: Vec<async_nats::ServerAddr>,
    bus: Arc<BusState>,
) -> io::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name("quotecast feed")
        .event_callback(move |event| {
            bus.on(&event);
            async {}
        })
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .map_err(io::Error::other)
}

/// Stores each queued batch in turn (one at a time, so the store's memory
/// of each subject's last `seq` stays its own) until the feed is dropped.
async fn serve_jobs(mut store: Store, mut queued: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = queued.recv().await {
        // A publisher that gave up (timed out) must not find it stored later.
        if job.reply.is_closed() {
            continue;
        }
        let _ = job.reply.send(store.store(job.batch).await);
    }
}

/// Hands every quote, event and reliable message to `lines` until the feed
/// is dropped (`Ok`) or a subscription ends for good.
async fn consume(
    client: &async_nats::Client,
    js: &jetstream::Context,
    settings: &BusSettings,
    lines: &mut Lines,
    bus: Arc<BusState>,
) -> io::Result<()> {
    let mut quotes = client
        .subscribe(QUOTE_SUBJECTS)
        .await
        .map_err(io::Error::other)?;
    tracing::info!(
        url = settings.url,
        "nats feed subscribed to {QUOTE_SUBJECTS}"
    );
    let replay_from =
        time::OffsetDateTime::now_utc() - Duration::from_micros(settings.metric_replay_us);
    let (events_tx, mut events) = mpsc::channel(TAIL_BUFFER);
    let start = consumer::DeliverPolicy::ByStartTime {
        start_time: replay_from,
    };
    let config = event_stream(settings.retention.replicas);
    tokio::spawn(tail::tail(
        js.clone(),
        config,
        start,
        events_tx,
        bus.clone(),
    ));
    let (reliable_tx, mut reliable) = mpsc::channel(TAIL_BUFFER);
    let config = reliable_stream(settings.retention);
    tokio::spawn(direct::follow(
        client.clone(),
        js.clone(),
        config,
        reliable_tx,
        bus,
    ));
    loop {
        let more = tokio::select! {
            quote = quotes.next() => match quote {
                Some(m) => lines.push(&m.payload),
                None => return Err(io::Error::other("the NATS quote subscription ended")),
            },
            Some(m) = events.recv() => lines.push_stored(&m.payload, None),
            Some(m) = reliable.recv() => lines.push_stored(&m.payload, stamp_of(m.headers.as_ref())),
        };
        if !more {
            return Ok(());
        }
    }
}

/// Retries `attempt` every [`RETRY`] until JetStream answers it.
pub(super) async fn until_ready<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, async_nats::Error>>,
{
    loop {
        match attempt().await {
            Ok(ready) => return ready,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not ready for {what}; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
