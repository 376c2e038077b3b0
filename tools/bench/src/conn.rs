//! One connection of a load thread and what it does with its bytes:
//! connect, upgrade, subscribe, then read frames, answer pings, and time
//! every live price against its `ts`. [`Ctx`] holds what they all share.

use crate::decode::{self, Kind};
use crate::pusher;
use crate::reads::{self, ReadSplit, Timed};
use crate::rx;
use crate::stamps;
use crate::stats::WorkerStats;
use crate::worker::{unix_us, Class, Plan, Shared, Target, LATENCY_TARGET_US, NO_STEP};
use flate2::{Decompress, FlushDecompress};
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use quotecast_testkit::{http, ws};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Two prices of one connection further apart than this belong to different
/// flushes. The server flushes a connection at most every 1/max_rate_hz
/// (16.7 ms at 60 Hz) in one vectored write, whose parts reach the client
/// within microseconds of each other even when split over several reads.
const FLUSH_GAP_US: u64 = 1_000;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Pending,
    /// TCP connect in flight.
    Connecting,
    /// Upgrade request sent, waiting for the `101`.
    Handshaking,
    /// Upgraded.
    Open,
    /// Ended.
    Closed,
}

/// One connection of a load thread.
pub struct Conn {
    /// The socket, once connecting.
    pub sock: Option<TcpStream>,
    /// The TLS session over it, when the target speaks TLS.
    pub tls: Option<Box<ClientConnection>>,
    /// Where it is.
    pub state: State,
    /// How it reads.
    pub class: Class,
    /// When it started connecting.
    pub started: Instant,
    /// The frames to send once upgraded, then the time they were sent.
    pub subscribe: Vec<Vec<u8>>,
    /// Its upgrade path, when not the target's.
    pub path: Option<Box<str>>,
    /// When the subscribe op went out.
    pub sub_sent: Option<Instant>,
    /// Subscriptions not confirmed yet (Pusher: one per symbol).
    pub subs_due: usize,
    /// The `Sec-WebSocket-Accept` the server must answer.
    pub expected_accept: Option<Box<str>>,
    /// Bytes waiting for the socket to accept them.
    pub out: Vec<u8>,
    /// Handshake bytes, or the unparsed tail of a frame split across reads.
    pub inbuf: Vec<u8>,
    /// Subscribed (acknowledged), or ready by its plan.
    pub ready: bool,
    /// When its last price arrived (µs).
    pub last_price_us: u64,
    /// When its last flush began (µs).
    pub last_flush_us: u64,
    /// When the flush before that began (µs): the one a price of the last
    /// flush is measured against for the leading edge.
    pub prev_flush_us: u64,
    /// Flushes received in the measurement window.
    pub flushes: u32,
    /// Symbols (harness indexes) of the write being read, in a run against
    /// a conflating server: see [`reads`].
    pub write_symbols: Vec<u32>,
}

/// Everything a frame handler may touch besides its connection.
pub struct Ctx<'a> {
    /// Where the sockets are registered.
    pub registry: Registry,
    /// The server.
    pub target: &'a Target,
    /// State shared with the main thread.
    pub shared: &'a Shared,
    /// This thread's statistics.
    pub stats: WorkerStats,
    /// Inside the measurement window.
    pub measuring: bool,
    /// Wall clock of the last read (µs).
    pub now_us: u64,
    /// Connects and upgrades in flight.
    pub inflight: usize,
    /// Prices since the last `publish_live`.
    pub live_prices: u64,
    /// Flushes since the last `publish_live`.
    pub live_flushes: u64,
    /// State of the mask generator.
    pub rng: u64,
    /// Inflates compressed messages (`--deflate`), reset for each.
    inflater: Decompress,
    /// The last message inflated (or taken out of a Pusher event); its
    /// buffer is reused.
    inflated: Vec<u8>,
    /// Healthy prices of the socket read being parsed, timed once it ends.
    read: ReadSplit,
}

