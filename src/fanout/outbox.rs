//! A connection as the pub/sub core sees it: what it must be sent next and
//! when it may be sent.
//!
//! The outbox never holds a queue of latest values: each flush copies the
//! control frames waiting (acks, pongs, errors, pings), the reliable frames
//! in order, and then the latest frame of every dirty subscription into one
//! reused buffer for ONE socket write. Frames are shared `Bytes`; the copy
//! costs far less than the extra `send` calls a per-frame write would need.

use super::latest::{LatestTable, Subscriptions};
use super::wheel::{ConnKey, FlushWheel};
use super::wire::{Step, Wire};
use crate::frame::deflate::DeflateUse;
use crate::frame::CloseCode;
use crate::ingest::sequencer::ReliableMsg;
use crate::model::channel::ChannelId;
use crate::protocol;
use bytes::Bytes;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Control bytes a connection may have waiting before it counts as a slow consumer.
const MAX_PENDING_CONTROL: usize = 1 << 20;
/// A write buffer that grew past this is released after the flush.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;

/// One connection's pending output and flush state.
pub struct Outbox {
    key: ConnKey,
    wire: Wire,
    /// Latest-value subscriptions with the last `seq` sent on each.
    subs: Subscriptions,
    control: Vec<Bytes>,
    control_bytes: usize,
    /// Reliable frames waiting for the next flush, in order; never merged.
    /// On an SSE connection each has the cursor step whose `id:` line ends it.
    reliable: VecDeque<(Bytes, Option<Step>)>,
    reliable_bytes: usize,
    /// Set when a subscribed stream changed since the last flush.
    dirty: bool,
    /// Set while the connection waits in the flush wheel.
    scheduled: bool,
    flush_ready: bool,
    writing: bool,
    next_flush_at: Instant,
    /// Start of the write that first fell behind (took longer than a flush
    /// interval), until the client has caught up: the slow-consumer clock.
    behind_since: Option<Instant>,
    lagging: bool,
    pending_oldest_ts_us: u64,
    waker: Option<Waker>,
    close: Option<(CloseCode, &'static str)>,
    close_sent: bool,
    reader_done: bool,
    write_buf: Vec<u8>,
    /// permessage-deflate, when the connection negotiated it.
    deflate: Option<DeflateUse>,
    /// Latest-value frames sent so far, for the disconnect log.
    frames_sent: u64,
    /// The socket the shard writes flushes to itself (a plain TCP
    /// connection); `None` leaves every write to the writer task (TLS).
    direct: Option<RawFd>,
    /// The rest of a write the socket did not take at once, for the writer
    /// task to finish.
    parked: Option<Flush>,
}

/// One write's worth of bytes, built under the shard borrow.
pub struct Flush {
    /// Everything to write, in order.
    pub buf: Vec<u8>,
    /// A close frame is in `buf` (or was sent before): no flush follows.
    pub closing: bool,
    /// When the connection started falling behind (this write, if it was not).
    pub behind_since: Instant,
    /// Latest-value frames in `buf`.
    pub frames: u64,
    /// Values conflated away since the last flush.
    pub skipped: u64,
    /// The rest of a write the shard began (already counted).
    pub resumed: bool,
}

impl Outbox {
    /// An empty outbox for the connection `key` speaking `wire`, free to
    /// flush at once; `deflate` when it negotiated permessage-deflate (a
    /// WebSocket only).
    pub fn new(key: ConnKey, wire: Wire, now: Instant, deflate: Option<DeflateUse>) -> Self {
        Outbox {
            key,
            wire,
            subs: Subscriptions::default(),
            control: Vec::new(),
            control_bytes: 0,
            reliable: VecDeque::new(),
            reliable_bytes: 0,
            dirty: false,
            scheduled: false,
            flush_ready: false,
            writing: false,
            next_flush_at: now,
            behind_since: None,
            lagging: false,
            pending_oldest_ts_us: u64::MAX,
            waker: None,
            close: None,
            close_sent: false,
            reader_done: false,
            write_buf: Vec::new(),
            deflate,
            frames_sent: 0,
            direct: None,
            parked: None,
        }
    }

    /// Lets the shard write due flushes to `fd` itself, without waking the
    /// writer task (which then finishes only writes the socket did not take
    /// at once, and closes).
    pub fn write_directly(&mut self, fd: RawFd) {
        self.direct = Some(fd);
    }

