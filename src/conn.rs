//! One WebSocket connection: a reader (client frames → ops) and a writer
//! (one write per flush) running on the shard that accepted it.
//!
//! The writer never owns a queue of values: each flush copies the control
//! frames waiting (acks, pongs, errors, pings) and then the latest frame of
//! every dirty subscription into one reused buffer and writes it with one
//! `send`. Frames are shared `Bytes`; the copy into the write buffer costs far
//! less than the extra `send` calls a per-frame write would need.

use crate::auth::Claims;
use crate::conflate::Subscriptions;
use crate::flush::{ConnKey, FlushWheel};
use crate::frame::{self, CloseCode, FrameReader, Incoming};
use crate::protocol::{self, ClientOp, ErrorCode, OpError, SubscribeOp};
use crate::reliable::ReliableKey;
use crate::shard::{Shard, ShardHandle};
use crate::subscribe::MetricSub;
use crate::symbol::SymbolId;
use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Control bytes a connection may have waiting before it counts as a slow consumer.
const MAX_PENDING_CONTROL: usize = 1 << 20;
/// A write buffer that grew past this is released after the flush.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;
/// How long the server waits for the client's close reply before cutting TCP.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Token bucket limiting client ops per connection.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_sec`.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst.max(1)),
            capacity: f64::from(burst.max(1)),
            per_sec: f64::from(per_sec),
            last: now,
        }
    }

    /// Takes one token if available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The state of one connection, owned by its shard's [`crate::shard::ConnTable`].
pub struct Conn {
    /// Key in the shard's connection table.
    pub key: ConnKey,
    /// The verified token behind the connection.
    pub claims: Claims,
    /// Symbols the tenant and token may see ([`crate::entitle`]); `None` = all.
    allowed: Option<Vec<SymbolId>>,
    /// Latest-value subscriptions (prices and metric streams) with the last
    /// `seq` sent on each.
    pub subs: Subscriptions,
    /// One analytics subscription per `metrics.*` channel.
    pub metric_subs: Vec<MetricSub>,
    /// Reliable streams subscribed.
    pub reliable_subs: Vec<ReliableKey>,
    /// Reliable frames waiting for the next flush, in order; never merged.
    reliable: VecDeque<Bytes>,
    reliable_bytes: usize,
    /// Set when a subscribed stream changed since the last flush.
    pub dirty: bool,
    /// Set while the connection waits in the flush wheel.
    pub scheduled: bool,
    control: Vec<Bytes>,
    control_bytes: usize,
    flush_ready: bool,
    writing: bool,
    next_flush_at: Instant,
    /// Socket fd, to ask the kernel how much we still have queued to the client.
    fd: i32,
    /// Start of the write that first fell behind (took longer than a flush
    /// interval), until the client has caught up: the slow-consumer clock.
    behind_since: Option<Instant>,
    lagging: bool,
    pending_oldest_ts_us: u64,
    waker: Option<Waker>,
    close: Option<(CloseCode, &'static str)>,
    close_sent: bool,
    reader_done: bool,
    last_rx: Instant,
    last_ping: Instant,
    bucket: TokenBucket,
    /// Limits client pings and pongs (`pings_per_sec`, `pings_burst`).
    control_bucket: TokenBucket,
    refused_in_row: u32,
    /// Whether this connection was told `status: feed_stale` and not yet `ok`.
    told_feed_stale: bool,
    write_buf: Vec<u8>,
}

impl Conn {
    fn new(
        key: ConnKey,
        claims: Claims,
        allowed: Option<Vec<SymbolId>>,
        buckets: [TokenBucket; 2],
        fd: i32,
    ) -> Self {
        let [bucket, control_bucket] = buckets;
        let now = Instant::now();
        Conn {
            key,
            claims,
            allowed,
            subs: Subscriptions::default(),
            metric_subs: Vec::new(),
            reliable_subs: Vec::new(),
            reliable: VecDeque::new(),
            reliable_bytes: 0,
            dirty: false,
            scheduled: false,
            control: Vec::new(),
            control_bytes: 0,
            flush_ready: false,
            writing: false,
            next_flush_at: now,
            fd,
            behind_since: None,
            lagging: false,
            pending_oldest_ts_us: u64::MAX,
            waker: None,
            close: None,
            close_sent: false,
            reader_done: false,
            last_rx: now,
            last_ping: now,
            bucket,
            control_bucket,
            refused_in_row: 0,
            told_feed_stale: false,
            write_buf: Vec::new(),
        }
    }

