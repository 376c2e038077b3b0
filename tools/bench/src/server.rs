//! The server side of a run: the quotecast to start (`--spawn-server`,
//! `compare`), its token, and its symbols from `GET /v1/channels`. Starting
//! and stopping processes is `quotecast_testkit::server`.

use anyhow::{bail, Context};
use quotecast_testkit::server::{Spawn, Stderr};
use quotecast_testkit::{http, token};
use std::net::SocketAddr;
use std::time::Duration;

/// Where a spawned quotecast gets its quotes.
pub enum QuotecastFeed<'a> {
    /// Its own simulator.
    Sim {
        /// Simulated symbols.
        symbols: usize,
        /// Venue quotes per second.
        rate: u64,
    },
    /// The harness's feed over TCP.
    Replay {
        /// The feed's listening address.
        addr: SocketAddr,
        /// The symbol universe.
        symbols: &'a [String],
    },
}

/// The configuration a spawned quotecast runs with (`compare` writes it
/// into its run folder as `quotecast.toml`). Every load connection comes from
/// one loopback IP and one tenant: the per-IP and per-tenant caps (1,000 by
/// default) would refuse the rest of a scenario with 429 and the run would
/// measure part of its load.
pub const BENCH_CONFIG: &str =
    "[server]\nmax_connections_per_ip = 0\nmax_connections_per_tenant = 0\n";

/// `quotecast serve` on a free loopback port, one shard, with `secret` and
/// no connection caps, fed by its simulator or, with `Replay`, by
/// `tcp:ADDR` over `symbols`.
pub fn quotecast(bin: &str, secret: &str, max_rate_hz: u32, feed: QuotecastFeed<'_>) -> Spawn {
    let spawn = Spawn::quotecast(bin, secret)
        .config(BENCH_CONFIG)
        .args(["--max-rate-hz".to_string(), max_rate_hz.to_string()]);
    match feed {
        QuotecastFeed::Sim { symbols, rate } => spawn.args([
            "--sim-symbols".to_string(),
            symbols.to_string(),
            "--sim-rate".to_string(),
            rate.to_string(),
        ]),
        QuotecastFeed::Replay { addr, symbols } => spawn.args([
            "--replay".to_string(),
            format!("tcp:{addr}"),
            "--symbols".to_string(),
            symbols.join(","),
            "--venues".to_string(),
            crate::feed::VENUE.to_string(),
        ]),
    }
}

/// A server's stderr: to the log file when there is one, else discarded.
pub fn log(path: Option<&str>) -> Stderr {
    path.map_or(Stderr::Discard, |p| Stderr::File(p.into()))
}

/// A TRADER and ADMIN token of user and tenant `bench`, valid for `ttl`.
pub fn mint(secret: &str, ttl: Duration) -> String {
    let claims = token::claims("bench", "bench", &["TRADER", "ADMIN"], ttl.as_secs() as i64);
    token::hs256(secret, &claims)
}

/// The symbols of the `prices` channel, from `GET /v1/channels`.
pub fn fetch_symbols(addr: SocketAddr, token: &str) -> anyhow::Result<Vec<String>> {
    let symbols = http::channel_symbols(addr, token)
        .with_context(|| format!("GET /v1/channels from {addr}"))?;
    if symbols.is_empty() {
        bail!("the server lists no symbols");
    }
    Ok(symbols)
}
