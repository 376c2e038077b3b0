//! `quotecast-bench`: load generator and latency harness for quotecast.
//!
//! # Layout
//!
//! ```text
//! main.rs      CLI, scenarios, the run's phases, /proc sampling, the report
//! compare.rs   `compare`: one scenario against quotecast, the peers and the probe
//! feed.rs      the generated quote feed (JSON lines or HTTP publish), paced
//! probe.rs     `probe`: the physical limit of coalesced loopback writes
//! results.rs   results/<scenario>-<ts>/: report.json, summary.md, plots
//! svg.rs       hand-written SVG line charts
//! server.rs    the quotecast to spawn, its token, GET /v1/channels
//! worker.rs    one mio (epoll) loop per thread over its connections
//! decode.rs    byte-search decoding of server messages
//! stats.rs     histograms and counters, merged across threads
//! procstat.rs  CPU time and RSS from /proc/<pid>
//! ```
//!
//! A run: open every connection (paced), subscribe, warm up, measure for
//! `--duration` seconds, stop. Every loop is bounded in time.

mod compare;
mod decode;
mod feed;
mod probe;
mod procstat;
mod results;
mod server;
mod stats;
mod svg;
mod worker;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use quotecast_testkit::server::Server;
use quotecast_testkit::token;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use stats::{Cadence, Counts, Percentiles, WorkerStats};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{Class, Plan, Settings, Shared, Target};

/// `quotecast-bench [FLAGS]` runs one scenario against one quotecast;
/// `compare` and `probe` are the other modes.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load generator and latency harness for quotecast",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  quotecast-bench --scenario hot --spawn-server --json hot.json\n  \
                  quotecast-bench compare --scenario desk\n  quotecast-bench probe --connections 2000"
)]
struct Top {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: Cli,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a scenario against quotecast, the peers and the probe on one feed;
    /// write results/<scenario>-<timestamp>/ (report.json, summary.md, SVG plots).
    Compare(Box<compare::CompareArgs>),
    /// The physical limit probe alone: coalesced writes of pre-built frames.
    Probe(ProbeArgs),
}

/// Flags of `probe`.
#[derive(clap::Args, Debug)]
struct ProbeArgs {
    /// Loopback connections.
    #[arg(long, default_value_t = 2_000)]
    connections: usize,
    /// Frames coalesced into one write.
    #[arg(long, default_value_t = 8)]
    frames_per_write: usize,
    /// Payload bytes per frame.
    #[arg(long, default_value_t = 150)]
    payload_bytes: usize,
    /// Seconds to write.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Core of the writer (server side).
    #[arg(long, default_value_t = 0)]
    writer_core: usize,
    /// Core of the reader (client side).
    #[arg(long, default_value_t = 1)]
    reader_core: usize,
    /// Write the result as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The flags of one run (and of each server's run in `compare`).
#[derive(Parser, Debug)]
struct Cli {
    /// A named preset (flags given explicitly override it).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// WebSocket URL of a running server (ignored with --spawn-server).
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    url: String,
    /// Bearer token (not needed with --spawn-server).
    #[arg(long, env = "QUOTECAST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connections to open.
    #[arg(long)]
    connections: Option<usize>,
    /// Symbols each connection subscribes to.
    #[arg(long)]
    symbols_per_conn: Option<usize>,
    /// Draw symbols with a Zipf (s=1) skew over the server's list instead of uniformly.
    #[arg(long)]
    zipf: bool,
    /// Measurement window, seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Time between everyone being subscribed and the window, seconds.
    #[arg(long)]
    warmup: Option<f64>,
    /// Load threads (each runs its own epoll loop).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Share of connections that read only every --slow-read-ms.
    #[arg(long)]
    slow_share: Option<f64>,
    /// Read interval of the slow connections, milliseconds.
    #[arg(long)]
    slow_read_ms: Option<u64>,
    /// Share of connections that subscribe and then never read.
    #[arg(long)]
    dead_share: Option<f64>,
    /// Pin the generator's threads to this core (default with --spawn-server: 1).
    #[arg(long)]
    pin_core: Option<usize>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Sample this process's CPU time and RSS (the server; implied by --spawn-server).
    #[arg(long)]
    server_pid: Option<u32>,
    /// New connections per second (0 = as fast as --max-inflight allows).
    #[arg(long)]
    connect_rate: Option<f64>,
    /// Most handshakes in flight at once, over all threads.
    #[arg(long, default_value_t = 512)]
    max_inflight: usize,
    /// A connection not upgraded within this many seconds has failed.
    #[arg(long, default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Longest time to wait for every connection to be subscribed, seconds.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// Seed of the symbol draw and of the slow/dead assignment.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Start `quotecast serve` on a free loopback port for this run, with its own secret.
    #[arg(long)]
    spawn_server: bool,
    /// The server binary for --spawn-server.
    #[arg(long, default_value = "target/release/quotecast")]
    server_bin: String,
    /// --spawn-server: simulated symbols.
    #[arg(long)]
    sim_symbols: Option<usize>,
    /// --spawn-server: simulated venue quotes per second.
    #[arg(long)]
    sim_rate: Option<u64>,
    /// --spawn-server: most flushes per second per connection.
    #[arg(long)]
    max_rate_hz: Option<u32>,
    /// --spawn-server: core the server is pinned to with taskset.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// --spawn-server: file for the server's log (stderr); default: discarded.
    #[arg(long)]
    server_log: Option<String>,
    /// Ramp (compare only): feed rates to step through, quotes/s, comma-separated.
    #[arg(long, value_delimiter = ',')]
    ramp_rates: Option<Vec<u64>>,
    /// Ramp: seconds each step runs before it is measured.
    #[arg(long, default_value_t = 1.5)]
    ramp_settle: f64,
    /// Ramp: seconds each step is measured.
    #[arg(long, default_value_t = 3.0)]
    ramp_step: f64,
}

/// Named workloads of issue 3.
#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// 2,000 connections x 20 of 200 symbols, 100 updates/s per symbol.
    Hot,
    /// 5,000 connections x 10 of 1,000 symbols, 10,000 quotes/s.
    Desk,
    /// 10,000 connections, 1 subscription each, quiet feed: memory per connection.
    #[value(name = "idle-10k")]
    #[serde(rename = "idle-10k")]
    Idle10k,
    /// `desk` with 2% dead and 5% slow clients.
    SlowMix,
    /// 10,000 connections opened within 5 s.
    Storm,
    /// `desk` connections with the feed raised step by step (compare only):
    /// the highest rate with healthy p99 < 50 ms.
    Ramp,
}

