//! `quotecast-bench compare`: one scenario, the same generated feed and the
//! same client against quotecast and each peer in turn, with the physical
//! limit probe right after quotecast; the results go to
//! `results/<scenario>-<timestamp>/`.
//!
//! Every server is started by the harness on a loopback port, pinned to the
//! server core (0) with `taskset`; the generator runs pinned to core 1.
//! - quotecast: `--replay tcp:<feed>` over the feed's symbols, venue `LP1`.
//! - tokio-broadcast (tools/peers): `--feed tcp:<feed>`, same JSON lines.
//! - nchan: nginx in one process (`master_process off`: the measured pid is
//!   the one serving) with a generated config; the feed POSTs each price to `/pub/<symbol>`, clients
//!   subscribe with one WebSocket on `/sub/<s1>,<s2>,...`.
//! - sockudo: run when its binary is found (see `--sockudo-bin`); otherwise
//!   it is listed as skipped with the reason.

use crate::cli::Cli;
use crate::feed::{self, Feed, Publish, Sink};
use crate::probe::{self, ProbeConfig, ProbeReport};
use crate::pusher;
use crate::repeats;
use crate::report::{print_summary, Report};
use crate::results::{self, Comparison, Machine};
use crate::run::{prepare, raise_nofile, run};
use crate::scenario::{build_plans, quotecast_subscribe, RunConfig, Scenario};
use crate::server;
use crate::worker::Target;
use anyhow::Context;
use clap::ValueEnum;
use quotecast_testkit::server::{Ready, Server, Spawn, Stderr};
use quotecast_testkit::tls::TestCa;
use quotecast_testkit::token;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs of the probe per comparison (see [`Comparison::probe_runs`]).
const PROBE_RUNS: usize = 3;

/// Core the servers (and the probe's writer) are pinned to.
pub const SERVER_CORE: usize = 0;

/// Flags of `compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub run: Cli,
    /// Servers to measure, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "quotecast,tokio,nchan,sockudo"
    )]
    pub servers: Vec<Kind>,
    /// The sockudo binary (`cargo install sockudo --root target/sockudo`,
    /// with protobuf-compiler installed; ~15 minutes on 2 cores).
    #[arg(long, default_value = "target/sockudo/bin/sockudo")]
    pub sockudo_bin: String,
    /// The tokio peer binary (cargo build --release -p quotecast-peers).
    #[arg(long, default_value = "target/release/tokio-broadcast")]
    pub peer_bin: String,
    /// nginx with the nchan module (apt-get install nginx libnginx-mod-nchan).
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx_bin: String,
    /// The nchan module to load.
    #[arg(long, default_value = "/usr/lib/nginx/modules/ngx_nchan_module.so")]
    pub nchan_module: String,
    /// Folder the run's folder is created in.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Skip the physical limit probe.
    #[arg(long)]
    pub no_probe: bool,
    /// Run quotecast this many times, each run followed by one probe run
    /// (instead of three probe runs after one quotecast run); the summary
    /// gives every pair and the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub quotecast_runs: u32,
}

/// A server of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// quotecast itself.
    Quotecast,
    /// quotecast with every client negotiating permessage-deflate.
    QuotecastDeflate,
    /// quotecast over TLS (`wss://`, rustls on both ends), with a
    /// certificate made for the run.
    QuotecastTls,
    /// The conventional tokio + tokio-tungstenite broadcast gateway.
    Tokio,
    /// nginx + nchan.
    Nchan,
    /// sockudo (Pusher protocol), when it could be built.
    Sockudo,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Quotecast => "quotecast",
            Kind::QuotecastDeflate => "quotecast-deflate",
            Kind::QuotecastTls => "quotecast-tls",
            Kind::Tokio => "tokio-broadcast",
            Kind::Nchan => "nchan",
            Kind::Sockudo => "sockudo",
        }
    }
}