    /// Queues a control frame (sent ahead of values, not rate-capped).
    fn push_control(&mut self, frame: Bytes) {
        self.control_bytes += frame.len();
        self.control.push(frame);
        if self.control_bytes > MAX_PENDING_CONTROL {
            self.request_close(CloseCode::SLOW_CONSUMER);
        }
    }

    /// Queues a JSON message as a control frame.
    pub fn push_json(&mut self, json: &[u8]) {
        self.push_control(frame::text(json));
    }

    /// Queues a replayed reliable frame. It is not counted against
    /// `max_pending_reliable`: a replay is bounded by the history and shares
    /// its frames, where live messages behind a stalled client are not.
    pub fn push_replay(&mut self, frame: Bytes) {
        if self.close.is_none() {
            self.reliable.push_back(frame);
        }
    }

    /// Queues a live reliable frame. Past `limit` pending bytes the connection is
    /// closed with 4008 and the queue dropped: the client reconnects and
    /// replays with `since` rather than being fed a gap.
    pub fn push_reliable(&mut self, frame: Bytes, limit: usize) {
        if self.close.is_some() {
            return;
        }
        self.reliable_bytes += frame.len();
        self.reliable.push_back(frame);
        if self.reliable_bytes > limit {
            self.reliable.clear();
            self.reliable_bytes = 0;
            self.request_close_with_reason(CloseCode::SLOW_CONSUMER, "reliable backlog over limit");
        }
    }

    /// Starts closing with `code` and its default reason; the first close requested wins.
    pub fn request_close(&mut self, code: CloseCode) {
        self.request_close_with_reason(code, code.reason());
    }

    /// Starts closing with `code` and a reason that says more than its default.
    pub fn request_close_with_reason(&mut self, code: CloseCode, reason: &'static str) {
        if self.close.is_none() {
            self.close = Some((code, reason));
        }
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
            self.wake();
        } else if self.dirty && !self.scheduled {
            self.scheduled = true;
            wheel.schedule(self.key, self.next_flush_at);
        }
    }

    /// Heartbeat, idle, token expiry and drain checks.
    pub fn housekeeping(&mut self, now: Instant, now_s: u64, heartbeat: Duration, draining: bool) {
        if self.close.is_some() {
            return;
        }
        if draining {
            self.request_close(CloseCode::GOING_AWAY);
        } else if self.claims.exp <= now_s {
            self.push_json(&protocol::token_expired());
            self.request_close(CloseCode::TOKEN_EXPIRED);
        } else if now.saturating_duration_since(self.last_rx) > heartbeat * 3 {
            self.request_close(CloseCode::IDLE_TIMEOUT);
        } else if now.saturating_duration_since(self.last_ping) >= heartbeat {
            self.last_ping = now;
            self.push_control(frame::ping(b""));
        }
    }

    /// Tells a `prices` subscriber once that the feed went stale (`since`
    /// the last quote, UNIX ms), and `status: ok` once it is back.
    pub fn note_feed(&mut self, stale_since: Option<u64>, price_streams: u32) {
        match stale_since {
            Some(since) if !self.told_feed_stale && self.subs.any(|s| s.0 < price_streams) => {
                self.told_feed_stale = true;
                self.push_json(&protocol::status_feed_stale(since));
            }
            None if self.told_feed_stale => {
                self.told_feed_stale = false;
                self.push_json(&protocol::status_ok());
            }
            _ => {}
        }
    }

