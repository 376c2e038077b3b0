//! The physical limit probe: how many coalesced socket writes of pre-built
//! WebSocket frames this machine does per second over loopback, with no
//! protocol logic at all. One writer thread (the "server", pinned to one core)
//! writes `frames_per_write` price-sized frames per connection per round in
//! one `send(2)`; one reader thread (the "client", pinned to another core)
//! drains every connection with epoll. The report divides the writer's CPU
//! time (from `/proc/thread-self/stat`) by its writes: the cost of one write.
//! With `work_us_per_write` the writer also spins that long after each
//! write, a stand-in for a server's own work, and the cost includes it;
//! with `work_batch` K it spins K times that long once every K writes: the
//! same work, done between bursts of sends instead of between sends. With
//! `send_batch` N it submits N sends in one system call, with quotecast's
//! own batch sender (an io_uring, as its write pass does), instead of one
//! `send(2)` each: the ceiling of that way of writing.

use crate::cli::ProbeArgs;
use crate::procstat;
use crate::results;
use crate::run::raise_nofile;
use anyhow::Context;
use mio::{Events, Interest, Poll, Token};
use quotecast::parts::{send_now, SendBatch, Sent};
use serde::Serialize;
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeConfig {
    /// Loopback connections.
    pub connections: usize,
    /// Frames coalesced into each write (quotecast's prices per flush).
    pub frames_per_write: usize,
    /// Payload bytes of one frame (a quotecast price is ~150).
    pub payload_bytes: usize,
    /// How long the writer runs, seconds.
    pub duration_s: f64,
    /// Core of the writer (the server side).
    pub writer_core: Option<usize>,
    /// Core of the reader (the client side).
    pub reader_core: Option<usize>,
    /// Time the writer spins after each successful write, µs (0 in
    /// `compare`): wall time, so time the VM loses to others counts in it.
    pub work_us_per_write: f64,
    /// Writes between two spins of the work (1: after each write).
    pub work_batch: usize,
    /// Sends submitted in one system call (1: one `send(2)` per write).
    pub send_batch: usize,
}

/// What the probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The configuration it ran with.
    pub config: ProbeConfig,
    /// Wall time the writer ran, seconds.
    pub window_s: f64,
    /// Successful writes per second.
    pub writes_per_s: f64,
    /// Whole frames written per second.
    pub frames_per_s: f64,
    /// Bytes the reader received per second.
    pub read_bytes_per_s: f64,
    /// Writes refused with `EAGAIN` (the reader's buffers were full).
    pub would_block: u64,
    /// Writer CPU per successful write, µs.
    pub cpu_us_per_write: f64,
    /// Writer CPU over the window, % of one core.
    pub writer_cpu_pct: f64,
    /// Reader CPU over the window, % of one core.
    pub reader_cpu_pct: f64,
}

/// One pre-built server text frame carrying a price-shaped JSON payload of
/// `payload_bytes` (padded in the `venue` field).
pub fn price_frame(payload_bytes: usize) -> Vec<u8> {
    let head =
        r#"{"type":"price","symbol":"EURUSD","seq":918273,"bid":1.08412,"ask":1.08415,"venue":""#;
    let tail = r#"","ts":1763769600123456}"#;
    let pad = payload_bytes.saturating_sub(head.len() + tail.len());
    let payload = format!("{head}{}{tail}", "x".repeat(pad));
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.push(0x81);
    if payload.len() < 126 {
        frame.push(payload.len() as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(payload.as_bytes());
    frame
}

/// `quotecast-bench probe`: the probe alone, printed (and written as JSON).
pub fn main(a: &ProbeArgs) -> anyhow::Result<()> {
    raise_nofile();
    let r = run(&ProbeConfig {
        connections: a.connections,
        frames_per_write: a.frames_per_write,
        payload_bytes: a.payload_bytes,
        duration_s: a.duration,
        writer_core: Some(a.writer_core),
        reader_core: Some(a.reader_core),
        work_us_per_write: a.work_us_per_write,
        work_batch: a.work_batch,
        send_batch: a.send_batch,
    })?;
    println!("{}", results::probe_line(&r));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)?;
    }
    Ok(())
}

