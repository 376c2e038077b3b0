//! `[ingest]`: where the aggregator thread runs and how it waits for input.

use serde::{Deserialize, Serialize};

/// The aggregator thread's placement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Core the aggregator is pinned to. With `server.shards = 0` the shards
    /// then take every other core. Unset: it floats, waiting on the feed
    /// (woken per line of a sparse feed, at most every 250 µs by a busy
    /// one) so it steals little of a shard's core.
    pub aggregator_core: Option<usize>,
    /// Spin on the feed instead of waiting up to 2 ms per poll: the least
    /// ingest latency, for a whole core. Needs `aggregator_core` (a core no
    /// shard runs on). Off by default; for bare metal with a spare core.
    pub busy_poll: bool,
}