    /// Whether the token's `symbols` claim covers `symbol`.
    pub fn may_see(&self, symbol: SymbolId) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|list| list.binary_search(&symbol).is_ok())
    }
}

/// What the writer does next, decided under the shard borrow.
struct Flush {
    buf: Vec<u8>,
    closing: bool,
    /// When the connection started falling behind (this write, if it was not).
    behind_since: Instant,
}

impl Shard {
    /// Builds the next flush of `key`: control frames, then the latest frame of
    /// every dirty subscription if the rate cap allows, then a close frame if
    /// one was requested.
    fn build_flush(&mut self, key: ConnKey, now: Instant) -> Option<Flush> {
        let interval = self.flush_interval;
        let conn = self.conns.get_mut(key)?;
        let mut buf = std::mem::take(&mut conn.write_buf);
        buf.clear();
        for f in conn.control.drain(..) {
            buf.extend_from_slice(&f);
        }
        conn.control_bytes = 0;
        // Reliable messages go out ahead of latest values and are not rate-capped.
        for f in conn.reliable.drain(..) {
            buf.extend_from_slice(&f);
        }
        conn.reliable_bytes = 0;
        if conn.close.is_none() && conn.dirty && now >= conn.next_flush_at {
            let c = conn.subs.collect_dirty(&self.table, &mut buf);
            conn.dirty = false;
            conn.next_flush_at = now + interval;
            if c.frames > 0 {
                conn.pending_oldest_ts_us = c.oldest_ts_us;
            }
            let behind = conn.behind_since.is_some();
            if behind && c.skipped > 0 {
                buf.extend_from_slice(&frame::text(&protocol::status_lagging(c.skipped)));
                conn.lagging = true;
            } else if conn.lagging && !behind {
                buf.extend_from_slice(&frame::text(&protocol::status_ok()));
                conn.lagging = false;
            }
            self.counters.frames += c.frames;
            self.counters.skipped += c.skipped;
        }
        let mut closing = false;
        if let Some((code, reason)) = conn.close {
            if !conn.close_sent {
                buf.extend_from_slice(&frame::close_frame_with_reason(code, reason));
                conn.close_sent = true;
            }
            closing = true;
        }
        conn.flush_ready = false;
        conn.writing = true;
        self.counters.flushes += 1;
        Some(Flush {
            buf,
            closing,
            behind_since: conn.behind_since.unwrap_or(now),
        })
    }

    /// Records a finished write and schedules the next flush if more is due.
    fn finish_write(&mut self, key: ConnKey, mut buf: Vec<u8>, started: Instant, now: Instant) {
        let interval = self.flush_interval;
        let caught_up_bytes = self.shared().config.server.send_buffer_bytes / 2;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.writing = false;
        if now.saturating_duration_since(started) > interval {
            conn.behind_since.get_or_insert(started);
        } else if conn.behind_since.is_some() && unsent_bytes(conn.fd) <= caught_up_bytes {
            // A client that drains a little now and then is still behind: it
            // has caught up only once our kernel queue to it has drained.
            conn.behind_since = None;
        }
        if conn.pending_oldest_ts_us != u64::MAX {
            let now_us = crate::feed::now_us();
            let _ = self
                .latency
                .record(now_us.saturating_sub(conn.pending_oldest_ts_us).max(1));
            conn.pending_oldest_ts_us = u64::MAX;
        }
        if buf.capacity() > KEEP_WRITE_BUFFER {
            buf = Vec::new();
        }
        conn.write_buf = buf;
        conn.request_flush(&mut self.wheel, now);
    }

