//! The folder a comparison writes: `report.json` (everything), `summary.md`
//! (the tables a reader compares), and SVG plots: latency percentile
//! distribution per server, delivery cadence over time, and the ramp.

use crate::probe::ProbeReport;
use crate::report::Report;
use crate::scenario::RunConfig;
use crate::svg::{self, Axis, RefLine, Series};
use anyhow::Context;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The machine a comparison ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// Processors of /proc/cpuinfo (all of the machine's, not only the
    /// core the generator is pinned to).
    pub cores: usize,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// Start of the comparison, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_utc: String,
}

impl Machine {
    /// Reads /proc and the clock.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, v)| v.trim().to_string());
        Machine {
            cpu,
            cores: cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or("unknown".into(), |s| s.trim().to_string()),
            started_utc: utc_now(),
        }
    }
}

/// Everything one `compare` measured.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// Where it ran.
    pub machine: Machine,
    /// The resolved workload.
    pub config: RunConfig,
    /// One report per server that ran, in the order of `--servers` (with
    /// `--quotecast-runs`, quotecast's is its run with the median writes/s).
    pub reports: Vec<Report>,
    /// The physical limit probe the summary holds each server against: the
    /// run with the median writes/s of [`Comparison::probe_runs`]; with
    /// `--quotecast-runs`, the probe run right after quotecast's median run.
    pub probe: Option<ProbeReport>,
    /// Every probe run, in run order: on this shared VM runs minutes apart
    /// differed by a fifth to a third, so a share is also given against
    /// the slowest and the fastest.
    pub probe_runs: Vec<ProbeReport>,
    /// With `--quotecast-runs` above 1: every quotecast run, in run order;
    /// run i was followed by probe run i (`probe_runs[i]`), and
    /// [`Comparison::reports`] holds the run with the median writes/s.
    /// Empty with one run.
    pub quotecast_runs: Vec<Report>,
    /// Servers that did not run, and why.
    pub skipped: Vec<(String, String)>,
    /// `/proc/loadavg` before each run (other builds share the machine).
    pub loads: Vec<(String, String)>,
    /// Servers whose run measured only part of its load, and why (see
    /// [`invalid_runs`]); no ratio or share is computed from them.
    pub invalid: Vec<Invalid>,
}

/// A server run that is not a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invalid {
    /// quotecast, tokio-broadcast, nchan or sockudo.
    pub server: String,
    /// What it did not measure.
    pub reason: String,
}

impl Comparison {
    /// Whether the run of `server` measured its whole load.
    pub fn is_valid(&self, server: &str) -> bool {
        self.invalid.iter().all(|i| i.server != server)
    }
}

impl Comparison {
    /// An empty comparison.
    pub fn new(scenario: String, machine: Machine, config: RunConfig) -> Self {
        Comparison {
            scenario,
            machine,
            config,
            reports: Vec::new(),
            probe: None,
            probe_runs: Vec::new(),
            quotecast_runs: Vec::new(),
            skipped: Vec::new(),
            loads: Vec::new(),
            invalid: Vec::new(),
        }
    }
}

/// A feed that reached a server at less than this share of the configured
/// rate gave it less work than the others.
const MIN_FEED_SHARE: f64 = 0.9;

/// Prices not matched to the generator's stamp above this share of the
/// prices received mean the latency figures time only part of the load.
const MAX_UNTIMED_SHARE: f64 = 0.01;

/// The server runs that measured only part of their load (see
/// [`invalid_reasons`]). They are reported but no ratio is computed from them.
/// Each of quotecast's repeated runs is listed as `quotecast run i`, so one
/// invalid run does not hide the ratios of the median run.
pub fn invalid_runs(c: &Comparison) -> Vec<Invalid> {
    let repeated = c
        .quotecast_runs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("quotecast run {}", i + 1), r));
    c.reports
        .iter()
        .map(|r| (r.server.kind.clone(), r))
        .chain(repeated)
        .flat_map(|(server, r)| {
            invalid_reasons(&c.config, r)
                .into_iter()
                .map(move |reason| Invalid {
                    server: server.clone(),
                    reason,
                })
        })
        .collect()
}

/// Why run `r` of workload `cfg` measured only part of its load: failed
/// connections, less of the feed than asked (a server that reads its feed
/// slower than it is sent), or prices that could not be timed from the
/// generator's stamps. Empty for a run that is a result.
pub fn invalid_reasons(cfg: &RunConfig, r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let conns = &r.connections;
    if conns.failed > 0 || conns.ready < conns.planned {
        out.push(format!(
            "{} of {} connections ready, {} failed",
            conns.ready, conns.planned, conns.failed
        ));
    }
    let asked = cfg.sim_rate as f64;
    let got = r.feed_quotes_per_s.unwrap_or(0.0);
    if cfg.ramp_rates.is_empty() && got < asked * MIN_FEED_SHARE {
        out.push(format!(
            "the feed reached it at {got:.0} quotes/s of the {asked:.0} asked"
        ));
    }
    let k = &r.counts;
    if k.unmatched_prices as f64 > k.price_frames as f64 * MAX_UNTIMED_SHARE {
        out.push(format!(
            "{} of {} prices not matched to the generator's stamps (untimed)",
            k.unmatched_prices, k.price_frames
        ));
    }
    out
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// Now in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_else(|_| "unknown".into())
}

