//! A shard: one glommio executor pinned to one core, with its own
//! SO_REUSEPORT listener, ring consumer, latest-value table, subscriber index,
//! flush wheel and connections. Nothing mutable is shared with other shards.
//!
//! Every tick the shard drains its ring, encodes each changed value ONCE into
//! a frame, marks the subscribed connections dirty and wakes the writers whose
//! flush is due (the rest wait in the [`FlushWheel`]).

use crate::admission::Admission;
use crate::aggregator::AggregatorStats;
use crate::auth::Verifier;
use crate::channel::Catalogue;
use crate::config::Config;
use crate::conflate::{Latest, LatestTable, StreamId};
use crate::conn::Conn;
use crate::entitle::Entitlements;
use crate::event::Event;
use crate::flush::{ConnKey, FlushWheel};
use crate::frame;
use crate::protocol;
use crate::reliable::ReliableStreams;
use crate::ring::{RingConsumer, Update};
use crate::symbol::Universe;
use crate::topic::{ConnIndex, TopicIndex};
use crate::window::MetricStreams;
use hdrhistogram::Histogram;
use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read-only state every shard sees: configuration, universe, channel
/// catalogue, verifier, the publish queue to the aggregator, and the
/// per-shard figures each shard publishes for `/v1/status`.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Symbols and venues.
    pub universe: Arc<Universe>,
    /// Channels, their kinds, roles and metrics.
    pub catalogue: Arc<Catalogue>,
    /// Events accepted by `POST /v1/publish`, on their way to the aggregator
    /// (one batch per request, so a request is published whole or not at all).
    pub publisher: Sender<Vec<Event>>,
    /// Token verification.
    pub verifier: Verifier,
    /// Tenant symbol entitlements, resolved against the universe.
    pub entitlements: Entitlements,
    /// Figures of each shard, written only by that shard.
    pub shard_stats: Vec<ShardStats>,
    /// Figures of the aggregator thread.
    pub aggregator: Arc<AggregatorStats>,
    /// Open connections per IP and per tenant, across shards.
    pub admission: Arc<Admission>,
    draining: AtomicBool,
}

impl Shared {
    /// Bundles the read-only state for `shards` shards.
    pub fn new(
        config: Config,
        universe: Arc<Universe>,
        catalogue: Arc<Catalogue>,
        verifier: Verifier,
        shards: usize,
        aggregator: Arc<AggregatorStats>,
        publisher: Sender<Vec<Event>>,
    ) -> Self {
        let admission = Admission::new(
            config.server.max_connections_per_ip,
            config.server.max_connections_per_tenant,
        );
        Shared {
            entitlements: Entitlements::new(&config.tenants, &universe),
            admission,
            config,
            universe,
            catalogue,
            publisher,
            verifier,
            shard_stats: (0..shards).map(|_| ShardStats::default()).collect(),
            aggregator,
            draining: AtomicBool::new(false),
        }
    }

    /// Starts draining: `/healthz` turns 503 and every connection gets 1001.
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// When the last venue quote arrived (UNIX ms), if that is longer ago
    /// than `feed.feed_stale_after_ms` at `now_us`; `None` while the feed is fresh.
    pub fn feed_stale_since(&self, now_us: u64) -> Option<u64> {
        let last = self.aggregator.last_quote_us.load(Relaxed);
        let stale_after_us = self.config.feed.feed_stale_after_ms.saturating_mul(1_000);
        (last != 0 && now_us.saturating_sub(last) >= stale_after_us).then_some(last / 1_000)
    }