impl Scenario {
    /// Its name on the command line.
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| "custom".into(), |v| v.get_name().to_string())
    }
}

/// Rates the `ramp` scenario steps through unless --ramp-rates is given.
const DEFAULT_RAMP: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000];

/// Every knob of a run once the scenario and the flags are combined.
#[derive(Debug, Clone, Serialize)]
struct RunConfig {
    scenario: Option<Scenario>,
    connections: usize,
    symbols_per_conn: usize,
    zipf: bool,
    duration_s: f64,
    warmup_s: f64,
    threads: usize,
    slow_share: f64,
    slow_read_ms: u64,
    dead_share: f64,
    connect_rate: f64,
    max_inflight: usize,
    pin_core: Option<usize>,
    seed: u64,
    sim_symbols: usize,
    sim_rate: u64,
    max_rate_hz: u32,
    /// Feed rates of a ramp; empty: no ramp.
    ramp_rates: Vec<u64>,
    ramp_settle_s: f64,
    ramp_step_s: f64,
}

impl RunConfig {
    fn resolve(cli: &Cli, cores: usize) -> Self {
        // (connections, symbols/conn, sim symbols, sim rate, duration, dead, slow, connect rate)
        type Preset = (usize, usize, usize, u64, f64, f64, f64, f64);
        let p: Preset = match cli.scenario {
            None => (100, 10, 200, 10_000, 10.0, 0.0, 0.0, 0.0),
            Some(Scenario::Hot) => (2_000, 20, 200, 20_000, 20.0, 0.0, 0.0, 0.0),
            Some(Scenario::Desk) => (5_000, 10, 1_000, 10_000, 20.0, 0.0, 0.0, 0.0),
            Some(Scenario::Idle10k) => (10_000, 1, 200, 10, 5.0, 0.0, 0.0, 0.0),
            Some(Scenario::SlowMix) => (5_000, 10, 1_000, 10_000, 20.0, 0.02, 0.05, 0.0),
            Some(Scenario::Storm) => (10_000, 1, 200, 1_000, 5.0, 0.0, 0.0, 2_000.0),
            Some(Scenario::Ramp) => (5_000, 10, 1_000, 1_000, 0.0, 0.0, 0.0, 0.0),
        };
        let ramp_rates = match (&cli.ramp_rates, cli.scenario) {
            (Some(r), _) => r.clone(),
            (None, Some(Scenario::Ramp)) => DEFAULT_RAMP.to_vec(),
            (None, _) => Vec::new(),
        };
        let default_pin = (cli.spawn_server && cores >= 2).then_some(1);
        RunConfig {
            scenario: cli.scenario,
            connections: cli.connections.unwrap_or(p.0),
            symbols_per_conn: cli.symbols_per_conn.unwrap_or(p.1).max(1),
            zipf: cli.zipf,
            duration_s: cli.duration.unwrap_or(p.4),
            warmup_s: cli.warmup.unwrap_or(3.0),
            threads: cli.threads.max(1),
            slow_share: cli.slow_share.unwrap_or(p.6),
            slow_read_ms: cli.slow_read_ms.unwrap_or(500),
            dead_share: cli.dead_share.unwrap_or(p.5),
            connect_rate: cli.connect_rate.unwrap_or(p.7),
            max_inflight: cli.max_inflight.max(1),
            pin_core: cli.pin_core.or(default_pin),
            seed: cli.seed,
            sim_symbols: cli.sim_symbols.unwrap_or(p.2),
            sim_rate: cli.sim_rate.unwrap_or(p.3),
            max_rate_hz: cli.max_rate_hz.unwrap_or(60),
            ramp_rates,
            ramp_settle_s: cli.ramp_settle,
            ramp_step_s: cli.ramp_step,
        }
    }
}