/// `2026-11-22T03:04:05Z` → `20261122T030405Z`, for folder names.
pub fn timestamp(utc: &str) -> String {
    utc.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// One line about a probe run.
pub fn probe_line(p: &ProbeReport) -> String {
    let (w, k) = (p.config.work_us_per_write, p.config.work_batch);
    let work = match (w > 0.0, k > 1) {
        (false, _) => String::new(),
        (true, false) => format!(" + {w} µs of work"),
        (true, true) => format!(" + {w} µs of work, spun every {k} writes"),
    };
    let sends = match p.config.send_batch {
        1 => String::new(),
        n => format!(", {n} sends per io_uring submission"),
    };
    format!(
        "probe     {} conns, {} frames/write of {} B{work}{sends}: {:.0} writes/s, {:.0} frames/s, {:.2} µs CPU per write (writer {:.0}% CPU, reader {:.0}%), {} EAGAIN",
        p.config.connections,
        p.config.frames_per_write,
        p.config.payload_bytes,
        p.writes_per_s,
        p.frames_per_s,
        p.cpu_us_per_write,
        p.writer_cpu_pct,
        p.reader_cpu_pct,
        p.would_block
    )
}

/// Writes report.json, summary.md and the plots into `dir`.
pub fn write(dir: &Path, c: &Comparison) -> anyhow::Result<()> {
    let put = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    put("report.json", serde_json::to_string_pretty(c)?)?;
    put("summary.md", summary(c))?;
    put("latency.svg", latency_plot(c))?;
    put("cadence.svg", cadence_plot(c))?;
    if c.reports.iter().any(|r| !r.ramp.is_empty()) {
        put("ramp.svg", ramp_plot(c))?;
    }
    Ok(())
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Prices a non-conflating server would deliver per second: every quote to
/// every reading (not dead) subscriber of its symbol.
fn expected_per_s(r: &Report) -> Option<f64> {
    let reading = r.connections.ready.saturating_sub(r.connections.dead) as f64;
    let subs = reading * r.config.symbols_per_conn.min(r.server.symbols) as f64;
    Some(r.feed_quotes_per_s? * subs / r.server.symbols.max(1) as f64)
}

/// Server CPU µs per delivered price.
fn cpu_us_per_price(r: &Report) -> Option<f64> {
    let rate = r.throughput.price_frames_per_s;
    (rate > 0.0).then_some(r.server_proc.cpu_pct? / 100.0 * 1e6 / rate)
}

/// Bytes read off the socket per delivered price (frame headers, other
/// messages and compression included): what a client's bandwidth pays.
fn wire_bytes_per_price(r: &Report) -> Option<f64> {
    let rate = r.throughput.price_frames_per_s;
    (rate > 0.0).then_some(r.throughput.wire_bytes_per_s / rate)
}

/// `v` with `digits` decimals, or `n/a`.
pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

/// summary.md: the run's setup, then one section per question a reader
/// has, each written by its own function below.
fn summary(c: &Comparison) -> String {
    let mut s = String::new();
    setup_section(c, &mut s);
    invalid_section(c, &mut s);
    generator_section(c, &mut s);
    client_section(c, &mut s);
    let quotecast = c.reports.iter().find(|r| r.server.kind == "quotecast");
    if let Some(q) = quotecast.filter(|q| c.is_valid(&q.server.kind)) {
        ratio_section(c, q, &mut s);
        if let Some(p) = &c.probe {
            probe_section(c, p, &mut s);
        }
    }
    if c.quotecast_runs.len() > 1 {
        crate::repeats::section(&c.config, &c.quotecast_runs, &c.probe_runs, &mut s);
    }
    let ramped: Vec<&Report> = c.reports.iter().filter(|r| !r.ramp.is_empty()).collect();
    if !ramped.is_empty() {
        ramp_section(&ramped, &mut s);
    }
    other_sections(c, &mut s);
    let _ = writeln!(
        s,
        "## Plots\n\n![latency percentiles](latency.svg)\n\n![cadence](cadence.svg)\n"
    );
    if !ramped.is_empty() {
        let _ = writeln!(s, "![ramp](ramp.svg)\n");
    }
    let _ = writeln!(
        s,
        "Raw figures: report.json. Reproduce: `target/release/quotecast-bench compare --scenario {} --duration {}{}{}`.",
        c.scenario,
        c.config.duration_s,
        match c.quotecast_runs.len() {
            0 | 1 => String::new(),
            n => format!(" --quotecast-runs {n}"),
        },
        match c.config.max_rate_hz {
            crate::scenario::DEFAULT_MAX_RATE_HZ => String::new(),
            hz => format!(" --max-rate-hz {hz}"),
        }
    );
    s
}

/// Title, machine, workload and load averages.
fn setup_section(c: &Comparison, s: &mut String) {
    let cfg = &c.config;
    let _ = writeln!(
        s,
        "# {}: quotecast and its peers, {}\n",
        c.scenario, c.machine.started_utc
    );
    let _ = writeln!(
        s,
        "Machine: {}, {} cores, kernel {}. Each server pinned to core {} with `taskset`, \
         the load generator (and the probe's reader) to core {}. Release builds; quotecast runs with `quotecast.toml` of this folder (connection caps off).\n",
        c.machine.cpu,
        c.machine.cores,
        c.machine.kernel,
        crate::compare::SERVER_CORE,
        cfg.pin_core.map_or("(unpinned)".into(), |c| c.to_string()),
    );
    let ramp = if cfg.ramp_rates.is_empty() {
        String::new()
    } else {
        format!(
            ", ramped through {:?} quotes/s ({} s settle + {} s measured per step)",
            cfg.ramp_rates, cfg.ramp_settle_s, cfg.ramp_step_s
        )
    };
    let _ = writeln!(
        s,
        "Workload: {} connections x {} of {} symbols ({}), {:.0}% dead, {:.0}% slow (read every {} ms); \
         one generated feed of {} quotes/s{ramp} (one venue, every quote moves the price), \
         the same for every server; window {} s after {} s warm-up.\n",
        cfg.connections,
        cfg.symbols_per_conn,
        cfg.sim_symbols,
        if cfg.zipf { "Zipf" } else { "uniform" },
        cfg.dead_share * 100.0,
        cfg.slow_share * 100.0,
        cfg.slow_read_ms,
        cfg.sim_rate,
        cfg.duration_s,
        cfg.warmup_s,
    );
    let loads: Vec<String> = c.loads.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "Load average (1/5/15 min) before each run — the machine is shared with other builds: {}.\n",
        loads.join("; ")
    );
}

/// The reasons this run is not a result, first thing after the setup.
fn invalid_section(c: &Comparison, s: &mut String) {
    if c.invalid.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## INVALID runs: part of the load was not measured\n\n\
         No ratio and no share of the probe is computed from these runs:\n"
    );
    for i in &c.invalid {
        let _ = writeln!(s, "- {}: {}", i.server, i.reason);
    }
    s.push('\n');
}

