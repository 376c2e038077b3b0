//! The command line: the modes (one run, `compare`, `probe`) and the flags
//! of a run. Scenarios turn these flags into a `RunConfig` (scenario.rs).

use crate::compare;
use crate::scenario::Scenario;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

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
pub struct Top {
    /// The mode, when not a single run.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// The flags of a single run.
    #[command(flatten)]
    pub run: Cli,
}

/// The modes besides a single run.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a scenario against quotecast, the peers and the probe on one feed;
    /// write results/<scenario>-<timestamp>/ (report.json, summary.md, SVG plots).
    Compare(Box<compare::CompareArgs>),
    /// The physical limit probe alone: coalesced writes of pre-built frames.
    Probe(ProbeArgs),
}

/// Flags of `probe`.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Loopback connections.
    #[arg(long, default_value_t = 2_000)]
    pub connections: usize,
    /// Frames coalesced into one write.
    #[arg(long, default_value_t = 8)]
    pub frames_per_write: usize,
    /// Payload bytes per frame.
    #[arg(long, default_value_t = 150)]
    pub payload_bytes: usize,
    /// Seconds to write.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Core of the writer (server side).
    #[arg(long, default_value_t = 0)]
    pub writer_core: usize,
    /// Core of the reader (client side).
    #[arg(long, default_value_t = 1)]
    pub reader_core: usize,
    /// Time the writer spins after each successful write, µs (wall time): a
    /// stand-in for a server's own work per write, to see what that work
    /// costs beyond itself.
    #[arg(long, default_value_t = 0.0)]
    pub work_us_per_write: f64,
    /// Spin the work once every this many writes (that many times as long):
    /// the same work between bursts of sends instead of between sends.
    #[arg(long, default_value_t = 1)]
    pub work_batch: usize,
    /// Sends submitted in one system call, with quotecast's batch sender
    /// (io_uring); 1 = one `send(2)` per write, as in `compare`.
    #[arg(long, default_value_t = 1)]
    pub send_batch: usize,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The flags of one run (and of each server's run in `compare`).
#[derive(Parser, Debug)]
pub struct Cli {
    /// A named preset (flags given explicitly override it).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// WebSocket URL of a running server (ignored with --spawn-server).
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    pub url: String,
    /// Bearer token (not needed with --spawn-server).
    #[arg(long, env = "QUOTECAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connections to open.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Symbols each connection subscribes to.
    #[arg(long)]
    pub symbols_per_conn: Option<usize>,
    /// Draw symbols with a Zipf (s=1) skew over the server's list instead of uniformly.
    #[arg(long)]
    pub zipf: bool,
    /// Measurement window, seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Time between everyone being subscribed and the window, seconds.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Load threads (each runs its own epoll loop).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Share of connections that read only every --slow-read-ms.
    #[arg(long)]
    pub slow_share: Option<f64>,
    /// Read interval of the slow connections, milliseconds.
    #[arg(long)]
    pub slow_read_ms: Option<u64>,
    /// Share of connections that subscribe and then never read.
    #[arg(long)]
    pub dead_share: Option<f64>,
    /// Pin the generator's threads to this core (default with --spawn-server: 1).
    #[arg(long)]
    pub pin_core: Option<usize>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Sample this process's CPU time and RSS (the server; implied by --spawn-server).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// New connections per second (0 = as fast as --max-inflight allows).
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Most handshakes in flight at once, over all threads.
    #[arg(long, default_value_t = 512)]
    pub max_inflight: usize,
    /// A connection not upgraded within this many seconds has failed.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Longest time to wait for every connection to be subscribed, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub connect_timeout: f64,
    /// Seed of the symbol draw and of the slow/dead assignment.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Offer permessage-deflate on every connection, like a browser, and
    /// inflate the compressed frames (quotecast; `compare` measures it as
    /// the server `quotecast-deflate`).
    #[arg(long)]
    pub deflate: bool,
    /// Start `quotecast serve` on a free loopback port for this run, with its own secret.
    #[arg(long)]
    pub spawn_server: bool,
    /// The server binary for --spawn-server.
    #[arg(long, default_value = "target/release/quotecast")]
    pub server_bin: String,
    /// --spawn-server: simulated symbols.
    #[arg(long)]
    pub sim_symbols: Option<usize>,
    /// --spawn-server: simulated venue quotes per second.
    #[arg(long)]
    pub sim_rate: Option<u64>,
    /// --spawn-server: most flushes per second per connection.
    #[arg(long)]
    pub max_rate_hz: Option<u32>,
    /// --spawn-server: core the server is pinned to with taskset.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// --spawn-server: file for the server's log (stderr); default: discarded.
    #[arg(long)]
    pub server_log: Option<String>,
    /// Ramp (compare only): feed rates to step through, quotes/s, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ramp_rates: Option<Vec<u64>>,
    /// Ramp: seconds each step runs before it is measured.
    #[arg(long, default_value_t = 1.5)]
    pub ramp_settle: f64,
    /// Ramp: seconds each step is measured.
    #[arg(long, default_value_t = 3.0)]
    pub ramp_step: f64,
}

/// `ws://HOST:PORT/PATH` → (address, host header, path). Loopback only.
pub fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
