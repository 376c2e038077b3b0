//! One load thread: a mio (epoll, edge-triggered) loop over its share of the
//! connections (conn.rs), and the state it shares with the main thread.

use crate::conn::{Conn, Ctx, State};
use crate::stamps::Stamps;
use crate::stats::WorkerStats;
use mio::{Events, Poll};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Connections are being opened; nothing is measured yet.
pub const CONNECTING: u8 = 0;
/// Everyone is subscribed; the warm-up runs before the window.
pub const WARMUP: u8 = 1;
/// The measurement window.
pub const MEASURE: u8 = 2;
/// Stop and hand back the stats.
pub const DONE: u8 = 3;

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
    /// The harness feed's send times, when it drives the server: latency is
    /// then measured from them instead of the server's `ts`.
    pub stamps: Option<Arc<Stamps>>,
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
    /// Offer permessage-deflate like a browser and inflate what comes compressed.
    pub deflate: bool,
    /// Speak TLS (`wss://`) with this client configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The server speaks the Pusher protocol (sockudo): prices arrive inside
    /// `price` events, one subscription per symbol.
    pub pusher: bool,
    /// The server counts its socket writes at `/metrics` (quotecast; over
    /// TLS with `tls`): the run reads them at the window's edges.
    pub counts_writes: bool,
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

/// Runs one worker over `plans` until the phase is [`DONE`] or the deadline
/// passes. The event loop, one turn per poll: start connections (paced),
/// poll, handle events, read the slow ones, sweep stuck handshakes.
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
    let mut ctx = Ctx::new(poll.registry().try_clone()?, target, shared, settings.seed);
    let now = Instant::now();
    let mut conns: Vec<Conn> = plans.into_iter().map(|p| Conn::new(p, now)).collect();
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
            ctx.start(&mut conns[next_start], next_start);
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
        poll_timed(&mut poll, &mut events, timeout, &mut ctx)?;
        for ev in events.iter() {
            ctx.on_event(&mut conns[ev.token().0], ev, &mut buf);
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
            ctx.sweep_handshakes(&mut conns, settings.handshake_timeout);
            next_sweep = now + Duration::from_millis(200);
        }
        ctx.publish_live();
    }
    let never_started = conns.len() - next_start;
    Ok(ctx.finish(&conns, never_started))
}

/// Polls for up to `timeout`; a poll that returns [`STALL`] later than that
/// in the window is counted as a stall of the generator.
fn poll_timed(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Duration,
    ctx: &mut Ctx<'_>,
) -> std::io::Result<()> {
    let polled_at = Instant::now();
    if let Err(e) = poll.poll(events, Some(timeout)) {
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let late = polled_at.elapsed().saturating_sub(timeout);
    if ctx.measuring && late > STALL {
        ctx.stats.counts.gen_stalls += 1;
        let late_us = late.as_micros() as u64;
        ctx.stats.counts.gen_stall_max_us = ctx.stats.counts.gen_stall_max_us.max(late_us);
    }
    Ok(())
}

/// Microseconds since the UNIX epoch: the clock of the server's `ts`.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
