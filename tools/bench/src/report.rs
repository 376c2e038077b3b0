//! The report of one run: what `--json` writes (field names are the format
//! README.md documents) and the summary printed on stdout.

use crate::procstat::ProcSample;
use crate::scenario::{Mix, RunConfig, Scenario};
use crate::scrape::WriteCounts;
use crate::stats::{self, Cadence, Counts, Percentiles, WorkerStats};
use crate::worker::{self, Shared};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// One point of the timeline sampled during the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimePoint {
    /// Seconds since the run started.
    pub t_s: f64,
    /// connect, warmup, measure, settle or step.
    pub phase: &'static str,
    /// Connections ready so far.
    pub ready: usize,
    /// Prices received per second (all connections).
    pub prices_per_s: f64,
    /// Flushes received by healthy connections per second.
    pub flushes_per_s: f64,
    /// The server's CPU, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// The server's resident memory.
    pub server_rss_kib: Option<u64>,
    /// The generator's CPU, percent of one core.
    pub gen_cpu_pct: Option<f64>,
}

/// CPU and memory of one process over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcReport {
    /// Its pid, when known.
    pub pid: Option<u32>,
    /// CPU over the window, percent of one core.
    pub cpu_pct: Option<f64>,
    /// RSS before the first connection.
    pub rss_before_connect_kib: Option<u64>,
    /// RSS once every connection was ready (or failed).
    pub rss_after_connect_kib: Option<u64>,
    /// RSS at the end of the window.
    pub rss_end_kib: Option<u64>,
    /// Highest RSS sampled.
    pub rss_max_kib: Option<u64>,
    /// (RSS after connecting - RSS before) / ready connections.
    pub rss_growth_per_conn_bytes: Option<f64>,
}

/// What was delivered per second of the window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Price frames.
    pub price_frames_per_s: f64,
    /// Their payload bytes.
    pub payload_bytes_per_s: f64,
    /// Bytes read from the sockets.
    pub wire_bytes_per_s: f64,
    /// Socket reads.
    pub reads_per_s: f64,
    /// Flushes received by healthy connections.
    pub flushes_per_s: f64,
    /// Price frames per flush.
    pub frames_per_flush: f64,
    /// Socket writes by the server's own count (quotecast's `/metrics`):
    /// what the probe's writes/s compare with. A client that falls behind
    /// takes several writes in one read, so `flushes_per_s` undercounts.
    pub server_writes_per_s: Option<f64>,
    /// Of those writes, how many found the socket full (its send buffer) in
    /// the window, by the server's count (a count, not a rate): dead
    /// clients whose queues filled in the window, slow readers, and any
    /// client the send buffer held back.
    pub server_socket_full_writes_in_window: Option<u64>,
}

/// The connections of the run and how they got set up.
#[derive(Debug, Clone, Serialize)]
pub struct ConnReport {
    /// Connections planned.
    pub planned: usize,
    /// ... of which healthy readers,
    pub healthy: usize,
    /// ... slow readers,
    pub slow: usize,
    /// ... and never readers.
    pub dead: usize,
    /// Connections that got ready.
    pub ready: usize,
    /// Connections that failed before being ready.
    pub failed: usize,
    /// Length of the connect phase, seconds.
    pub connect_phase_s: f64,
    /// TCP connect times.
    pub connect: Percentiles,
    /// Upgrade times (from connect).
    pub handshake: Percentiles,
    /// Subscribe to ack times.
    pub subscribe: Percentiles,
}

