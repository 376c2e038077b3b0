//! `[server]`: the listener, shards and per-connection limits.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The flush wheel's resolution and the longest a write pass runs
    /// before the shard drains its ring again, in microseconds.
    pub tick_us: u64,
    /// Records per shard ring.
    pub ring_capacity: usize,
    /// io_uring registered memory per shard, in KiB (counts against `ulimit -l`).
    pub io_memory_kib: usize,
    /// Kernel send buffer per connection (SO_SNDBUF, which the kernel doubles
    /// for its bookkeeping); 0 = kernel default. Kept small so a slow reader is
    /// conflated in our table, not queued in the kernel as stale prices, and a
    /// client that stops reading stops costing the shard's other writes soon
    /// (tuning/results/2026-12-06-send-buffer.md). Raise it for clients far
    /// away with heavy subscriptions: a round trip's flushes must fit.
    pub send_buffer_bytes: usize,
    /// Browser origins (`https://desk.example`, or `http://localhost:*` for
    /// any port) whose pages may open a WebSocket or SSE stream and read REST
    /// answers (CORS), besides the server's own page. Unset: `http://localhost:*`
    /// in dev mode, none in production. A request without `Origin` (not a
    /// browser) is not affected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// permessage-deflate (RFC 7692) on `/v1/ws`: `"on"` accepts a client's
    /// offer, `"off"` never does.
    pub compression: Compression,
    /// Messages shorter than this go uncompressed even to a connection that
    /// negotiated deflate (RSV1 clear): a tiny message gains nothing.
    pub compression_min_bytes: usize,
    /// PEM certificate chain for TLS (`wss://`, `https://`) on `listen`; with
    /// `tls_key`. Unset: plaintext, for a deployment behind a terminating proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Test only: serve an unauthenticated echo WebSocket at `/v1/echo` for
    /// the Autobahn conformance suite (`tools/scripts/autobahn`). Never in production.
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
            send_buffer_bytes: 16 * 1024,
            allowed_origins: None,
            compression: Compression::On,
            compression_min_bytes: 128,
            tls_cert: None,
            tls_key: None,
            echo_route: false,
        }
    }
}

/// Whether `pattern` is an origin `http(s)://host[:port]`, or `http(s)://host:*`.
pub fn is_origin_pattern(pattern: &str) -> bool {
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return false;
    };
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1"));
    let port_ok = port == "*" || (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    matches!(scheme, "http" | "https") && host_ok && port_ok
}

/// Whether `/v1/ws` accepts permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Never accept an offer: every frame is uncompressed.
    Off,
    /// Accept a client's permessage-deflate offer.
    On,
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
