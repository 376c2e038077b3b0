//! Churn soak against a quotecast on loopback, bounded in time: a running
//! one (`--addr`, `--pid`, `--token`) or one it starts (`--server-bin`).
//!
//! Worker threads loop until the deadline: connect, subscribe to prices, a
//! metrics channel and alerts, read for a while, unsubscribe, disconnect.
//! A share of the clients read slowly and a share never read at all. Every
//! second the server's RSS and open file descriptors are sampled from
//! `/proc/<pid>`; after the churn stops and the clients are gone, the end
//! state is compared with the plateau (RSS) and the idle baseline (fds).

use anyhow::{bail, Context};
use clap::Parser;
use quotecast_testkit::client::{Event, Ws};
use quotecast_testkit::server::{Server, Spawn, Stderr};
use quotecast_testkit::token;
use rand::Rng;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Churn soak against a quotecast on loopback")]
struct Args {
    /// Address of a running server (loopback only).
    #[arg(long, requires_all = ["pid", "token"], required_unless_present = "server_bin")]
    addr: Option<SocketAddr>,
    /// Its process id, for RSS and fd sampling.
    #[arg(long)]
    pid: Option<u32>,
    /// A token for it with TRADER (and ideally ADMIN) roles.
    #[arg(long)]
    token: Option<String>,
    /// Start this quotecast binary on a loopback port instead, with its own
    /// secret and token; it is stopped (SIGTERM) at the end.
    #[arg(long, conflicts_with = "addr")]
    server_bin: Option<String>,
    /// With --server-bin: the file the server's stderr goes to.
    #[arg(long, requires = "server_bin")]
    server_log: Option<PathBuf>,
    /// Churn duration in seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 64)]
    threads: usize,
    /// Percent of clients that read one frame a second.
    #[arg(long, default_value_t = 5)]
    slow_pct: u32,
    /// Percent of clients that never read.
    #[arg(long, default_value_t = 2)]
    dead_pct: u32,
    /// Write the JSON summary here as well as to stdout.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The server under soak.
struct Target {
    addr: SocketAddr,
    pid: u32,
    token: String,
}

/// The server of `--addr`, or one started from `--server-bin` (kept running
/// while the returned handle lives).
fn target(args: &Args) -> anyhow::Result<(Target, Option<Server>)> {
    if let (Some(addr), Some(pid), Some(token)) = (args.addr, args.pid, &args.token) {
        let target = Target {
            addr,
            pid,
            token: token.clone(),
        };
        return Ok((target, None));
    }
    let bin = args
        .server_bin
        .as_deref()
        .context("--addr or --server-bin")?;
    let secret = token::new_secret();
    let stderr = args
        .server_log
        .clone()
        .map_or(Stderr::Discard, Stderr::File);
    let server = Spawn::quotecast(bin, &secret).stderr(stderr).start()?;
    // Valid for the whole churn and the settling after it.
    let ttl = args.seconds as i64 + 3_600;
    let claims = token::claims("soak", "local", &["TRADER", "ADMIN"], ttl);
    let target = Target {
        addr: server.addr,
        pid: server.pid(),
        token: token::hs256(&secret, &claims),
    };
    Ok((target, Some(server)))
}

#[derive(Default)]
struct Counts {
    sessions: AtomicU64,
    frames: AtomicU64,
    errors: AtomicU64,
    last_error: std::sync::Mutex<String>,
    slow: AtomicU64,
    dead: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: u64,
}

fn sample(pid: u32, start: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at_s: start.elapsed().as_secs_f64(),
        rss_kib,
        fds,
    })
}

/// One client session; returns the frames read.
fn session(target: &Target, kind: u32, rng: &mut impl Rng) -> anyhow::Result<u64> {
    let mut ws = Ws::connect_query(target.addr, &target.token).context("upgrade")?;
    let symbols: Vec<String> = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "BTCUSD", "AUDUSD"]
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|s| s.to_string())
        .collect();
    for op in [
        json!({"op":"subscribe","id":1,"channel":"prices","symbols":symbols}),
        json!({"op":"subscribe","id":2,"channel":"metrics.trading","window_ms":1000,"agg":"sum"}),
        json!({"op":"subscribe","id":3,"channel":"alerts","since":0}),
    ] {
        ws.send(&op)?;
    }
    let mut frames = 0;
    // Reads a frame, waits `gap`, again, until `span` has passed; false
    // when the connection ended.
    let mut read_for = |ws: &mut Ws, span: Duration, gap: Duration| {
        let until = Instant::now() + span;
        while Instant::now() < until {
            match ws.next(until) {
                Some(Event::Json(_)) => frames += 1,
                None => {}
                Some(_) => return false,
            }
            std::thread::sleep(gap);
        }
        true
    };
    match kind {
        // Dead: subscribed, never reads, disappears.
        0 => std::thread::sleep(Duration::from_millis(rng.random_range(2_000..12_000))),
        // Slow: one frame a second for a few seconds.
        1 => {
            read_for(
                &mut ws,
                Duration::from_secs(rng.random_range(2..6)),
                Duration::from_secs(1),
            );
        }
        _ => {
            let span = Duration::from_millis(rng.random_range(50..800));
            if read_for(&mut ws, span, Duration::ZERO) {
                for op in [
                    json!({"op":"unsubscribe","id":4,"channel":"prices"}),
                    json!({"op":"unsubscribe","id":5,"channel":"metrics.trading"}),
                ] {
                    ws.send(&op)?;
                }
                read_for(&mut ws, Duration::from_millis(50), Duration::ZERO);
                let _ = ws.ws.close(None);
                read_for(&mut ws, Duration::from_millis(50), Duration::ZERO);
            }
        }
    }
    Ok(frames)
}

