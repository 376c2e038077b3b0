//! Configuration: a TOML file with serde defaults, overridden by CLI flags,
//! checked by [`Config::validate`] which says what to fix.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Symbol entitlements per tenant; a tenant without an entry sees every symbol.
    pub tenants: BTreeMap<String, TenantConfig>,
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
    /// Most frames one fragmented client message may span (closed with 1009 above it).
    pub max_fragments: usize,
    /// Sustained client control frames (ping, pong) per second per connection.
    pub pings_per_sec: u32,
    /// Burst of control frames allowed above `pings_per_sec`; one more closes
    /// the connection with 1008 (policy violation).
    pub pings_burst: u32,
    /// Open WebSocket connections allowed per client IP, node-wide; 0 = unlimited.
    pub max_connections_per_ip: usize,
    /// Open WebSocket connections allowed per tenant, node-wide; 0 = unlimited.
    pub max_connections_per_tenant: usize,
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
            max_fragments: 64,
            pings_per_sec: 10,
            pings_burst: 20,
            max_connections_per_ip: 1_000,
            max_connections_per_tenant: 10_000,
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

/// A signature algorithm quotecast can be configured to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlg {
    /// HMAC-SHA256 with the shared secret (`auth.hs256_secret_file` or the env).
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA public key.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwtAlg {
    /// The name used in a JWT header and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::HS256 => "HS256",
            JwtAlg::RS256 => "RS256",
            JwtAlg::ES256 => "ES256",
            JwtAlg::EdDSA => "EdDSA",
        }
    }
}

/// A public key from a PEM file, selected by a token's `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKeyConfig {
    /// The `kid` a token names to select this key; unique across `keys` and the JWKS.
    pub kid: String,
    /// The key's algorithm: RS256, ES256 or EdDSA (HS256 is a secret, never a PEM).
    pub alg: JwtAlg,
    /// PEM file holding the public key (SPKI `PUBLIC KEY`; RSA also `RSA PUBLIC KEY`).
    pub pem_file: PathBuf,
}

/// Token verification settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Algorithms a token may use; anything else (and every spelling of `none`)
    /// is refused with `algorithm_not_allowed`.
    pub algorithms: Vec<JwtAlg>,
    /// File holding the HS256 secret. `QUOTECAST_JWT_HS256_SECRET` takes precedence.
    /// With neither, `serve` runs in dev mode with a random secret. Read only
    /// when `algorithms` lists HS256.
    pub hs256_secret_file: Option<PathBuf>,
    /// Public keys from PEM files, each named by its `kid`.
    pub keys: Vec<PemKeyConfig>,
    /// A JWKS file (`{"keys":[...]}`) of public keys, each with a `kid`.
    pub jwks_file: Option<PathBuf>,
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
            algorithms: vec![JwtAlg::HS256],
            hs256_secret_file: None,
            keys: Vec::new(),
            jwks_file: None,
            leeway_s: 5,
            issuer: None,
            audience: None,
        }
    }
}

impl AuthConfig {
    /// Whether `alg` is on the allow-list.
    pub fn allows(&self, alg: JwtAlg) -> bool {
        self.algorithms.contains(&alg)
    }

    /// Checks what can be checked without reading the key files.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Auth(msg));
        if self.algorithms.is_empty() {
            return bad(
                "auth.algorithms is empty: list at least one of HS256, RS256, ES256, EdDSA".into(),
            );
        }
        if self.leeway_s > MAX_LEEWAY_S {
            return Err(ConfigError::OutOfRange {
                field: "auth.leeway_s",
                value: self.leeway_s,
                expected: "0..=300",
            });
        }
        let mut kids = std::collections::HashSet::new();
        for key in &self.keys {
            if key.kid.is_empty() {
                return bad(format!(
                    "auth.keys: the key in {} has an empty kid",
                    key.pem_file.display()
                ));
            }
            if !kids.insert(key.kid.as_str()) {
                return bad(format!("auth.keys: kid {:?} is used twice", key.kid));
            }
            if key.alg == JwtAlg::HS256 {
                return bad(format!(
                    "auth.keys: kid {:?} is HS256, but an HMAC key is never built from a PEM; \
                     use auth.hs256_secret_file",
                    key.kid
                ));
            }
            if !self.allows(key.alg) {
                return bad(format!(
                    "auth.keys: kid {:?} is {} but auth.algorithms does not list it",
                    key.kid,
                    key.alg.name()
                ));
            }
        }
        for (field, value) in [
            ("auth.issuer", &self.issuer),
            ("auth.audience", &self.audience),
        ] {
            if value.as_deref() == Some("") {
                return bad(format!(
                    "{field} is empty: remove it or name the expected value"
                ));
            }
        }
        Ok(())
    }
}

/// Largest accepted `auth.leeway_s`.
const MAX_LEEWAY_S: u64 = 300;

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
    /// Simulated analytics events per second (trades, positions, risk and
    /// P&L of a few tenants' desks, with their alerts and session changes); 0 = none.
    pub sim_events_rate: u64,
    /// For `replay`: a file path, or `tcp:HOST:PORT` to connect to.
    pub replay: Option<String>,
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
            venue_max_age_ms: 5_000,
            feed_stale_after_ms: 5_000,
        }
    }
}

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
        }
    }
}

/// One tenant's entitlements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// Symbols the tenant may see: exact names, or prefixes ending in `*`
    /// (`"USD*"`; a lone `"*"` is every symbol). Empty = none.
    pub symbols: Vec<String>,
}