/// The runs whose load core was near its limit, before any figure.
fn generator_section(c: &Comparison, s: &mut String) {
    let busy: Vec<&Report> = c
        .reports
        .iter()
        .filter(|r| r.generator_near_saturation())
        .collect();
    if busy.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Load core near its limit\n\n\
         The load generator (its load threads and the feed) was above {:.0}% of the core(s) it \
         runs on in these runs, so their figures may measure it as much as the server: a busy \
         load core delays the feed it generates, and \
         on loopback it changes what each write costs the server (a reader that is rarely \
         asleep is rarely woken; see tuning/results/2026-12-06-work-per-write.md).\n",
        crate::report::GENERATOR_BUSY_PCT
    );
    for r in busy {
        let _ = writeln!(
            s,
            "- {}: generator {}% of {} core(s); {} stalls of its loop in the window (longest {:.1} ms)",
            r.server.kind,
            opt(r.generator_proc.cpu_pct, 0),
            r.generator_cores(),
            r.counts.gen_stalls,
            r.counts.gen_stall_max_us as f64 / 1000.0
        );
    }
    s.push('\n');
}

/// The table of what a healthy client of each server sees.
fn client_section(c: &Comparison, s: &mut String) {
    let _ = writeln!(s, "## What a trading client sees\n");
    let _ = writeln!(
        s,
        "| server | feed sent/s | prices delivered/s | delivered share | latency p50 / p99 / p99.9 / max (ms) | harness read delay p50 / p99 (ms) | deliveries/s per conn | gap p99 (ms) | server CPU | CPU µs per delivered price | wire bytes per delivered price | RSS end (MiB) | handshake p99 (ms) | failed conns |"
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(14));
    for r in &c.reports {
        let l = &r.latency_healthy;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {} / {} / {} / {} | {} / {} | {:.1} | {} | {}% | {} | {} | {} | {} | {} |",
            r.server.kind,
            opt(r.feed_quotes_per_s, 0),
            r.throughput.price_frames_per_s,
            expected_per_s(r)
                .filter(|e| *e > 0.0)
                .map_or("n/a".into(), |e| format!(
                    "{:.0}%",
                    r.throughput.price_frames_per_s / e * 100.0
                )),
            ms(l.p50_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            ms(r.read_delay.p50_us),
            ms(r.read_delay.p99_us),
            r.cadence.mean_hz,
            ms(r.cadence.gap.p99_us),
            opt(r.server_proc.cpu_pct, 0),
            opt(cpu_us_per_price(r), 2),
            opt(wire_bytes_per_price(r), 0),
            opt(r.server_proc.rss_end_kib.map(|k| k as f64 / 1024.0), 1),
            ms(r.connections.handshake.p99_us),
            r.connections.failed,
        );
    }
    let _ = writeln!(
        s,
        "\nLatency is the age of each price a healthy client receives, from one clock origin \
         for every server: the moment the harness's feed generated the quote (looked up by \
         symbol and `seq`; prices whose stamp is not found are counted as untimed, never \
         guessed), to the moment its bytes reached the client's socket (the kernel's \
         receive stamp of the read, which is never earlier than any byte it returned; for \
         a conflating server, prices that shared a read with a later write are left out, \
         and listed under \"Reads that held more than one write\" when there are any). The \
         harness read delay is how long those bytes then waited for the load thread, which \
         serves every connection from one core: a real client adds its own. Delivered \
         share = prices delivered / (feed rate x subscribers per symbol): below 100% \
         quotecast conflates (each delivery carries the latest value) and the peers drop or \
         lag. A delivery burst (prices < 1 ms apart) counts once in deliveries/s per \
         connection.\n"
    );
}

