//! Configuration: a TOML file with serde defaults, overridden by CLI flags,
//! checked by [`Config::validate`] which says what to fix.
//!
//! A leaf: it imports nothing from the rest of the crate. One file per
//! section of the file (`server`, `auth`, `feed`, `channels`, `tenants`),
//! and `validate` for [`Config::validate`] and [`ConfigError`].

mod auth;
mod calendar;
mod channels;
mod claim_names;
mod custom;
mod feed;
mod ingest;
mod metrics;
mod server;
mod tenants;
mod validate;

pub use auth::{AuthConfig, JwtAlg, PemKeyConfig};
pub use calendar::{clock_minutes, CalendarConfig};
pub use channels::{recent_metrics_us, ChannelsConfig, RECENT_WINDOWS};
pub use claim_names::ClaimNames;
pub use custom::{KeyedChannelConfig, ReliableChannelConfig};
pub use feed::{FeedConfig, FeedKind};
pub use ingest::IngestConfig;
pub use metrics::MetricsConfig;
pub use server::{is_origin_pattern, Compression, ServerConfig};
pub use tenants::{is_symbol_pattern, TenantConfig};
pub use validate::ConfigError;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Access to `GET /metrics`.
    pub metrics: MetricsConfig,
    /// The aggregator thread's core and polling.
    pub ingest: IngestConfig,
}

impl Config {
    /// Shards to run on a host with `cpus` CPUs: `server.shards`, or one per
    /// CPU, less the one `ingest.aggregator_core` takes (when there are two
    /// or more).
    pub fn shard_count(&self, cpus: usize) -> usize {
        let pinned = usize::from(self.ingest.aggregator_core.is_some() && cpus > 1);
        match self.server.shards {
            0 => (cpus - pinned).max(1),
            n => n,
        }
    }

    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The configuration as one line of JSON for the start-up log, with
    /// every secret it holds replaced by `"<redacted>"`. Secrets that live
    /// outside it (the HS256 secret's file or environment variable) are
    /// never read into it.
    pub fn redacted_json(&self) -> String {
        let mut shown = self.clone();
        if shown.metrics.token.is_some() {
            shown.metrics.token = Some(REDACTED.to_owned());
        }
        serde_json::to_string(&shown).unwrap_or_default()
    }

    /// The default configuration as commented TOML, for `serve --print-config`.
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!("{DEFAULT_HEADER}\n{body}")
    }
}

/// What a secret is logged as.
const REDACTED: &str = "<redacted>";

/// The key-by-key notes printed above the defaults by `--print-config`.
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
# auth.query_params      query parameters a token is read from (no Bearer header)
# auth.claims.*          where sub, tenant, roles are: a name or dotted path
#                        (tenant = \"tenantId\", roles = \"realm_access.roles\")
# tenants.NAME.symbols   [tenants.t1] symbols = [\"EURUSD\", \"USD*\"]: what tenant t1
#                        may see; a tenant without an entry sees every symbol
# server.allowed_origins browser origins that may connect besides the server's own
#                        page, e.g. [\"https://desk.example\", \"http://localhost:*\"];
#                        unset = http://localhost:* in dev mode, none in production
# feed.kind              \"sim\" (built-in simulator), \"replay\" (JSON lines) or
#                        \"nats\" (the same lines from NATS and JetStream)
# feed.replay            replay source: a file path or \"tcp:HOST:PORT\"
# feed.nats_url          NATS server(s) of the nats feed, comma-separated
# feed.nats_replicas     JetStream copies of reliable messages and events (3 on a
#                        3-server cluster); reliable channels are numbered there
# metrics.token          when set, GET /metrics needs Authorization: Bearer <token>
# metrics.listen         when set, /metrics is served on this address instead
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
    fn the_logged_configuration_holds_no_secret() {
        let cfg = Config::from_toml("[metrics]\ntoken = \"s3cr3t-scrape\"\n").unwrap();
        let json = cfg.redacted_json();
        assert!(!json.contains("s3cr3t-scrape"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["metrics"]["token"], "<redacted>");
        assert_eq!(v["server"]["max_rate_hz"], cfg.server.max_rate_hz);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[server]\nmax_rate = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_rate"), "{err}");
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
}
