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
#![deny(missing_docs)]

pub mod aggregator;
pub mod config;
pub mod feed;
pub mod ring;
pub mod symbol;