    /// The `/v1/status` document.
    pub fn status_json(&self) -> String {
        let shards: Vec<_> = self
            .shard_stats
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_json(i))
            .collect();
        let sum = |f: fn(&ShardStats) -> &AtomicU64| -> u64 {
            self.shard_stats.iter().map(|s| f(s).load(Relaxed)).sum()
        };
        let agg = self.aggregator.snapshot();
        serde_json::json!({
            "connections": sum(|s| &s.connections),
            "subscriptions": {
                "latest": sum(|s| &s.subscriptions),
                "reliable": sum(|s| &s.reliable_subscriptions),
            },
            "analytics": {
                "window_specs": sum(|s| &s.window_specs),
                "metric_events": sum(|s| &s.metric_events),
                "late_metric_events": sum(|s| &s.late_metric_events),
            },
            "draining": self.is_draining(),
            "feed": {
                "stale": self.feed_stale_since(crate::feed::now_us()).is_some(),
                "last_quote_ms": agg.last_quote_us / 1_000,
            },
            "aggregator": {
                "quotes": agg.quotes,
                "published": agg.published,
                "rejected": agg.rejected,
                "feed_input_errors": agg.feed_input_errors,
                "overruns": agg.overruns,
                "events": agg.events,
            },
            "shards": shards,
        })
        .to_string()
    }
}

/// Figures one shard publishes (relaxed atomics, written once per
/// housekeeping pass, read by `/v1/status` on any shard).
#[derive(Default, Debug)]
pub struct ShardStats {
    /// Open WebSocket connections.
    pub connections: AtomicU64,
    /// Latest-value subscriptions (price and metric streams) across connections.
    pub subscriptions: AtomicU64,
    /// Reliable-stream subscriptions across connections.
    pub reliable_subscriptions: AtomicU64,
    /// Window computations running.
    pub window_specs: AtomicU64,
    /// Metric events received (every shard receives every event).
    pub metric_events: AtomicU64,
    /// Metric events that arrived after their window closed.
    pub late_metric_events: AtomicU64,
    /// Value frames written.
    pub frames: AtomicU64,
    /// Flushes (socket writes) done.
    pub flushes: AtomicU64,
    /// Values conflated away (replaced before sent).
    pub skipped: AtomicU64,
    /// Connections closed as slow consumers (4008).
    pub slow_closes: AtomicU64,
    /// Ring-to-socket latency, microseconds: p50.
    pub latency_p50_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: p99.
    pub latency_p99_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: p99.9.
    pub latency_p999_us: AtomicU64,
    /// Ring-to-socket latency, microseconds: max.
    pub latency_max_us: AtomicU64,
}

impl ShardStats {
    fn to_json(&self, shard: usize) -> serde_json::Value {
        serde_json::json!({
            "shard": shard,
            "connections": self.connections.load(Relaxed),
            "subscriptions": self.subscriptions.load(Relaxed),
            "frames": self.frames.load(Relaxed),
            "flushes": self.flushes.load(Relaxed),
            "skipped": self.skipped.load(Relaxed),
            "slow_closes": self.slow_closes.load(Relaxed),
            "ring_to_socket_us": {
                "p50": self.latency_p50_us.load(Relaxed),
                "p99": self.latency_p99_us.load(Relaxed),
                "p999": self.latency_p999_us.load(Relaxed),
                "max": self.latency_max_us.load(Relaxed),
            },
        })
    }
}

/// Counters a shard keeps locally and publishes to its [`ShardStats`].
#[derive(Default, Debug, Clone, Copy)]
pub struct Counters {
    /// Value frames written.
    pub frames: u64,
    /// Flushes done.
    pub flushes: u64,
    /// Values conflated away.
    pub skipped: u64,
    /// Slow-consumer closes.
    pub slow_closes: u64,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The shard's connections, indexed by [`ConnKey`] (a slab with generations so
/// a reused slot is never mistaken for the connection that left it).
#[derive(Default)]
pub struct ConnTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
}

