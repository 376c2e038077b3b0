//! [`Config::validate`] and the [`ConfigError`] it returns: numeric
//! settings against a table of ranges, then the checks across settings.

use super::{is_origin_pattern, is_symbol_pattern, Config, FeedKind};
use std::ops::RangeInclusive;

/// A configuration mistake, saying what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A numeric setting is outside its allowed range.
    #[error("{field} = {value} is out of range: {}..={}", .range.start(), .range.end())]
    OutOfRange {
        /// Dotted path of the setting.
        field: &'static str,
        /// The value given.
        value: u64,
        /// What would be accepted.
        range: RangeInclusive<u64>,
    },
    /// Neither an explicit symbol list nor simulated symbols.
    #[error("feed.sim_symbols = 0 is out of range: >= 1 when feed.symbols is empty")]
    NoSymbols,
    /// The replay feed needs a source.
    #[error("feed.kind = \"replay\" needs feed.replay = \"<file>\" or \"tcp:HOST:PORT\"")]
    ReplayWithoutSource,
    /// The symbol or venue universe cannot be interned.
    #[error("{0}")]
    Universe(String),
    /// The channel catalogue is inconsistent.
    #[error("channels: {0}")]
    Catalogue(String),
    /// An `auth` setting is inconsistent; the message names it.
    #[error("{0}")]
    Auth(String),
    /// An entry of `server.allowed_origins` is not an origin.
    #[error("server.allowed_origins: {0:?} is not an origin like \"https://host[:port]\" or \"http://host:*\"")]
    BadOrigin(String),
    /// `ingest.busy_poll` without a core of its own would spin on a shard's.
    #[error("ingest.busy_poll needs ingest.aggregator_core: a spinning aggregator must have a core no shard runs on")]
    BusyPollWithoutCore,
    /// Only one of `server.tls_cert` and `server.tls_key` is set.
    #[error("server.tls_cert and server.tls_key go together: set both (PEM files) or neither")]
    TlsHalf,
    /// A tenant's symbol pattern is not a name or a `PREFIX*` pattern.
    #[error("tenants.{tenant}.symbols: {pattern:?} is not a symbol name or a PREFIX* pattern")]
    BadSymbolPattern {
        /// The tenant.
        tenant: String,
        /// The offending pattern.
        pattern: String,
    },
}

