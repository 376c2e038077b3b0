//! A run, phase by phase: open every connection (paced), subscribe, warm
//! up, measure for `--duration` seconds (or step through a ramp), stop.
//! Every phase is bounded in time; `/proc` is sampled every 250 ms.

use crate::cli::{parse_url, Cli};
use crate::feed::Feed;
use crate::procstat::{self, ProcSample};
use crate::report::{print_summary, Measured, ProcSamples, RampWindow, Report, TimePoint};
use crate::scenario::{build_plans, quotecast_subscribe, Mix, RunConfig};
use crate::scrape;
use crate::server;
use crate::stats::WorkerStats;
use crate::worker::{self, Plan, Settings, Shared, Target};
use anyhow::{bail, Context};
use quotecast_testkit::server::Server;
use quotecast_testkit::token;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Cores this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the soft open-files limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> u64 {
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

/// The run's configuration, the open-files limit raised, the generator
/// pinned (by default to core 1 when the harness starts the servers).
pub fn prepare(cli: &Cli, spawns: bool) -> RunConfig {
    let cores = cores();
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

/// The server of a single run: one `--spawn-server` started (kept running
/// while the handle lives, with its pid), or the one `--url` names.
fn single_target(
    cli: &Cli,
    cfg: &RunConfig,
) -> anyhow::Result<(Target, Option<u32>, Option<Server>)> {
    if !cli.spawn_server {
        let (addr, host, path) = parse_url(&cli.url)?;
        let token = cli
            .token
            .clone()
            .context("--token or QUOTECAST_TOKEN is required without --spawn-server")?;
        let target = Target {
            addr,
            host,
            path,
            token,
            deflate: cli.deflate,
            tls: None,
            pusher: false,
            counts_writes: cli.server_pid.is_some(),
        };
        return Ok((target, cli.server_pid, None));
    }
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
    if cores() >= 2 {
        spawn = spawn.pin_core(cli.server_core);
    }
    let s = spawn.start()?;
    let ttl = Duration::from_secs_f64(cli.connect_timeout + cfg.duration_s + 3_600.0);
    let target = Target {
        addr: s.addr,
        host: s.addr.to_string(),
        path: "/v1/ws".to_string(),
        token: server::mint(&secret, ttl),
        deflate: cli.deflate,
        tls: None,
        pusher: false,
        counts_writes: true,
    };
    Ok((target, Some(s.pid()), Some(s)))
}

/// One scenario against one quotecast fed by its own simulator.
pub fn single(cli: &Cli) -> anyhow::Result<()> {
    let cfg = prepare(cli, cli.spawn_server);
    if !cfg.ramp_rates.is_empty() {
        bail!("a ramp needs the harness's feed: run it with `quotecast-bench compare --scenario ramp`");
    }
    let started_unix_ms = worker::unix_us() / 1000;
    let (target, server_pid, spawned) = single_target(cli, &cfg)?;
    let pinned_core = spawned
        .as_ref()
        .and_then(|s| s.pinned().then_some(cli.server_core));
    let symbols = server::fetch_symbols(target.addr, &target.token)?;
    let plans = build_plans(&cfg, &symbols, &quotecast_subscribe);
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

/// One run against a server already listening: connect, subscribe, warm up,
/// measure (or step through `cfg.ramp_rates` on `feed`), stop. Long because
/// it is the run's timeline, phase after phase, each sampled at its edges.
pub fn run(
    cli: &Cli,
    cfg: &RunConfig,
    target: Target,
    plans: Vec<Plan>,
    server_pid: Option<u32>,
    n_symbols: usize,
    feed: Option<&Feed>,
) -> anyhow::Result<Report> {
    let mix = Mix::of(&plans);
    let addr = target.addr;
    let counts_writes = target.counts_writes;
    let tls = target.tls.clone();
    let server_writes = || {
        counts_writes
            .then(|| scrape::write_counts(addr, tls.as_ref()))
            .flatten()
    };
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(worker::CONNECTING),
        step: AtomicUsize::new(worker::NO_STEP),
        stamps: feed.map(Feed::stamps),
        ..Shared::default()
    });
    let sample = || server_pid.and_then(|p| procstat::sample(Some(p)));
    let mut procs = ProcSamples {
        server_before: sample(),
        ..ProcSamples::default()
    };
    let mut sampler = Sampler::new(server_pid, &shared);
    let handles = start_workers(cli, cfg, target, plans, &shared)?;

    let connect_phase_s = sampler.connect_phase(cli.connect_timeout, mix.planned, &handles);
    let ready_after_connect = shared.ready.load(Ordering::Relaxed);
    eprintln!(
        "connected {ready_after_connect}/{} in {connect_phase_s:.2} s ({} failed); warming up {:.1} s",
        mix.planned,
        shared.failed.load(Ordering::Relaxed),
        cfg.warmup_s
    );
    shared.phase.store(worker::WARMUP, Ordering::Relaxed);
    procs.server_after_connect = sample();
    sampler.sleep(Duration::from_secs_f64(cfg.warmup_s), "warmup");

    procs.server_w0 = sample();
    procs.gen_w0 = procstat::sample(None);
    let writes0 = server_writes();
    let w0 = Instant::now();
    shared.phase.store(worker::MEASURE, Ordering::Relaxed);
    let feed_sent0 = feed.map(Feed::sent);
    let ramp_windows = match feed.filter(|_| !cfg.ramp_rates.is_empty()) {
        None => {
            sampler.sleep(Duration::from_secs_f64(cfg.duration_s), "measure");
            Vec::new()
        }
        Some(feed) => ramp(cfg, feed, &mut sampler),
    };
    shared.phase.store(worker::DONE, Ordering::Relaxed);
    let window_s = w0.elapsed().as_secs_f64();
    let feed_quotes_per_s = feed
        .zip(feed_sent0)
        .map(|(f, s0)| (f.sent() - s0) as f64 / window_s);
    procs.server_w1 = sample();
    procs.gen_w1 = procstat::sample(None);
    let server_writes = writes0.zip(server_writes()).map(|(w0, w1)| w1.since(w0));

    let mut stats = WorkerStats::new();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        stats.merge(s);
    }
    let measured = Measured {
        connect_phase_s,
        ready_after_connect,
        window_s,
        feed_quotes_per_s,
        server_writes,
        ramp: ramp_windows,
        timeline: sampler.timeline,
        stats,
        procs,
    };
    Ok(Report::new(
        cfg, addr, n_symbols, mix, server_pid, &shared, measured,
    ))
}