impl ConnTable {
    /// Inserts the connection built by `make` for its new key.
    pub fn insert(&mut self, make: impl FnOnce(ConnKey) -> Conn) -> ConnKey {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                generation: 0,
                conn: None,
            });
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let key = ConnKey {
            index,
            generation: slot.generation,
        };
        slot.conn = Some(make(key));
        self.len += 1;
        key
    }

    /// The connection of `key`, if it is still open.
    pub fn get_mut(&mut self, key: ConnKey) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    /// The connection at `index` (from the topic index, which never holds stale entries).
    pub fn by_index(&mut self, index: ConnIndex) -> Option<&mut Conn> {
        self.slots.get_mut(index as usize)?.conn.as_mut()
    }

    /// Removes the connection of `key`.
    pub fn remove(&mut self, key: ConnKey) -> Option<Conn> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let conn = slot.conn.take()?;
        self.free.push(key.index);
        self.len -= 1;
        Some(conn)
    }

    /// Every open connection.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.slots.iter_mut().filter_map(|s| s.conn.as_mut())
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The mutable state of one shard; lives on its executor thread only.
pub struct Shard {
    /// Shard number (also its core, when pinned).
    pub id: usize,
    /// Open connections.
    pub conns: ConnTable,
    /// Latest frame of every stream.
    pub table: LatestTable,
    /// Stream → subscribed connections.
    pub topics: TopicIndex,
    /// Per-tenant metric windows and their streams.
    pub metrics: MetricStreams,
    /// Reliable streams: history and subscribers.
    pub reliable: ReliableStreams,
    /// Connections waiting for their next allowed flush.
    pub wheel: FlushWheel,
    /// Ring-to-socket latency in microseconds.
    pub latency: Histogram<u64>,
    /// Local counters, published by housekeeping.
    pub counters: Counters,
    /// Minimum gap between two flushes of one connection.
    pub flush_interval: Duration,
    shared: Arc<Shared>,
    scratch: Vec<u8>,
    due: Vec<ConnKey>,
    changed: Vec<StreamId>,
    connections_made: u64,
    /// Whether the last housekeeping found the feed stale.
    feed_stale: bool,
}

impl Shard {
    fn new(id: usize, shared: Arc<Shared>) -> Self {
        let cfg = &shared.config.server;
        let channels = &shared.config.channels;
        let flush_interval = cfg.flush_interval();
        Shard {
            id,
            conns: ConnTable::default(),
            table: LatestTable::default(),
            topics: TopicIndex::default(),
            metrics: MetricStreams::new(
                shared.catalogue.clone(),
                shared.universe.symbol_count() as u32,
                &channels.windows_ms,
            ),
            reliable: ReliableStreams::new(
                channels.history_max,
                channels.history_secs.saturating_mul(1_000_000),
            ),
            wheel: FlushWheel::new(Instant::now(), cfg.tick(), flush_interval),
            // 1 µs to 60 s at 3 significant figures; the bounds are constants.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).expect("3 significant figures is valid")),
            counters: Counters::default(),
            flush_interval,
            shared,
            scratch: Vec::with_capacity(512),
            due: Vec::new(),
            changed: Vec::new(),
            connections_made: 0,
            feed_stale: false,
        }
    }

    /// The shared read-only state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A new connection id, `<shard>-<n>`.
    pub fn next_conn_id(&mut self) -> String {
        self.connections_made += 1;
        format!("{}-{}", self.id, self.connections_made)
    }

