//! The channel catalogue: every channel a client may subscribe to, its kind,
//! the roles it needs and (for analytics) its metrics. Built once from
//! configuration; read-only afterwards and shared by every shard.

use crate::auth::{Claims, Role};
use crate::config::{ChannelsConfig, ConfigError};

/// The `prices` channel name.
pub const PRICES: &str = "prices";
/// Risk alerts and emergency stops (reliable, per tenant).
pub const ALERTS: &str = "alerts";
/// Trading session state changes (reliable, per tenant).
pub const SESSIONS: &str = "sessions";
/// Messages for one user (reliable, per tenant and `sub`).
pub const NOTIFICATIONS: &str = "notifications";
/// The node's figures once a second (ADMIN unless `[channels.roles]` says).
pub const SYSTEM: &str = "system";
/// Prefix of every analytics channel.
pub const METRICS_PREFIX: &str = "metrics.";

/// Index of a channel in the [`Catalogue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

/// How a channel delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Best bid/ask per symbol, conflated.
    Prices,
    /// Windowed per-tenant analytics, conflated per metric stream.
    Metrics,
    /// Never conflated, never skipped, replayable; `per_user` streams are
    /// scoped to the token's `sub` as well as its tenant.
    Reliable {
        /// Whether each user (`sub`) has a stream of its own.
        per_user: bool,
    },
    /// The latest JSON object per key, per tenant, conflated per key.
    Keyed,
    /// The node's figures, one conflated stream (`system`).
    System,
}

impl ChannelKind {
    /// The `kind` spelling of `/v1/channels`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Prices | ChannelKind::Metrics | ChannelKind::System => "latest",
            ChannelKind::Reliable { .. } => "reliable",
            ChannelKind::Keyed => "keyed",
        }
    }
}

/// One channel of the catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Wire name.
    pub name: String,
    /// Delivery kind.
    pub kind: ChannelKind,
    /// Roles that may subscribe ([`Role::ANY`] = any).
    pub roles: Vec<Role>,
    /// Metric names, for analytics channels; empty otherwise.
    pub metrics: Vec<String>,
    /// The `type` of its messages (reliable and keyed channels).
    pub message_type: String,
    /// Reliable channels: the `data` fields a `filter` may name (`None` = any).
    pub filter_fields: Option<Vec<String>>,
    /// Reliable channels: (messages, seconds) of history when not the
    /// `[channels]` defaults.
    pub history: Option<(usize, u64)>,
    /// Keyed channels: the key patterns each role may see; empty = all keys.
    pub key_patterns: Vec<(Role, Vec<String>)>,
}

impl Channel {
    /// Whether a token with `claims` may subscribe.
    pub fn admits(&self, claims: &Claims) -> bool {
        self.roles.contains(&Role::ANY) || claims.has_any_role(&self.roles)
    }

    /// Keyed channels: the key patterns a token with `claims` may see
    /// (`None` = every key).
    pub fn visible_keys(&self, claims: &Claims) -> Option<Vec<&str>> {
        if self.key_patterns.is_empty() {
            return None;
        }
        Some(
            self.key_patterns
                .iter()
                .filter(|(role, _)| claims.has_role(role))
                .flat_map(|(_, p)| p.iter().map(String::as_str))
                .collect(),
        )
    }

    /// Index of `metric` among this channel's metrics.
    pub fn metric_index(&self, metric: &str) -> Option<u16> {
        self.metrics
            .iter()
            .position(|m| m == metric)
            .map(|i| i as u16)
    }
}

/// Every channel this node serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalogue {
    channels: Vec<Channel>,
}

