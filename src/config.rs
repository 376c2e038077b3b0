//! Configuration: a TOML file with serde defaults, overridden by CLI flags,
//! checked by [`Config::validate`] which says what to fix.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole server configuration. Every field has a default, so an empty
/// file (or no file) is a valid configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener, shards and per-connection limits.
    pub server: ServerConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Where venue quotes come from.
    pub feed: FeedConfig,
    /// Channel permissions.
    pub channels: ChannelsConfig,
}

/// Listener, shards and per-connection limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address every shard listens on (SO_REUSEPORT). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Number of shards (glommio executors, one per core); 0 = one per available core.
    pub shards: usize,
    /// Most flushes per second a connection receives.
    pub max_rate_hz: u32,
    /// Interval between server pings; a client silent for 3 intervals is closed (4000).
    pub heartbeat_ms: u64,
    /// A connection whose write has been stuck this long is closed (4008).
    pub slow_consumer_timeout_ms: u64,
    /// Time a client has to complete the HTTP request / upgrade.
    pub handshake_timeout_ms: u64,
    /// Largest HTTP request head accepted (431 above it).
    pub max_header_bytes: usize,
    /// Largest client message accepted (closed with 1009 above it).
    pub max_message_bytes: usize,
    /// Most streams (symbols) one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Most symbols named in one op.
    pub max_symbols_per_op: usize,
    /// Sustained client ops per second (token bucket refill rate).
    pub ops_per_sec: u32,
    /// Burst of client ops allowed above the sustained rate (bucket size).
    pub ops_burst: u32,
    /// Ops refused for rate in a row after which the connection is closed (4029).
    pub rate_limit_close_after: u32,
    /// How long shutdown waits for connections to close after sending 1001.
    pub drain_timeout_ms: u64,
    /// How often a shard drains its ring when idle, in microseconds.
    pub tick_us: u64,
    /// Records per shard ring.
    pub ring_capacity: usize,
    /// io_uring registered memory per shard, in KiB (counts against `ulimit -l`).
    pub io_memory_kib: usize,
    /// Kernel send buffer per connection (SO_SNDBUF); 0 = kernel default. Kept
    /// small so a slow reader is conflated in our table, not queued in the kernel.
    pub send_buffer_bytes: usize,
    /// Test only: serve an unauthenticated echo WebSocket at `/v1/echo` for
    /// the Autobahn conformance suite (`tools/autobahn`). Never in production.
    pub echo_route: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shards: 0,
            max_rate_hz: 60,
            heartbeat_ms: 15_000,
            slow_consumer_timeout_ms: 10_000,
            handshake_timeout_ms: 5_000,
            max_header_bytes: 8 * 1024,
            max_message_bytes: 64 * 1024,
            max_subscriptions: 1_000,
            max_symbols_per_op: 200,
            ops_per_sec: 50,
            ops_burst: 100,
            rate_limit_close_after: 200,
            drain_timeout_ms: 5_000,
            tick_us: 1_000,
            ring_capacity: 65_536,
            io_memory_kib: 1_024,
            send_buffer_bytes: 64 * 1024,
            echo_route: false,
        }
    }
}

impl ServerConfig {
    /// Minimum gap between two flushes of one connection.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.max_rate_hz.max(1)))
    }

    /// Interval between server pings.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// See [`ServerConfig::slow_consumer_timeout_ms`].
    pub fn slow_consumer_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_consumer_timeout_ms)
    }

    /// See [`ServerConfig::handshake_timeout_ms`].
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// See [`ServerConfig::drain_timeout_ms`].
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// See [`ServerConfig::tick_us`].
    pub fn tick(&self) -> Duration {
        Duration::from_micros(self.tick_us)
    }
}

/// Token verification settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File holding the HS256 secret. `QUOTECAST_JWT_HS256_SECRET` takes precedence.
    /// With neither, `serve` runs in dev mode with a random secret.
    pub hs256_secret_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secret_file: None,
            leeway_s: 5,
            issuer: None,
            audience: None,
        }
    }
}

/// Which feed adapter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// The built-in venue simulator.
    Sim,
    /// Venue quotes as JSON lines from a file or a TCP address.
    Replay,
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
    /// For `replay`: a file path, or `tcp:HOST:PORT` to connect to.
    pub replay: Option<String>,
    /// A venue quote older than this stops counting toward the best price.
    pub venue_max_age_ms: u64,
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
            replay: None,
            venue_max_age_ms: 5_000,
        }
    }
}