/// Draws symbol indices with probability proportional to 1/rank.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / k as f64;
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// `m` distinct symbols for one connection.
fn draw_symbols<'a>(
    symbols: &'a [String],
    m: usize,
    zipf: Option<&Zipf>,
    rng: &mut impl Rng,
) -> Vec<&'a str> {
    if m >= symbols.len() {
        return symbols.iter().map(String::as_str).collect();
    }
    let mut picked: Vec<usize> = Vec::with_capacity(m);
    // Bounded: with Zipf the tail is rare, so give up on distinctness after
    // enough tries and fill uniformly.
    for _ in 0..m * 1_000 {
        if picked.len() == m {
            break;
        }
        let i = match zipf {
            Some(z) => z.sample(rng),
            None => rng.random_range(0..symbols.len()),
        };
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    let mut i = 0;
    while picked.len() < m {
        if !picked.contains(&i) {
            picked.push(i);
        }
        i += 1;
    }
    picked.into_iter().map(|i| symbols[i].as_str()).collect()
}

/// Raises the soft open-files limit to the hard one; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        let want = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
            return want.rlim_cur;
        }
    }
    r.rlim_cur
}

/// `ws://HOST:PORT/PATH` → (address, host header, path). Loopback only.
fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let rest = url
        .strip_prefix("ws://")
        .context("only ws:// URLs are supported")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/v1/ws" } else { path };
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .context("no address")?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: this harness only loads local servers");
    }
    Ok((addr, host.to_string(), path.to_string()))
}

/// One point of the timeline sampled during the run.
#[derive(Debug, Clone, Serialize)]
struct TimePoint {
    t_s: f64,
    phase: &'static str,
    ready: usize,
    prices_per_s: f64,
    /// Flushes received by healthy connections per second.
    flushes_per_s: f64,
    server_cpu_pct: Option<f64>,
    server_rss_kib: Option<u64>,
    gen_cpu_pct: Option<f64>,
}