/// Runs the probe; every loop ends at `duration_s` (plus a bounded drain).
pub fn run(cfg: &ProbeConfig) -> anyhow::Result<ProbeReport> {
    anyhow::ensure!(cfg.work_batch > 0, "--work-batch must be 1 or more");
    anyhow::ensure!(cfg.send_batch > 0, "--send-batch must be 1 or more");
    let work = Duration::try_from_secs_f64(cfg.work_us_per_write / 1e6)
        .context("--work-us-per-write must be a finite number of µs, 0 or more")?;
    let work = Work {
        every: cfg.work_batch as u64,
        spin: u32::try_from(cfg.work_batch)
            .ok()
            .and_then(|k| work.checked_mul(k))
            .context("--work-us-per-write times --work-batch is too long")?,
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut servers = Vec::with_capacity(cfg.connections);
    let mut clients = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let c = TcpStream::connect(addr).with_context(|| format!("probe connection {i}"))?;
        let (s, _) = listener.accept()?;
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
        c.set_nonblocking(true)?;
        servers.push(s);
        clients.push(mio::net::TcpStream::from_std(c));
    }
    let frame = price_frame(cfg.payload_bytes);
    let batch: Vec<u8> = frame.repeat(cfg.frames_per_write.max(1));
    let stop = Arc::new(AtomicBool::new(false));

    let reader_stop = stop.clone();
    let reader_core = cfg.reader_core;
    let reader = std::thread::Builder::new()
        .name("probe-reader".into())
        .spawn(move || read_all(clients, reader_core, &reader_stop))?;

    let writer_core = cfg.writer_core;
    let send_batch = cfg.send_batch;
    let duration = Duration::from_secs_f64(cfg.duration_s);
    let writer = std::thread::Builder::new()
        .name("probe-writer".into())
        .spawn(move || write_all(servers, &batch, writer_core, duration, work, send_batch))?;
    let w = writer.join();
    // The reader stops whatever became of the writer.
    stop.store(true, Ordering::Relaxed);
    let w = w.map_err(|_| anyhow::anyhow!("probe writer panicked"))??;
    let r = reader
        .join()
        .map_err(|_| anyhow::anyhow!("probe reader panicked"))??;

    let per_s = |v: f64| v / w.window_s;
    Ok(ProbeReport {
        config: cfg.clone(),
        window_s: w.window_s,
        writes_per_s: per_s(w.writes as f64),
        frames_per_s: per_s((w.bytes / frame.len() as u64) as f64),
        read_bytes_per_s: r.bytes as f64 / r.window_s,
        would_block: w.would_block,
        cpu_us_per_write: if w.writes > 0 {
            w.cpu_s * 1e6 / w.writes as f64
        } else {
            0.0
        },
        writer_cpu_pct: w.cpu_s / w.window_s * 100.0,
        reader_cpu_pct: r.cpu_s / r.window_s * 100.0,
    })
}

/// The writer's stand-in work: `spin` once every `every` successful writes.
#[derive(Clone, Copy)]
struct Work {
    every: u64,
    spin: Duration,
}

struct WriterTotals {
    writes: u64,
    bytes: u64,
    would_block: u64,
    cpu_s: f64,
    window_s: f64,
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

fn write_all(
    servers: Vec<TcpStream>,
    batch: &[u8],
    core: Option<usize>,
    duration: Duration,
    work: Work,
    send_batch: usize,
) -> anyhow::Result<WriterTotals> {
    pin(core);
    let cpu0 = procstat::thread_cpu_s().context("reading /proc/thread-self/stat")?;
    let t0 = Instant::now();
    let mut t = WriterTotals {
        writes: 0,
        bytes: 0,
        would_block: 0,
        cpu_s: 0.0,
        window_s: 0.0,
    };
    let fds: Vec<RawFd> = servers.iter().map(AsRawFd::as_raw_fd).collect();
    let mut sends = (send_batch > 1).then(|| SendBatch::new(send_batch));
    anyhow::ensure!(
        sends.as_ref().is_none_or(SendBatch::uses_io_uring),
        "--send-batch needs an io_uring, and this kernel refused one"
    );
    let mut sent = Vec::with_capacity(send_batch);
    // Bounded by time: one round writes each connection once.
    while t0.elapsed() < duration {
        for &fd in &fds {
            match sends.as_mut() {
                Some(sends) => {
                    if sends.push(fd, batch) {
                        t.send_batch(sends, &mut sent, work)?;
                    }
                }
                None => t.count(send_now(fd, batch), work)?,
            }
        }
    }
    // The last round's partial batch goes too, inside the window.
    if let Some(sends) = sends.as_mut() {
        t.send_batch(sends, &mut sent, work)?;
        // A ring that failed on the way sent the rest by send(2): not the
        // figure asked for.
        anyhow::ensure!(
            sends.uses_io_uring(),
            "the io_uring failed during the probe"
        );
    }
    t.window_s = t0.elapsed().as_secs_f64();
    t.cpu_s = procstat::thread_cpu_s().context("reading /proc/thread-self/stat")? - cpu0;
    // The sockets were open for every send: they close here.
    drop(servers);
    Ok(t)
}

impl WriterTotals {
    /// Sends the batch and counts each write's result (`sent` is kept
    /// empty between calls, for its capacity).
    fn send_batch<'b>(
        &mut self,
        sends: &mut SendBatch<&'b [u8]>,
        sent: &mut Vec<Sent<&'b [u8]>>,
        work: Work,
    ) -> anyhow::Result<()> {
        sends.send_all(sent);
        for (_, _, result) in sent.drain(..) {
            self.count(result, work)?;
        }
        Ok(())
    }