/// The healthy prices the load thread read together with a later write of
/// the server's, when there were any.
fn merged_section(c: &Comparison, s: &mut String) {
    let merged: Vec<&Report> = c
        .reports
        .iter()
        .filter(|r| r.latency_merged.count > 0)
        .collect();
    if merged.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Reads that held more than one write\n");
    let _ = writeln!(
        s,
        "When the load thread reads a socket late, one read can return two of the server's \
         writes, and the kernel stamps it with the last one's arrival. A conflating server \
         sends a symbol once per write, so a repeated symbol marks the next write; the prices \
         before it have no known arrival and are left out of the healthy latency. Timed at \
         the read's stamp (upper bounds):\n"
    );
    for r in merged {
        let m = &r.latency_merged;
        let all = m.count + r.latency_healthy.count;
        let _ = writeln!(
            s,
            "- {}: {} of {} timed healthy prices ({:.2}%), p50 {} ms, p99 {} ms",
            r.server.kind,
            m.count,
            all,
            m.count as f64 / all.max(1) as f64 * 100.0,
            ms(m.p50_us),
            ms(m.p99_us),
        );
    }
    s.push('\n');
}

/// Each peer's figures over quotecast's.
fn ratio_section(c: &Comparison, q: &Report, s: &mut String) {
    let _ = writeln!(s, "## Ratios (peer / quotecast)\n");
    let _ = writeln!(
        s,
        "| server | p50 latency | p99 latency | prices delivered/s | CPU per delivered price |"
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(5));
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "n/a".into()
        }
    };
    for r in c.reports.iter().filter(|r| r.server.kind != "quotecast") {
        if !c.is_valid(&r.server.kind) {
            let _ = writeln!(s, "| {} | invalid run | | | |", r.server.kind);
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.server.kind,
            ratio(
                r.latency_healthy.p50_us as f64,
                q.latency_healthy.p50_us as f64
            ),
            ratio(
                r.latency_healthy.p99_us as f64,
                q.latency_healthy.p99_us as f64
            ),
            ratio(
                r.throughput.price_frames_per_s,
                q.throughput.price_frames_per_s
            ),
            match (cpu_us_per_price(r), cpu_us_per_price(q)) {
                (Some(a), Some(b)) => ratio(a, b),
                _ => "n/a".into(),
            }
        );
    }
    s.push('\n');
}

/// Server CPU (% of its core) from which a run counts as saturated.
const SATURATED_CPU_PCT: f64 = 90.0;

/// quotecast's CPU µs per write by its own write count, and whether it was
/// saturated (CPU at least [`SATURATED_CPU_PCT`]): below that a tick's fixed
/// cost is spread over few writes, so no ratio to the saturated probe holds.
/// None without a write count.
pub fn cpu_us_per_write(r: &Report) -> Option<(f64, bool)> {
    let w = r.throughput.server_writes_per_s.filter(|w| *w > 0.0)?;
    let pct = r.server_proc.cpu_pct?;
    Some((pct / 100.0 * 1e6 / w, pct >= SATURATED_CPU_PCT))
}

/// The run with the median writes/s (the upper one of an even count).
pub fn median_probe(runs: &[ProbeReport]) -> Option<ProbeReport> {
    crate::repeats::median_by(runs, |p| p.writes_per_s).cloned()
}

