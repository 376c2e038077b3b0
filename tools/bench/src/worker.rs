//! One load thread: a mio (epoll, edge-triggered) loop over its share of the
//! connections. Per connection: connect, upgrade, subscribe, then read frames,
//! answer pings, and time every live price against its `ts`.

use crate::decode::{self, Kind};
use crate::stats::WorkerStats;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use quotecast_testkit::{http, ws};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Connections are being opened; nothing is measured yet.
pub const CONNECTING: u8 = 0;
/// Everyone is subscribed; the warm-up runs before the window.
pub const WARMUP: u8 = 1;
/// The measurement window.
pub const MEASURE: u8 = 2;
/// Stop and hand back the stats.
pub const DONE: u8 = 3;

/// Two prices of one connection further apart than this belong to different
/// flushes. The server flushes a connection at most every 1/max_rate_hz
/// (16.7 ms at 60 Hz) in one vectored write, whose parts reach the client
/// within microseconds of each other even when split over several reads.
const FLUSH_GAP_US: u64 = 1_000;

/// A poll that returns this much later than its timeout means the thread was
/// not running: the generator stalled, not the server.
const STALL: Duration = Duration::from_millis(20);

/// State the main thread and the workers share (atomics only).
#[derive(Default)]
pub struct Shared {
    /// One of [`CONNECTING`], [`WARMUP`], [`MEASURE`], [`DONE`].
    pub phase: AtomicU8,
    /// Connections whose subscription was acknowledged (dead ones: sent).
    pub ready: AtomicUsize,
    /// Connections that failed or closed before being ready.
    pub failed: AtomicUsize,
    /// Live prices received so far (whole run), for the timeline.
    pub price_frames: AtomicU64,
    /// `max_rate_hz` announced in the server's `welcome`; 0 until seen.
    pub max_rate_hz: AtomicU64,
    /// Ramp step whose latency histogram healthy prices also go to;
    /// [`NO_STEP`] between steps (and outside a ramp).
    pub step: AtomicUsize,
    /// Healthy prices of the current ramp step (the ramp resets it).
    pub step_prices: AtomicU64,
    /// ... of which later than [`LATENCY_TARGET_US`].
    pub step_late: AtomicU64,
    /// Flushes received by healthy connections so far, for the timeline.
    pub flushes: AtomicU64,
}

/// The latency target of the capacity figure: p99 under 50 ms.
pub const LATENCY_TARGET_US: u64 = 50_000;

/// [`Shared::step`] when no ramp step is being measured.
pub const NO_STEP: usize = usize::MAX;

/// How a connection reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reads whenever data arrives.
    Healthy,
    /// Reads only every `slow_read` interval.
    Slow,
    /// Subscribes, then never reads again.
    Dead,
}

/// One connection to open: how it reads and how it subscribes.
pub struct Plan {
    /// How it reads.
    pub class: Class,
    /// Text frames to send once upgraded (quotecast's subscribe op); empty when
    /// the upgrade path itself subscribes (nchan), and then the connection is
    /// ready at the `101`.
    pub subscribe: Vec<Vec<u8>>,
    /// Upgrade path of this connection, when not the target's.
    pub path: Option<String>,
}

/// Where to connect and how to authenticate.
pub struct Target {
    /// Server address (loopback).
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: String,
    /// Upgrade path, e.g. `/v1/ws`.
    pub path: String,
    /// Bearer token.
    pub token: String,
}

/// Per-thread knobs.
#[derive(Clone)]
pub struct Settings {
    /// Time between two connection starts of this thread (zero: no pacing).
    pub connect_interval: Duration,
    /// Most handshakes in flight at once on this thread.
    pub max_inflight: usize,
    /// A connection not upgraded after this long counts as failed.
    pub handshake_timeout: Duration,
    /// Read interval of [`Class::Slow`] connections.
    pub slow_read: Duration,
    /// Core to pin this thread to.
    pub pin_core: Option<usize>,
    /// The loop stops by itself at this instant whatever the phase.
    pub deadline: Instant,
    /// Seed of the masking keys.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Connecting,
    Handshaking,
    Open,
    Closed,
}