/// The server measured.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// quotecast, tokio-broadcast, nchan or sockudo.
    pub kind: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Whether the harness started it.
    pub spawned: bool,
    /// The core it was pinned to.
    pub pinned_core: Option<usize>,
    /// Symbols it serves.
    pub symbols: usize,
    /// `max_rate_hz` of its `welcome`, when it sent one.
    pub max_rate_hz: Option<u64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `quotecast-bench`.
    pub tool: &'static str,
    /// Start of the run.
    pub started_unix_ms: u64,
    /// The resolved workload.
    pub config: RunConfig,
    /// The server.
    pub server: ServerInfo,
    /// Length of the measurement window, seconds.
    pub window_s: f64,
    /// The connections.
    pub connections: ConnReport,
    /// Latency of healthy connections: from the generator's stamp of the
    /// quote (its `ts` without the harness's feed) to its bytes reaching
    /// the client's socket.
    pub latency_healthy: Percentiles,
    /// How long healthy connections' bytes waited in their sockets for the
    /// load thread to read them, per socket read: what the harness itself adds.
    pub read_delay: Percentiles,
    /// (percentile, µs) points of the healthy latency distribution.
    pub latency_curve: Vec<(f64, u64)>,
    /// The steps of a ramp, in order; empty outside a ramp.
    pub ramp: Vec<RampStep>,
    /// Quotes the harness's feed sent per second in the window.
    pub feed_quotes_per_s: Option<f64>,
    /// Latency of slow connections.
    pub latency_slow: Percentiles,
    /// Latency of healthy prices no rate cap could delay (generated more
    /// than 1/max_rate_hz after their connection's previous flush).
    pub latency_leading: Percentiles,
    /// Healthy prices that came in one socket read with a later write of
    /// the server's, timed at that write's arrival: upper bounds, kept out
    /// of `latency_healthy` (the load thread read them late; see
    /// `reads.rs`). Only a conflating server's writes can be told apart.
    pub latency_merged: Percentiles,
    /// Delivery rates.
    pub throughput: Throughput,
    /// Flush cadence per connection.
    pub cadence: Cadence,
    /// Message counters.
    pub counts: Counts,
    /// Close codes received, and how often.
    pub close_codes: BTreeMap<u16, u64>,
    /// Failures by reason, and how often.
    pub failures: BTreeMap<String, u64>,
    /// The server process.
    pub server_proc: ProcReport,
    /// The generator process.
    pub generator_proc: ProcReport,
    /// Samples every 250 ms.
    pub timeline: Vec<TimePoint>,
}

/// What one ramp step measured while it ran.
#[derive(Debug, Clone, Serialize)]
pub struct RampWindow {
    /// Feed rate asked for, quotes/s.
    pub rate: u64,
    /// Feed rate achieved, quotes/s.
    pub quotes_per_s: f64,
    /// Prices delivered per second (all connections).
    pub prices_per_s: f64,
    /// The server's CPU in the step, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Length of the step's window, seconds.
    pub window_s: f64,
}

/// One ramp step with its healthy latency.
#[derive(Debug, Clone, Serialize)]
pub struct RampStep {
    /// What the step measured.
    #[serde(flatten)]
    pub window: RampWindow,
    /// Healthy latency in the step.
    pub latency: Percentiles,
    /// p99 < 50 ms.
    pub within_target: bool,
}

/// `/proc` samples at the edges of the phases (`None`: no pid, or gone).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSamples {
    /// The server before the first connection.
    pub server_before: Option<ProcSample>,
    /// The server once the connect phase ended.
    pub server_after_connect: Option<ProcSample>,
    /// The server at the start of the window.
    pub server_w0: Option<ProcSample>,
    /// The server at the end of the window.
    pub server_w1: Option<ProcSample>,
    /// The generator at the start of the window.
    pub gen_w0: Option<ProcSample>,
    /// The generator at the end of the window.
    pub gen_w1: Option<ProcSample>,
}

/// What the phases of a run measured, for its report.
pub struct Measured {
    /// Length of the connect phase, seconds.
    pub connect_phase_s: f64,
    /// Connections ready when the connect phase ended.
    pub ready_after_connect: usize,
    /// Length of the window, seconds.
    pub window_s: f64,
    /// Quotes the harness's feed sent per second in the window.
    pub feed_quotes_per_s: Option<f64>,
    /// Socket writes, and of them writes that found the socket full, that
    /// the server counted itself in the window (quotecast).
    pub server_writes: Option<WriteCounts>,
    /// The ramp's steps; empty outside a ramp.
    pub ramp: Vec<RampWindow>,
    /// Samples every 250 ms.
    pub timeline: Vec<TimePoint>,
    /// The load threads' statistics, merged.
    pub stats: WorkerStats,
    /// `/proc` samples.
    pub procs: ProcSamples,
}