/// The probe, and each server's share of it.
fn probe_section(c: &Comparison, p: &ProbeReport, s: &mut String) {
    let _ = writeln!(s, "## Physical limit (probe)\n");
    let _ = writeln!(
        s,
        "No protocol logic: one writer thread on core {} writes {} pre-built {}-byte price \
         frames per send(2) to each of {} loopback connections, round after round, for \
         {:.1} s; one epoll reader on core {} drains them. The probe ran {} times; the row is \
         {} ({} writes/s by run), and each share is given against it and against the \
         slowest and the fastest run.\n",
        crate::compare::SERVER_CORE,
        p.config.frames_per_write,
        p.config.payload_bytes,
        p.config.connections,
        p.window_s,
        p.config
            .reader_core
            .map_or("(unpinned)".into(), |c| c.to_string()),
        c.probe_runs.len(),
        match crate::repeats::median_run(&c.config, &c.quotecast_runs, &c.probe_runs) {
            Some(i) if c.quotecast_runs.len() > 1 => format!(
                "the run right after quotecast's run {} (the one shown here; see the section on its runs)",
                i + 1
            ),
            _ => "the run with the median writes/s".to_string(),
        },
        c.probe_runs
            .iter()
            .map(|r| format!("{:.0}", r.writes_per_s))
            .collect::<Vec<_>>()
            .join(" / "),
    );
    let (slowest, fastest) = c
        .probe_runs
        .iter()
        .fold((p.writes_per_s, p.writes_per_s), |(lo, hi), r| {
            (lo.min(r.writes_per_s), hi.max(r.writes_per_s))
        });
    let _ = writeln!(
        s,
        "| | writes/s | frames/s | CPU µs per write | writer CPU |\n| --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        s,
        "| probe | {:.0} | {:.0} | {:.2} | {:.0}% |",
        p.writes_per_s, p.frames_per_s, p.cpu_us_per_write, p.writer_cpu_pct
    );
    for r in c.reports.iter().filter(|r| c.is_valid(&r.server.kind)) {
        // quotecast counts its own writes; for a peer, each delivery burst
        // its clients see is (at most) one server write.
        let t = &r.throughput;
        let (writes, counted_by) = match t.server_writes_per_s {
            Some(w) => (w, "server's count"),
            None => (t.flushes_per_s, "client's bursts"),
        };
        let cpu_per_write = match cpu_us_per_write(r) {
            Some((c, false)) => format!("{c:.2} (not saturated)"),
            Some((c, true)) => format!("{c:.2} ({:.2}x probe)", c / p.cpu_us_per_write.max(1e-9)),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} ({:.0}% of probe, {:.0}–{:.0}% over its runs; {counted_by}) | {:.0} ({:.0}% of probe) | {} | {}% |",
            r.server.kind,
            writes,
            writes / p.writes_per_s.max(1e-9) * 100.0,
            writes / fastest.max(1e-9) * 100.0,
            writes / slowest.max(1e-9) * 100.0,
            t.price_frames_per_s,
            t.price_frames_per_s / p.frames_per_s.max(1e-9) * 100.0,
            cpu_per_write,
            opt(r.server_proc.cpu_pct, 0),
        );
    }
    let _ = writeln!(
        s,
        "\nA server's share of the probe is its headroom only when it is saturated (CPU near \
         100%); below that it only delivers what the feed gives it. quotecast's writes are its \
         own count (`quotecast_flushes_total` at the window's edges), like the probe's; a \
         client that falls behind takes several writes in one read, so the clients' count of \
         delivery bursts is lower.\n"
    );
}

/// Every ramp step, and each server's capacity.
fn ramp_section(ramped: &[&Report], s: &mut String) {
    let _ = writeln!(s, "## Capacity at the latency target (ramp)\n");
    let _ = writeln!(
        s,
        "| server | feed asked/s | feed sent/s | delivered/s | p50 / p99 (ms) | server CPU | p99 < 50 ms |"
    );
    let _ = writeln!(s, "|{}", " --- |".repeat(7));
    for r in ramped {
        for st in &r.ramp {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {} / {} | {}% | {} |",
                r.server.kind,
                st.window.rate,
                st.window.quotes_per_s,
                st.window.prices_per_s,
                ms(st.latency.p50_us),
                ms(st.latency.p99_us),
                opt(st.window.server_cpu_pct, 0),
                if st.within_target { "yes" } else { "no" },
            );
        }
    }
    s.push('\n');
    for r in ramped {
        let _ = writeln!(
            s,
            "- **{}**: capacity {} quotes/s at p99 < 50 ms",
            r.server.kind,
            r.capacity()
                .map_or("below the first step".into(), |c| format!("{c:.0}"))
        );
    }
    s.push('\n');
}