    /// Counts one write's result (spinning the work after every
    /// `work.every` successful writes); an error other than a full socket
    /// ends the probe.
    fn count(&mut self, result: std::io::Result<usize>, work: Work) -> anyhow::Result<()> {
        match result {
            Ok(n) => {
                self.writes += 1;
                self.bytes += n as u64;
                if self.writes.is_multiple_of(work.every) {
                    spin(work.spin);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.would_block += 1,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("probe write"),
        }
        Ok(())
    }
}

/// Spins on this thread until `work` of wall time has passed (nothing when
/// it is zero), as `ProbeConfig::work_us_per_write` says.
fn spin(work: Duration) {
    if work.is_zero() {
        return;
    }
    let t = Instant::now();
    while t.elapsed() < work {
        std::hint::spin_loop();
    }
}

struct ReaderTotals {
    bytes: u64,
    cpu_s: f64,
    window_s: f64,
}

fn read_all(
    mut clients: Vec<mio::net::TcpStream>,
    core: Option<usize>,
    stop: &AtomicBool,
) -> anyhow::Result<ReaderTotals> {
    pin(core);
    let mut poll = Poll::new()?;
    for (i, c) in clients.iter_mut().enumerate() {
        // Stamped like the load's sockets: this keeps the kernel's
        // system-wide receive stamping on, which stamps every packet on the
        // writer's core as the loopback send queues it, as during a
        // server's run. (It turns on a moment after the first socket asks;
        // the clients are set up before the writer starts.)
        crate::rx::enable(c).context("SO_TIMESTAMPNS on a probe socket")?;
        poll.registry().register(c, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 256 * 1024];
    let cpu0 = procstat::thread_cpu_s().context("reading /proc/thread-self/stat")?;
    let t0 = Instant::now();
    let mut bytes = 0u64;
    // Bounded: stops when the writer is done (the flag), or after an hour.
    while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(3_600) {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            let c = &mut clients[ev.token().0];
            loop {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => bytes += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("probe read"),
                }
            }
        }
    }
    Ok(ReaderTotals {
        bytes,
        cpu_s: procstat::thread_cpu_s().context("reading /proc/thread-self/stat")? - cpu0,
        window_s: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short probe of `connections` with `work_us_per_write` spun every
    /// `work_batch` writes.
    fn short(connections: usize, work_us_per_write: f64, work_batch: usize) -> ProbeConfig {
        ProbeConfig {
            connections,
            frames_per_write: 1,
            payload_bytes: 120,
            duration_s: 0.2,
            writer_core: None,
            reader_core: None,
            work_us_per_write,
            work_batch,
            send_batch: 1,
        }
    }

    #[test]
    fn frame_is_a_parseable_price_of_the_asked_size() {
        let f = price_frame(150);
        let (frame, used) = quotecast_testkit::ws::parse_frame(&f).unwrap().unwrap();
        assert_eq!(used, f.len());
        assert_eq!(frame.payload.len(), 150);
        assert_eq!(
            crate::decode::classify(frame.payload),
            crate::decode::Kind::Price
        );
        assert!(crate::decode::price_fields(frame.payload).is_some());
    }

    #[test]
    fn short_probe_moves_frames() {
        for send_batch in [1, 3] {
            let r = run(&ProbeConfig {
                send_batch,
                frames_per_write: 3,
                ..short(4, 0.0, 1)
            })
            .unwrap();
            assert!(r.writes_per_s > 0.0, "send_batch {send_batch}");
            assert!((r.frames_per_s / r.writes_per_s - 3.0).abs() < 0.1);
            assert!(r.read_bytes_per_s > 0.0);
        }
    }

    #[test]
    fn work_per_write_bounds_the_write_rate() {
        let r = run(&short(2, 1_000.0, 1)).unwrap();
        // 1 ms of work after each write: at most 1000 writes a second.
        assert!(r.writes_per_s > 0.0);
        assert!(r.writes_per_s <= 1_000.0, "{} writes/s", r.writes_per_s);
    }

    #[test]
    fn negative_work_is_an_error_not_a_panic() {
        let e = run(&short(1, -1.0, 1)).unwrap_err();
        assert!(format!("{e:#}").contains("--work-us-per-write"), "{e:#}");
    }

    #[test]
    fn work_spun_in_batches_bounds_the_write_rate_the_same() {
        let r = run(&short(2, 1_000.0, 4)).unwrap();
        // 4 ms of work after every 4 writes: still at most 1000 a second.
        assert!(r.writes_per_s > 0.0);
        assert!(
            r.writes_per_s <= 1_000.0 + 4.0 / 0.2,
            "{} writes/s",
            r.writes_per_s
        );
        let e = run(&short(2, 1_000.0, 0)).unwrap_err();
        assert!(format!("{e:#}").contains("--work-batch"), "{e:#}");
    }
}