/// Deals the plans round robin to `cfg.threads` load threads and starts
/// them, each bounded by the run's whole time budget.
fn start_workers(
    cli: &Cli,
    cfg: &RunConfig,
    target: Target,
    plans: Vec<Plan>,
    shared: &Arc<Shared>,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<WorkerStats>>>> {
    let mut per_thread: Vec<Vec<Plan>> = (0..cfg.threads).map(|_| Vec::new()).collect();
    for (i, plan) in plans.into_iter().enumerate() {
        per_thread[i % cfg.threads].push(plan);
    }
    let ramp_s = cfg.ramp_rates.len() as f64 * (cfg.ramp_settle_s + cfg.ramp_step_s);
    let total_budget =
        cli.connect_timeout + cfg.warmup_s + cfg.duration_s + ramp_s + cli.handshake_timeout + 30.0;
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
        deadline: Instant::now() + Duration::from_secs_f64(total_budget),
        seed: 0,
    };
    let target = Arc::new(target);
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
    Ok(handles)
}

/// Samples the server, the generator and the delivered rate every 250 ms
/// into the run's timeline.
struct Sampler<'a> {
    pid: Option<u32>,
    shared: &'a Shared,
    t0: Instant,
    last: Instant,
    last_server: Option<ProcSample>,
    last_gen: Option<ProcSample>,
    last_prices: u64,
    last_flushes: u64,
    timeline: Vec<TimePoint>,
}

