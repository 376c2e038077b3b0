//! `[feed]`: where venue quotes come from.

use serde::{Deserialize, Serialize};

/// Which feed adapter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// The built-in venue simulator.
    Sim,
    /// Venue quotes as JSON lines from a file or a TCP address.
    Replay,
    /// Venue quotes from core NATS subjects `quotecast.quote.<venue>.<symbol>`
    /// and events from the JetStream stream on `quotecast.event.>`, each
    /// message one line of the replay format.
    Nats,
}

/// Where venue quotes come from and how the aggregator treats them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// The adapter.
    pub kind: FeedKind,
    /// Explicit symbol universe; empty = the simulator's list of `sim_symbols` names.
    pub symbols: Vec<String>,
    /// Explicit venue names; empty = `LP1`..`LP<sim_venues>`.
    pub venues: Vec<String>,
    /// Number of simulated symbols (realistic names first, then generated ones).
    pub sim_symbols: usize,
    /// Number of simulated venues.
    pub sim_venues: usize,
    /// Simulated venue quotes per second across all symbols.
    pub sim_rate: u64,
    /// Seed of the simulator's random walk.
    pub sim_seed: u64,
    /// Simulated analytics events per second (trades, positions, risk and
    /// P&L of a few tenants' desks, with their alerts and session changes); 0 = none.
    pub sim_events_rate: u64,
    /// For `replay`: a file path, or `tcp:HOST:PORT` to connect to.
    pub replay: Option<String>,
    /// For `nats`: the server(s) to connect to, comma-separated.
    pub nats_url: String,
    /// For `nats`: copies JetStream keeps of reliable messages and events
    /// (1 on one NATS server, 3 on a 3-server cluster).
    pub nats_replicas: usize,
    /// A venue quote older than this stops counting toward the best price.
    pub venue_max_age_ms: u64,
    /// With no venue quote for this long the feed is stale: `prices`
    /// subscribers get `status: feed_stale` and `/healthz` says degraded.
    pub feed_stale_after_ms: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            kind: FeedKind::Sim,
            symbols: Vec::new(),
            venues: Vec::new(),
            sim_symbols: 200,
            sim_venues: 5,
            sim_rate: 10_000,
            sim_seed: 42,
            sim_events_rate: 400,
            replay: None,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_replicas: 1,
            venue_max_age_ms: 5_000,
            feed_stale_after_ms: 5_000,
        }
    }
}