/// CPU and memory of one process over the window.
#[derive(Debug, Clone, Serialize)]
struct ProcReport {
    pid: Option<u32>,
    cpu_pct: Option<f64>,
    rss_before_connect_kib: Option<u64>,
    rss_after_connect_kib: Option<u64>,
    rss_end_kib: Option<u64>,
    rss_max_kib: Option<u64>,
    /// (RSS after connecting - RSS before) / ready connections.
    rss_growth_per_conn_bytes: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct Throughput {
    price_frames_per_s: f64,
    payload_bytes_per_s: f64,
    wire_bytes_per_s: f64,
    reads_per_s: f64,
    flushes_per_s: f64,
    frames_per_flush: f64,
}

#[derive(Debug, Clone, Serialize)]
struct ConnReport {
    planned: usize,
    healthy: usize,
    slow: usize,
    dead: usize,
    ready: usize,
    failed: usize,
    connect_phase_s: f64,
    connect: Percentiles,
    handshake: Percentiles,
    subscribe: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
struct ServerInfo {
    /// quotecast, tokio-broadcast, nchan or sockudo.
    kind: String,
    addr: SocketAddr,
    spawned: bool,
    pinned_core: Option<usize>,
    symbols: usize,
    max_rate_hz: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    tool: &'static str,
    started_unix_ms: u64,
    config: RunConfig,
    server: ServerInfo,
    window_s: f64,
    connections: ConnReport,
    latency_healthy: Percentiles,
    /// (percentile, µs) points of the healthy latency distribution.
    latency_curve: Vec<(f64, u64)>,
    /// The steps of a ramp, in order; empty outside a ramp.
    ramp: Vec<RampStep>,
    /// Quotes the harness's feed sent per second in the window.
    feed_quotes_per_s: Option<f64>,
    latency_slow: Percentiles,
    throughput: Throughput,
    cadence: Cadence,
    counts: Counts,
    close_codes: BTreeMap<u16, u64>,
    failures: BTreeMap<String, u64>,
    server_proc: ProcReport,
    generator_proc: ProcReport,
    timeline: Vec<TimePoint>,
}

fn main() -> anyhow::Result<()> {
    let top = Top::parse();
    match &top.cmd {
        Some(Cmd::Compare(args)) => compare::main(args),
        Some(Cmd::Probe(args)) => probe_main(args),
        None => single(&top.run),
    }
}

fn probe_main(a: &ProbeArgs) -> anyhow::Result<()> {
    raise_nofile();
    let r = probe::run(&probe::ProbeConfig {
        connections: a.connections,
        frames_per_write: a.frames_per_write,
        payload_bytes: a.payload_bytes,
        duration_s: a.duration,
        writer_core: Some(a.writer_core),
        reader_core: Some(a.reader_core),
    })?;
    println!("{}", results::probe_line(&r));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)?;
    }
    Ok(())
}