    /// The socket the shard may write to itself, when the connection has a
    /// flush due, no write in progress and no close to send.
    pub fn direct_write_due(&self) -> Option<RawFd> {
        let due = self.flush_ready && !self.writing && self.close.is_none();
        self.direct.filter(|_| due)
    }

    /// A connection the shard's write pass found with a close to send: the
    /// writer task sends it.
    pub fn wake_for_close(&mut self) {
        if self.close.is_some() && !self.close_sent {
            self.wake();
        }
    }

    /// Hands the rest of a write the socket did not take at once to the
    /// writer task.
    pub fn park_rest(&mut self, mut flush: Flush, written: usize) {
        flush.buf.drain(..written);
        flush.resumed = true;
        self.parked = Some(flush);
        self.wake();
    }

    /// A JSON message for this connection alone (acks, snapshots, status) in
    /// its wire format, compressed if it negotiated deflate and the message
    /// is long enough.
    pub fn json_frame(&self, json: &[u8]) -> Bytes {
        match &self.deflate {
            Some(d) => d.text(json),
            None => self.wire.message(json),
        }
    }

    /// A reliable message as this connection is sent it: the shared frame
    /// (compressed once, when negotiated) or SSE fields, with the SSE cursor
    /// step that ends it.
    fn reliable_entry(&self, msg: &ReliableMsg) -> (Bytes, Option<Step>) {
        let (frame, step) = self.wire.reliable(msg);
        match &self.deflate {
            Some(d) => (d.pick(&frame, msg.deflated(d.min_bytes)).clone(), step),
            None => (frame, step),
        }
    }

    /// The connection this outbox belongs to.
    pub fn key(&self) -> ConnKey {
        self.key
    }

    /// How the connection's bytes are framed.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// The latest-value subscriptions.
    pub fn subs(&self) -> &Subscriptions {
        &self.subs
    }

    /// The latest-value subscriptions, for subscribing and unsubscribing.
    pub fn subs_mut(&mut self) -> &mut Subscriptions {
        &mut self.subs
    }

    /// Queues a control frame (sent ahead of values, not rate-capped).
    pub fn push_control(&mut self, frame: Bytes) {
        self.control_bytes += frame.len();
        self.control.push(frame);
        if self.control_bytes > MAX_PENDING_CONTROL {
            self.request_close(CloseCode::SLOW_CONSUMER);
        }
    }

    /// Queues a JSON message as a control frame.
    pub fn push_json(&mut self, json: &[u8]) {
        self.push_control(self.json_frame(json));
    }

    /// Queues the keep-alive of the connection's wire format.
    pub fn push_heartbeat(&mut self) {
        self.push_control(self.wire.heartbeat());
    }

    /// Queues a replayed reliable message. It is not counted against
    /// `max_pending_reliable`: a replay is bounded by the history and shares
    /// its frames, where live messages behind a stalled client are not.
    pub fn push_replay(&mut self, msg: &ReliableMsg) {
        let entry = self.reliable_entry(msg);
        self.push_replay_entry(entry);
    }

    /// Queues a reliable channel's `snapshot` (`json`) that brings `channel`
    /// (when its SSE cursor follows it) up to `seq` (sent when the history
    /// does not cover `since`).
    pub fn push_replay_snapshot(&mut self, json: &[u8], channel: Option<ChannelId>, seq: u64) {
        let (frame, step) = self.wire.reliable_snapshot(json, channel, seq);
        let frame = match &self.deflate {
            Some(d) => d.text(json),
            None => frame,
        };
        self.push_replay_entry((frame, step));
    }

    /// Starts following the reliable `channel` (named `name`) at `seq`; an
    /// SSE connection is told its new cursor in order with its events.
    pub fn follow_reliable(&mut self, channel: ChannelId, name: &str, seq: u64) {
        if let Some(step) = self.wire.follow(channel, name, seq) {
            self.push_replay_entry((Bytes::new(), Some(step)));
        }
    }

    fn push_replay_entry(&mut self, entry: (Bytes, Option<Step>)) {
        if self.close.is_none() {
            self.reliable.push_back(entry);
        }
    }