/// Full sockets, the leading edge, slow readers, memory per connection, and
/// what was not measured.
fn other_sections(c: &Comparison, s: &mut String) {
    let counted: Vec<(&Report, u64)> = c
        .reports
        .iter()
        .filter_map(|r| Some((r, r.throughput.server_socket_full_writes_in_window?)))
        .collect();
    if !counted.is_empty() {
        let _ = writeln!(s, "## Full sockets\n");
    }
    for &(r, n) in &counted {
        let (kind, dead, slow) = (&r.server.kind, r.connections.dead, r.connections.slow);
        let _ = writeln!(
            s,
            "- {kind}: {n} writes in the window found the client's socket full (its send \
             buffer), by its own count (`quotecast_socket_full_writes_total`); the run has \
             {dead} clients that never read and {slow} slow readers. A client that stops \
             reading counts one when its queues fill, if that happens in the window; slow \
             readers and clients the send buffer held back count too."
        );
    }
    if !counted.is_empty() {
        s.push('\n');
    }
    if c.reports.iter().any(|r| r.latency_leading.count > 0) {
        let _ = writeln!(s, "## Leading edge\n");
        let _ = writeln!(
            s,
            "Healthy prices generated more than 1/max_rate_hz after their connection's previous \
             flush, which no rate cap may hold back (servers that announce `max_rate_hz`):\n"
        );
        for r in c.reports.iter().filter(|r| r.latency_leading.count > 0) {
            let l = &r.latency_leading;
            let _ = writeln!(
                s,
                "- {}: p50 {} ms, p99 {} ms ({} of {} timed prices)",
                r.server.kind,
                ms(l.p50_us),
                ms(l.p99_us),
                l.count,
                r.latency_healthy.count
            );
        }
        s.push('\n');
    }
    merged_section(c, s);
    if c.reports.iter().any(|r| r.latency_slow.count > 0) {
        let _ = writeln!(s, "## Slow readers\n");
        for r in &c.reports {
            let _ = writeln!(
                s,
                "- {}: healthy p99 {} ms; slow p99 {} ms; lagging notices {}; close codes {:?}",
                r.server.kind,
                ms(r.latency_healthy.p99_us),
                ms(r.latency_slow.p99_us),
                r.counts.lagging,
                r.close_codes
            );
        }
        s.push('\n');
    }
    if c.reports
        .iter()
        .any(|r| r.server_proc.rss_growth_per_conn_bytes.is_some())
    {
        let _ = writeln!(s, "## Memory per connection\n");
        for r in &c.reports {
            let _ = writeln!(
                s,
                "- {}: {} B of server RSS per connected client ({} ready)",
                r.server.kind,
                opt(r.server_proc.rss_growth_per_conn_bytes, 0),
                r.connections.ready
            );
        }
        s.push('\n');
    }
    if !c.skipped.is_empty() {
        let _ = writeln!(s, "## Not measured\n");
        for (k, why) in &c.skipped {
            let _ = writeln!(s, "- {k}: {why}");
        }
        s.push('\n');
    }
}