/// The run's configuration, the open-files limit raised, the generator
/// pinned (by default to core 1 when the harness starts the servers).
fn prepare(cli: &Cli, spawns: bool) -> RunConfig {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cfg = RunConfig::resolve(cli, cores);
    if spawns && cores >= 2 {
        cfg.pin_core = cfg.pin_core.or(Some(1));
    }
    let nofile = raise_nofile();
    if (cfg.connections as u64) + 64 > nofile {
        eprintln!(
            "warning: open-files limit {nofile} is below {} connections",
            cfg.connections
        );
    }
    if let Some(core) = cfg.pin_core {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    cfg
}

/// One scenario against one quotecast fed by its own simulator.
fn single(cli: &Cli) -> anyhow::Result<()> {
    let cfg = prepare(cli, cli.spawn_server);
    if !cfg.ramp_rates.is_empty() {
        bail!("a ramp needs the harness's feed: run it with `quotecast-bench compare --scenario ramp`");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started_unix_ms = worker::unix_us() / 1000;

    let mut spawned = None;
    let (addr, host, path, token, server_pid) = if cli.spawn_server {
        let secret = token::new_secret();
        let mut spawn = server::quotecast(
            &cli.server_bin,
            &secret,
            cfg.max_rate_hz,
            server::QuotecastFeed::Sim {
                symbols: cfg.sim_symbols,
                rate: cfg.sim_rate,
            },
        )
        .stderr(server::log(cli.server_log.as_deref()));
        if cores >= 2 {
            spawn = spawn.pin_core(cli.server_core);
        }
        let s = spawn.start()?;
        let ttl = Duration::from_secs_f64(cli.connect_timeout + cfg.duration_s + 3_600.0);
        let token = server::mint(&secret, ttl);
        let info = (
            s.addr,
            s.addr.to_string(),
            "/v1/ws".to_string(),
            token,
            s.pid(),
        );
        spawned = Some(s);
        (info.0, info.1, info.2, info.3, Some(info.4))
    } else {
        let (addr, host, path) = parse_url(&cli.url)?;
        let token = cli
            .token
            .clone()
            .context("--token or QUOTECAST_TOKEN is required without --spawn-server")?;
        (addr, host, path, token, cli.server_pid)
    };
    let pinned_core = spawned
        .as_ref()
        .and_then(|s: &Server| s.pinned().then_some(cli.server_core));

    let symbols = server::fetch_symbols(addr, &token)?;
    let plans = build_plans(&cfg, &symbols, &quotecast_subscribe);
    let target = Target {
        addr,
        host,
        path,
        token,
    };
    let report = run(cli, &cfg, target, plans, server_pid, symbols.len(), None);
    if let Some(mut s) = spawned {
        s.stop();
    }
    let mut report = report?;
    report.started_unix_ms = started_unix_ms;
    report.server.pinned_core = pinned_core;
    report.server.spawned = cli.spawn_server;
    print_summary(&report);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("json      {}", path.display());
    }
    Ok(())
}

/// How one connection subscribes to its symbols: the text frames it sends
/// after the upgrade and the upgrade path, when the server's default is not it.
type Subscribe = dyn Fn(&[&str]) -> (Vec<Vec<u8>>, Option<String>);

/// quotecast's (and the tokio peer's) `subscribe` op on the default path.
fn quotecast_subscribe(symbols: &[&str]) -> (Vec<Vec<u8>>, Option<String>) {
    let op = serde_json::json!({
        "op": "subscribe", "id": 1, "channel": "prices", "symbols": symbols,
    });
    (vec![op.to_string().into_bytes()], None)
}

/// One plan per connection: its class (dead and slow shares shuffled in)
/// and its symbols, drawn with the run's seed so every server of a
/// comparison gets the same draw.
fn build_plans(cfg: &RunConfig, symbols: &[String], subscribe: &Subscribe) -> Vec<Plan> {
    let n = cfg.connections;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let n_dead = ((n as f64) * cfg.dead_share).round() as usize;
    let n_slow = (((n as f64) * cfg.slow_share).round() as usize).min(n - n_dead.min(n));
    let mut classes: Vec<Class> = std::iter::repeat_n(Class::Dead, n_dead.min(n))
        .chain(std::iter::repeat_n(Class::Slow, n_slow))
        .chain(std::iter::repeat_n(
            Class::Healthy,
            n - n_dead.min(n) - n_slow,
        ))
        .collect();
    classes.shuffle(&mut rng);
    let zipf = cfg.zipf.then(|| Zipf::new(symbols.len()));
    classes
        .into_iter()
        .map(|class| {
            let picked = draw_symbols(symbols, cfg.symbols_per_conn, zipf.as_ref(), &mut rng);
            let (subscribe, path) = subscribe(&picked);
            Plan {
                class,
                subscribe,
                path,
            }
        })
        .collect()
}

/// One run against a server already listening: connect, subscribe, warm up,
/// measure (or step through `cfg.ramp_rates` on `feed`), stop.
fn run(
    cli: &Cli,
    cfg: &RunConfig,
    target: Target,
    plans: Vec<Plan>,
    server_pid: Option<u32>,
    n_symbols: usize,
    feed: Option<&feed::Feed>,
) -> anyhow::Result<Report> {
    let n = plans.len();
    let count = |c: Class| plans.iter().filter(|p| p.class == c).count();
    let (n_healthy, n_slow, n_dead) = (
        count(Class::Healthy),
        count(Class::Slow),
        count(Class::Dead),
    );
    let mut per_thread: Vec<Vec<Plan>> = (0..cfg.threads).map(|_| Vec::new()).collect();
    for (i, plan) in plans.into_iter().enumerate() {
        per_thread[i % cfg.threads].push(plan);
    }
    let addr = target.addr;

    let target = Arc::new(target);
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(worker::CONNECTING),
        step: AtomicUsize::new(worker::NO_STEP),
        ..Shared::default()
    });
    let ramp_s = cfg.ramp_rates.len() as f64 * (cfg.ramp_settle_s + cfg.ramp_step_s);
    let total_budget =
        cli.connect_timeout + cfg.warmup_s + cfg.duration_s + ramp_s + cli.handshake_timeout + 30.0;
    let deadline = Instant::now() + Duration::from_secs_f64(total_budget);
    let threads = cfg.threads as f64;
    let settings = Settings {
        connect_interval: if cfg.connect_rate > 0.0 {
            Duration::from_secs_f64(threads / cfg.connect_rate)
        } else {
            Duration::ZERO
        },
        max_inflight: cfg.max_inflight.div_ceil(cfg.threads),
        handshake_timeout: Duration::from_secs_f64(cli.handshake_timeout),
        slow_read: Duration::from_millis(cfg.slow_read_ms.max(1)),
        pin_core: cfg.pin_core,
        deadline,
        seed: 0,
    };

    let server_before = server_pid.and_then(|p| procstat::sample(Some(p)));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for (i, plans) in per_thread.into_iter().enumerate() {
        let (target, shared) = (target.clone(), shared.clone());
        let mut settings = settings.clone();
        settings.seed = cfg.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1));
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || worker::run(&target, plans, &settings, &shared))?,
        );
    }

    let mut timeline = Vec::new();
    let mut sampler = Sampler::new(server_pid);
    // Connect phase: until everyone is ready or failed, bounded by --connect-timeout.
    let connect_deadline = t0 + Duration::from_secs_f64(cli.connect_timeout);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let done = shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        let finished = handles.iter().all(|h| h.is_finished());
        if done >= n || Instant::now() >= connect_deadline || finished {
            break;
        }
        sampler.maybe(&shared, t0, "connect", &mut timeline);
    }
    let connect_phase_s = t0.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Relaxed);
    let failed_at_connect = shared.failed.load(Ordering::Relaxed);
    eprintln!(
        "connected {ready}/{n} in {connect_phase_s:.2} s ({failed_at_connect} failed); warming up {:.1} s",
        cfg.warmup_s
    );
    shared.phase.store(worker::WARMUP, Ordering::Relaxed);
    let server_after_connect = server_pid.and_then(|p| procstat::sample(Some(p)));
    sampler.sleep(
        Duration::from_secs_f64(cfg.warmup_s),
        &shared,
        t0,
        "warmup",
        &mut timeline,
    );

    let server_w0 = server_pid.and_then(|p| procstat::sample(Some(p)));
    let gen_w0 = procstat::sample(None);
    let w0 = Instant::now();
    shared.phase.store(worker::MEASURE, Ordering::Relaxed);
    let feed_sent0 = feed.map(feed::Feed::sent);
    let mut ramp_windows = Vec::new();
    match feed.filter(|_| !cfg.ramp_rates.is_empty()) {
        None => sampler.sleep(
            Duration::from_secs_f64(cfg.duration_s),
            &shared,
            t0,
            "measure",
            &mut timeline,
        ),
        Some(feed) => {
            ramp_windows = ramp(cfg, feed, &shared, &mut sampler, t0, &mut timeline);
        }
    }
    shared.phase.store(worker::DONE, Ordering::Relaxed);
    let window_s = w0.elapsed().as_secs_f64();
    let feed_quotes_per_s = feed
        .zip(feed_sent0)
        .map(|(f, s0)| (f.sent() - s0) as f64 / window_s);
    let server_w1 = server_pid.and_then(|p| procstat::sample(Some(p)));
    let gen_w1 = procstat::sample(None);

    let mut stats = WorkerStats::new();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        stats.merge(s);
    }

    let cpu_pct = |a: Option<procstat::ProcSample>, b: Option<procstat::ProcSample>| {
        Some((b?.cpu_s - a?.cpu_s) / window_s * 100.0)
    };
    let rss = |s: Option<procstat::ProcSample>| s.map(|s| s.rss_kib);
    let growth = match (server_before, server_after_connect) {
        (Some(a), Some(b)) if ready > 0 => {
            Some((b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / ready as f64)
        }
        _ => None,
    };
    let c = &stats.counts;
    let per_s = |v: u64| v as f64 / window_s;
    let max_rate_hz = match shared.max_rate_hz.load(Ordering::Relaxed) {
        0 => None,
        hz => Some(hz),
    };
    Ok(Report {
        tool: "quotecast-bench",
        started_unix_ms: 0,
        config: cfg.clone(),
        server: ServerInfo {
            addr,
            spawned: false,
            pinned_core: None,
            kind: "quotecast".into(),
            symbols: n_symbols,
            max_rate_hz,
        },
        window_s,
        connections: ConnReport {
            planned: n,
            healthy: n_healthy,
            slow: n_slow,
            dead: n_dead,
            ready: shared.ready.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            connect_phase_s,
            connect: Percentiles::of(&stats.connect),
            handshake: Percentiles::of(&stats.handshake),
            subscribe: Percentiles::of(&stats.subscribe),
        },
        latency_healthy: Percentiles::of(&stats.latency),
        latency_curve: stats::curve(&stats.latency),
        ramp: ramp_windows
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
            .collect(),
        feed_quotes_per_s,
        latency_slow: Percentiles::of(&stats.latency_slow),
        throughput: Throughput {
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
        },
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
        server_proc: ProcReport {
            pid: server_pid,
            cpu_pct: cpu_pct(server_w0, server_w1),
            rss_before_connect_kib: rss(server_before),
            rss_after_connect_kib: rss(server_after_connect),
            rss_end_kib: rss(server_w1),
            rss_max_kib: timeline
                .iter()
                .filter_map(|p: &TimePoint| p.server_rss_kib)
                .chain(rss(server_w1))
                .max(),
            rss_growth_per_conn_bytes: growth,
        },
        generator_proc: ProcReport {
            pid: Some(std::process::id()),
            cpu_pct: cpu_pct(gen_w0, gen_w1),
            rss_before_connect_kib: None,
            rss_after_connect_kib: None,
            rss_end_kib: rss(gen_w1),
            rss_max_kib: None,
            rss_growth_per_conn_bytes: None,
        },
        timeline,
    })
}