/// Runs the comparison and writes its folder.
pub fn main(args: &CompareArgs) -> anyhow::Result<()> {
    let cfg = prepare(&args.run, true);
    let scenario = cfg
        .scenario
        .map_or_else(|| "custom".to_string(), Scenario::name);
    let machine = Machine::read();
    let dir = args.out.join(format!(
        "{scenario}-{}",
        results::timestamp(&machine.started_utc)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let symbols = feed::symbol_names(cfg.sim_symbols);
    if args.servers.contains(&Kind::Quotecast) {
        let path = dir.join("quotecast.toml");
        std::fs::write(&path, crate::server::BENCH_CONFIG)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut cmp = Comparison::new(scenario, machine, cfg.clone());
    for &kind in &args.servers {
        if kind == Kind::Sockudo && !Path::new(&args.sockudo_bin).exists() {
            let why = format!(
                "not built: no {} (`cargo install sockudo --root target/sockudo`, with protobuf-compiler)",
                args.sockudo_bin
            );
            eprintln!("== sockudo: skipped ({why})");
            cmp.skipped.push((kind.name().into(), why));
            continue;
        }
        if kind == Kind::Quotecast && args.quotecast_runs > 1 {
            quotecast_pairs(&mut cmp, args, &cfg, &symbols, &dir);
            continue;
        }
        eprintln!("== {} ({})", kind.name(), results::load_average());
        cmp.loads
            .push((kind.name().to_string(), results::load_average()));
        match run_server(kind, args, &cfg, &symbols, &dir) {
            Ok(r) => {
                print_summary(&r);
                cmp.reports.push(r);
            }
            Err(e) => {
                eprintln!("{}: {e:#}", kind.name());
                cmp.skipped.push((kind.name().into(), format!("{e:#}")));
            }
        }
        // The probe runs right after quotecast, the run it is held
        // against, so the machine has had the least time to drift.
        if kind == Kind::Quotecast && !args.no_probe {
            probe_step(&mut cmp, &cfg);
        }
    }
    if !args.no_probe && !args.servers.contains(&Kind::Quotecast) {
        probe_step(&mut cmp, &cfg);
    }
    cmp.loads.push(("end".into(), results::load_average()));
    cmp.invalid = results::invalid_runs(&cmp);
    results::write(&dir, &cmp)?;
    for i in &cmp.invalid {
        println!("INVALID   {}: {}", i.server, i.reason);
    }
    println!("results   {}", dir.display());
    Ok(())
}

/// Runs the probe into `cmp` (or notes why it did not run).
fn probe_step(cmp: &mut Comparison, cfg: &RunConfig) {
    eprintln!("== probe ({})", results::load_average());
    cmp.loads.push(("probe".into(), results::load_average()));
    let size = probe_size(cmp.reports.first());
    for _ in 0..PROBE_RUNS {
        if !probe_once(cmp, cfg, size, PROBE_RUNS) {
            break;
        }
    }
    cmp.probe = results::median_probe(&cmp.probe_runs);
}

/// One probe run into `cmp` of `size` (see [`probe_size`]); whether it ran
/// (a failure is noted as the run that failed of `of`).
fn probe_once(cmp: &mut Comparison, cfg: &RunConfig, size: (usize, usize), of: usize) -> bool {
    match run_probe(cfg, size) {
        Ok(p) => {
            println!("{}", results::probe_line(&p));
            cmp.probe_runs.push(p);
            true
        }
        Err(e) => {
            eprintln!("probe: {e:#}");
            let why = format!("run {} of {of} failed: {e:#}", cmp.probe_runs.len() + 1);
            cmp.skipped.push(("probe".into(), why));
            false
        }
    }
}

/// `--quotecast-runs N`: quotecast and then the probe, N times, so each
/// share is against the probe run right after it. Every probe is sized by
/// the first run, so the pairs differ only in what the machine did. Stops
/// at the first run that fails, which keeps run i paired with probe i.
fn quotecast_pairs(
    cmp: &mut Comparison,
    args: &CompareArgs,
    cfg: &RunConfig,
    symbols: &[String],
    dir: &Path,
) {
    let n = args.quotecast_runs as usize;
    for i in 1..=n {
        let name = format!("quotecast run {i} of {n}");
        eprintln!("== {name} ({})", results::load_average());
        cmp.loads.push((name.clone(), results::load_average()));
        match run_server(Kind::Quotecast, args, cfg, symbols, dir) {
            Ok(r) => {
                print_summary(&r);
                cmp.quotecast_runs.push(r);
            }
            Err(e) => {
                eprintln!("{name}: {e:#}");
                cmp.skipped
                    .push(("quotecast".into(), format!("{name}: {e:#}")));
                break;
            }
        }
        if !args.no_probe {
            let size = probe_size(cmp.quotecast_runs.first());
            if !probe_once(cmp, cfg, size, n) {
                break;
            }
        }
    }
    // The summary's other sections show the median run against its own
    // probe run, so their share is the one in its row of the pairs.
    if let Some(i) = repeats::median_run(cfg, &cmp.quotecast_runs, &cmp.probe_runs) {
        cmp.reports.push(cmp.quotecast_runs[i].clone());
        cmp.probe = cmp.probe_runs.get(i).cloned();
    }
}

/// Frames per write and payload bytes of the probe: as many frames per
/// write as quotecast put in each write (by its own count when it has one;
/// at least 1), of its payload size.
fn probe_size(quotecast: Option<&Report>) -> (usize, usize) {
    quotecast
        .filter(|r| r.server.kind == Kind::Quotecast.name() && r.counts.price_frames > 0)
        .map_or((1, 150), |r| {
            let t = &r.throughput;
            let per_write = match t.server_writes_per_s {
                Some(w) if w > 0.0 => t.price_frames_per_s / w,
                _ => t.frames_per_flush,
            };
            (
                per_write.round().max(1.0) as usize,
                (r.counts.price_bytes / r.counts.price_frames) as usize,
            )
        })
}

/// The probe sized like the run: its connections, and `(frames, payload)`
/// from [`probe_size`].
fn run_probe(cfg: &RunConfig, (frames, payload): (usize, usize)) -> anyhow::Result<ProbeReport> {
    // Each probe connection takes two descriptors (both ends) in this process.
    let fit = (raise_nofile() as usize).saturating_sub(200) / 2;
    probe::run(&ProbeConfig {
        connections: cfg.connections.min(fit),
        frames_per_write: frames,
        payload_bytes: payload,
        duration_s: if cfg.duration_s > 0.0 {
            (cfg.duration_s / 2.0).clamp(1.0, 5.0)
        } else {
            5.0
        },
        writer_core: Some(SERVER_CORE),
        reader_core: cfg.pin_core,
        work_us_per_write: 0.0,
        work_batch: 1,
        send_batch: 1,
    })
}

/// A server started for one run, with the feed that drives it.
struct Started {
    server: Server,
    feed: Feed,
    target: Target,
    /// How clients subscribe.
    subscribe: Subscribing,
}

fn run_server(
    kind: Kind,
    args: &CompareArgs,
    cfg: &RunConfig,
    symbols: &[String],
    dir: &Path,
) -> anyhow::Result<Report> {
    let rate = cfg.ramp_rates.first().copied().unwrap_or(cfg.sim_rate);
    let log = dir.join(format!("{}.log", kind.name()));
    let Started {
        mut server,
        mut feed,
        target,
        subscribe,
    } = start(kind, args, cfg, symbols, rate, dir, &log)?;
    let plans = match subscribe {
        Subscribing::Op => build_plans(cfg, symbols, &quotecast_subscribe),
        Subscribing::Path => build_plans(cfg, symbols, &|picked: &[&str]| {
            (Vec::new(), Some(format!("/sub/{}", picked.join(","))))
        }),
        Subscribing::Pusher => build_plans(cfg, symbols, &pusher::subscribe),
    };
    let pid = server.pid();
    let report = run(
        &args.run,
        cfg,
        target,
        plans,
        Some(pid),
        symbols.len(),
        Some(&feed),
    );
    let feed_end = feed.stop();
    let exit = server.stop();
    let mut report = report?;
    feed_end.context("the feed")?;
    report.server.kind = kind.name().into();
    report.server.spawned = true;
    report.server.pinned_core = server.pinned().then_some(SERVER_CORE);
    report.started_unix_ms = crate::worker::unix_us() / 1000;
    if let Some(status) = exit.filter(|s| !s.success() && s.code().is_some()) {
        eprintln!("{} exited with {status}", kind.name());
    }
    Ok(report)
}

/// Starts the `kind` server, and the feed that drives it at `rate`.
fn start(
    kind: Kind,
    args: &CompareArgs,
    cfg: &RunConfig,
    symbols: &[String],
    rate: u64,
    dir: &Path,
    log: &Path,
) -> anyhow::Result<Started> {
    let log = server::log(log.to_str());
    match kind {
        Kind::Quotecast | Kind::QuotecastDeflate | Kind::QuotecastTls | Kind::Tokio => {
            start_line_fed(kind, args, cfg, symbols, rate, dir, log)
        }
        Kind::Nchan => start_nchan(args, cfg, symbols, rate, dir, log),
        Kind::Sockudo => start_sockudo(args, symbols, rate, cfg.seed, dir, log),
    }
}

/// quotecast or the tokio peer, fed JSON lines over TCP; clients subscribe
/// with quotecast's op.
fn start_line_fed(
    kind: Kind,
    args: &CompareArgs,
    cfg: &RunConfig,
    symbols: &[String],
    rate: u64,
    dir: &Path,
    log: Stderr,
) -> anyhow::Result<Started> {
    let (sink, feed_addr) = Feed::line_listener()?;
    let secret = token::new_secret();
    let ca = match kind {
        Kind::QuotecastTls => Some(TestCa::create(dir).context("making the run's certificate")?),
        _ => None,
    };
    let mut spawn = if kind != Kind::Tokio {
        server::quotecast(
            &args.run.server_bin,
            &secret,
            cfg.max_rate_hz,
            server::QuotecastFeed::Replay {
                addr: feed_addr,
                symbols,
            },
        )
    } else {
        Spawn::new(
            &args.peer_bin,
            Ready::Line("tokio-broadcast listening on ".into()),
        )
        .args(["--listen", "127.0.0.1:0", "--feed"])
        .arg(format!("tcp:{feed_addr}"))
    };
    if let Some(ca) = &ca {
        spawn = spawn.config(&format!("{}{}", server::BENCH_CONFIG, ca.server_toml()));
    }
    let server = spawn.pin_core(SERVER_CORE).stderr(log).start()?;
    let feed = Feed::start(sink, symbols.to_vec(), rate, cfg.seed)?;
    let ttl = Duration::from_secs(6 * 3_600);
    let token = server::mint(&secret, ttl);
    let target = Target {
        addr: server.addr,
        host: server.addr.to_string(),
        path: "/v1/ws".into(),
        token,
        deflate: kind == Kind::QuotecastDeflate || args.run.deflate,
        counts_writes: kind != Kind::Tokio,
        tls: ca.map(|ca| ca.client_config()),
        pusher: false,
    };
    Ok(Started {
        server,
        feed,
        target,
        subscribe: Subscribing::Op,
    })
}

/// nginx + nchan with a generated configuration in `dir`, fed by HTTP
/// publishes; clients subscribe by upgrade path.
fn start_nchan(
    args: &CompareArgs,
    cfg: &RunConfig,
    symbols: &[String],
    rate: u64,
    dir: &Path,
    log: Stderr,
) -> anyhow::Result<Started> {
    let addr = free_port()?;
    let conf = dir.join("nginx.conf");
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(&prefix)?;
    // nginx resolves relative paths against its prefix: give it absolute ones.
    let prefix = std::fs::canonicalize(&prefix)?;
    std::fs::write(&conf, nginx_conf(addr, &args.nchan_module, &prefix, cfg))?;
    let server = Spawn::new(&args.nginx_bin, Ready::Port(addr))
        .args(["-e", "stderr", "-p"])
        .arg(format!("{}/", prefix.display()))
        .arg("-c")
        .arg(std::fs::canonicalize(&conf)?)
        .pin_core(SERVER_CORE)
        .stderr(log)
        .start()?;
    let feed = Feed::start(
        Sink::HttpPublish(addr, Publish::Nchan),
        symbols.to_vec(),
        rate,
        cfg.seed,
    )?;
    Ok(Started {
        target: Target {
            addr,
            host: addr.to_string(),
            path: "/sub/".into(),
            token: String::new(),
            deflate: false,
            tls: None,
            pusher: false,
            counts_writes: false,
        },
        server,
        feed,
        subscribe: Subscribing::Path,
    })
}

/// sockudo with a generated configuration in `dir`, fed by signed Pusher
/// `batch_events`; clients subscribe to one public channel per symbol.
fn start_sockudo(
    args: &CompareArgs,
    symbols: &[String],
    rate: u64,
    seed: u64,
    dir: &Path,
    log: Stderr,
) -> anyhow::Result<Started> {
    let addr = free_port()?;
    let conf = dir.join("sockudo.toml");
    std::fs::write(&conf, pusher::config(addr))?;
    let server = Spawn::new(&args.sockudo_bin, Ready::Port(addr))
        .arg("--config")
        .arg(std::fs::canonicalize(&conf)?)
        .pin_core(SERVER_CORE)
        .stderr(log)
        .start()?;
    let feed = Feed::start(
        Sink::HttpPublish(addr, Publish::Pusher),
        symbols.to_vec(),
        rate,
        seed,
    )?;
    Ok(Started {
        target: Target {
            addr,
            host: addr.to_string(),
            path: String::new(),
            token: String::new(),
            deflate: false,
            tls: None,
            pusher: true,
            counts_writes: false,
        },
        server,
        feed,
        subscribe: Subscribing::Pusher,
    })
}

/// How a server's clients subscribe.
enum Subscribing {
    /// quotecast's `subscribe` op.
    Op,
    /// The upgrade path names the symbols (nchan).
    Path,
    /// One `pusher:subscribe` per symbol (sockudo).
    Pusher,
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// nginx as one process, nchan keeping only the latest
/// message per channel, publish and WebSocket subscribe locations.
fn nginx_conf(addr: SocketAddr, module: &str, prefix: &Path, cfg: &RunConfig) -> String {
    let p = prefix.display();
    let conns = cfg.connections + 1_000;
    format!(
        r#"# Generated by quotecast-bench compare: nchan peer.
load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {p}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    nchan_max_reserved_memory 512M;
    nchan_message_buffer_length 1;
    nchan_message_timeout 60s;
    server {{
        listen {addr} backlog=4096;
        location ~ ^/pub/(.+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
        }}
        location ~ ^/sub/(.+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
            nchan_channel_id_split_delimiter ",";
            nchan_subscriber_first_message newest;
        }}
    }}
}}
"#,
        nofile = conns * 2 + 1_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn nginx_conf_has_both_locations_and_the_port() {
        let cli = Cli::parse_from(["b", "--scenario", "hot"]);
        let cfg = RunConfig::resolve(&cli, 2);
        let c = nginx_conf(
            "127.0.0.1:18123".parse().unwrap(),
            "/m.so",
            Path::new("/tmp/x"),
            &cfg,
        );
        assert!(c.contains("listen 127.0.0.1:18123 backlog=4096;"));
        assert!(c.contains("nchan_publisher http;"));
        assert!(c.contains("nchan_subscriber websocket;"));
        assert!(c.contains("worker_connections 3000;"));
        assert!(c.starts_with("# Generated"));
    }
}
