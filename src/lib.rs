//! # quotecast
//!
//! A thread-per-core WebSocket fan-out server for market data: venue quotes in,
//! conflated best bid/ask out to thousands of trading terminals; per-tenant
//! windowed analytics and never-dropped alerts on the same shards.
//!
//! # Layout, in data-path order
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | `Config` with serde defaults and `validate()` |
//! | [`channel`] | the channel catalogue: kinds, roles, metrics |
//! | [`symbol`] | symbols and venues interned to small integers |
//! | [`feed`] | the `Feed` seam: simulator and JSON-lines replay |
//! | [`event`] | metric and reliable events (feed or `POST /v1/publish`), validated |
//! | [`aggregator`] | venue quotes → best bid/ask per symbol, `seq`, `ts`; events → rings |
//! | [`ring`] | one SPSC ring per shard, fixed-size records |
//! | [`shard`] | executor per core: drains its ring each tick, owns its connections |
//! | [`conflate`] | latest-value table + per-connection last-sent `seq` (the dirty set) |
//! | [`window`] | per-tenant metric windows → one latest-value stream per (agg, metric) |
//! | [`reliable`] | reliable streams: `seq`, bounded history, replay with `since` |
//! | [`topic`] | stream → subscribed connections |
//! | [`flush`] | the flush scheduler: a timing wheel enforcing `max_rate_hz` |
//! | [`frame`] | encode a value ONCE into a complete WebSocket frame; read client frames |
//! | [`http`] | routes on the port: upgrade, healthz, channels, status |
//! | [`admission`] | node-wide connection caps per IP and per tenant (429) |
//! | [`auth`] | token verification (shared with `quotecast token`) |
//! | [`entitle`] | tenant symbol entitlements, narrowed by the token's `symbols` |
//! | [`conn`] | one connection: ops in, flushes out, limits, close codes |
//! | [`isolate`] | a panic in one connection's task ends that connection, not the shard |
//! | [`subscribe`] | subscribe/unsubscribe for each channel kind, permissions |
//! | [`publish`] | `POST /v1/publish`: validated events to the aggregator |
//! | [`echo`] | test-only `/v1/echo` route for the Autobahn suite (`server.echo_route`) |
//! | [`protocol`] | client ops and server messages (the PROTOCOL.md contract) |
//! | [`server`] | process wiring and the shard supervisor |
//! | [`watch`] | the terminal client behind `quotecast watch` |
#![deny(missing_docs)]

pub mod admission;
pub mod aggregator;
pub mod auth;
pub mod channel;
pub mod config;
pub mod conflate;
pub mod conn;
pub mod echo;
pub mod entitle;
pub mod event;
pub mod feed;
pub mod flush;
pub mod frame;
pub mod http;
pub mod isolate;
pub mod protocol;
pub mod publish;
pub mod reliable;
pub mod ring;
pub mod server;
pub mod shard;
pub mod subscribe;
pub mod symbol;
pub mod topic;
pub mod watch;
pub mod window;