/// Samples the server, the generator and the delivered rate every 250 ms.
struct Sampler {
    pid: Option<u32>,
    last: Instant,
    last_server: Option<procstat::ProcSample>,
    last_gen: Option<procstat::ProcSample>,
    last_prices: u64,
    last_flushes: u64,
}

impl Sampler {
    const EVERY: Duration = Duration::from_millis(250);

    fn new(pid: Option<u32>) -> Self {
        Sampler {
            pid,
            last: Instant::now(),
            last_server: pid.and_then(|p| procstat::sample(Some(p))),
            last_gen: procstat::sample(None),
            last_prices: 0,
            last_flushes: 0,
        }
    }

    fn maybe(
        &mut self,
        shared: &Shared,
        t0: Instant,
        phase: &'static str,
        out: &mut Vec<TimePoint>,
    ) {
        let dt = self.last.elapsed();
        if dt < Self::EVERY {
            return;
        }
        let dt_s = dt.as_secs_f64();
        self.last = Instant::now();
        let server = self.pid.and_then(|p| procstat::sample(Some(p)));
        let gen = procstat::sample(None);
        let pct = |a: Option<procstat::ProcSample>, b: Option<procstat::ProcSample>| {
            Some((b?.cpu_s - a?.cpu_s) / dt_s * 100.0)
        };
        let prices = shared.price_frames.load(Ordering::Relaxed);
        let flushes = shared.flushes.load(Ordering::Relaxed);
        out.push(TimePoint {
            t_s: t0.elapsed().as_secs_f64(),
            phase,
            ready: shared.ready.load(Ordering::Relaxed),
            prices_per_s: (prices - self.last_prices) as f64 / dt_s,
            flushes_per_s: (flushes - self.last_flushes) as f64 / dt_s,
            server_cpu_pct: pct(self.last_server, server),
            server_rss_kib: server.map(|s| s.rss_kib),
            gen_cpu_pct: pct(self.last_gen, gen),
        });
        self.last_server = server;
        self.last_gen = gen;
        self.last_prices = prices;
        self.last_flushes = flushes;
    }