impl Config {
    /// Checks every setting and returns the first mistake found. The
    /// `channels` section is checked where the catalogue is built
    /// (`channel::Catalogue::new`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for bound in &BOUNDS {
            let value = (bound.get)(self);
            if !bound.range.contains(&value) {
                return Err(ConfigError::OutOfRange {
                    field: bound.key,
                    value,
                    range: bound.range.clone(),
                });
            }
        }
        if self.feed.kind == FeedKind::Replay && self.feed.replay.is_none() {
            return Err(ConfigError::ReplayWithoutSource);
        }
        if self.feed.symbols.is_empty() && self.feed.sim_symbols == 0 {
            return Err(ConfigError::NoSymbols);
        }
        if self.feed.symbols.len() > u32::MAX as usize || self.feed.venues.len() > u16::MAX as usize
        {
            return Err(ConfigError::Universe("too many symbols or venues".into()));
        }
        let origins = self.server.allowed_origins.iter().flatten();
        if let Some(bad) = origins.into_iter().find(|o| !is_origin_pattern(o)) {
            return Err(ConfigError::BadOrigin(bad.clone()));
        }
        if self.ingest.busy_poll && self.ingest.aggregator_core.is_none() {
            return Err(ConfigError::BusyPollWithoutCore);
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::TlsHalf);
        }
        self.auth.validate()?;
        for (tenant, t) in &self.tenants {
            if let Some(pattern) = t.symbols.iter().find(|p| !is_symbol_pattern(p)) {
                return Err(ConfigError::BadSymbolPattern {
                    tenant: tenant.clone(),
                    pattern: pattern.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A numeric setting and the values it accepts.
struct Bound {
    /// Dotted path, as written in the file.
    key: &'static str,
    get: fn(&Config) -> u64,
    range: RangeInclusive<u64>,
}

/// Every numeric setting with a range, in the order [`Config::validate`]
/// checks them; the error message is written from the range.
const BOUNDS: [Bound; 15] = [
    Bound {
        key: "server.max_rate_hz",
        get: |c| c.server.max_rate_hz.into(),
        range: 1..=1_000,
    },
    Bound {
        key: "server.heartbeat_ms",
        get: |c| c.server.heartbeat_ms,
        range: 100..=3_600_000,
    },
    Bound {
        key: "server.slow_consumer_timeout_ms",
        get: |c| c.server.slow_consumer_timeout_ms,
        range: 10..=3_600_000,
    },
    Bound {
        key: "server.max_message_bytes",
        get: |c| c.server.max_message_bytes as u64,
        range: 128..=16 << 20,
    },
    Bound {
        key: "server.compression_min_bytes",
        get: |c| c.server.compression_min_bytes as u64,
        range: 0..=1 << 20,
    },
    Bound {
        key: "server.max_header_bytes",
        get: |c| c.server.max_header_bytes as u64,
        range: 512..=1 << 20,
    },
    Bound {
        key: "server.ops_per_sec",
        get: |c| c.server.ops_per_sec.into(),
        range: 1..=1_000_000,
    },
    Bound {
        key: "server.max_fragments",
        get: |c| c.server.max_fragments as u64,
        range: 1..=1 << 20,
    },
    Bound {
        key: "server.pings_per_sec",
        get: |c| c.server.pings_per_sec.into(),
        range: 1..=1_000_000,
    },
    Bound {
        key: "feed.feed_stale_after_ms",
        get: |c| c.feed.feed_stale_after_ms,
        range: 100..=3_600_000,
    },
    Bound {
        key: "feed.nats_replicas",
        get: |c| c.feed.nats_replicas as u64,
        range: 1..=5,
    },
    Bound {
        key: "server.tick_us",
        get: |c| c.server.tick_us,
        range: 50..=100_000,
    },
    Bound {
        key: "server.ring_capacity",
        get: |c| c.server.ring_capacity as u64,
        range: 16..=1 << 24,
    },
    Bound {
        key: "feed.sim_venues",
        get: |c| c.feed.sim_venues as u64,
        range: 1..=1_000,
    },
    Bound {
        key: "auth.leeway_s",
        get: |c| c.auth.leeway_s,
        range: 0..=300,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field() {
        let mut cfg = Config::default();
        cfg.server.max_rate_hz = 0;
        let err = cfg.validate().unwrap_err();
        assert!(
            err.to_string().starts_with("server.max_rate_hz = 0"),
            "{err}"
        );
        let mut cfg = Config::default();
        cfg.feed.kind = FeedKind::Replay;
        assert_eq!(cfg.validate(), Err(ConfigError::ReplayWithoutSource));
    }

    #[test]
    fn a_pinned_aggregator_takes_a_core_from_the_shards() {
        let mut cfg = Config::default();
        assert_eq!(cfg.shard_count(4), 4);
        cfg.ingest.aggregator_core = Some(0);
        assert_eq!(cfg.shard_count(4), 3);
        assert_eq!(
            cfg.shard_count(1),
            1,
            "one CPU is shared, never zero shards"
        );
        cfg.server.shards = 2;
        assert_eq!(cfg.shard_count(4), 2, "an explicit count wins");
    }

    #[test]
    fn busy_poll_needs_a_core_of_its_own() {
        let mut cfg = Config::default();
        cfg.ingest.busy_poll = true;
        assert_eq!(cfg.validate(), Err(ConfigError::BusyPollWithoutCore));
        cfg.ingest.aggregator_core = Some(1);
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        let mut cfg = Config::default();
        cfg.server.tls_cert = Some("cert.pem".into());
        assert_eq!(cfg.validate(), Err(ConfigError::TlsHalf));
        cfg.server.tls_key = Some("key.pem".into());
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn allowed_origins_must_be_origins() {
        let cfg = Config::from_toml(
            "[server]\nallowed_origins = [\"https://desk.example\", \"http://localhost:*\", \"http://[::1]:8080\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.validate(), Ok(()));
        for bad in [
            "desk.example",
            "https://desk.example/",
            "ftp://x",
            "https://",
            "http://x:",
        ] {
            let mut cfg = Config::default();
            cfg.server.allowed_origins = Some(vec![bad.into()]);
            assert_eq!(
                cfg.validate(),
                Err(ConfigError::BadOrigin(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_bound_reads_the_setting_it_names() {
        for bound in &BOUNDS {
            let (section, name) = bound.key.split_once('.').unwrap();
            let value = bound.range.end() + 1;
            let cfg = Config::from_toml(&format!("[{section}]\n{name} = {value}\n")).unwrap();
            let want = ConfigError::OutOfRange {
                field: bound.key,
                value,
                range: bound.range.clone(),
            };
            assert_eq!(cfg.validate(), Err(want), "{}", bound.key);
        }
    }

    #[test]
    fn out_of_range_messages_state_the_range() {
        let mut cfg = Config::default();
        cfg.server.ops_per_sec = 0;
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "server.ops_per_sec = 0 is out of range: 1..=1000000"
        );
        let mut cfg = Config::default();
        cfg.feed.sim_symbols = 0;
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "feed.sim_symbols = 0 is out of range: >= 1 when feed.symbols is empty"
        );
    }
}
