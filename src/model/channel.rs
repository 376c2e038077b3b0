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
}

impl ChannelKind {
    /// The `kind` spelling of `/v1/channels`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Prices | ChannelKind::Metrics => "latest",
            ChannelKind::Reliable { .. } => "reliable",
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
}

impl Channel {
    /// Whether a token with `claims` may subscribe.
    pub fn admits(&self, claims: &Claims) -> bool {
        self.roles.contains(&Role::ANY) || claims.has_any_role(&self.roles)
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
                let roles = cfg
                    .roles
                    .get(&name)
                    .ok_or_else(|| bad(format!("channel {name} has no roles entry")))?;
                let roles = roles.iter().map(|r| Role::from(r.as_str())).collect();
                Ok(Channel {
                    name,
                    kind,
                    roles,
                    metrics,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
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