    /// Sleeps `d` in short steps, sampling as it goes.
    fn sleep(
        &mut self,
        d: Duration,
        shared: &Shared,
        t0: Instant,
        phase: &'static str,
        out: &mut Vec<TimePoint>,
    ) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
            self.maybe(shared, t0, phase, out);
        }
    }
}

/// What one ramp step measured while it ran.
#[derive(Debug, Clone, Serialize)]
struct RampWindow {
    /// Feed rate asked for, quotes/s.
    rate: u64,
    /// Feed rate achieved, quotes/s.
    quotes_per_s: f64,
    /// Prices delivered per second (all connections).
    prices_per_s: f64,
    server_cpu_pct: Option<f64>,
    window_s: f64,
}

/// One ramp step with its healthy latency.
#[derive(Debug, Clone, Serialize)]
struct RampStep {
    #[serde(flatten)]
    window: RampWindow,
    latency: Percentiles,
    /// p99 < 50 ms.
    within_target: bool,
}

impl Report {
    /// The highest feed rate (achieved) of a ramp step with p99 < 50 ms.
    fn capacity(&self) -> Option<f64> {
        self.ramp
            .iter()
            .filter(|s| s.within_target)
            .map(|s| s.window.quotes_per_s)
            .max_by(f64::total_cmp)
    }
}