impl Conn {
    /// A connection not started yet, as `plan` says.
    pub fn new(plan: Plan, now: Instant) -> Conn {
        Conn {
            sock: None,
            tls: None,
            state: State::Pending,
            class: plan.class,
            started: now,
            subscribe: plan.subscribe,
            path: plan.path.map(String::into_boxed_str),
            sub_sent: None,
            subs_due: 0,
            expected_accept: None,
            out: Vec::new(),
            inbuf: Vec::new(),
            ready: false,
            last_price_us: 0,
            last_flush_us: 0,
            prev_flush_us: 0,
            flushes: 0,
            write_symbols: Vec::new(),
        }
    }
}

impl<'a> Ctx<'a> {
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
    pub fn close(&mut self, conn: &mut Conn, reason: &str) {
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
        conn.tls = None;
        conn.out = Vec::new();
        conn.inbuf = Vec::new();
    }

    /// Sends what `conn.out` holds (through the TLS session, when there is one).
    pub fn write_out(&mut self, conn: &mut Conn) {
        if let Some(tls) = conn.tls.as_mut() {
            // rustls takes the plaintext whole; its records go out below.
            if tls.writer().write_all(&conn.out).is_err() {
                return self.close(conn, "tls_write");
            }
            conn.out.clear();
            return self.flush_tls(conn);
        }
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

    /// Writes the TLS records the session has ready until the socket is full.
    fn flush_tls(&mut self, conn: &mut Conn) {
        loop {
            let (Some(tls), Some(sock)) = (conn.tls.as_mut(), conn.sock.as_mut()) else {
                return;
            };
            if !tls.wants_write() {
                return;
            }
            match tls.write_tls(sock) {
                Ok(0) => return self.close(conn, "write_zero"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.close(conn, &io_reason(&e)),
            }
        }
    }

    /// Whether `conn` has bytes waiting for the socket to take them.
    fn has_output(conn: &Conn) -> bool {
        !conn.out.is_empty() || conn.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// The connection finished connecting: starts TLS when the target
    /// speaks it, and sends the upgrade request.
    pub fn on_connected(&mut self, conn: &mut Conn) {
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
        let offer: &[(&str, &str)] = if self.target.deflate {
            &[("Sec-WebSocket-Extensions", ws::DEFLATE_OFFER)]
        } else {
            &[]
        };
        conn.out = ws::upgrade_request_with(
            &self.target.host,
            conn.path.as_deref().unwrap_or(&self.target.path),
            &key,
            &self.target.token,
            offer,
        );
        if let Some(config) = &self.target.tls {
            let name = ServerName::try_from("localhost").expect("a valid DNS name");
            match ClientConnection::new(config.clone(), name) {
                Ok(tls) => conn.tls = Some(Box::new(tls)),
                Err(e) => return self.close(conn, &format!("tls_{e}")),
            }
        }
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
                let deflate = head
                    .header("sec-websocket-extensions")
                    .is_some_and(|e| e.starts_with("permessage-deflate"));
                if self.target.deflate && !deflate {
                    return self.close(conn, "deflate_refused");
                }
                record(&mut self.stats.handshake, conn.started.elapsed());
                self.inflight -= 1;
                conn.state = State::Open;
                conn.expected_accept = None;
                conn.inbuf.drain(..head.len);
                let ops = std::mem::take(&mut conn.subscribe);
                let subscribes_by_path = ops.is_empty();
                conn.subs_due = ops.len();
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
            ws::OP_TEXT if frame.fin && frame.rsv1 => self.on_compressed(conn, frame.payload),
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

    /// Inflates a compressed message as a browser does (the server uses no
    /// context takeover, so each message on its own), then reads it as text.
    fn on_compressed(&mut self, conn: &mut Conn, payload: &[u8]) {
        let mut out = std::mem::take(&mut self.inflated);
        out.clear();
        self.inflater.reset(false);
        if inflate_into(&mut self.inflater, payload, &mut out) {
            self.on_text(conn, &out);
        } else {
            self.close(conn, "bad_deflate");
        }
        self.inflated = out;
    }

    /// Times a live price from when the harness's feed generated it (or,
    /// without the harness's feed, from its `ts`) and counts the flush it
    /// belongs to. A healthy price's latency is recorded when its read ends
    /// ([`Ctx::settle_read`]), once it is known which write it came in.
    fn on_price(&mut self, conn: &mut Conn, payload: &[u8]) {
        let Some(price) = decode::price_fields(payload) else {
            self.stats.counts.bad_prices += 1;
            return;
        };
        self.live_prices += 1;
        let now = self.now_us;
        let symbol = price.symbol.and_then(stamps::symbol_index);
        // Known from quotecast's welcome only: peers have no cap, and may
        // send a symbol more than once per write.
        let hz = self.shared.max_rate_hz.load(Ordering::Relaxed);
        let after_gap = now.saturating_sub(conn.last_price_us) > FLUSH_GAP_US;
        if after_gap {
            conn.write_symbols.clear();
        }
        let repeated = match symbol {
            Some(s) if hz > 0 => reads::repeats(&mut conn.write_symbols, s as u32),
            _ => false,
        };
        if repeated {
            self.read.new_write();
        }
        conn.last_price_us = now;
        if after_gap || repeated {
            if conn.class == Class::Healthy {
                self.live_flushes += 1;
            }
            if self.measuring && conn.class == Class::Healthy {
                self.stats.counts.flushes += 1;
                conn.flushes += 1;
                if after_gap && conn.last_flush_us != 0 {
                    self.read.gap(now - conn.last_flush_us);
                }
            }
            conn.prev_flush_us = conn.last_flush_us;
            conn.last_flush_us = now;
        }
        if !self.measuring {
            return;
        }
        let counts = &mut self.stats.counts;
        counts.price_frames += 1;
        counts.price_bytes += payload.len() as u64;
        let origin = match &self.shared.stamps {
            None => price.ts(),
            Some(stamps) => symbol.and_then(|symbol| stamps.lookup(symbol, price.seq)),
        };
        match (origin.map(|o| now.saturating_sub(o).max(1)), conn.class) {
            (None, _) => counts.unmatched_prices += 1,
            (Some(latency_us), Class::Healthy) => {
                // Every price of a write counts against the flush before it.
                let uncapped = conn.prev_flush_us + 1_000_000 / hz.max(1);
                let leading = hz > 0 && conn.prev_flush_us != 0 && now - latency_us > uncapped;
                self.read.push(Timed {
                    latency_us,
                    leading,
                });
            }
            (Some(latency), Class::Slow | Class::Dead) => {
                self.stats.latency_slow.saturating_record(latency)
            }
        }
    }

    /// Records the healthy prices of the read that just ended: those of its
    /// last write at the read's stamp, those of earlier writes apart (see
    /// [`reads`]).
    fn settle_read(&mut self) {
        let stats = &mut self.stats;
        let shared = self.shared;
        let gap = self.read.finish(|t, known| {
            if known {
                stats.latency.saturating_record(t.latency_us);
                record_step(shared, &mut stats.steps, t.latency_us);
                if t.leading {
                    stats.latency_leading.saturating_record(t.latency_us);
                }
            } else {
                stats.latency_merged.saturating_record(t.latency_us);
            }
        });
        if let Some(gap) = gap {
            stats.flush_gap.saturating_record(gap);
        }
    }

    /// The connection's subscription is confirmed: it counts as ready.
    fn mark_ready(&mut self, conn: &mut Conn) {
        if !conn.ready {
            conn.ready = true;
            self.shared.ready.fetch_add(1, Ordering::Relaxed);
            if let Some(sent) = conn.sub_sent.take() {
                record(&mut self.stats.subscribe, sent.elapsed());
            }
        }
    }

    /// A Pusher message (sockudo): a price inside a `price` event, or the
    /// confirmation of one symbol's subscription.
    fn on_pusher(&mut self, conn: &mut Conn, payload: &[u8]) {
        match pusher::event(payload) {
            pusher::Event::Price(escaped) => {
                let mut message = std::mem::take(&mut self.inflated);
                pusher::unescape_into(escaped, &mut message);
                self.on_price(conn, &message);
                self.inflated = message;
            }
            pusher::Event::Subscribed => {
                self.stats.counts.acks += 1;
                conn.subs_due = conn.subs_due.saturating_sub(1);
                if conn.subs_due == 0 {
                    self.mark_ready(conn);
                }
            }
            pusher::Event::Error => self.stats.counts.errors += 1,
            pusher::Event::Other => self.stats.counts.other += 1,
        }
    }

    fn on_text(&mut self, conn: &mut Conn, payload: &[u8]) {
        if self.target.pusher {
            return self.on_pusher(conn, payload);
        }
        let counts = &mut self.stats.counts;
        match decode::classify(payload) {
            Kind::Price => self.on_price(conn, payload),
            Kind::Snapshot => counts.snapshots += 1,
            Kind::Ack => {
                counts.acks += 1;
                if decode::find(payload, br#""errors":[{"#).is_some() {
                    counts.ack_errors += 1;
                }
                self.mark_ready(conn);
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

    /// Reads `conn` until the socket is drained. Each socket read is parsed
    /// as one read, at the time its bytes arrived; over TLS it goes into the
    /// first half of `buf` and its plaintext into the second (see
    /// [`Ctx::on_records`]).
    pub fn read_conn(&mut self, conn: &mut Conn, buf: &mut [u8]) {
        let tls = conn.tls.is_some();
        let (wire, plain): (&mut [u8], &mut [u8]) = if tls {
            debug_assert!(
                buf.len() >= 2 * 4096,
                "room for a socket read and its plaintext"
            );
            buf.split_at_mut(buf.len() / 2)
        } else {
            (buf, &mut [])
        };
        loop {
            let Some(sock) = conn.sock.as_mut() else {
                return;
            };
            let n = match rx::recv(sock.as_raw_fd(), wire) {
                Ok((0, _)) => return self.close(conn, "eof"),
                Ok((n, stamp)) => {
                    self.socket_read(conn, n, stamp);
                    n
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.close(conn, &io_reason(&e)),
            };
            if tls {
                self.on_records(conn, &wire[..n], plain);
            } else {
                self.on_bytes(conn, &wire[..n]);
            }
            self.settle_read();
            if tls {
                // Handshake messages and alerts the records called for
                // (nothing once the connection closed).
                self.flush_tls(conn);
            }
            // A short read drained the socket. Linux epoll in edge-triggered
            // mode signals again on every later arrival, so the read that
            // would only return WouldBlock is skipped.
            if conn.state == State::Closed || n < wire.len() {
                return;
            }
        }
    }

    /// Counts a socket read of `n` bytes and sets the time of its bytes:
    /// when they reached the socket (`stamp`, see [`rx`]), else now. How long
    /// a healthy connection's bytes waited for this loop is recorded apart,
    /// once per socket read.
    fn socket_read(&mut self, conn: &Conn, n: usize, stamp: Option<u64>) {
        if self.measuring {
            self.stats.counts.wire_bytes += n as u64;
            self.stats.counts.reads += 1;
        }
        let now = unix_us();
        self.now_us = stamp.map_or(now, |s| s.min(now));
        if self.measuring && conn.class == Class::Healthy && stamp.is_some() {
            let waited = now - self.now_us;
            self.stats.read_delay.saturating_record(waited.max(1));
        }
    }

    /// Feeds one socket read of TLS `records` to `conn`'s session whole and
    /// parses the plaintext they carry (read into `plain`). rustls reads a
    /// socket 4 KiB at a time, so when it read the socket itself a record
    /// longer than that took the stamp of the read that completed it, which
    /// held the next write's first bytes whenever this loop was late.
    fn on_records(&mut self, conn: &mut Conn, mut records: &[u8], plain: &mut [u8]) {
        while !records.is_empty() {
            let Some(tls) = conn.tls.as_mut() else {
                return;
            };
            if let Err(e) = tls.read_tls(&mut records) {
                return self.close(conn, &io_reason(&e));
            }
            if let Err(e) = tls.process_new_packets() {
                return self.close(conn, &format!("tls_{e}"));
            }
            loop {
                let Some(tls) = conn.tls.as_mut() else {
                    return;
                };
                match tls.reader().read(plain) {
                    Ok(0) => return self.close(conn, "eof"),
                    Ok(k) => self.on_bytes(conn, &plain[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return self.close(conn, &io_reason(&e)),
                }
            }
        }
    }

    /// A context with no connection in flight yet; masks drawn from `seed`.
    pub fn new(registry: Registry, target: &'a Target, shared: &'a Shared, seed: u64) -> Self {
        Ctx {
            registry,
            target,
            shared,
            stats: WorkerStats::new(),
            measuring: false,
            now_us: unix_us(),
            inflight: 0,
            live_prices: 0,
            live_flushes: 0,
            rng: seed | 1,
            inflater: Decompress::new(false),
            inflated: Vec::new(),
            read: ReadSplit::default(),
        }
    }

    /// Starts connecting `conn`, registered under token `index`.
    pub fn start(&mut self, conn: &mut Conn, index: usize) {
        conn.started = Instant::now();
        conn.state = State::Connecting;
        self.inflight += 1;
        let mut sock = match TcpStream::connect(self.target.addr) {
            Ok(sock) => sock,
            Err(e) => return self.close(conn, &io_reason(&e)),
        };
        if let Err(e) = rx::enable(&sock) {
            return self.close(conn, &io_reason(&e));
        }
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.registry.register(&mut sock, Token(index), interest) {
            return self.close(conn, &io_reason(&e));
        }
        conn.sock = Some(sock);
    }

    /// Handles one readiness event of `conn`.
    pub fn on_event(&mut self, conn: &mut Conn, ev: &Event, buf: &mut [u8]) {
        match conn.state {
            State::Connecting => {
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.on_connected(conn);
                }
            }
            State::Handshaking | State::Open => {
                if ev.is_writable() && Self::has_output(conn) {
                    self.write_out(conn);
                }
                let wants_read = conn.state == State::Handshaking
                    || (conn.state == State::Open && conn.class == Class::Healthy);
                if wants_read && (ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                    self.read_conn(conn, buf);
                }
            }
            State::Pending | State::Closed => {}
        }
    }

    /// Fails the connections still connecting or upgrading after `timeout`.
    pub fn sweep_handshakes(&mut self, conns: &mut [Conn], timeout: Duration) {
        for conn in conns {
            let waiting = matches!(conn.state, State::Connecting | State::Handshaking);
            if waiting && conn.started.elapsed() > timeout {
                self.close(conn, "timeout");
            }
        }
    }

    /// Adds the prices and flushes seen since the last call to the shared
    /// counters the timeline reads.
    pub fn publish_live(&mut self) {
        if self.live_prices > 0 {
            self.shared
                .price_frames
                .fetch_add(self.live_prices, Ordering::Relaxed);
            self.live_prices = 0;
        }
        if self.live_flushes > 0 {
            self.shared
                .flushes
                .fetch_add(self.live_flushes, Ordering::Relaxed);
            self.live_flushes = 0;
        }
    }

    /// The statistics, with each healthy open connection's flush count and
    /// the `never_started` connections counted as failures.
    pub fn finish(mut self, conns: &[Conn], never_started: usize) -> WorkerStats {
        for conn in conns {
            if conn.class == Class::Healthy && conn.state == State::Open && conn.ready {
                if conn.flushes > 0 {
                    self.stats.busy_flushes.push(conn.flushes);
                } else {
                    self.stats.idle_conns += 1;
                }
            }
        }
        if never_started > 0 {
            *self
                .stats
                .failures
                .entry("setup:never_started".into())
                .or_default() += never_started as u64;
        }
        self.stats
    }
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

/// Records a duration, in µs (at least 1).
fn record(h: &mut hdrhistogram::Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// A short name for a socket error, for the failure counts.
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

/// Inflates one message of a no-context-takeover stream into `out`, with the
/// `00 00 ff ff` tail RFC 7692 strips appended; false if it is not deflate.
fn inflate_into(d: &mut Decompress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
    for part in [payload, &TAIL[..]] {
        let start = d.total_in();
        loop {
            let at = (d.total_in() - start) as usize;
            if at == part.len() && out.len() < out.capacity() {
                break;
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(4 * payload.len()).max(256));
            }
            let (was_in, was_out) = (d.total_in(), d.total_out());
            if d.decompress_vec(&part[at..], out, FlushDecompress::Sync)
                .is_err()
            {
                return false;
            }
            if (d.total_in(), d.total_out()) == (was_in, was_out) && out.len() < out.capacity() {
                return false; // input left that yields nothing: truncated
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Plan;

    /// An unmasked server text frame with a price of `symbol` stamped `ts`.
    fn price(symbol: u32, ts: u64, out: &mut Vec<u8>) {
        let payload = format!(
            r#"{{"type":"price","symbol":"S{symbol:04}","seq":1,"bid":1.0,"ask":1.1,"ts":{ts}}}"#
        );
        out.extend_from_slice(&[0x81, payload.len() as u8]);
        out.extend_from_slice(payload.as_bytes());
    }

    /// A target at `addr` (over TLS with `tls`) and the shared state of a
    /// run against a conflating server at 60 Hz.
    fn conflating(
        addr: std::net::SocketAddr,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> (Target, Shared) {
        let target = Target {
            addr,
            host: "localhost".into(),
            path: "/v1/ws".into(),
            token: String::new(),
            deflate: false,
            tls,
            pusher: false,
            counts_writes: false,
        };
        let shared = Shared::default();
        shared.max_rate_hz.store(60, Ordering::Relaxed);
        (target, shared)
    }

    /// A healthy connection, open (upgraded), with no socket yet.
    fn open_healthy_conn() -> Conn {
        let plan = Plan {
            class: Class::Healthy,
            subscribe: Vec::new(),
            path: None,
        };
        let mut conn = Conn::new(plan, Instant::now());
        conn.state = State::Open;
        conn
    }

    /// Parses `read` as one socket read stamped `stamp_us` (a conflating
    /// server's, at 60 Hz) on a connection last flushed at `flushed_us`, and
    /// returns the stats.
    fn one_read(read: &[u8], stamp_us: u64, flushed_us: u64) -> WorkerStats {
        let poll = mio::Poll::new().unwrap();
        let (target, shared) = conflating("127.0.0.1:1".parse().unwrap(), None);
        let registry = poll.registry().try_clone().unwrap();
        let mut ctx = Ctx::new(registry, &target, &shared, 1);
        ctx.measuring = true;
        ctx.now_us = stamp_us;
        let mut conn = open_healthy_conn();
        conn.last_price_us = flushed_us;
        conn.last_flush_us = flushed_us;
        ctx.on_bytes(&mut conn, read);
        ctx.settle_read();
        ctx.stats
    }

    #[test]
    fn a_read_of_one_write_times_every_price_at_its_stamp() {
        let mut read = Vec::new();
        price(1, 9_000, &mut read);
        price(2, 8_000, &mut read);
        let stats = one_read(&read, 30_000, 10_000);
        assert_eq!(stats.latency.len(), 2);
        assert!(stats.latency.equivalent(stats.latency.max(), 22_000));
        assert_eq!(stats.latency_merged.len(), 0);
        assert_eq!(stats.counts.flushes, 1);
        assert!(stats.flush_gap.equivalent(stats.flush_gap.max(), 20_000));
        // Generated before the previous flush (at 10 ms): they waited for
        // the rate cap, so they are not the leading edge.
        assert_eq!(stats.latency_leading.len(), 0);
        // Generated more than 1/60 s after it: both are, not just the first.
        let mut late = Vec::new();
        price(1, 40_000, &mut late);
        price(2, 41_000, &mut late);
        let stats = one_read(&late, 60_000, 10_000);
        assert_eq!(stats.latency_leading.len(), 2);
    }

    #[test]
    fn a_read_of_two_writes_times_only_the_last() {
        let mut read = Vec::new();
        // The first write, 20 ms before the read's stamp...
        price(1, 1_000, &mut read);
        price(2, 1_500, &mut read);
        // ...and the second: symbol 1 again starts it.
        price(1, 20_000, &mut read);
        price(3, 20_500, &mut read);
        let stats = one_read(&read, 21_000, 500);
        assert_eq!(stats.counts.flushes, 2);
        assert_eq!(stats.latency_merged.len(), 2);
        assert_eq!(stats.latency.len(), 2);
        assert_eq!(stats.latency.max(), 1_000);
        // The second write's previous flush is the first write, whose time
        // is unknown: none of its prices counts as the leading edge.
        assert_eq!(stats.latency_leading.len(), 0);
        assert_eq!(
            stats.flush_gap.len(),
            0,
            "the gap to a merged write is unknown"
        );
    }

    /// Two writes of a conflating server over TLS, each one TLS record
    /// longer than rustls's 4 KiB socket reads, the second repeating the
    /// first's symbols, both waiting in the socket: the harness reads them
    /// in one socket read, so the first is found inside it and set apart
    /// (read 4 KiB at a time, the first record's prices were timed as a
    /// read of their own).
    #[test]
    fn a_tls_read_that_holds_two_writes_sets_the_first_apart() {
        use quotecast_testkit::tls::{self, TestCa};
        let dir = std::env::temp_dir().join(format!("qc-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::create(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server_config = ca.server_config();
        let (written_tx, written_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(server_config).unwrap();
            let mut stream = rustls::StreamOwned::new(conn, sock);
            for ts in [1_000, 2_000] {
                let mut write = Vec::new();
                for symbol in 0..60 {
                    price(symbol, ts, &mut write);
                }
                assert!(write.len() > 4096, "{} bytes", write.len());
                stream.write_all(&write).unwrap();
                stream.flush().unwrap();
            }
            written_tx.send(()).unwrap();
            // Holds the connection open until the client has read.
            let _ = stream.sock.read(&mut [0u8; 1]);
        });
        let client = tls::connect(ca.client_config(), addr, Duration::from_secs(10)).unwrap();
        written_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let rustls::StreamOwned {
            conn: session,
            sock,
        } = client;
        sock.set_nonblocking(true).unwrap();

        let poll = mio::Poll::new().unwrap();
        let (target, shared) = conflating(addr, Some(ca.client_config()));
        let mut ctx = Ctx::new(poll.registry().try_clone().unwrap(), &target, &shared, 1);
        ctx.measuring = true;
        let mut conn = open_healthy_conn();
        conn.sock = Some(TcpStream::from_std(sock));
        conn.tls = Some(Box::new(session));
        let mut buf = vec![0u8; 64 * 1024];
        ctx.read_conn(&mut conn, &mut buf);
        assert_eq!(ctx.stats.counts.price_frames, 120);
        assert_eq!(
            ctx.stats.latency_merged.len(),
            60,
            "the first write, set apart"
        );
        assert_eq!(ctx.stats.latency.len(), 60, "the second, timed");
        assert_eq!(ctx.stats.counts.reads, 1);
        drop(conn);
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
