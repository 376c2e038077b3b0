//! `[channels.reliable.<name>]` and `[channels.keyed.<name>]`: channels an
//! operator adds to the built-in ones (routing decisions, exposure per
//! currency pair, LP performance per LP, ...).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A configured reliable channel: per tenant, never conflated, replayable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReliableChannelConfig {
    /// Roles that may subscribe (`"*"` = any valid token).
    pub roles: Vec<String>,
    /// Messages each stream keeps for replay; `channels.history_max` when absent.
    pub history_max: Option<usize>,
    /// Seconds each stream keeps messages; `channels.history_secs` when absent.
    pub history_secs: Option<u64>,
    /// `data` fields a subscriber's `filter` may name; absent = any field,
    /// empty = no filter allowed.
    pub filters: Option<Vec<String>>,
}

/// A configured keyed channel: the latest JSON object per key, per tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyedChannelConfig {
    /// Roles that may subscribe (`"*"` = any valid token).
    pub roles: Vec<String>,
    /// Keys each role may see, as names or `PREFIX*` patterns; a token sees
    /// the keys of all its roles. Empty = every admitted token sees every key.
    pub keys: BTreeMap<String, Vec<String>>,
}

/// The keyed channels the simulator feeds, so the demo shows them.
pub fn default_keyed() -> BTreeMap<String, KeyedChannelConfig> {
    let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "exposure".to_owned(),
            KeyedChannelConfig {
                roles: roles(&["TRADER", "RISK_MANAGER", "ADMIN"]),
                keys: BTreeMap::new(),
            },
        ),
        (
            "lp.performance".to_owned(),
            KeyedChannelConfig {
                roles: roles(&["TRADER", "ANALYST", "ADMIN"]),
                keys: BTreeMap::new(),
            },
        ),
    ])
}