    /// Applies one ring record. A price is encoded once, stored and its
    /// subscribers marked dirty; a metric event goes into the windows; a
    /// reliable message into its history and its subscribers' queues.
    pub fn apply(&mut self, update: Update, now: Instant) {
        match update {
            Update::Price(price) => {
                if self.feed_stale {
                    self.check_feed_recovered(now);
                }
                protocol::write_price(&price, &self.shared.universe, &mut self.scratch);
                let frame = frame::text(&self.scratch);
                let stream = StreamId(price.symbol.0);
                let latest = Latest {
                    seq: price.seq,
                    ts_us: price.ts_us,
                    payload_at: frame.len() - self.scratch.len(),
                    frame,
                };
                if self.table.publish(stream, latest) {
                    self.mark_dirty(stream, now);
                }
            }
            Update::Metric(event) => self.metrics.on_event(event, crate::feed::now_us()),
            Update::Reliable(msg) => {
                let limit = self.shared.config.channels.max_pending_reliable;
                let frame = msg.frame.clone();
                for &key in self.reliable.on_message(msg, crate::feed::now_us()) {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.push_reliable(frame.clone(), limit);
                        conn.request_flush(&mut self.wheel, now);
                    }
                }
            }
        }
    }

    /// On the first price after a stall, tells the subscribers `status: ok`
    /// ahead of that price (control frames go first in a flush) instead of
    /// waiting for housekeeping. A price republished by venue expiry while
    /// the feed is still silent does not count.
    fn check_feed_recovered(&mut self, now: Instant) {
        if self
            .shared
            .feed_stale_since(crate::feed::now_us())
            .is_some()
        {
            return;
        }
        self.feed_stale = false;
        let price_streams = self.shared.universe.symbol_count() as u32;
        for conn in self.conns.iter_mut() {
            conn.note_feed(None, price_streams);
            conn.request_flush(&mut self.wheel, now);
        }
    }

    /// Closes the metric windows that are due and marks the subscribers of
    /// every value that changed.
    pub fn close_windows(&mut self, now: Instant) {
        let mut changed = std::mem::take(&mut self.changed);
        self.metrics
            .close_due(crate::feed::now_us(), &mut self.table, &mut changed);
        for stream in changed.drain(..) {
            self.mark_dirty(stream, now);
        }
        self.changed = changed;
    }

    fn mark_dirty(&mut self, stream: StreamId, now: Instant) {
        for &index in self.topics.subscribers(stream) {
            if let Some(conn) = self.conns.by_index(index) {
                if !conn.dirty {
                    conn.dirty = true;
                    conn.request_flush(&mut self.wheel, now);
                }
            }
        }
    }

    /// Wakes the writers whose next flush has come due.
    pub fn fire_wheel(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.drain_due(now, &mut due);
        for key in due.drain(..) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.scheduled = false;
                conn.request_flush(&mut self.wheel, now);
            }
        }
        self.due = due;
    }

    /// Asks the writer of `key` to flush now or when its interval allows.
    pub fn request_flush(&mut self, key: ConnKey, now: Instant) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.request_flush(&mut self.wheel, now);
        }
    }

    /// Removes a finished connection and its subscriptions.
    pub fn remove_conn(&mut self, key: ConnKey) {
        if let Some(mut conn) = self.conns.remove(key) {
            for stream in conn.subs.clear() {
                self.topics.unsubscribe(stream, key.index);
            }
            self.release_channels(key, &conn.metric_subs, &conn.reliable_subs);
        }
    }

    /// Periodic pass over every connection: heartbeats, idle and token
    /// expiry, drain; then publishes the shard's figures. Runs a few times a
    /// second, so its cost per connection stays off the per-tick path.
    pub fn housekeeping(&mut self, now: Instant, now_s: u64) {
        let cfg = &self.shared.config.server;
        let heartbeat = cfg.heartbeat();
        let draining = self.shared.is_draining();
        let feed_stale = self.shared.feed_stale_since(crate::feed::now_us());
        self.feed_stale = feed_stale.is_some();
        let price_streams = self.shared.universe.symbol_count() as u32;
        for conn in self.conns.iter_mut() {
            conn.housekeeping(now, now_s, heartbeat, draining);
            conn.note_feed(feed_stale, price_streams);
            conn.request_flush(&mut self.wheel, now);
        }
        self.reliable.prune(crate::feed::now_us());
        self.publish_stats();
    }

    fn publish_stats(&self) {
        let s = &self.shared.shard_stats[self.id];
        s.connections.store(self.conns.len() as u64, Relaxed);
        s.subscriptions.store(self.topics.total() as u64, Relaxed);
        s.reliable_subscriptions
            .store(self.reliable.subscriptions() as u64, Relaxed);
        s.window_specs.store(self.metrics.specs() as u64, Relaxed);
        let windows = self.metrics.counters();
        s.metric_events.store(windows.events, Relaxed);
        s.late_metric_events.store(windows.late, Relaxed);
        s.frames.store(self.counters.frames, Relaxed);
        s.flushes.store(self.counters.flushes, Relaxed);
        s.skipped.store(self.counters.skipped, Relaxed);
        s.slow_closes.store(self.counters.slow_closes, Relaxed);
        s.latency_p50_us
            .store(self.latency.value_at_quantile(0.5), Relaxed);
        s.latency_p99_us
            .store(self.latency.value_at_quantile(0.99), Relaxed);
        s.latency_p999_us
            .store(self.latency.value_at_quantile(0.999), Relaxed);
        s.latency_max_us.store(self.latency.max(), Relaxed);
    }

    fn summary(&self) -> String {
        let c = self.counters;
        format!(
            "shard {}: frames={} flushes={} skipped={} slow_closes={} ring_to_socket_us p50={} p99={} p99.9={} max={}",
            self.id,
            c.frames,
            c.flushes,
            c.skipped,
            c.slow_closes,
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.latency.value_at_quantile(0.999),
            self.latency.max()
        )
    }
}