/// Share of its cores (%) above which the generator may be what a run
/// measures.
pub const GENERATOR_BUSY_PCT: f64 = 85.0;

impl Report {
    /// The report of a run against the server at `addr` (pid `server_pid`)
    /// serving `symbols`, with the connections of `mix`. One struct literal,
    /// field by field in the order of the JSON.
    pub fn new(
        cfg: &RunConfig,
        addr: SocketAddr,
        symbols: usize,
        mix: Mix,
        server_pid: Option<u32>,
        shared: &Shared,
        m: Measured,
    ) -> Report {
        let Measured {
            connect_phase_s,
            ready_after_connect,
            window_s,
            feed_quotes_per_s,
            server_writes,
            ramp,
            timeline,
            stats,
            procs,
        } = m;
        let max_rate_hz = match shared.max_rate_hz.load(Ordering::Relaxed) {
            0 => None,
            hz => Some(hz),
        };
        Report {
            tool: "quotecast-bench",
            started_unix_ms: 0,
            config: cfg.clone(),
            server: ServerInfo {
                addr,
                spawned: false,
                pinned_core: None,
                kind: "quotecast".into(),
                symbols,
                max_rate_hz,
            },
            window_s,
            connections: ConnReport {
                planned: mix.planned,
                healthy: mix.healthy,
                slow: mix.slow,
                dead: mix.dead,
                ready: shared.ready.load(Ordering::Relaxed),
                failed: shared.failed.load(Ordering::Relaxed),
                connect_phase_s,
                connect: Percentiles::of(&stats.connect),
                handshake: Percentiles::of(&stats.handshake),
                subscribe: Percentiles::of(&stats.subscribe),
            },
            latency_healthy: Percentiles::of(&stats.latency),
            read_delay: Percentiles::of(&stats.read_delay),
            latency_curve: stats::curve(&stats.latency),
            ramp: ramp_steps(ramp, &stats),
            feed_quotes_per_s,
            latency_slow: Percentiles::of(&stats.latency_slow),
            latency_leading: Percentiles::of(&stats.latency_leading),
            latency_merged: Percentiles::of(&stats.latency_merged),
            throughput: Throughput::of(&stats.counts, server_writes, window_s),
            cadence: Cadence::of(
                &stats.busy_flushes,
                stats.idle_conns,
                window_s,
                &stats.flush_gap,
                max_rate_hz,
            ),
            counts: stats.counts.clone(),
            close_codes: stats.close_codes.clone(),
            failures: stats.failures.clone(),
            server_proc: ProcReport::server(
                server_pid,
                &procs,
                &timeline,
                ready_after_connect,
                window_s,
            ),
            generator_proc: ProcReport::generator(&procs, window_s),
            timeline,
        }
    }

    /// The highest feed rate (achieved) of a ramp step with p99 < 50 ms.
    pub fn capacity(&self) -> Option<f64> {
        self.ramp
            .iter()
            .filter(|s| s.within_target)
            .map(|s| s.window.quotes_per_s)
            .max_by(f64::total_cmp)
    }

    /// Cores the load generator may run on: the pinned one, else one per
    /// load thread.
    pub fn generator_cores(&self) -> usize {
        match self.config.pin_core {
            Some(_) => 1,
            None => self.config.threads,
        }
    }

    /// Whether the generator process (load threads and feed) used more than
    /// [`GENERATOR_BUSY_PCT`] of its cores in the window: the run may then
    /// measure it as much as the server.
    pub fn generator_near_saturation(&self) -> bool {
        let limit = GENERATOR_BUSY_PCT * self.generator_cores() as f64;
        self.generator_proc.cpu_pct.unwrap_or(0.0) > limit
    }
}

/// Each ramp window with the healthy latency its step recorded.
fn ramp_steps(windows: Vec<RampWindow>, stats: &WorkerStats) -> Vec<RampStep> {
    windows
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let latency = stats
                .steps
                .get(i)
                .map_or_else(|| Percentiles::of(&stats::histogram()), Percentiles::of);
            RampStep {
                within_target: latency.count > 0 && latency.p99_us < worker::LATENCY_TARGET_US,
                latency,
                window: w,
            }
        })
        .collect()
}