    /// Carries out one client op and queues its reply.
    fn handle_op(&mut self, key: ConnKey, text: &mut [u8], now: Instant) {
        let cfg = &self.shared().config.server;
        let (max_symbols, close_after) = (cfg.max_symbols_per_op, cfg.rate_limit_close_after);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let parsed = protocol::parse_op(text, max_symbols);
        if !conn.bucket.try_take(now) {
            conn.refused_in_row += 1;
            let id = parsed.as_ref().ok().map(op_id);
            conn.push_json(&OpError::new(id, ErrorCode::RateLimited, "too many ops").to_json());
            if conn.refused_in_row >= close_after {
                conn.request_close(CloseCode::RATE_LIMITED);
            }
            return;
        }
        conn.refused_in_row = 0;
        let reply = match parsed {
            Err(e) => Err(e),
            Ok(ClientOp::Ping { id }) => Ok(protocol::pong(id, protocol::now_ms())),
            Ok(ClientOp::Auth { id, token }) => self.refresh_token(key, id, &token),
            Ok(ClientOp::Subscribe(op)) => self.subscribe(key, op),
            Ok(ClientOp::Unsubscribe {
                id,
                channel,
                symbols,
            }) => self.unsubscribe(key, id, &channel, symbols.as_deref()),
        };
        if let Some(conn) = self.conns.get_mut(key) {
            match reply {
                Ok(json) => conn.push_json(&json),
                Err(e) => conn.push_json(&e.to_json()),
            }
        }
    }

    fn refresh_token(&mut self, key: ConnKey, id: u64, token: &str) -> Result<Vec<u8>, OpError> {
        let claims = self.shared().verifier.verify_now(token).map_err(|e| {
            let code = match e {
                crate::auth::AuthError::TokenExpired => ErrorCode::TokenExpired,
                _ => ErrorCode::BadRequest,
            };
            OpError::new(Some(id), code, format!("token refused: {}", e.reason()))
        })?;
        let Some(conn) = self.conns.get_mut(key) else {
            return Err(OpError::new(Some(id), ErrorCode::BadRequest, "closed"));
        };
        if claims.sub != conn.claims.sub || claims.tenant != conn.claims.tenant {
            return Err(OpError::new(
                Some(id),
                ErrorCode::Forbidden,
                "a refreshed token must have the same sub and tenant",
            ));
        }
        conn.claims.exp = conn.claims.exp.max(claims.exp);
        Ok(protocol::auth_ack(id, conn.claims.exp.saturating_mul(1000)))
    }
}

/// Bytes queued in the kernel to the client and not yet acknowledged.
fn unsent_bytes(fd: i32) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) on a socket fd we own writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    if rc == 0 {
        queued.max(0) as usize
    } else {
        usize::MAX
    }
}

fn op_id(op: &ClientOp) -> u64 {
    match op {
        ClientOp::Subscribe(SubscribeOp { id, .. })
        | ClientOp::Unsubscribe { id, .. }
        | ClientOp::Ping { id }
        | ClientOp::Auth { id, .. } => *id,
    }
}

/// Runs an upgraded connection until it closes: sends `welcome`, then reads
/// ops and writes flushes concurrently on this shard.
pub async fn run(shard: ShardHandle, stream: TcpStream, claims: Claims, leftover: Vec<u8>) {
    let fd = stream.as_raw_fd();
    let key = {
        let mut s = shard.state();
        let shared = s.shared();
        let allowed = shared.entitlements.allowed(&claims, &shared.universe);
        let conn_id = s.next_conn_id();
        let shard_id = s.id;
        let cfg = &s.shared().config.server;
        let welcome = protocol::Welcome {
            conn: &conn_id,
            shard: shard_id,
            server_time: protocol::now_ms(),
            session_expires: claims.exp.saturating_mul(1000),
            heartbeat_ms: cfg.heartbeat_ms,
            max_rate_hz: cfg.max_rate_hz,
        }
        .to_json();
        let now = Instant::now();
        let buckets = [
            TokenBucket::new(cfg.ops_per_sec, cfg.ops_burst, now),
            TokenBucket::new(cfg.pings_per_sec, cfg.pings_burst, now),
        ];
        let key = s
            .conns
            .insert(|k| Conn::new(k, claims, allowed, buckets, fd));
        if let Some(conn) = s.conns.get_mut(key) {
            conn.push_json(&welcome);
        }
        s.request_flush(key, Instant::now());
        key
    };
    // The halves stay here, outside the caught future, so the socket is
    // still open when a panic's hook writes the 1011 close.
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let served = futures_lite::future::zip(
        read_loop(shard.clone(), key, &mut rd, leftover),
        write_loop(shard.clone(), key, &mut wr, fd),
    );
    let _ = crate::isolate::catch_panic(served, |msg| {
        tracing::error!(conn = ?key, "connection task panicked: {msg}; closing it with 1011");
        send_now(fd, &frame::close_frame(CloseCode::INTERNAL_ERROR));
    })
    .await;
    shard.state().remove_conn(key);
}