struct Conn {
    sock: Option<TcpStream>,
    state: State,
    class: Class,
    started: Instant,
    /// The frames to send once upgraded, then the time they were sent.
    subscribe: Vec<Vec<u8>>,
    path: Option<Box<str>>,
    sub_sent: Option<Instant>,
    expected_accept: Option<Box<str>>,
    /// Bytes waiting for the socket to accept them.
    out: Vec<u8>,
    /// Handshake bytes, or the unparsed tail of a frame split across reads.
    inbuf: Vec<u8>,
    ready: bool,
    last_price_us: u64,
    last_flush_us: u64,
    /// Flushes received in the measurement window.
    flushes: u32,
}

/// Everything a frame handler may touch besides its connection.
struct Ctx<'a> {
    registry: Registry,
    target: &'a Target,
    shared: &'a Shared,
    stats: WorkerStats,
    measuring: bool,
    now_us: u64,
    inflight: usize,
    live_prices: u64,
    live_flushes: u64,
    rng: u64,
}

impl Ctx<'_> {
    fn next_u64(&mut self) -> u64 {
        // xorshift64*: masks need no cryptographic strength here.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// Ends `conn`; `reason` is counted when it was not ready yet or did not
    /// end with a close frame.
    fn close(&mut self, conn: &mut Conn, reason: &str) {
        if let Some(mut sock) = conn.sock.take() {
            let _ = self.registry.deregister(&mut sock);
        }
        match conn.state {
            State::Connecting | State::Handshaking => {
                self.inflight -= 1;
            }
            State::Open | State::Pending | State::Closed => {}
        }
        if !conn.ready && conn.state != State::Closed {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        if conn.state != State::Closed && !reason.is_empty() {
            let phase = if conn.ready { "open" } else { "setup" };
            self.stats.fail(&format!("{phase}:{reason}"));
        }
        conn.state = State::Closed;
        conn.out = Vec::new();
        conn.inbuf = Vec::new();
    }

    fn write_out(&mut self, conn: &mut Conn) {
        while !conn.out.is_empty() {
            let Some(sock) = conn.sock.as_mut() else {
                return;
            };
            match sock.write(&conn.out) {
                Ok(0) => return self.close(conn, "write_zero"),
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.close(conn, &io_reason(&e)),
            }
        }
    }

    fn on_connected(&mut self, conn: &mut Conn) {
        let Some(sock) = conn.sock.as_mut() else {
            return;
        };
        match sock.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.close(conn, &io_reason(&e)),
        }
        match sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected => return,
            Err(e) => return self.close(conn, &io_reason(&e)),
        }
        let _ = sock.set_nodelay(true);
        record(&mut self.stats.connect, conn.started.elapsed());
        let key = ws::generate_key();
        conn.expected_accept = Some(ws::derive_accept_key(key.as_bytes()).into());
        conn.out = ws::upgrade_request(
            &self.target.host,
            conn.path.as_deref().unwrap_or(&self.target.path),
            &key,
            &self.target.token,
        );
        conn.state = State::Handshaking;
        self.write_out(conn);
    }

    fn on_bytes(&mut self, conn: &mut Conn, data: &[u8]) {
        match conn.state {
            State::Handshaking => {
                conn.inbuf.extend_from_slice(data);
                let head = match http::parse_head(&conn.inbuf) {
                    Ok(None) => return,
                    Ok(Some(head)) => head,
                    Err(_) => return self.close(conn, "bad_response"),
                };
                if head.status != 101 {
                    return self.close(conn, &format!("http_{}", head.status));
                }
                if head.header("sec-websocket-accept") != conn.expected_accept.as_deref() {
                    return self.close(conn, "bad_accept");
                }
                record(&mut self.stats.handshake, conn.started.elapsed());
                self.inflight -= 1;
                conn.state = State::Open;
                conn.expected_accept = None;
                conn.inbuf.drain(..head.len);
                let ops = std::mem::take(&mut conn.subscribe);
                let subscribes_by_path = ops.is_empty();
                for op in ops {
                    let mask = self.mask();
                    ws::encode_client_frame(ws::OP_TEXT, &op, mask, &mut conn.out);
                    conn.sub_sent = Some(Instant::now());
                }
                self.write_out(conn);
                if conn.class == Class::Dead || subscribes_by_path {
                    conn.ready = true;
                    conn.inbuf = Vec::new();
                    self.shared.ready.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if !conn.inbuf.is_empty() {
                    self.frames(conn, &[]);
                }
            }
            State::Open => self.frames(conn, data),
            State::Pending | State::Connecting | State::Closed => {}
        }
    }

    /// Parses the frames of `data` (after any carried-over tail) and keeps the
    /// incomplete rest. The common case, no tail, parses straight from `data`.
    fn frames(&mut self, conn: &mut Conn, data: &[u8]) {
        if conn.inbuf.is_empty() {
            let used = self.parse_all(conn, data);
            if conn.state == State::Open {
                conn.inbuf.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut conn.inbuf);
            buf.extend_from_slice(data);
            let used = self.parse_all(conn, &buf);
            if conn.state == State::Open {
                buf.drain(..used);
                // A backlog (e.g. after a stall) grows this to 64 KiB and more;
                // do not keep that per connection once it is parsed.
                if buf.capacity() > 16 * 1024 && buf.len() < 4 * 1024 {
                    buf.shrink_to(4 * 1024);
                }
                conn.inbuf = buf;
            }
        }
    }

    fn parse_all(&mut self, conn: &mut Conn, buf: &[u8]) -> usize {
        let mut pos = 0;
        while conn.state == State::Open {
            match ws::parse_frame(&buf[pos..]) {
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    pos += n;
                    self.on_frame(conn, frame);
                }
                Err(e) => {
                    self.close(conn, &format!("protocol_{e:?}"));
                    break;
                }
            }
        }
        pos
    }

    fn on_frame(&mut self, conn: &mut Conn, frame: ws::Frame<'_>) {
        match frame.opcode {
            ws::OP_TEXT if frame.fin => self.on_text(conn, frame.payload),
            ws::OP_PING => {
                self.stats.counts.pings += 1;
                let mask = self.mask();
                ws::encode_client_frame(ws::OP_PONG, frame.payload, mask, &mut conn.out);
                self.write_out(conn);
            }
            ws::OP_CLOSE => {
                let code = match frame.payload {
                    [a, b, ..] => u16::from_be_bytes([*a, *b]),
                    _ => 1005,
                };
                *self.stats.close_codes.entry(code).or_default() += 1;
                let mask = self.mask();
                let echo = if code == 1005 { 1000 } else { code };
                ws::encode_client_frame(ws::OP_CLOSE, &echo.to_be_bytes(), mask, &mut conn.out);
                self.write_out(conn);
                self.close(conn, "");
            }
            ws::OP_PONG => {}
            _ => self.stats.counts.other += 1,
        }
    }

    fn on_text(&mut self, conn: &mut Conn, payload: &[u8]) {
        let counts = &mut self.stats.counts;
        match decode::classify(payload) {
            Kind::Price => {
                let Some((_seq, ts)) = decode::price_seq_ts(payload) else {
                    counts.bad_prices += 1;
                    return;
                };
                self.live_prices += 1;
                let now = self.now_us;
                let new_flush = now.saturating_sub(conn.last_price_us) > FLUSH_GAP_US;
                conn.last_price_us = now;
                if self.measuring {
                    counts.price_frames += 1;
                    counts.price_bytes += payload.len() as u64;
                    let latency = now.saturating_sub(ts).max(1);
                    match conn.class {
                        Class::Healthy => {
                            self.stats.latency.saturating_record(latency);
                            record_step(self.shared, &mut self.stats.steps, latency);
                        }
                        Class::Slow | Class::Dead => {
                            self.stats.latency_slow.saturating_record(latency)
                        }
                    }
                }
                if new_flush {
                    if conn.class == Class::Healthy {
                        self.live_flushes += 1;
                    }
                    if self.measuring && conn.class == Class::Healthy {
                        counts.flushes += 1;
                        conn.flushes += 1;
                        if conn.last_flush_us != 0 {
                            self.stats
                                .flush_gap
                                .saturating_record(now - conn.last_flush_us);
                        }
                    }
                    conn.last_flush_us = now;
                }
            }
            Kind::Snapshot => counts.snapshots += 1,
            Kind::Ack => {
                counts.acks += 1;
                if decode::find(payload, br#""errors":[{"#).is_some() {
                    counts.ack_errors += 1;
                }
                if !conn.ready {
                    conn.ready = true;
                    self.shared.ready.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = conn.sub_sent.take() {
                        record(&mut self.stats.subscribe, sent.elapsed());
                    }
                }
            }
            Kind::Welcome => {
                if let Some(hz) = decode::u64_field(payload, br#""max_rate_hz":"#) {
                    self.shared.max_rate_hz.store(hz, Ordering::Relaxed);
                }
            }
            Kind::Status => {
                if decode::find(payload, br#""lagging""#).is_some() {
                    counts.lagging += 1;
                }
            }
            Kind::Error => counts.errors += 1,
            Kind::Other => counts.other += 1,
        }
    }

    /// Reads `conn` until the socket is drained.
    fn read_conn(&mut self, conn: &mut Conn, buf: &mut [u8]) {
        loop {
            let Some(sock) = conn.sock.as_mut() else {
                return;
            };
            match sock.read(buf) {
                Ok(0) => return self.close(conn, "eof"),
                Ok(n) => {
                    self.now_us = unix_us();
                    if self.measuring {
                        self.stats.counts.wire_bytes += n as u64;
                        self.stats.counts.reads += 1;
                    }
                    self.on_bytes(conn, &buf[..n]);
                    // A short read drained the socket. Linux epoll in
                    // edge-triggered mode signals again on every later arrival,
                    // so the read that would only return WouldBlock is skipped.
                    if conn.state == State::Closed || n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.close(conn, &io_reason(&e)),
            }
        }
    }
}

