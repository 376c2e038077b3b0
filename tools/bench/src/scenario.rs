//! Workloads: the named scenarios of issue 3, the run configuration they
//! resolve to with the flags, and the plan of every connection (its class
//! and its symbols, drawn from the run's seed).

use crate::cli::Cli;
use crate::worker::{Class, Plan};
use crate::zipf::Zipf;
use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// quotecast's flush cap in every scenario unless `--max-rate-hz` says
/// otherwise (the server's own default).
pub const DEFAULT_MAX_RATE_HZ: u32 = 60;

/// Named workloads of issue 3.
#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
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
    /// 200 connections x 5 of 1,000 symbols, 1,000 quotes/s: no rate cap
    /// binds, so it measures the latency of an unhurried path.
    Light,
}

impl Scenario {
    /// Its name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| "custom".into(), |v| v.get_name().to_string())
    }
}

/// Rates the `ramp` scenario steps through unless --ramp-rates is given.
const DEFAULT_RAMP: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000];

/// Every knob of a run once the scenario and the flags are combined.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// The preset, if any.
    pub scenario: Option<Scenario>,
    /// Connections to open.
    pub connections: usize,
    /// Symbols each connection subscribes to.
    pub symbols_per_conn: usize,
    /// Draw symbols with a Zipf skew.
    pub zipf: bool,
    /// Measurement window, seconds.
    pub duration_s: f64,
    /// Warm-up before the window, seconds.
    pub warmup_s: f64,
    /// Load threads.
    pub threads: usize,
    /// Share of slow readers.
    pub slow_share: f64,
    /// Read interval of the slow readers, ms.
    pub slow_read_ms: u64,
    /// Share of connections that never read.
    pub dead_share: f64,
    /// New connections per second (0: unpaced).
    pub connect_rate: f64,
    /// Most handshakes in flight.
    pub max_inflight: usize,
    /// Core of the generator.
    pub pin_core: Option<usize>,
    /// Seed of the draw and of the class assignment.
    pub seed: u64,
    /// Symbols of the feed.
    pub sim_symbols: usize,
    /// Quotes per second of the feed.
    pub sim_rate: u64,
    /// The server's flushes per second per connection.
    pub max_rate_hz: u32,
    /// Feed rates of a ramp; empty: no ramp.
    pub ramp_rates: Vec<u64>,
    /// Ramp: settling time per step, seconds.
    pub ramp_settle_s: f64,
    /// Ramp: measured time per step, seconds.
    pub ramp_step_s: f64,
}

impl RunConfig {
    /// The scenario's presets under the flags given, for a machine of `cores`.
    pub fn resolve(cli: &Cli, cores: usize) -> Self {
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
            Some(Scenario::Light) => (200, 5, 1_000, 1_000, 20.0, 0.0, 0.0, 0.0),
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
            max_rate_hz: cli.max_rate_hz.unwrap_or(DEFAULT_MAX_RATE_HZ),
            ramp_rates,
            ramp_settle_s: cli.ramp_settle,
            ramp_step_s: cli.ramp_step,
        }
    }
}

/// How many connections of each class a run's plans hold.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// All of them.
    pub planned: usize,
    /// Healthy readers.
    pub healthy: usize,
    /// Slow readers.
    pub slow: usize,
    /// Never readers.
    pub dead: usize,
}

impl Mix {
    /// The mix of `plans`.
    pub fn of(plans: &[Plan]) -> Mix {
        let count = |c: Class| plans.iter().filter(|p| p.class == c).count();
        Mix {
            planned: plans.len(),
            healthy: count(Class::Healthy),
            slow: count(Class::Slow),
            dead: count(Class::Dead),
        }
    }
}

/// How one connection subscribes to its symbols: the text frames it sends
/// after the upgrade and the upgrade path, when the server's default is not it.
pub type Subscribe = dyn Fn(&[&str]) -> (Vec<Vec<u8>>, Option<String>);

/// quotecast's (and the tokio peer's) `subscribe` op on the default path.
pub fn quotecast_subscribe(symbols: &[&str]) -> (Vec<Vec<u8>>, Option<String>) {
    let op = serde_json::json!({
        "op": "subscribe", "id": 1, "channel": "prices", "symbols": symbols,
    });
    (vec![op.to_string().into_bytes()], None)
}

/// One plan per connection: its class (dead and slow shares shuffled in)
/// and its symbols, drawn with the run's seed so every server of a
/// comparison gets the same draw.
pub fn build_plans(cfg: &RunConfig, symbols: &[String], subscribe: &Subscribe) -> Vec<Plan> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn symbol_draws_are_distinct() {
        let z = Zipf::new(200);
        let mut rng = StdRng::seed_from_u64(1);
        let symbols: Vec<String> = (0..200).map(|i| format!("S{i}")).collect();
        let mut picked = draw_symbols(&symbols, 20, Some(&z), &mut rng);
        picked.sort();
        picked.dedup();
        assert_eq!(picked.len(), 20);
        assert_eq!(draw_symbols(&symbols[..3], 5, None, &mut rng).len(), 3);
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