impl<'a> Sampler<'a> {
    const EVERY: Duration = Duration::from_millis(250);

    /// Starts the run's clock.
    fn new(pid: Option<u32>, shared: &'a Shared) -> Self {
        Sampler {
            pid,
            shared,
            t0: Instant::now(),
            last: Instant::now(),
            last_server: pid.and_then(|p| procstat::sample(Some(p))),
            last_gen: procstat::sample(None),
            last_prices: 0,
            last_flushes: 0,
            timeline: Vec::new(),
        }
    }

    /// The server's CPU and memory now, when it has a pid.
    fn server(&self) -> Option<ProcSample> {
        self.pid.and_then(|p| procstat::sample(Some(p)))
    }

    /// Adds a point when 250 ms have passed since the last one.
    fn maybe(&mut self, phase: &'static str) {
        let dt = self.last.elapsed();
        if dt < Self::EVERY {
            return;
        }
        let dt_s = dt.as_secs_f64();
        self.last = Instant::now();
        let server = self.server();
        let gen = procstat::sample(None);
        let pct = |a: Option<ProcSample>, b: Option<ProcSample>| {
            Some((b?.cpu_s - a?.cpu_s) / dt_s * 100.0)
        };
        let prices = self.shared.price_frames.load(Ordering::Relaxed);
        let flushes = self.shared.flushes.load(Ordering::Relaxed);
        self.timeline.push(TimePoint {
            t_s: self.t0.elapsed().as_secs_f64(),
            phase,
            ready: self.shared.ready.load(Ordering::Relaxed),
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
    fn sleep(&mut self, d: Duration, phase: &'static str) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
            self.maybe(phase);
        }
    }

    /// Waits until all `n` connections are ready or failed, the load threads
    /// have all ended, or `timeout_s` has passed; returns the seconds it took.
    fn connect_phase<T>(&mut self, timeout_s: f64, n: usize, handles: &[JoinHandle<T>]) -> f64 {
        let deadline = self.t0 + Duration::from_secs_f64(timeout_s);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let done = self.shared.ready.load(Ordering::Relaxed)
                + self.shared.failed.load(Ordering::Relaxed);
            let finished = handles.iter().all(|h| h.is_finished());
            if done >= n || Instant::now() >= deadline || finished {
                break;
            }
            self.maybe("connect");
        }
        self.t0.elapsed().as_secs_f64()
    }
}

/// Steps the feed through `cfg.ramp_rates`; stops after the first step whose
/// healthy p99 is over the target (no higher rate would meet it).
fn ramp(cfg: &RunConfig, feed: &Feed, sampler: &mut Sampler<'_>) -> Vec<RampWindow> {
    let shared = sampler.shared;
    let mut out = Vec::new();
    for (i, &rate) in cfg.ramp_rates.iter().enumerate() {
        feed.set_rate(rate);
        shared.step.store(worker::NO_STEP, Ordering::Relaxed);
        sampler.sleep(Duration::from_secs_f64(cfg.ramp_settle_s), "settle");
        shared.step_prices.store(0, Ordering::Relaxed);
        shared.step_late.store(0, Ordering::Relaxed);
        let cpu0 = sampler.server();
        let (sent0, prices0) = (feed.sent(), shared.price_frames.load(Ordering::Relaxed));
        let w0 = Instant::now();
        shared.step.store(i, Ordering::Relaxed);
        sampler.sleep(Duration::from_secs_f64(cfg.ramp_step_s), "step");
        shared.step.store(worker::NO_STEP, Ordering::Relaxed);
        let dt = w0.elapsed().as_secs_f64();
        let cpu1 = sampler.server();
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