fn latency_plot(c: &Comparison) -> String {
    // x: percentile on a log scale of 1/(1-q); 0 at the median side.
    let xpos = |pct: f64| {
        if pct >= 100.0 {
            5.5
        } else {
            (1.0 / (1.0 - pct / 100.0)).log10()
        }
    };
    let series: Vec<Series> = c
        .reports
        .iter()
        .map(|r| Series {
            name: r.server.kind.clone(),
            points: r
                .latency_curve
                .iter()
                .filter(|(p, _)| *p >= 50.0)
                .map(|&(p, us)| (xpos(p), us as f64 / 1000.0))
                .collect(),
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let x = Axis {
        label: "percentile (log scale of 1/(1-p))".into(),
        log: false,
        min: xpos(50.0),
        max: 5.5,
        ticks: [50.0, 90.0, 99.0, 99.9, 99.99, 99.999]
            .into_iter()
            .map(|p| (xpos(p), format!("{p}%")))
            .chain([(5.5, "max".to_string())])
            .collect(),
    };
    let y = Axis::auto(
        "latency now - ts (ms, log)",
        true,
        if lo == f64::MAX { 0.1 } else { lo },
        hi.max(1.0),
    );
    svg::chart(
        &format!(
            "{}: latency of received prices, healthy clients",
            c.scenario
        ),
        &x,
        &y,
        &series,
        &[RefLine {
            y: 50.0,
            label: "50 ms target".into(),
        }],
    )
}

fn cadence_plot(c: &Comparison) -> String {
    let series: Vec<Series> = c
        .reports
        .iter()
        .map(|r| {
            let healthy = r.connections.healthy.max(1) as f64;
            let t0 = r
                .timeline
                .iter()
                .find(|p| p.phase != "connect" && p.phase != "warmup")
                .map_or(0.0, |p| p.t_s);
            Series {
                name: r.server.kind.clone(),
                points: r
                    .timeline
                    .iter()
                    .filter(|p| p.phase != "connect" && p.phase != "warmup")
                    .map(|p| (p.t_s - t0, p.flushes_per_s / healthy))
                    .collect(),
            }
        })
        .collect();
    let tmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(f64::from(c.config.max_rate_hz), f64::max);
    svg::chart(
        &format!(
            "{}: deliveries per second per healthy connection",
            c.scenario
        ),
        &Axis::auto("time in the measured window (s)", false, 0.0, tmax),
        &Axis::auto("delivery bursts/s per connection", false, 0.0, ymax * 1.05),
        &series,
        &[RefLine {
            y: f64::from(c.config.max_rate_hz),
            label: format!("quotecast max_rate_hz {}", c.config.max_rate_hz),
        }],
    )
}

fn ramp_plot(c: &Comparison) -> String {
    let series: Vec<Series> = c
        .reports
        .iter()
        .filter(|r| !r.ramp.is_empty())
        .map(|r| Series {
            name: r.server.kind.clone(),
            points: r
                .ramp
                .iter()
                .filter(|s| s.latency.count > 0)
                .map(|s| {
                    (
                        s.window.quotes_per_s.max(1.0),
                        s.latency.p99_us as f64 / 1000.0,
                    )
                })
                .collect(),
        })
        .collect();
    let fold = |f: fn(&(f64, f64)) -> f64, init: f64, pick: fn(f64, f64) -> f64| {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(f))
            .fold(init, pick)
    };
    let (xlo, xhi) = (
        fold(|p| p.0, f64::MAX, f64::min),
        fold(|p| p.0, 1.0, f64::max),
    );
    let (ylo, yhi) = (
        fold(|p| p.1, f64::MAX, f64::min),
        fold(|p| p.1, 1.0, f64::max),
    );
    svg::chart(
        &format!("{}: healthy p99 latency as the feed rate rises", c.scenario),
        &Axis::auto("feed rate sent (quotes/s, log)", true, xlo.min(xhi), xhi),
        &Axis::auto("p99 latency (ms, log)", true, ylo.min(yhi), yhi.max(60.0)),
        &series,
        &[RefLine {
            y: 50.0,
            label: "50 ms target".into(),
        }],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn utc_and_folder_stamp() {
        let now = utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
        assert_eq!(timestamp("2026-11-22T03:04:05Z"), "20261122T030405Z");
    }

    /// A report of `planned` connections of which `ready` got ready and
    /// `failed` failed, fed at `feed` quotes/s.
    pub(crate) fn report(
        cfg: &RunConfig,
        kind: &str,
        ready: usize,
        failed: usize,
        feed: f64,
    ) -> Report {
        let shared = crate::worker::Shared::default();
        shared
            .ready
            .store(ready, std::sync::atomic::Ordering::Relaxed);
        shared
            .failed
            .store(failed, std::sync::atomic::Ordering::Relaxed);
        let mix = crate::scenario::Mix {
            planned: cfg.connections,
            healthy: cfg.connections,
            slow: 0,
            dead: 0,
        };
        let measured = crate::report::Measured {
            connect_phase_s: 1.0,
            ready_after_connect: ready,
            window_s: 10.0,
            feed_quotes_per_s: Some(feed),
            server_writes: None,
            ramp: Vec::new(),
            timeline: Vec::new(),
            stats: crate::stats::WorkerStats::new(),
            procs: Default::default(),
        };
        let addr = "127.0.0.1:1".parse().unwrap();
        let mut r = Report::new(cfg, addr, 200, mix, None, &shared, measured);
        r.server.kind = kind.into();
        r
    }

    /// A `hot` run's configuration for 10 connections and an empty comparison of it.
    pub(crate) fn hot_comparison() -> (RunConfig, Comparison) {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from(["b", "--scenario", "hot", "--connections", "10"]);
        let cfg = RunConfig::resolve(&cli, 2);
        let c = Comparison::new("hot".into(), Machine::read(), cfg.clone());
        (cfg, c)
    }

    #[test]
    fn the_reproduce_line_carries_a_rate_cap_that_is_not_the_default() {
        let (cfg, mut c) = hot_comparison();
        c.reports.push(report(&cfg, "quotecast", 10, 0, 20_000.0));
        assert!(!summary(&c).contains("--max-rate-hz"));
        c.config.max_rate_hz = 250;
        assert!(summary(&c).contains(" --max-rate-hz 250`"));
    }

    #[test]
    fn failed_connections_short_feeds_and_untimed_prices_invalidate_a_server_run() {
        let (cfg, mut c) = hot_comparison();
        c.reports.push(report(&cfg, "quotecast", 10, 0, 20_000.0));
        c.reports.push(report(&cfg, "nchan", 10, 0, 19_500.0));
        assert!(invalid_runs(&c).is_empty());
        assert!(
            summary(&c).contains("| nchan | n/a |"),
            "ratios of a valid peer"
        );

        c.reports
            .push(report(&cfg, "tokio-broadcast", 6, 4, 12_000.0));
        c.reports[1].counts.price_frames = 1_000;
        c.reports[1].counts.unmatched_prices = 11;
        c.invalid = invalid_runs(&c);
        let reasons: Vec<String> = c
            .invalid
            .iter()
            .map(|i| format!("{}: {}", i.server, i.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                "nchan: 11 of 1000 prices not matched to the generator's stamps (untimed)",
                "tokio-broadcast: 6 of 10 connections ready, 4 failed",
                "tokio-broadcast: the feed reached it at 12000 quotes/s of the 20000 asked",
            ]
        );
        let text = summary(&c);
        assert!(text.contains("INVALID runs"), "{text}");
        assert!(text.contains("| nchan | invalid run |"), "{text}");
        assert!(text.contains("| tokio-broadcast | invalid run |"), "{text}");

        c.reports[0].connections.failed = 1;
        c.invalid = invalid_runs(&c);
        assert!(
            !summary(&c).contains("## Ratios"),
            "no ratios against an invalid quotecast"
        );
    }

    #[test]
    fn full_sockets_are_listed_for_the_servers_that_count_them() {
        let (cfg, mut c) = hot_comparison();
        c.reports.push(report(&cfg, "nchan", 10, 0, 20_000.0));
        assert!(!summary(&c).contains("## Full sockets"));
        c.reports.push(report(&cfg, "quotecast", 10, 0, 20_000.0));
        c.reports[1].throughput.server_socket_full_writes_in_window = Some(3);
        let text = summary(&c);
        assert!(text.contains("## Full sockets"), "{text}");
        assert!(
            text.contains("- quotecast: 3 writes in the window"),
            "{text}"
        );
        assert!(!text.contains("- nchan: "), "{text}");
    }

    /// A probe report of `writes_per_s` (2 frames per write).
    pub(crate) fn probe_run(writes_per_s: f64) -> ProbeReport {
        ProbeReport {
            config: crate::probe::ProbeConfig {
                connections: 10,
                frames_per_write: 2,
                payload_bytes: 150,
                duration_s: 5.0,
                writer_core: Some(0),
                reader_core: Some(1),
                work_us_per_write: 0.0,
                work_batch: 1,
                send_batch: 1,
            },
            window_s: 5.0,
            writes_per_s,
            frames_per_s: 2.0 * writes_per_s,
            read_bytes_per_s: 0.0,
            would_block: 0,
            cpu_us_per_write: 7.0,
            writer_cpu_pct: 100.0,
            reader_cpu_pct: 95.0,
        }
    }

    #[test]
    fn shares_of_the_probe_are_against_its_median_run_and_its_spread() {
        let (cfg, mut c) = hot_comparison();
        c.probe_runs = [150_000.0, 100_000.0, 120_000.0].map(probe_run).to_vec();
        c.probe = median_probe(&c.probe_runs);
        assert_eq!(c.probe.as_ref().unwrap().writes_per_s, 120_000.0);
        assert_eq!(median_probe(&[]).map(|p| p.writes_per_s), None);
        c.reports.push(report(&cfg, "quotecast", 10, 0, 20_000.0));
        c.reports[0].throughput.server_writes_per_s = Some(90_000.0);
        let text = summary(&c);
        assert!(
            text.contains("(150000 / 100000 / 120000 writes/s by run)"),
            "{text}"
        );
        assert!(
            text.contains(
                "| quotecast | 90000 (75% of probe, 60–90% over its runs; server's count)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_busy_load_core_is_named_before_the_figures() {
        let (cfg, mut c) = hot_comparison();
        c.reports.push(report(&cfg, "quotecast", 10, 0, 20_000.0));
        c.reports.push(report(&cfg, "nchan", 10, 0, 20_000.0));
        c.reports[0].generator_proc.cpu_pct = Some(84.0);
        c.reports[1].generator_proc.cpu_pct = Some(91.0);
        c.reports[1].counts.gen_stalls = 2;
        let text = summary(&c);
        let section = text.find("## Load core near its limit").expect(&text);
        assert!(section < text.find("## What a trading client sees").unwrap());
        assert!(
            text.contains("- nchan: generator 91% of 1 core(s); 2 stalls"),
            "{text}"
        );
        assert!(!text.contains("- quotecast: generator"), "{text}");
        c.reports[1].generator_proc.cpu_pct = Some(80.0);
        assert!(!summary(&c).contains("## Load core near its limit"));
    }
}