impl Catalogue {
    /// Builds the catalogue from configuration: `prices`, the three reliable
    /// channels and every configured `metrics.*` channel, each with roles.
    pub fn new(cfg: &ChannelsConfig) -> Result<Self, ConfigError> {
        let bad = |msg: String| ConfigError::Catalogue(msg);
        let mut channels = vec![
            (PRICES, ChannelKind::Prices),
            (ALERTS, ChannelKind::Reliable { per_user: false }),
            (SESSIONS, ChannelKind::Reliable { per_user: false }),
            (NOTIFICATIONS, ChannelKind::Reliable { per_user: true }),
            (SYSTEM, ChannelKind::System),
        ]
        .into_iter()
        .map(|(name, kind)| (name.to_owned(), kind, Vec::new()))
        .collect::<Vec<_>>();
        for (name, metrics) in &cfg.metrics {
            if !name.starts_with(METRICS_PREFIX) || name.len() == METRICS_PREFIX.len() {
                return Err(bad(format!(
                    "metric channel {name:?} must be named metrics.<something>"
                )));
            }
            if metrics.is_empty() || metrics.len() > usize::from(u16::MAX) {
                return Err(bad(format!("{name} needs 1..=65535 metrics")));
            }
            let mut sorted = metrics.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != metrics.len() {
                return Err(bad(format!("{name} lists a metric twice")));
            }
            channels.push((name.clone(), ChannelKind::Metrics, metrics.clone()));
        }
        for name in cfg.roles.keys() {
            if !channels.iter().any(|(n, _, _)| n == name) {
                return Err(bad(format!("roles given for unknown channel {name:?}")));
            }
        }
        let channels = channels
            .into_iter()
            .map(|(name, kind, metrics)| {
                // A `[channels.roles]` written before `system` existed
                // leaves it to operators.
                let admin = vec![Role::ADMIN.as_str().to_owned()];
                let roles = match cfg.roles.get(&name) {
                    None if kind == ChannelKind::System => &admin,
                    found => {
                        found.ok_or_else(|| bad(format!("channel {name} has no roles entry")))?
                    }
                };
                let message_type = name.strip_suffix('s').unwrap_or(&name).to_owned();
                Ok(Channel {
                    roles: role_list(roles),
                    message_type,
                    name,
                    kind,
                    metrics,
                    filter_fields: None,
                    history: None,
                    key_patterns: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut channels = channels;
        add_configured(&mut channels, cfg)?;
        if cfg.windows_ms.is_empty() || cfg.windows_ms.iter().any(|&w| w == 0 || w > 3_600_000) {
            return Err(bad("windows_ms needs sizes in 1..=3600000".into()));
        }
        cfg.calendar.check().map_err(bad)?;
        if cfg.history_max == 0 || cfg.max_pending_reliable == 0 {
            return Err(bad(
                "history_max and max_pending_reliable must be > 0".into()
            ));
        }
        Ok(Catalogue { channels })
    }

    /// The channel named `name`.
    pub fn find(&self, name: &str) -> Option<(ChannelId, &Channel)> {
        self.channels
            .iter()
            .position(|c| c.name == name)
            .map(|i| (ChannelId(i as u16), &self.channels[i]))
    }

    /// The channel of `id`.
    pub fn get(&self, id: ChannelId) -> &Channel {
        &self.channels[usize::from(id.0)]
    }

    /// Every channel, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ChannelId, &Channel)> {
        self.channels
            .iter()
            .enumerate()
            .map(|(i, c)| (ChannelId(i as u16), c))
    }
}

fn role_list(roles: &[String]) -> Vec<Role> {
    roles.iter().map(|r| Role::from(r.as_str())).collect()
}

/// Appends the `[channels.reliable.*]` and `[channels.keyed.*]` channels.
fn add_configured(channels: &mut Vec<Channel>, cfg: &ChannelsConfig) -> Result<(), ConfigError> {
    let names = cfg.reliable.keys().chain(cfg.keyed.keys());
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(METRICS_PREFIX)
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !valid {
            return Err(ConfigError::Catalogue(format!(
                "channel name {name:?}: 1..=64 of a-z 0-9 . _ -, not starting with metrics."
            )));
        }
        if channels.iter().any(|c| &c.name == name) || cfg.roles.contains_key(name) {
            return Err(ConfigError::Catalogue(format!(
                "channel {name:?} is defined twice"
            )));
        }
        let blank = Channel {
            name: name.clone(),
            kind: ChannelKind::Keyed,
            roles: Vec::new(),
            metrics: Vec::new(),
            message_type: "event".into(),
            filter_fields: None,
            history: None,
            key_patterns: Vec::new(),
        };
        channels.push(match (cfg.reliable.get(name), cfg.keyed.get(name)) {
            (Some(r), None) => {
                if r.history_max == Some(0) {
                    return Err(ConfigError::Catalogue(format!(
                        "reliable.{name}.history_max must be > 0"
                    )));
                }
                Channel {
                    kind: ChannelKind::Reliable { per_user: false },
                    roles: role_list(&r.roles),
                    filter_fields: r.filters.clone(),
                    history: (r.history_max.is_some() || r.history_secs.is_some()).then(|| {
                        (
                            r.history_max.unwrap_or(cfg.history_max),
                            r.history_secs.unwrap_or(cfg.history_secs),
                        )
                    }),
                    ..blank
                }
            }
            (None, Some(k)) => {
                for pattern in k.keys.values().flatten() {
                    let stem = pattern.strip_suffix('*').unwrap_or(pattern);
                    if stem.contains('*') || (stem.is_empty() && pattern.is_empty()) {
                        return Err(ConfigError::Catalogue(format!(
                            "keyed.{name}.keys: {pattern:?} is not a key or a PREFIX* pattern"
                        )));
                    }
                }
                Channel {
                    roles: role_list(&k.roles),
                    message_type: "keyed".into(),
                    key_patterns: k
                        .keys
                        .iter()
                        .map(|(role, p)| (Role::from(role.as_str()), p.clone()))
                        .collect(),
                    ..blank
                }
            }
            _ => {
                return Err(ConfigError::Catalogue(format!(
                    "channel {name:?} is both reliable and keyed"
                )))
            }
        });
    }
    Ok(())
}

/// Whether `key` matches `pattern` (a name, or a `PREFIX*`).
pub fn key_matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => pattern == key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue_has_every_protocol_channel() {
        let cat = Catalogue::new(&ChannelsConfig::default()).unwrap();
        let names: Vec<&str> = cat.iter().map(|(_, c)| c.name.as_str()).collect();
        for want in [
            "prices",
            "alerts",
            "sessions",
            "notifications",
            "metrics.trading",
            "metrics.positions",
            "metrics.risk",
            "metrics.pnl",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let (_, trading) = cat.find("metrics.trading").unwrap();
        assert_eq!(trading.kind, ChannelKind::Metrics);
        assert_eq!(trading.metric_index("trade_volume"), Some(1));
        assert_eq!(trading.metric_index("nope"), None);
        let (_, notes) = cat.find("notifications").unwrap();
        assert_eq!(notes.kind, ChannelKind::Reliable { per_user: true });
    }

    #[test]
    fn inconsistent_catalogues_are_refused() {
        let mut cfg = ChannelsConfig::default();
        cfg.roles.remove("alerts");
        assert!(Catalogue::new(&cfg).is_err(), "a channel without roles");
        let mut cfg = ChannelsConfig::default();
        cfg.metrics.insert("trading".into(), vec!["x".into()]);
        assert!(
            Catalogue::new(&cfg).is_err(),
            "a metric channel without prefix"
        );
        let mut cfg = ChannelsConfig::default();
        cfg.roles.insert("metrics.nothing".into(), vec![]);
        assert!(
            Catalogue::new(&cfg).is_err(),
            "roles for an unknown channel"
        );
        let mut cfg = ChannelsConfig::default();
        cfg.metrics
            .insert("metrics.twice".into(), vec!["a".into(), "a".into()]);
        cfg.roles.insert("metrics.twice".into(), vec![]);
        assert!(Catalogue::new(&cfg).is_err(), "a metric listed twice");
    }
}