impl Throughput {
    /// The rates of `c`, and of `server_writes` when the server counted its
    /// writes, over a window of `window_s` seconds.
    fn of(c: &Counts, server_writes: Option<WriteCounts>, window_s: f64) -> Throughput {
        let per_s = |v: u64| v as f64 / window_s;
        Throughput {
            price_frames_per_s: per_s(c.price_frames),
            payload_bytes_per_s: per_s(c.price_bytes),
            wire_bytes_per_s: per_s(c.wire_bytes),
            reads_per_s: per_s(c.reads),
            flushes_per_s: per_s(c.flushes),
            frames_per_flush: if c.flushes > 0 {
                c.price_frames as f64 / c.flushes as f64
            } else {
                0.0
            },
            server_writes_per_s: server_writes.map(|w| per_s(w.writes)),
            server_socket_full_writes_in_window: server_writes.and_then(|w| w.socket_full),
        }
    }
}

/// CPU between two samples over `window_s`, percent of one core.
fn cpu_pct(a: Option<ProcSample>, b: Option<ProcSample>, window_s: f64) -> Option<f64> {
    Some((b?.cpu_s - a?.cpu_s) / window_s * 100.0)
}

impl ProcReport {
    /// The server's CPU and memory; growth is per `ready` connection.
    fn server(
        pid: Option<u32>,
        p: &ProcSamples,
        timeline: &[TimePoint],
        ready: usize,
        window_s: f64,
    ) -> ProcReport {
        let rss = |s: Option<ProcSample>| s.map(|s| s.rss_kib);
        let growth = match (p.server_before, p.server_after_connect) {
            (Some(a), Some(b)) if ready > 0 => {
                Some((b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / ready as f64)
            }
            _ => None,
        };
        ProcReport {
            pid,
            cpu_pct: cpu_pct(p.server_w0, p.server_w1, window_s),
            rss_before_connect_kib: rss(p.server_before),
            rss_after_connect_kib: rss(p.server_after_connect),
            rss_end_kib: rss(p.server_w1),
            rss_max_kib: timeline
                .iter()
                .filter_map(|t| t.server_rss_kib)
                .chain(rss(p.server_w1))
                .max(),
            rss_growth_per_conn_bytes: growth,
        }
    }

    /// This process's CPU over the window and its memory at the end.
    fn generator(p: &ProcSamples, window_s: f64) -> ProcReport {
        ProcReport {
            pid: Some(std::process::id()),
            cpu_pct: cpu_pct(p.gen_w0, p.gen_w1, window_s),
            rss_before_connect_kib: None,
            rss_after_connect_kib: None,
            rss_end_kib: p.gen_w1.map(|s| s.rss_kib),
            rss_max_kib: None,
            rss_growth_per_conn_bytes: None,
        }
    }
}

/// Prints the summary of `r`, line by line (the format README.md shows).
pub fn print_summary(r: &Report) {
    print_setup(r);
    print_delivery(r);
    print_processes(r);
}

/// Server, scenario, connections, latency and the ramp.
fn print_setup(r: &Report) {
    let c = &r.connections;
    let name = r
        .config
        .scenario
        .map_or("custom".to_string(), Scenario::name);
    println!(
        "server    {}\nscenario  {name}: {} conns x {} of {} symbols{}, window {:.1} s, server {}{}",
        r.server.kind,
        c.planned,
        r.config.symbols_per_conn,
        r.server.symbols,
        if r.config.zipf { " (zipf)" } else { "" },
        r.window_s,
        r.server.addr,
        r.server
            .pinned_core
            .map_or(String::new(), |c| format!(" on core {c}")),
    );
    println!(
        "conns     ready {}  failed {}  (healthy {} slow {} dead {}) in {:.2} s",
        c.ready, c.failed, c.healthy, c.slow, c.dead, c.connect_phase_s
    );
    println!("handshake {}", c.handshake.line_ms());
    println!("subscribe {}", c.subscribe.line_ms());
    println!("latency   {}", r.latency_healthy.line_ms());
    println!(
        "  read    {} (socket to load thread)",
        r.read_delay.line_ms()
    );
    for s in &r.ramp {
        println!(
            "ramp      {:>6}/s -> {:>8.0} prices/s  {}",
            s.window.rate,
            s.window.prices_per_s,
            s.latency.line_ms()
        );
    }
    if !r.ramp.is_empty() {
        println!(
            "capacity  {} quotes/s at p99 < 50 ms",
            r.capacity().map_or("none".into(), |c| format!("{c:.0}"))
        );
    }
    if r.latency_slow.count > 0 {
        println!("  slow    {}", r.latency_slow.line_ms());
    }
    if r.latency_leading.count > 0 {
        println!("  leading {}", r.latency_leading.line_ms());
    }
    if r.latency_merged.count > 0 {
        println!(
            "  merged  {} (read with a later write: upper bounds, not in the latency above)",
            r.latency_merged.line_ms()
        );
    }
}

/// Delivery rates and cadence.
fn print_delivery(r: &Report) {
    let t = &r.throughput;
    let cad = &r.cadence;
    println!(
        "delivered {:.0} prices/s  {:.2} MB/s payload  {:.0} flushes/s  {:.1} prices/flush  {:.0} reads/s",
        t.price_frames_per_s,
        t.payload_bytes_per_s / 1e6,
        t.flushes_per_s,
        t.frames_per_flush,
        t.reads_per_s
    );
    println!(
        "cadence   {} busy conns ({} idle): flushes/s mean {:.1} min {:.1} p1 {:.1} p50 {:.1}{}; gap p50 {:.1} p99 {:.1} max {:.1} ms",
        cad.busy_conns,
        cad.idle_conns,
        cad.mean_hz,
        cad.min_hz,
        cad.p1_hz,
        cad.p50_hz,
        cad.share_at_max_rate
            .map_or(String::new(), |s| format!(", {:.1}% at >=95% of max_rate_hz", s * 100.0)),
        cad.gap.p50_us as f64 / 1000.0,
        cad.gap.p99_us as f64 / 1000.0,
        cad.gap.max_us as f64 / 1000.0,
    );
}

/// Server and generator CPU and memory, warnings, message counts, closes.
fn print_processes(r: &Report) {
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1}{unit}"));
    let mib = |v: Option<u64>| {
        v.map_or("n/a".to_string(), |v| {
            format!("{:.1} MiB", v as f64 / 1024.0)
        })
    };
    let s = &r.server_proc;
    println!(
        "server    cpu {}  rss {} -> {} (connected) -> {} (end){}",
        opt(s.cpu_pct, "%"),
        mib(s.rss_before_connect_kib),
        mib(s.rss_after_connect_kib),
        mib(s.rss_end_kib),
        s.rss_growth_per_conn_bytes
            .map_or(String::new(), |b| format!(", {b:.0} B/conn")),
    );
    let g = &r.generator_proc;
    println!(
        "generator cpu {}  rss {}",
        opt(g.cpu_pct, "%"),
        mib(g.rss_end_kib)
    );
    if r.counts.gen_stalls > 0 {
        println!(
            "WARNING   the generator stalled {} times in the window (longest {:.1} ms): latencies include it",
            r.counts.gen_stalls,
            r.counts.gen_stall_max_us as f64 / 1000.0
        );
    }
    if r.generator_near_saturation() {
        println!("WARNING   the generator is near saturation: these figures may measure it, not the server");
    }
    let k = &r.counts;
    println!(
        "messages  snapshots {} acks {} (with errors {}) errors {} lagging {} pings {} other {} bad {} untimed {}",
        k.snapshots,
        k.acks,
        k.ack_errors,
        k.errors,
        k.lagging,
        k.pings,
        k.other,
        k.bad_prices,
        k.unmatched_prices
    );
    if !r.close_codes.is_empty() || !r.failures.is_empty() {
        println!("closes    {:?}  failures {:?}", r.close_codes, r.failures);
    }
}