/// Best-effort write that never waits, for a connection whose task is gone.
fn send_now(fd: i32, bytes: &[u8]) {
    // SAFETY: `fd` is the connection's socket, still open (conn::run holds
    // both halves of its stream); send reads `bytes.len()` bytes from a valid slice.
    unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
    }
}

async fn read_loop(
    shard: ShardHandle,
    key: ConnKey,
    rd: &mut futures_lite::io::ReadHalf<TcpStream>,
    leftover: Vec<u8>,
) {
    let cfg = &shard.shared().config.server;
    let mut reader = FrameReader::new(cfg.max_message_bytes).with_max_fragments(cfg.max_fragments);
    reader.extend(&leftover);
    let mut chunk = [0u8; 1024];
    'conn: loop {
        loop {
            let msg = match reader.next_message() {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(e) => {
                    let mut s = shard.state();
                    if let Some(conn) = s.conns.get_mut(key) {
                        conn.request_close_with_reason(e.close_code(), e.close_reason());
                    }
                    s.request_flush(key, Instant::now());
                    break 'conn;
                }
            };
            if !handle_message(&shard, key, msg) {
                break 'conn;
            }
        }
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(conn) = shard.state().conns.get_mut(key) {
            conn.last_rx = Instant::now();
        }
        reader.extend(&chunk[..n]);
    }
    let mut s = shard.state();
    if let Some(conn) = s.conns.get_mut(key) {
        conn.reader_done = true;
        conn.request_close(CloseCode::NORMAL);
        conn.wake();
    }
}

/// Handles one client message; returns false when the reader should stop.
fn handle_message(shard: &ShardHandle, key: ConnKey, msg: Incoming) -> bool {
    let now = Instant::now();
    let mut s = shard.state();
    let closing = s.conns.get_mut(key).is_none_or(|c| c.close.is_some());
    match msg {
        Incoming::Close(_) => {
            // The reader refuses codes a peer may not send (1002): every close gets 1000.
            if let Some(conn) = s.conns.get_mut(key) {
                conn.request_close(CloseCode::NORMAL);
            }
            s.request_flush(key, now);
            return false;
        }
        _ if closing => {}
        Incoming::Ping(_) | Incoming::Pong => {
            if let Some(conn) = s.conns.get_mut(key) {
                if !conn.control_bucket.try_take(now) {
                    conn.request_close_with_reason(
                        CloseCode::POLICY_VIOLATION,
                        "control frame flood",
                    );
                } else if let Incoming::Ping(payload) = msg {
                    conn.push_control(frame::pong(&payload));
                }
            }
        }
        Incoming::Binary(_) => {
            if let Some(conn) = s.conns.get_mut(key) {
                let err = OpError::new(
                    None,
                    ErrorCode::BadRequest,
                    "binary frames are not supported",
                );
                conn.push_json(&err.to_json());
            }
        }
        Incoming::Text(mut text) => s.handle_op(key, &mut text, now),
    }
    s.request_flush(key, now);
    true
}