/// Steps the feed through `cfg.ramp_rates`; stops after the first step whose
/// healthy p99 is over the target (no higher rate would meet it).
fn ramp(
    cfg: &RunConfig,
    feed: &feed::Feed,
    shared: &Shared,
    sampler: &mut Sampler,
    t0: Instant,
    timeline: &mut Vec<TimePoint>,
) -> Vec<RampWindow> {
    let mut out = Vec::new();
    for (i, &rate) in cfg.ramp_rates.iter().enumerate() {
        feed.set_rate(rate);
        shared.step.store(worker::NO_STEP, Ordering::Relaxed);
        sampler.sleep(
            Duration::from_secs_f64(cfg.ramp_settle_s),
            shared,
            t0,
            "settle",
            timeline,
        );
        shared.step_prices.store(0, Ordering::Relaxed);
        shared.step_late.store(0, Ordering::Relaxed);
        let cpu0 = sampler.pid.and_then(|p| procstat::sample(Some(p)));
        let (sent0, prices0) = (feed.sent(), shared.price_frames.load(Ordering::Relaxed));
        let w0 = Instant::now();
        shared.step.store(i, Ordering::Relaxed);
        sampler.sleep(
            Duration::from_secs_f64(cfg.ramp_step_s),
            shared,
            t0,
            "step",
            timeline,
        );
        shared.step.store(worker::NO_STEP, Ordering::Relaxed);
        let dt = w0.elapsed().as_secs_f64();
        let cpu1 = sampler.pid.and_then(|p| procstat::sample(Some(p)));
        let prices = shared.step_prices.load(Ordering::Relaxed);
        let late = shared.step_late.load(Ordering::Relaxed);
        let w = RampWindow {
            rate,
            quotes_per_s: (feed.sent() - sent0) as f64 / dt,
            prices_per_s: (shared.price_frames.load(Ordering::Relaxed) - prices0) as f64 / dt,
            server_cpu_pct: cpu0
                .zip(cpu1)
                .map(|(a, b)| (b.cpu_s - a.cpu_s) / dt * 100.0),
            window_s: dt,
        };
        eprintln!(
            "ramp step {rate}/s: sent {:.0}/s, delivered {:.0}/s, {late} of {prices} later than 50 ms",
            w.quotes_per_s, w.prices_per_s
        );
        out.push(w);
        // p99 < target means at most 1% late; no prices at all is a failure too.
        if prices == 0 || late * 100 > prices {
            break;
        }
    }
    out
}

fn print_summary(r: &Report) {
    let c = &r.connections;
    let t = &r.throughput;
    let cad = &r.cadence;
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
    if g.cpu_pct.unwrap_or(0.0) > 85.0 * r.config.threads as f64 {
        println!("WARNING   the generator is near saturation: these figures may measure it, not the server");
    }
    let k = &r.counts;
    println!(
        "messages  snapshots {} acks {} (with errors {}) errors {} lagging {} pings {} other {} bad {}",
        k.snapshots, k.acks, k.ack_errors, k.errors, k.lagging, k.pings, k.other, k.bad_prices
    );
    if !r.close_codes.is_empty() || !r.failures.is_empty() {
        println!("closes    {:?}  failures {:?}", r.close_codes, r.failures);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_low_ranks_and_draws_distinct() {
        let z = Zipf::new(200);
        let mut rng = StdRng::seed_from_u64(1);
        let first = (0..10_000).filter(|_| z.sample(&mut rng) == 0).count();
        // P(rank 1) = 1/H(200) ≈ 0.171.
        assert!((1_400..2_000).contains(&first), "{first}");
        let symbols: Vec<String> = (0..200).map(|i| format!("S{i}")).collect();
        let mut picked = draw_symbols(&symbols, 20, Some(&z), &mut rng);
        picked.sort();
        picked.dedup();
        assert_eq!(picked.len(), 20);
        assert_eq!(draw_symbols(&symbols[..3], 5, None, &mut rng).len(), 3);
    }

    #[test]
    fn urls_must_be_loopback() {
        let (addr, host, path) = parse_url("ws://127.0.0.1:8080/v1/ws").unwrap();
        assert_eq!(
            (addr.port(), host.as_str(), path.as_str()),
            (8080, "127.0.0.1:8080", "/v1/ws")
        );
        assert!(parse_url("ws://10.0.0.1:80/v1/ws").is_err());
        assert!(parse_url("wss://127.0.0.1:80/").is_err());
    }

    #[test]
    fn scenarios_fill_unset_flags_only() {
        let cli = Cli::parse_from(["b", "--scenario", "hot", "--connections", "10"]);
        let cfg = RunConfig::resolve(&cli, 2);
        assert_eq!(
            (cfg.connections, cfg.symbols_per_conn, cfg.sim_rate),
            (10, 20, 20_000)
        );
        let cli = Cli::parse_from(["b", "--scenario", "slow-mix", "--spawn-server"]);
        let cfg = RunConfig::resolve(&cli, 2);
        assert_eq!(
            (cfg.dead_share, cfg.slow_share, cfg.pin_core),
            (0.02, 0.05, Some(1))
        );
    }
}