    /// Queues a live reliable message. Past `limit` pending bytes the connection is
    /// closed with 4008 and the queue dropped: the client reconnects and
    /// replays with `since` rather than being fed a gap.
    pub fn push_reliable(&mut self, msg: &ReliableMsg, limit: usize) {
        if self.close.is_some() {
            return;
        }
        let (frame, step) = self.reliable_entry(msg);
        self.reliable_bytes += frame.len();
        self.reliable.push_back((frame, step));
        if self.reliable_bytes > limit {
            self.reliable.clear();
            self.reliable_bytes = 0;
            self.request_close_with_reason(CloseCode::SLOW_CONSUMER, "reliable backlog over limit");
        }
    }

    /// Starts closing with `code` and its default reason; the first close
    /// requested wins.
    pub fn request_close(&mut self, code: CloseCode) {
        self.request_close_with_reason(code, code.reason());
    }

    /// Starts closing with `code` and `reason`; the first close requested wins.
    pub fn request_close_with_reason(&mut self, code: CloseCode, reason: &'static str) {
        if self.close.is_none() {
            self.close = Some((code, reason));
        }
    }

    /// Whether a close was requested.
    pub fn is_closing(&self) -> bool {
        self.close.is_some()
    }

    /// The close code requested (the one the client is or was sent), if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.close.map(|(code, _)| code)
    }

    /// Whether the connection is behind: a write took longer than its flush
    /// interval and the kernel has not caught up on it since (see
    /// [`Outbox::finish_write`]).
    pub fn is_behind(&self) -> bool {
        self.behind_since.is_some()
    }

    /// Reliable frames queued, not yet written.
    pub fn reliable_backlog(&self) -> usize {
        self.reliable.len()
    }