/// Whether `p` is a symbol name or a `PREFIX*` pattern: non-empty, and `*`
/// only as the last character.
pub fn is_symbol_pattern(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    !p.is_empty() && !body.contains('*')
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
    /// The channel catalogue is inconsistent.
    #[error("channels: {0}")]
    Catalogue(String),
    /// An `auth` setting is inconsistent; the message names it.
    #[error("{0}")]
    Auth(String),
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
        let checks: [(&'static str, u64, u64, u64, &'static str); 12] = [
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
            (
                "server.max_fragments",
                s.max_fragments as u64,
                1,
                1 << 20,
                "1..=1048576",
            ),
            (
                "server.pings_per_sec",
                s.pings_per_sec.into(),
                1,
                1_000_000,
                ">= 1",
            ),
            (
                "feed.feed_stale_after_ms",
                self.feed.feed_stale_after_ms,
                100,
                3_600_000,
                "100..=3600000",
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
        crate::model::channel::Catalogue::new(&self.channels)?;
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

const DEFAULT_HEADER: &str = "\
# quotecast configuration. Every key is optional; these are the defaults.
# server.listen          address every shard binds with SO_REUSEPORT
# server.shards          0 = one shard per available core
# server.max_rate_hz     most flushes per second per connection (conflation)
# server.*_ms            timeouts; 3 x heartbeat of silence closes with 4000
# auth.algorithms        allow-list of token algorithms: HS256, RS256, ES256, EdDSA
# server.max_connections_per_ip / _per_tenant  0 = unlimited; over -> HTTP 429
# feed.feed_stale_after_ms  no quote for this long -> status feed_stale, /healthz degraded
# auth.hs256_secret_file HS256 secret file (env QUOTECAST_JWT_HS256_SECRET wins);
#                        with neither, serve runs in dev mode with a random secret
# auth.keys              public keys: [[auth.keys]] kid = \"k1\", alg = \"RS256\",
#                        pem_file = \"/etc/quotecast/k1.pem\"; a token's kid picks one
# auth.jwks_file         a JWKS file of public keys (each with kid), read at start
# auth.leeway_s          clock skew allowed on exp and nbf (0..=300)
# auth.issuer/audience   when set, tokens MUST carry this iss / aud
# tenants.NAME.symbols   [tenants.t1] symbols = [\"EURUSD\", \"USD*\"]: what tenant t1
#                        may see; a tenant without an entry sees every symbol
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

    #[test]
    fn auth_and_tenants_parse_from_toml() {
        let cfg = Config::from_toml(
            r#"
            [auth]
            algorithms = ["RS256", "EdDSA"]
            jwks_file = "/etc/quotecast/jwks.json"
            issuer = "https://idp.example"
            [[auth.keys]]
            kid = "k1"
            alg = "RS256"
            pem_file = "/etc/quotecast/k1.pem"
            [tenants.t1]
            symbols = ["EURUSD", "USD*"]
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.auth.algorithms, [JwtAlg::RS256, JwtAlg::EdDSA]);
        assert_eq!(cfg.auth.keys[0].alg, JwtAlg::RS256);
        assert_eq!(cfg.tenants["t1"].symbols, ["EURUSD", "USD*"]);
    }

    #[test]
    fn unknown_algorithm_is_refused_at_parse() {
        let err = Config::from_toml("[auth]\nalgorithms = [\"HS384\"]\n").unwrap_err();
        assert!(err.to_string().contains("HS384"), "{err}");
        let err = Config::from_toml("[auth]\nalgorithms = [\"none\"]\n").unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }

    fn auth_error(edit: impl FnOnce(&mut AuthConfig)) -> String {
        let mut cfg = Config::default();
        cfg.auth.algorithms = vec![JwtAlg::RS256, JwtAlg::ES256];
        cfg.auth.keys = vec![PemKeyConfig {
            kid: "k1".into(),
            alg: JwtAlg::RS256,
            pem_file: "k1.pem".into(),
        }];
        cfg.validate().unwrap();
        edit(&mut cfg.auth);
        cfg.validate().unwrap_err().to_string()
    }

    #[test]
    fn inconsistent_auth_settings_are_named() {
        let twice = auth_error(|a| a.keys.push(a.keys[0].clone()));
        assert!(twice.contains("\"k1\" is used twice"), "{twice}");
        let hmac = auth_error(|a| a.keys[0].alg = JwtAlg::HS256);
        assert!(hmac.contains("never built from a PEM"), "{hmac}");
        let unlisted = auth_error(|a| a.algorithms = vec![JwtAlg::ES256]);
        assert!(unlisted.contains("does not list it"), "{unlisted}");
        let empty = auth_error(|a| a.algorithms.clear());
        assert!(empty.contains("auth.algorithms is empty"), "{empty}");
        let no_kid = auth_error(|a| a.keys[0].kid.clear());
        assert!(no_kid.contains("empty kid"), "{no_kid}");
        let leeway = auth_error(|a| a.leeway_s = 301);
        assert!(leeway.starts_with("auth.leeway_s = 301"), "{leeway}");
        let issuer = auth_error(|a| a.issuer = Some(String::new()));
        assert!(issuer.contains("auth.issuer is empty"), "{issuer}");
    }

    #[test]
    fn tenant_patterns_are_names_or_prefixes() {
        for good in ["EURUSD", "USD*", "*"] {
            assert!(is_symbol_pattern(good), "{good}");
        }
        for bad in ["", "**", "U*D", "*USD"] {
            assert!(!is_symbol_pattern(bad), "{bad}");
        }
        let mut cfg = Config::default();
        cfg.tenants.insert(
            "t1".into(),
            TenantConfig {
                symbols: vec!["EURUSD".into(), "*USD".into()],
            },
        );
        let err = cfg.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "tenants.t1.symbols: \"*USD\" is not a symbol name or a PREFIX* pattern"
        );
    }
}
