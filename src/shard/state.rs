//! The mutable state of one shard and what happens to it: ring records
//! applied, windows closed, the flush wheel fired, housekeeping, and the
//! connection events its network tasks report.

use super::conns::ConnTable;
use super::metrics::{ShardCounts, ShardHistograms};
use super::node::Node;
use super::system::SystemFeed;
use crate::analytics::calendar::CalendarStreams;
use crate::analytics::keyed::KeyedStreams;
use crate::analytics::reliable::ReliableStreams;
use crate::analytics::window::MetricStreams;
use crate::auth::Claims;
use crate::clock;
use crate::fanout::latest::{Latest, LatestTable, StreamId};
use crate::fanout::outbox::{Flush, Outbox};
use crate::fanout::topic::TopicIndex;
use crate::fanout::wheel::{ConnKey, FlushWheel};
use crate::fanout::wire::Wire;
use crate::fd::batch::{SendBatch, Sent};
use crate::frame::deflate::DeflateUse;
use crate::frame::{self, CloseCode, FrameError, Incoming};
use crate::ingest::ring::Update;
use crate::model::channel::ChannelKind;
use crate::protocol::{self, ClientOp, ErrorCode, OpError, SubscribeOp};
use crate::session::{self, LatestChannels, Session, Streams};
use crate::sse::Cursor;
use bytes::Bytes;
use hdrhistogram::Histogram;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod direct;
mod figures;
mod sleep;

/// How a connection ended, for the disconnect log.
#[derive(Debug, Clone, Copy)]
pub struct ConnEnd {
    /// The close code it was sent.
    pub code: CloseCode,
    /// The close reason it was sent (empty for a normal closure).
    pub reason: &'static str,
    /// Latest-value frames it was sent.
    pub frames: u64,
}

/// How often subscriptions are recounted per channel.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// Counters a shard keeps locally and publishes to its [`super::ShardStats`].
#[derive(Default, Debug, Clone, Copy)]
struct Counters {
    frames: u64,
    flushes: u64,
    skipped: u64,
    slow_closes: u64,
    bytes: u64,
    socket_full_writes: u64,
}

/// The state of one shard; lives on its executor thread only.
pub struct Shard {
    id: usize,
    conns: ConnTable,
    streams: Streams,
    /// Connections waiting for their next allowed flush.
    wheel: FlushWheel,
    /// Ring-to-socket latency in microseconds.
    latency: Histogram<u64>,
    counters: Counters,
    /// Op results and close codes, for `/metrics`.
    counts: ShardCounts,
    /// Fixed-bucket histograms, for `/metrics`.
    histograms: ShardHistograms,
    /// Most records found waiting in the ring since the last housekeeping.
    ring_depth_max: usize,
    /// Most connections a write pass left due since the last housekeeping.
    unserved_max: usize,
    /// Longest turn of the loop since the last housekeeping.
    cycle_max: Duration,
    /// When subscriptions were last recounted per channel.
    last_recount: Option<Instant>,
    /// The channels price and figures streams are counted under.
    latest_channels: LatestChannels,
    /// The `system` channel's figures, published once a second.
    system: SystemFeed,
    /// Minimum gap between two flushes of one connection.
    flush_interval: Duration,
    node: Arc<Node>,
    scratch: Vec<u8>,
    /// The write pass's buffers, one lent to each connection it writes
    /// until its write is sent: the copy of the frames lands in memory
    /// already in cache, and a connection the pass serves holds no buffer
    /// of its own between flushes.
    spare_bufs: Vec<Vec<u8>>,
    /// The write pass's writes, sent [`direct::SEND_BATCH`] at a time.
    sends: SendBatch<direct::DueWrite>,
    /// The last batch's writes with their results, kept for its capacity.
    sent: Vec<Sent<direct::DueWrite>>,
    due: Vec<ConnKey>,
    changed: Vec<StreamId>,
    connections_made: u64,
    /// Whether the last housekeeping found the feed stale.
    feed_stale: bool,
    /// How the loop sleeps and what wakes it.
    sleep: sleep::LoopSleep,
}