/// A shard's state as its tasks hold it: the `RefCell` is only ever borrowed
/// between awaits, never across one.
#[derive(Clone)]
pub struct ShardHandle {
    inner: Rc<RefCell<Shard>>,
    shared: Arc<Shared>,
}

impl ShardHandle {
    /// The shared read-only state.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Borrows the shard state. Never hold the borrow across an `.await`.
    pub fn state(&self) -> RefMut<'_, Shard> {
        self.inner.borrow_mut()
    }
}

const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(100);

/// Runs one shard until the node has drained: accepts connections on
/// `listener`, drains `ring` every tick, and does housekeeping.
pub async fn run(
    id: usize,
    shared: Arc<Shared>,
    listener: glommio::net::TcpListener,
    mut ring: RingConsumer,
) {
    let handle = ShardHandle {
        inner: Rc::new(RefCell::new(Shard::new(id, shared.clone()))),
        shared: shared.clone(),
    };
    let accept = glommio::spawn_local(accept_loop(handle.clone(), listener));
    let tick = shared.config.server.tick();
    let mut next_housekeeping = Instant::now();
    let mut drain_deadline = None;
    loop {
        let now = Instant::now();
        {
            let mut shard = handle.state();
            while let Ok(update) = ring.pop() {
                shard.apply(update, now);
            }
            shard.close_windows(now);
            shard.fire_wheel(now);
            if now >= next_housekeeping {
                shard.housekeeping(now, crate::feed::now_us() / 1_000_000);
                next_housekeeping = now + HOUSEKEEPING_EVERY;
            }
        }
        if shared.is_draining() {
            let deadline =
                *drain_deadline.get_or_insert(now + shared.config.server.drain_timeout());
            if handle.state().conns.is_empty() || now >= deadline {
                break;
            }
        }
        glommio::timer::sleep(tick).await;
    }
    drop(accept);
    let shard = handle.state();
    shard.publish_stats();
    tracing::info!("{}", shard.summary());
}

async fn accept_loop(handle: ShardHandle, listener: glommio::net::TcpListener) {
    let send_buffer = handle.shared().config.server.send_buffer_bytes;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                if send_buffer > 0 {
                    set_send_buffer(&stream, send_buffer);
                }
                glommio::spawn_local(crate::isolate::catch_panic(
                    crate::http::serve(handle.clone(), stream),
                    |msg| tracing::error!("request task panicked: {msg}"),
                ))
                .detach();
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the error.
                tracing::warn!("shard {}: accept failed: {e}", handle.state().id);
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Caps the kernel send buffer so a slow reader falls behind in our
/// conflation table (latest values) instead of in a deep kernel queue.
fn set_send_buffer(stream: &glommio::net::TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt on a socket fd we own, with a pointer to a c_int and its size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