    /// The close reason requested, if any.
    pub fn close_reason(&self) -> Option<&'static str> {
        self.close.map(|(_, reason)| reason)
    }

    /// Latest-value frames put into writes so far.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Starts loading the subscription list into the cache, ahead of a
    /// flush reading it.
    pub fn prefetch_subscriptions(&self) {
        self.subs.prefetch();
    }

    /// Whether a subscribed value changed since the last flush collected them.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether our close frame went out.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Remembers the writer's waker; the same task re-parks every flush, so
    /// the clone is skipped when it would wake the same task.
    fn park(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Wakes the writer; the waker is kept for its next wait (a spurious
    /// wake only makes it re-check its condition).
    fn wake(&mut self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    /// Wakes the writer now if it has something due, or parks the connection
    /// in the wheel until its next allowed flush.
    pub fn request_flush(&mut self, wheel: &mut FlushWheel, now: Instant) {
        if self.writing || self.flush_ready {
            return;
        }
        let urgent = !self.control.is_empty()
            || !self.reliable.is_empty()
            || (self.close.is_some() && !self.close_sent);
        if urgent || (self.dirty && now >= self.next_flush_at) {
            self.flush_ready = true;
            match self.direct {
                Some(_) if self.close.is_none() => wheel.due_now(self.key),
                _ => self.wake(),
            }
        } else if self.dirty && !self.scheduled {
            self.scheduled = true;
            wheel.schedule(self.key, self.next_flush_at);
        }
    }

    /// A subscribed stream changed: flush when the rate cap allows.
    pub fn mark_dirty(&mut self, wheel: &mut FlushWheel, now: Instant) {
        if !self.dirty {
            self.dirty = true;
            self.request_flush(wheel, now);
        }
    }

    /// The wheel fired for this connection: its interval has passed.
    pub fn wheel_fired(&mut self, wheel: &mut FlushWheel, now: Instant) {
        self.scheduled = false;
        self.request_flush(wheel, now);
    }

    /// Ready (true) when the writer has something to write, ready (false)
    /// when the connection is done; otherwise parks the writer's waker.
    pub fn poll_writer(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let closing = self.close.is_some() && !self.close_sent;
        let mine = self.flush_ready && self.direct.is_none();
        if self.parked.is_some() || mine || closing {
            Poll::Ready(true)
        } else if self.reader_done && self.close_sent {
            Poll::Ready(false)
        } else {
            self.park(cx.waker());
            Poll::Pending
        }
    }

    /// Ready once the client's side has finished reading (after our close).
    pub fn poll_reader_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reader_done {
            Poll::Ready(())
        } else {
            self.park(cx.waker());
            Poll::Pending
        }
    }

    /// The client's side ended: close (if nothing else did) and wake the writer.
    pub fn reader_finished(&mut self) {
        self.reader_done = true;
        self.request_close(CloseCode::NORMAL);
        self.wake();
    }

    /// Builds the next flush: control frames, then reliable frames, then the
    /// latest frame of every dirty subscription if the rate cap (`interval`)
    /// allows, then a close frame if one was requested.
    pub fn build_flush(
        &mut self,
        table: &mut LatestTable,
        interval: Duration,
        now: Instant,
    ) -> Flush {
        if let Some(rest) = self.parked.take() {
            return rest;
        }
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        for f in self.control.drain(..) {
            buf.extend_from_slice(&f);
        }
        self.control_bytes = 0;
        // Reliable messages go out ahead of latest values and are not rate-capped.
        for (f, step) in self.reliable.drain(..) {
            buf.extend_from_slice(&f);
            self.wire.complete(step, &mut buf);
        }
        self.reliable_bytes = 0;
        let (mut frames, mut skipped) = (0, 0);
        if self.close.is_none() && self.dirty && now >= self.next_flush_at {
            let c = match self.wire {
                Wire::WebSocket => match &self.deflate {
                    Some(d) => self.subs.collect_dirty_deflated(table, &mut buf, d),
                    None => self.subs.collect_dirty(table, &mut buf),
                },
                Wire::Sse(_) => self.subs.collect_dirty_sse(table, &mut buf),
            };
            self.dirty = false;
            self.next_flush_at = now + interval;
            if c.frames > 0 {
                self.pending_oldest_ts_us = c.oldest_ts_us;
            }
            let behind = self.behind_since.is_some();
            if behind && c.skipped > 0 {
                buf.extend_from_slice(&self.json_frame(&protocol::status_lagging(c.skipped)));
                self.lagging = true;
            } else if self.lagging && !behind {
                buf.extend_from_slice(&self.json_frame(&protocol::status_ok()));
                self.lagging = false;
            }
            (frames, skipped) = (c.frames, c.skipped);
            self.frames_sent += frames;
        }
        let mut closing = false;
        if let Some((code, reason)) = self.close {
            if !self.close_sent {
                buf.extend_from_slice(&self.wire.close(code, reason));
                self.close_sent = true;
            }
            closing = true;
        }
        self.flush_ready = false;
        self.writing = true;
        Flush {
            buf,
            closing,
            behind_since: self.behind_since.unwrap_or(now),
            frames,
            skipped,
            resumed: false,
        }
    }

    /// Keeps `buf` to build the next flush in (a buffer that grew large is
    /// released instead).
    pub fn keep_write_buffer(&mut self, buf: Vec<u8>) {
        self.write_buf = reusable(buf);
    }

    /// Records a finished write that `started` one flush `interval` ago at
    /// most (else the connection is behind until `caught_up` says the bytes
    /// its kernel queue has not sent are few) and schedules the next flush.
    /// Returns the `ts` of the oldest value the write carried.
    pub fn finish_write(
        &mut self,
        started: Instant,
        interval: Duration,
        caught_up: impl FnOnce() -> bool,
        wheel: &mut FlushWheel,
        now: Instant,
    ) -> Option<u64> {
        self.writing = false;
        if now.saturating_duration_since(started) > interval {
            self.behind_since.get_or_insert(started);
        } else if self.behind_since.is_some() && caught_up() {
            // A client that drains a little now and then is still behind: it
            // has caught up only once little waits unsent in our kernel queue
            // to it (bytes in flight do not count).
            self.behind_since = None;
        }
        let oldest_ts_us = std::mem::replace(&mut self.pending_oldest_ts_us, u64::MAX);
        self.request_flush(wheel, now);
        (oldest_ts_us != u64::MAX).then_some(oldest_ts_us)
    }

    /// Behind for too long: asks to close as a slow consumer and returns the
    /// close frame to append to the write in progress (none if one went out).
    pub fn close_as_slow(&mut self) -> Option<Bytes> {
        if self.close_sent {
            return None;
        }
        self.request_close(CloseCode::SLOW_CONSUMER);
        self.close_sent = true;
        let code = CloseCode::SLOW_CONSUMER;
        Some(self.wire.close(code, code.reason()))
    }
}

/// `buf` emptied for the next flush, or a new buffer when it grew past
/// [`KEEP_WRITE_BUFFER`].
pub fn reusable(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() > KEEP_WRITE_BUFFER {
        return Vec::new();
    }
    buf.clear();
    buf
}