/// Waits until the writer has something to do; false once the connection is gone.
async fn writer_ready(shard: &ShardHandle, key: ConnKey) -> bool {
    std::future::poll_fn(|cx| {
        let mut s = shard.state();
        match s.conns.get_mut(key) {
            None => Poll::Ready(false),
            Some(c) if c.flush_ready || (c.close.is_some() && !c.close_sent) => Poll::Ready(true),
            Some(c) if c.reader_done && c.close_sent => Poll::Ready(false),
            Some(c) => {
                c.park(cx.waker());
                Poll::Pending
            }
        }
    })
    .await
}

async fn write_loop(
    shard: ShardHandle,
    key: ConnKey,
    wr: &mut futures_lite::io::WriteHalf<TcpStream>,
    fd: i32,
) {
    let slow_timeout = shard.shared().config.server.slow_consumer_timeout();
    loop {
        if !writer_ready(&shard, key).await {
            break;
        }
        let started = Instant::now();
        let Some(Flush {
            mut buf,
            closing,
            behind_since,
        }) = shard.state().build_flush(key, started)
        else {
            break;
        };
        let written = write_watched(&shard, key, wr, &mut buf, behind_since, slow_timeout).await;
        shard
            .state()
            .finish_write(key, buf, started, Instant::now());
        if !written {
            break;
        }
        let closing = closing
            || shard
                .state()
                .conns
                .get_mut(key)
                .is_none_or(|c| c.close_sent);
        if closing {
            wait_for_reader(&shard, key).await;
            break;
        }
    }
    // SAFETY: `fd` belongs to the stream both halves still own; shutdown (not
    // close) only ends the reader's pending read so the connection can finish.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Writes `buf` completely. A connection behind since `behind_since` for
/// `slow_timeout` is a slow consumer: a close 4008 is appended behind the
/// frames already queued, and after another `slow_timeout` the write is given
/// up (returns false).
async fn write_watched(
    shard: &ShardHandle,
    key: ConnKey,
    wr: &mut futures_lite::io::WriteHalf<TcpStream>,
    buf: &mut Vec<u8>,
    behind_since: Instant,
    slow_timeout: Duration,
) -> bool {
    let mut pos = 0;
    let mut marked_slow = false;
    while pos < buf.len() {
        let deadline = behind_since
            + if marked_slow {
                slow_timeout * 2
            } else {
                slow_timeout
            };
        // Fast path: a client that keeps up takes the bytes at once, so no
        // timer is armed (a timer per flush would cost more than the send).
        let step = match futures_lite::future::poll_once(wr.write(&buf[pos..])).await {
            Some(done) => Some(done),
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                futures_lite::future::or(async { Some(wr.write(&buf[pos..]).await) }, async {
                    glommio::timer::sleep(left).await;
                    None
                })
                .await
            }
        };
        match step {
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(n)) => pos += n,
            None if marked_slow => return false,
            None => {
                marked_slow = true;
                tracing::info!(conn = ?key, "behind for {slow_timeout:?}: closing as slow consumer (4008)");
                let mut s = shard.state();
                s.counters.slow_closes += 1;
                if let Some(conn) = s.conns.get_mut(key) {
                    if !conn.close_sent {
                        conn.request_close(CloseCode::SLOW_CONSUMER);
                        conn.close_sent = true;
                        buf.extend_from_slice(&frame::close_frame(CloseCode::SLOW_CONSUMER));
                    }
                }
            }
        }
    }
    true
}

/// After our close frame: give the client a moment to answer before cutting TCP.
async fn wait_for_reader(shard: &ShardHandle, key: ConnKey) {
    let done = std::future::poll_fn(|cx| {
        let mut s = shard.state();
        match s.conns.get_mut(key) {
            Some(c) if !c.reader_done => {
                c.park(cx.waker());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    });
    futures_lite::future::or(done, glommio::timer::sleep(CLOSE_GRACE)).await;
}