/// Runs one worker over `plans` until the phase is [`DONE`] or the deadline passes.
pub fn run(
    target: &Target,
    plans: Vec<Plan>,
    settings: &Settings,
    shared: &Shared,
) -> anyhow::Result<WorkerStats> {
    if let Some(id) = settings.pin_core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut ctx = Ctx {
        registry: poll.registry().try_clone()?,
        target,
        shared,
        stats: WorkerStats::new(),
        measuring: false,
        now_us: unix_us(),
        inflight: 0,
        live_prices: 0,
        live_flushes: 0,
        rng: settings.seed | 1,
    };
    let now = Instant::now();
    let mut conns: Vec<Conn> = plans
        .into_iter()
        .map(|p| Conn {
            sock: None,
            state: State::Pending,
            class: p.class,
            started: now,
            subscribe: p.subscribe,
            path: p.path.map(String::into_boxed_str),
            sub_sent: None,
            expected_accept: None,
            out: Vec::new(),
            inbuf: Vec::new(),
            ready: false,
            last_price_us: 0,
            last_flush_us: 0,
            flushes: 0,
        })
        .collect();
    let slow: Vec<usize> = (0..conns.len())
        .filter(|&i| conns[i].class == Class::Slow)
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_start = 0usize;
    let mut next_start_at = Instant::now();
    let mut next_slow_read = Instant::now() + settings.slow_read;
    let mut next_sweep = Instant::now();

    loop {
        let phase = shared.phase.load(Ordering::Relaxed);
        let now = Instant::now();
        if phase == DONE || now >= settings.deadline {
            break;
        }
        ctx.measuring = phase == MEASURE;

        while next_start < conns.len()
            && ctx.inflight < settings.max_inflight
            && now >= next_start_at
        {
            start(&mut ctx, &mut conns[next_start], next_start);
            next_start += 1;
            next_start_at += settings.connect_interval;
        }

        let mut timeout = Duration::from_millis(20);
        if next_start < conns.len() || ctx.inflight > 0 {
            timeout = Duration::from_millis(1);
        }
        if !slow.is_empty() {
            timeout = timeout.min(next_slow_read.saturating_duration_since(now));
        }
        let polled_at = Instant::now();
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        let late = polled_at.elapsed().saturating_sub(timeout);
        if ctx.measuring && late > STALL {
            ctx.stats.counts.gen_stalls += 1;
            let late_us = late.as_micros() as u64;
            ctx.stats.counts.gen_stall_max_us = ctx.stats.counts.gen_stall_max_us.max(late_us);
        }

        for ev in events.iter() {
            let conn = &mut conns[ev.token().0];
            match conn.state {
                State::Connecting => {
                    if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                        ctx.on_connected(conn);
                    }
                }
                State::Handshaking | State::Open => {
                    if ev.is_writable() && !conn.out.is_empty() {
                        ctx.write_out(conn);
                    }
                    let wants_read = conn.state == State::Handshaking
                        || (conn.state == State::Open && conn.class == Class::Healthy);
                    if wants_read && (ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                        ctx.read_conn(conn, &mut buf);
                    }
                }
                State::Pending | State::Closed => {}
            }
        }

        let now = Instant::now();
        if !slow.is_empty() && now >= next_slow_read {
            for &i in &slow {
                if conns[i].state == State::Open {
                    ctx.read_conn(&mut conns[i], &mut buf);
                }
            }
            next_slow_read = now + settings.slow_read;
        }
        if ctx.inflight > 0 && now >= next_sweep {
            for conn in conns.iter_mut() {
                let waiting = matches!(conn.state, State::Connecting | State::Handshaking);
                if waiting && conn.started.elapsed() > settings.handshake_timeout {
                    ctx.close(conn, "timeout");
                }
            }
            next_sweep = now + Duration::from_millis(200);
        }
        if ctx.live_prices > 0 {
            shared
                .price_frames
                .fetch_add(ctx.live_prices, Ordering::Relaxed);
            ctx.live_prices = 0;
        }
        if ctx.live_flushes > 0 {
            shared
                .flushes
                .fetch_add(ctx.live_flushes, Ordering::Relaxed);
            ctx.live_flushes = 0;
        }
    }

    for conn in &conns {
        if conn.class == Class::Healthy && conn.state == State::Open && conn.ready {
            if conn.flushes > 0 {
                ctx.stats.busy_flushes.push(conn.flushes);
            } else {
                ctx.stats.idle_conns += 1;
            }
        }
    }
    let never_started = conns.len() - next_start;
    if never_started > 0 {
        *ctx.stats
            .failures
            .entry("setup:never_started".into())
            .or_default() += never_started as u64;
    }
    Ok(ctx.stats)
}

