//! # quotecast
//!
//! A thread-per-core WebSocket fan-out server for market data: venue quotes in,
//! conflated best bid/ask out to thousands of trading terminals.
//!
//! # Layout, in data-path order
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | `Config` with serde defaults and `validate()` |
//! | [`symbol`] | symbols and venues interned to small integers |
//! | [`feed`] | the `Feed` seam: simulator and JSON-lines replay |
//! | [`aggregator`] | venue quotes → best bid/ask per symbol, `seq`, `ts` → rings |
//! | [`ring`] | one SPSC ring per shard, fixed-size records |
//! | [`shard`] | executor per core: drains its ring each tick, owns its connections |
//! | [`conflate`] | latest-value table + per-connection last-sent `seq` (the dirty set) |
//! | [`topic`] | stream → subscribed connections |
//! | [`flush`] | the flush scheduler: a timing wheel enforcing `max_rate_hz` |
//! | [`frame`] | encode a value ONCE into a complete WebSocket frame; read client frames |
//! | [`http`] | routes on the port: upgrade, healthz, channels, status |
//! | [`auth`] | token verification (shared with `quotecast token`) |
//! | [`conn`] | one connection: ops in, flushes out, limits, close codes |
//! | [`echo`] | test-only `/v1/echo` route for the Autobahn suite (`server.echo_route`) |
//! | [`protocol`] | client ops and server messages (the PROTOCOL.md contract) |
//! | [`server`] | process wiring and the shard supervisor |
//! | [`watch`] | the terminal client behind `quotecast watch` |
#![deny(missing_docs)]

pub mod aggregator;
pub mod auth;
pub mod config;
pub mod conflate;
pub mod conn;
pub mod echo;
pub mod feed;
pub mod flush;
pub mod frame;
pub mod http;
pub mod protocol;
pub mod ring;
pub mod server;
pub mod shard;
pub mod symbol;
pub mod topic;
pub mod watch;