impl Shard {
    /// An empty shard number `id` of `node`.
    pub fn new(id: usize, node: Arc<Node>) -> Self {
        let cfg = &node.config.server;
        let channels = &node.config.channels;
        let flush_interval = cfg.flush_interval();
        let mut reliable = ReliableStreams::new(
            channels.history_max,
            channels.history_secs.saturating_mul(1_000_000),
        );
        for (id, c) in node.catalogue.iter() {
            if let Some((keep_max, secs)) = c.history {
                reliable.keep_for(id, keep_max, secs.saturating_mul(1_000_000));
            }
        }
        let of_kind = |kind| {
            let mut channels = node.catalogue.iter();
            channels.find(|(_, c)| c.kind == kind).map(|(id, _)| id)
        };
        let latest_channels = LatestChannels {
            prices: of_kind(ChannelKind::Prices),
            system: of_kind(ChannelKind::System),
        };
        Shard {
            id,
            conns: ConnTable::default(),
            streams: Streams {
                table: LatestTable::default(),
                topics: TopicIndex::default(),
                metrics: MetricStreams::new(node.catalogue.clone(), &channels.windows_ms),
                calendar: CalendarStreams::new(node.catalogue.clone(), &channels.calendar),
                keyed: KeyedStreams::default(),
                reliable,
                timed_work_added: false,
            },
            wheel: FlushWheel::new(Instant::now(), cfg.tick(), flush_interval),
            // 1 µs to 60 s at 3 significant figures; the bounds are constants.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).expect("3 significant figures is valid")),
            counters: Counters::default(),
            counts: ShardCounts::default(),
            histograms: ShardHistograms::default(),
            ring_depth_max: 0,
            unserved_max: 0,
            cycle_max: Duration::ZERO,
            last_recount: None,
            latest_channels,
            system: SystemFeed::default(),
            flush_interval,
            node,
            scratch: Vec::with_capacity(512),
            spare_bufs: Vec::with_capacity(direct::SEND_BATCH),
            sends: SendBatch::new(direct::SEND_BATCH),
            sent: Vec::with_capacity(direct::SEND_BATCH),
            due: Vec::new(),
            changed: Vec::new(),
            connections_made: 0,
            feed_stale: false,
            sleep: sleep::LoopSleep::default(),
        }
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
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
                protocol::write_price(&price, &self.node.universe, &mut self.scratch);
                let frame = frame::text(&self.scratch);
                let stream = StreamId::price(price.symbol);
                let latest = Latest {
                    seq: price.seq,
                    ts_us: price.ts_us,
                    payload_at: frame.len() - self.scratch.len(),
                    frame,
                };
                if self.streams.table.publish(stream, latest) {
                    self.mark_dirty(stream, now);
                }
            }
            Update::Metric(event) => {
                self.streams.calendar.on_event(&event);
                self.streams.metrics.on_event(event, clock::now_us());
            }
            Update::Published(receipt) => receipt.shard_applied(),
            Update::Keyed(msg) => {
                let (stream, joining) =
                    self.streams.keyed.on_message(&msg, &mut self.streams.table);
                // A key published for the first time joins the subscriptions
                // whose patterns take it; its first value goes as a live update.
                for index in joining {
                    if let Some(session) = self.conns.by_index(index) {
                        session.outbox_mut().subs_mut().add(stream, 0);
                        self.streams.topics.subscribe(stream, index);
                    }
                }
                self.mark_dirty(stream, now);
            }
            Update::Reliable(msg) => {
                let limit = self.node.config.channels.max_pending_reliable;
                let shared = msg.clone();
                for key in self.streams.reliable.on_message(msg, clock::now_us()) {
                    if let Some(session) = self.conns.get_mut(key) {
                        let outbox = session.outbox_mut();
                        outbox.push_reliable(&shared, limit);
                        outbox.request_flush(&mut self.wheel, now);
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
        if self.node.feed_stale_since(clock::now_us()).is_some() {
            return;
        }
        self.feed_stale = false;
        for session in self.conns.iter_mut() {
            session.note_feed(None);
            session.outbox_mut().request_flush(&mut self.wheel, now);
        }
    }

    /// Closes the metric windows that are due and marks the subscribers of
    /// every value that changed.
    pub fn close_windows(&mut self, now: Instant) {
        let mut changed = std::mem::take(&mut self.changed);
        let streams = &mut self.streams;
        let now_us = clock::now_us();
        streams
            .metrics
            .close_due(now_us, &mut streams.table, &mut changed);
        streams
            .calendar
            .publish_due(now_us, &mut streams.table, &mut changed);
        for stream in changed.drain(..) {
            self.mark_dirty(stream, now);
        }
        self.changed = changed;
    }

    fn mark_dirty(&mut self, stream: StreamId, now: Instant) {
        for &index in self.streams.topics.subscribers(stream) {
            self.conns.mark_dirty(index, &mut self.wheel, now);
        }
    }

    /// Wakes the writers whose next flush has come due.
    pub fn fire_wheel(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.drain_due(now, &mut due);
        for key in due.drain(..) {
            if let Some(session) = self.conns.get_mut(key) {
                session.outbox_mut().wheel_fired(&mut self.wheel, now);
            }
        }
        self.due = due;
    }

    /// Periodic pass over every connection: heartbeats, idle and token
    /// expiry, drain; then publishes the shard's figures. Runs a few times a
    /// second, so its cost per connection stays off the per-turn path.
    pub fn housekeeping(&mut self, now: Instant) {
        let now_us = clock::now_us();
        let heartbeat = self.node.config.server.heartbeat();
        let draining = self.node.is_draining();
        let feed_stale = self.node.feed_stale_since(now_us);
        self.feed_stale = feed_stale.is_some();
        let (mut lagging, mut backlog) = (0, 0);
        for session in self.conns.iter_mut() {
            session.housekeeping(now, now_us / 1_000_000, heartbeat, draining);
            session.note_feed(feed_stale);
            let outbox = session.outbox_mut();
            outbox.request_flush(&mut self.wheel, now);
            lagging += u64::from(outbox.is_behind());
            backlog += outbox.reliable_backlog() as u64;
        }
        self.streams.reliable.prune(now_us);
        let m = &self.node.shard_stats[self.id].metrics;
        m.lagging.store(lagging, Relaxed);
        m.reliable_backlog.store(backlog, Relaxed);
        m.ring_depth
            .store(std::mem::take(&mut self.ring_depth_max) as u64, Relaxed);
        m.due_unserved
            .store(std::mem::take(&mut self.unserved_max) as u64, Relaxed);
        let cycle_max = std::mem::take(&mut self.cycle_max);
        m.cycle_max_us.store(cycle_max.as_micros() as u64, Relaxed);
        if self.last_recount.is_none_or(|at| now >= at + RECOUNT_EVERY) {
            self.last_recount = Some(now);
            self.recount_subscriptions();
        }
        self.publish_stats();
        if let Some(latest) = self.system.next(&self.node, now) {
            if self.streams.table.publish(StreamId::system(), latest) {
                self.mark_dirty(StreamId::system(), now);
            }
        }
    }

    // --- what the connection tasks report ---

    /// Opens a session for `claims` speaking `wire` (`deflate` when it
    /// negotiated permessage-deflate) and queues its `welcome`; the shard
    /// writes to `direct` itself when given (a plain socket). Returns its key
    /// and the connection id the welcome names.
    pub fn open(
        &mut self,
        claims: Claims,
        wire: Wire,
        deflate: Option<DeflateUse>,
        direct: Option<RawFd>,
    ) -> (ConnKey, String) {
        let node = self.node.clone();
        let cfg = &node.config.server;
        self.connections_made += 1;
        let conn = format!("{}-{}", self.id, self.connections_made);
        let welcome = protocol::Welcome {
            conn: &conn,
            shard: self.id,
            server_time: clock::now_ms(),
            session_expires: claims.exp.saturating_mul(1000),
            heartbeat_ms: cfg.heartbeat_ms,
            max_rate_hz: cfg.max_rate_hz,
        }
        .to_json();
        let allowed = node.entitlements.allowed(&claims, &node.universe);
        let now = Instant::now();
        let key = self
            .conns
            .insert(|key| Session::new(key, wire, claims, allowed, cfg, deflate, now));
        self.with_outbox(key, |outbox, wheel| {
            if let Some(fd) = direct {
                outbox.write_directly(fd);
            }
            outbox.push_json(&welcome);
            outbox.request_flush(wheel, now);
        });
        (key, conn)
    }

    /// Opens an SSE session for `claims` and carries out its subscribe
    /// `ops` as if they were its first messages (rate limit included).
    pub fn open_sse(
        &mut self,
        claims: Claims,
        ops: Vec<SubscribeOp>,
        direct: Option<RawFd>,
    ) -> (ConnKey, String) {
        let (key, conn) = self.open(claims, Wire::Sse(Cursor::default()), None, direct);
        let now = Instant::now();
        let Shard {
            conns,
            streams,
            node,
            counts,
            ..
        } = self;
        if let Some(session) = conns.get_mut(key) {
            for op in ops {
                let op = Ok(ClientOp::Subscribe(op));
                counts.op(session::handle_parsed(
                    session,
                    op,
                    now,
                    streams,
                    node.rules(),
                ));
            }
        }
        self.request_flush(key, now);
        (key, conn)
    }

    /// Runs `f` on the outbox of `key` (if still open) and the flush wheel.
    fn with_outbox<R>(
        &mut self,
        key: ConnKey,
        f: impl FnOnce(&mut Outbox, &mut FlushWheel) -> R,
    ) -> Option<R> {
        let session = self.conns.get_mut(key)?;
        Some(f(session.outbox_mut(), &mut self.wheel))
    }

    /// The client sent bytes.
    pub fn received(&mut self, key: ConnKey, now: Instant) {
        if let Some(session) = self.conns.get_mut(key) {
            session.received(now);
        }
    }

    /// Handles one client message; returns false when the reader should stop.
    pub fn on_message(&mut self, key: ConnKey, msg: Incoming, now: Instant) -> bool {
        // Disjoint borrows: the session, the streams it changes, the rules.
        let Shard {
            conns,
            streams,
            node,
            ..
        } = self;
        let Some(session) = conns.get_mut(key) else {
            return false;
        };
        let closing = session.outbox().is_closing();
        let keep_reading = match msg {
            // The reader refuses unsendable close codes with 1002, so any
            // close that reaches here is answered with a normal one.
            Incoming::Close(_) => {
                session.outbox_mut().request_close(CloseCode::NORMAL);
                false
            }
            _ if closing => true,
            Incoming::Ping(payload) => {
                session.on_control_frame(Some(&payload), now);
                true
            }
            Incoming::Pong => {
                session.on_control_frame(None, now);
                true
            }
            Incoming::Binary(_) => {
                let err = OpError::new(
                    None,
                    ErrorCode::BadRequest,
                    "binary frames are not supported",
                );
                session.outbox_mut().push_json(&err.to_json());
                true
            }
            Incoming::Text(mut text) => {
                let outcome = session::handle_op(session, &mut text, now, streams, node.rules());
                self.counts.op(outcome);
                true
            }
        };
        self.request_flush(key, now);
        keep_reading
    }

    /// The client broke the WebSocket rules: close with the matching code.
    pub fn on_frame_error(&mut self, key: ConnKey, e: FrameError) {
        self.with_outbox(key, |outbox, _| {
            outbox.request_close_with_reason(e.close_code(), e.close_reason())
        });
        self.request_flush(key, Instant::now());
    }

    /// The client's side of the connection ended.
    pub fn reader_finished(&mut self, key: ConnKey) {
        self.with_outbox(key, |outbox, _| outbox.reader_finished());
    }

    /// Asks the writer of `key` to flush now or when its interval allows.
    fn request_flush(&mut self, key: ConnKey, now: Instant) {
        self.with_outbox(key, |outbox, wheel| outbox.request_flush(wheel, now));
    }

    /// See [`crate::fanout::outbox::Outbox::poll_writer`]; ready (false) once the connection is gone.
    pub fn poll_writer(&mut self, key: ConnKey, cx: &mut Context<'_>) -> Poll<bool> {
        self.with_outbox(key, |outbox, _| outbox.poll_writer(cx))
            .unwrap_or(Poll::Ready(false))
    }

    /// Ready once the client stopped reading (or the connection is gone).
    pub fn poll_reader_done(&mut self, key: ConnKey, cx: &mut Context<'_>) -> Poll<()> {
        self.with_outbox(key, |outbox, _| outbox.poll_reader_done(cx))
            .unwrap_or(Poll::Ready(()))
    }

    /// Builds the next write of `key` (or gives back the rest of one the
    /// shard began).
    pub fn build_flush(&mut self, key: ConnKey, now: Instant) -> Option<Flush> {
        let session = self.conns.get_mut(key)?;
        let flush =
            session
                .outbox_mut()
                .build_flush(&mut self.streams.table, self.flush_interval, now);
        self.conns.flush_built(key);
        if flush.resumed {
            return Some(flush);
        }
        self.counters.frames += flush.frames;
        self.counters.skipped += flush.skipped;
        self.counters.flushes += 1;
        self.counters.bytes += flush.buf.len() as u64;
        Some(flush)
    }

    /// Gives `key` back the buffer its writer task wrote, for its next flush.
    pub fn keep_write_buffer(&mut self, key: ConnKey, buf: Vec<u8>) {
        if let Some(session) = self.conns.get_mut(key) {
            session.outbox_mut().keep_write_buffer(buf);
        }
    }

    /// Records a finished write of `key` (`unsent` reads the bytes the kernel
    /// has not sent yet) and schedules the next flush if more is due.
    pub fn finish_write(&mut self, key: ConnKey, started: Instant, unsent: impl FnOnce() -> usize) {
        let interval = self.flush_interval;
        // Bytes in flight do not count (see `fd::unsent_bytes`), so a client
        // far away that reads is not held behind by its round trip.
        let caught_up_bytes = self.node.config.server.send_buffer_bytes / 2;
        let now = Instant::now();
        let Some(session) = self.conns.get_mut(key) else {
            return;
        };
        let oldest = session.outbox_mut().finish_write(
            started,
            interval,
            || unsent() <= caught_up_bytes,
            &mut self.wheel,
            now,
        );
        if let Some(ts_us) = oldest {
            let age_us = clock::now_us().saturating_sub(ts_us).max(1);
            let _ = self.latency.record(age_us);
            self.histograms.ring_to_socket.record_us(age_us);
        }
    }

    /// Whether `key` sent its close frame (or is gone).
    pub fn close_sent(&mut self, key: ConnKey) -> bool {
        self.conns
            .get_mut(key)
            .is_none_or(|s| s.outbox().close_sent())
    }

    /// `key` stayed behind too long: counts it and returns the 4008 close
    /// frame to append to the write in progress.
    pub fn close_as_slow(&mut self, key: ConnKey) -> Option<Bytes> {
        self.counters.slow_closes += 1;
        self.conns.get_mut(key)?.outbox_mut().close_as_slow()
    }

    /// Removes a finished connection and its subscriptions; how it ended.
    pub fn remove(&mut self, key: ConnKey) -> Option<ConnEnd> {
        let mut session = self.conns.remove(key)?;
        let outbox = session.outbox();
        // A connection that ended without a close requested (a task panic)
        // is counted under 1011, the code it was sent.
        let end = ConnEnd {
            code: outbox.close_code().unwrap_or(CloseCode::INTERNAL_ERROR),
            reason: outbox.close_reason().unwrap_or("connection task failed"),
            frames: outbox.frames_sent(),
        };
        self.counts.close(end.code);
        session::release(&mut session, &mut self.streams);
        Some(end)
    }
}
