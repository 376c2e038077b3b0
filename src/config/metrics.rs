//! `[metrics]`: who may scrape `GET /metrics`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Access to the Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, a scrape must send `Authorization: Bearer <token>`; without
    /// it `/metrics` is open, as Prometheus endpoints usually are behind the
    /// node's firewall. Never logged.
    pub token: Option<String>,
    /// When set, `/metrics` is served on this address only (by a thread of
    /// its own, off the shards) and the shards' port answers it 404.
    pub listen: Option<SocketAddr>,
}
