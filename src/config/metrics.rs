//! `[metrics]`: who may scrape `GET /metrics`.

use serde::{Deserialize, Serialize};

/// Access to the Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, a scrape must send `Authorization: Bearer <token>`; without
    /// it `/metrics` is open, as Prometheus endpoints usually are behind the
    /// node's firewall. Never logged.
    pub token: Option<String>,
}