fn start(ctx: &mut Ctx<'_>, conn: &mut Conn, index: usize) {
    conn.started = Instant::now();
    conn.state = State::Connecting;
    ctx.inflight += 1;
    let mut sock = match TcpStream::connect(ctx.target.addr) {
        Ok(sock) => sock,
        Err(e) => return ctx.close(conn, &io_reason(&e)),
    };
    let interest = Interest::READABLE | Interest::WRITABLE;
    if let Err(e) = ctx.registry.register(&mut sock, Token(index), interest) {
        return ctx.close(conn, &io_reason(&e));
    }
    conn.sock = Some(sock);
}

/// Records a healthy price's latency into the current ramp step, if any.
fn record_step(shared: &Shared, steps: &mut Vec<hdrhistogram::Histogram<u64>>, latency: u64) {
    let step = shared.step.load(Ordering::Relaxed);
    if step == NO_STEP {
        return;
    }
    if steps.len() <= step {
        steps.resize_with(step + 1, crate::stats::histogram);
    }
    steps[step].saturating_record(latency);
    shared.step_prices.fetch_add(1, Ordering::Relaxed);
    if latency > LATENCY_TARGET_US {
        shared.step_late.fetch_add(1, Ordering::Relaxed);
    }
}

fn record(h: &mut hdrhistogram::Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused".into(),
        ErrorKind::ConnectionReset => "reset".into(),
        ErrorKind::BrokenPipe => "broken_pipe".into(),
        ErrorKind::TimedOut => "timed_out".into(),
        _ => match e.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => "too_many_open_files".into(),
            Some(libc::EADDRNOTAVAIL) => "no_local_port".into(),
            _ => format!("io_{:?}", e.kind()).to_lowercase(),
        },
    }
}

/// Microseconds since the UNIX epoch: the clock of the server's `ts`.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