/// One client thread: sessions of a random kind, one after the other,
/// until `deadline`.
fn churn(args: &Args, target: &Target, counts: &Counts, deadline: Instant) {
    let mut rng = rand::rng();
    while Instant::now() < deadline {
        let roll = rng.random_range(0..100);
        let kind = if roll < args.dead_pct {
            counts.dead.fetch_add(1, Relaxed);
            0
        } else if roll < args.dead_pct + args.slow_pct {
            counts.slow.fetch_add(1, Relaxed);
            1
        } else {
            2
        };
        match session(target, kind, &mut rng) {
            Ok(n) => {
                counts.sessions.fetch_add(1, Relaxed);
                counts.frames.fetch_add(n, Relaxed);
            }
            Err(e) => {
                counts.errors.fetch_add(1, Relaxed);
                if let Ok(mut last) = counts.last_error.lock() {
                    *last = format!("{e:#}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The server once its open fds are back to `baseline_fds`, or after 30 s:
/// it notices the last closes late (dead clients are cut by the
/// slow-consumer clock).
fn settled(pid: u32, start: Instant, baseline_fds: u64) -> anyhow::Result<Sample> {
    let settle = Instant::now() + Duration::from_secs(30);
    let mut end = sample(pid, start).context("server died")?;
    while Instant::now() < settle && end.fds > baseline_fds {
        std::thread::sleep(Duration::from_secs(1));
        end = sample(pid, start).context("server died")?;
    }
    Ok(end)
}

fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let (target, mut server) = target(&args)?;
    if !target.addr.ip().is_loopback() {
        bail!("the soak only targets loopback addresses");
    }
    let target = Arc::new(target);
    let start = Instant::now();
    let baseline = sample(target.pid, start).context("server process not found")?;
    let counts = Arc::new(Counts::default());
    let deadline = start + Duration::from_secs(args.seconds);
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (args, target, counts) = (args.clone(), target.clone(), counts.clone());
            std::thread::spawn(move || churn(&args, &target, &counts, deadline))
        })
        .collect();
    let mut samples = vec![baseline];
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        samples.extend(sample(target.pid, start));
    }
    for w in workers {
        let _ = w.join();
    }
    let end = settled(target.pid, start, baseline.fds)?;
    let churn: Vec<u64> = samples
        .iter()
        .filter(|s| s.at_s > args.seconds as f64 * 0.25)
        .map(|s| s.rss_kib)
        .collect();
    let plateau = median(&churn).unwrap_or(end.rss_kib);
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let rss_ok = end.rss_kib as f64 <= plateau as f64 * 1.10;
    let fds_ok = end.fds <= baseline.fds;
    let summary = json!({
        "seconds": args.seconds, "threads": args.threads,
        "sessions": counts.sessions.load(Relaxed), "frames": counts.frames.load(Relaxed),
        "session_errors": counts.errors.load(Relaxed),
        "last_error": counts.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        "slow_clients": counts.slow.load(Relaxed), "dead_clients": counts.dead.load(Relaxed),
        "rss_kib": {"start": baseline.rss_kib, "plateau": plateau, "peak": peak, "end": end.rss_kib},
        "fds": {"baseline": baseline.fds, "end": end.fds},
        "rss_end_within_10pct_of_plateau": rss_ok, "fds_back_to_baseline": fds_ok,
    });
    // A server this soak started ends cleanly, so its whole log is written.
    if let Some(server) = server.as_mut() {
        let status = server.stop().context("the server did not exit")?;
        if !status.success() {
            bail!("the server exited with {status} at the end of the soak");
        }
    }
    let text = serde_json::to_string_pretty(&summary)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text)?;
    }
    if !(rss_ok && fds_ok) {
        bail!("soak failed: memory or file descriptors did not return");
    }
    Ok(())
}

fn median(values: &[u64]) -> Option<u64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}