/// Per-channel permissions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Roles that may subscribe to `prices`.
    pub prices_roles: Vec<String>,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            prices_roles: ["TRADER", "ANALYST", "RISK_MANAGER", "ADMIN"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// A configuration mistake, saying what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A numeric setting is outside its allowed range.
    #[error("{field} = {value} is out of range: {expected}")]
    OutOfRange {
        /// Dotted path of the setting.
        field: &'static str,
        /// The value given.
        value: u64,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The replay feed needs a source.
    #[error("feed.kind = \"replay\" needs feed.replay = \"<file>\" or \"tcp:HOST:PORT\"")]
    ReplayWithoutSource,
    /// The symbol or venue universe cannot be interned.
    #[error("{0}")]
    Universe(String),
}

impl Config {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The default configuration as commented TOML, for `serve --print-config`.
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!("{DEFAULT_HEADER}\n{body}")
    }

    /// Checks every setting and returns the first mistake found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let checks: [(&'static str, u64, u64, u64, &'static str); 9] = [
            (
                "server.max_rate_hz",
                s.max_rate_hz.into(),
                1,
                1_000,
                "1..=1000",
            ),
            (
                "server.heartbeat_ms",
                s.heartbeat_ms,
                100,
                3_600_000,
                "100..=3600000",
            ),
            (
                "server.slow_consumer_timeout_ms",
                s.slow_consumer_timeout_ms,
                10,
                3_600_000,
                "10..=3600000",
            ),
            (
                "server.max_message_bytes",
                s.max_message_bytes as u64,
                128,
                16 << 20,
                "128..=16777216",
            ),
            (
                "server.max_header_bytes",
                s.max_header_bytes as u64,
                512,
                1 << 20,
                "512..=1048576",
            ),
            (
                "server.ops_per_sec",
                s.ops_per_sec.into(),
                1,
                1_000_000,
                ">= 1",
            ),
            ("server.tick_us", s.tick_us, 50, 100_000, "50..=100000"),
            (
                "server.ring_capacity",
                s.ring_capacity as u64,
                16,
                1 << 24,
                "16..=16777216",
            ),
            (
                "feed.sim_venues",
                self.feed.sim_venues as u64,
                1,
                1_000,
                "1..=1000",
            ),
        ];
        for (field, value, lo, hi, expected) in checks {
            if value < lo || value > hi {
                return Err(ConfigError::OutOfRange {
                    field,
                    value,
                    expected,
                });
            }
        }
        if self.feed.kind == FeedKind::Replay && self.feed.replay.is_none() {
            return Err(ConfigError::ReplayWithoutSource);
        }
        if self.feed.symbols.is_empty() && self.feed.sim_symbols == 0 {
            return Err(ConfigError::OutOfRange {
                field: "feed.sim_symbols",
                value: 0,
                expected: ">= 1 when feed.symbols is empty",
            });
        }
        if self.feed.symbols.len() > u32::MAX as usize || self.feed.venues.len() > u16::MAX as usize
        {
            return Err(ConfigError::Universe("too many symbols or venues".into()));
        }
        Ok(())
    }
}

const DEFAULT_HEADER: &str = "\
# quotecast configuration. Every key is optional; these are the defaults.
# server.listen          address every shard binds with SO_REUSEPORT
# server.shards          0 = one shard per available core
# server.max_rate_hz     most flushes per second per connection (conflation)
# server.*_ms            timeouts; 3 x heartbeat of silence closes with 4000
# auth.hs256_secret_file HS256 secret file (env QUOTECAST_JWT_HS256_SECRET wins);
#                        with neither, serve runs in dev mode with a random secret
# feed.kind              \"sim\" (built-in simulator) or \"replay\" (JSON lines)
# feed.replay            replay source: a file path or \"tcp:HOST:PORT\"
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_round_trips() {
        let cfg = Config::default();
        cfg.validate().unwrap();
        let parsed = Config::from_toml(&Config::default_toml()).unwrap();
        assert_eq!(parsed.server.max_rate_hz, cfg.server.max_rate_hz);
        assert_eq!(parsed.feed.sim_symbols, cfg.feed.sim_symbols);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[server]\nmax_rate = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_rate"), "{err}");
    }

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
}
