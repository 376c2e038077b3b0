//! `[channels]`: the channel catalogue's roles, metrics and history. Its
//! consistency is checked where the catalogue is built (`channel::Catalogue::new`).

use super::custom::{default_keyed, KeyedChannelConfig, ReliableChannelConfig};
use super::CalendarConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The channel catalogue: who may subscribe to what, which metrics exist,
/// and how reliable channels keep their history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Roles that may subscribe, per channel; `"*"` admits any valid token.
    /// Every channel of the catalogue needs an entry.
    pub roles: BTreeMap<String, Vec<String>>,
    /// The metrics of each analytics channel (names must start with `metrics.`).
    pub metrics: BTreeMap<String, Vec<String>>,
    /// Window sizes a `metrics.*` subscription may ask for, in milliseconds.
    pub windows_ms: Vec<u64>,
    /// Messages each reliable stream keeps for replay (`since`).
    pub history_max: usize,
    /// Seconds each reliable stream keeps messages for replay.
    pub history_secs: u64,
    /// Reliable bytes a connection may have waiting before it is closed with 4008.
    pub max_pending_reliable: usize,
    /// Calendar periods of running totals (`window: "day"` and friends).
    pub calendar: CalendarConfig,
    /// Reliable channels beyond `alerts`, `sessions`, `notifications`.
    pub reliable: BTreeMap<String, ReliableChannelConfig>,
    /// Keyed latest-value channels (default: `exposure`, `lp.performance`).
    pub keyed: BTreeMap<String, KeyedChannelConfig>,
}

/// Largest windows' worth of metric events each shard keeps for late
/// subscribers: the open window and the two closed before it.
pub const RECENT_WINDOWS: u64 = 3;

/// How far back the metric events kept for late subscribers reach, for
/// window sizes `windows_ms`; a late node replays this much from the bus.
pub fn recent_metrics_us(windows_ms: &[u64]) -> u64 {
    windows_ms.iter().max().copied().unwrap_or(0) * 1_000 * RECENT_WINDOWS
}

impl ChannelsConfig {
    /// How far in the future a metric event's `ts` may be: the largest window.
    pub fn max_event_future_us(&self) -> u64 {
        self.windows_ms.iter().max().copied().unwrap_or(0) * 1_000
    }
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let roles = [
            (
                "prices",
                list(&["TRADER", "ANALYST", "RISK_MANAGER", "ADMIN"]),
            ),
            ("metrics.trading", list(&["TRADER", "ANALYST", "ADMIN"])),
            (
                "metrics.positions",
                list(&["TRADER", "RISK_MANAGER", "ADMIN"]),
            ),
            ("metrics.risk", list(&["RISK_MANAGER", "ANALYST", "ADMIN"])),
            ("metrics.pnl", list(&["TRADER", "ANALYST", "ADMIN"])),
            ("system", list(&["ADMIN"])),
            (
                "alerts",
                list(&["TRADER", "RISK_MANAGER", "OPERATIONS", "ADMIN"]),
            ),
            ("sessions", list(&["TRADER", "OPERATIONS", "ADMIN"])),
            ("notifications", list(&["*"])),
        ];
        let metrics = [
            (
                "metrics.trading",
                list(&[
                    "trade_count",
                    "trade_volume",
                    "trade_notional",
                    "order_count",
                    "fill_rate",
                    "avg_latency",
                ]),
            ),
            (
                "metrics.positions",
                list(&["position_value", "position_pnl"]),
            ),
            ("metrics.risk", list(&["exposure", "utilization", "var"])),
            (
                "metrics.pnl",
                list(&["realized_pnl", "unrealized_pnl", "total_pnl"]),
            ),
        ];
        ChannelsConfig {
            roles: roles.into_iter().map(|(c, r)| (c.to_owned(), r)).collect(),
            metrics: metrics
                .into_iter()
                .map(|(c, m)| (c.to_owned(), m))
                .collect(),
            windows_ms: vec![100, 1_000, 5_000, 60_000],
            history_max: 10_000,
            history_secs: 3_600,
            max_pending_reliable: 4 << 20,
            calendar: CalendarConfig::default(),
            reliable: BTreeMap::new(),
            keyed: default_keyed(),
        }
    }
}
